"""Command line: ``python -m ncutils {models,train} ...``."""
from __future__ import annotations

import argparse
import sys

import torch

from . import models
from .data import DATASET_NAMES, load_dataset
from .scales import SCALES, get_scale
from .train import RECIPES, TrainConfig, default_recipe, evaluate, train


def cmd_models(a) -> None:
    """Print every registered model with its tap count and parameters at a scale."""
    scale = get_scale(a.scale)
    print(f"{'model':10s} {'taps':>5s} {'params':>12s}  size at scale {scale.name!r}")
    for name in models.model_names():
        size = scale.model_size(name)
        m = models.build_model(name, a.num_classes, **size)
        n = sum(p.numel() for p in m.parameters())
        print(f"{name:10s} {len(models.layer_taps(m)):5d} {n:12,d}  {size or 'paper size'}")


def cmd_train(a) -> None:
    """Train one model at a scale on a dataset and report train/test accuracy."""
    scale = get_scale(a.scale)
    train_data = load_dataset(a.dataset, "train", n_per_class=scale.n_per_class, seed=a.seed)
    test_data = load_dataset(a.dataset, "test", n_per_class=scale.eval_n_per_class, seed=a.seed)
    torch.manual_seed(a.seed)
    model = models.build_model(a.model, train_data.num_classes, in_shape=train_data.shape, **scale.model_size(a.model))
    cfg = TrainConfig(recipe=a.recipe or default_recipe(a.model), epochs=a.epochs or scale.epochs, seed=a.seed)
    log = train(model, train_data, cfg, checkpoint=a.checkpoint)
    print(log.tail(3).to_string(index=False))
    print(f"train accuracy {evaluate(model, train_data):.4f}, test accuracy {evaluate(model, test_data):.4f}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ncutils", description="Layer-wise neural collapse toolkit.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    m = sub.add_parser("models", help=cmd_models.__doc__, description=cmd_models.__doc__)
    m.add_argument("--scale", default="paper", choices=list(SCALES))
    m.add_argument("--num-classes", type=int, default=10)
    m.set_defaults(func=cmd_models)
    t = sub.add_parser("train", help=cmd_train.__doc__, description=cmd_train.__doc__)
    t.add_argument("model", choices=models.model_names())
    t.add_argument("--dataset", default="cifar10", help=f"one of {', '.join(DATASET_NAMES)}")
    t.add_argument("--scale", default="smoke", choices=list(SCALES))
    t.add_argument("--recipe", choices=list(RECIPES), help="default: the appendix's recipe for the model")
    t.add_argument("--epochs", type=int, help="default: the scale's")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--checkpoint", help="checkpoint file, written every epoch; resumes if it exists")
    t.set_defaults(func=cmd_train)
    return p


def main(argv=None) -> None:
    a = build_parser().parse_args(argv)
    try:
        a.func(a)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
