"""Command line: ``python -m ncutils {models,train,sweep} ...``."""
from __future__ import annotations

import argparse
import sys

import torch

from . import models
from .data import DATASET_NAMES, load_dataset
from .scales import SCALES, get_scale
from .studies import study_names
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


def cmd_sweep(a) -> None:
    """Compute every run a study needs at a scale, skipping stored ones (--dry-run: list them with their cost)."""
    from .runs import Store
    from .studies import study_configs
    from .sweep import check_options, format_plan, plan, run_local, run_submitit, sweep_threads

    configs = study_configs(a.study, a.scale)
    if a.match:
        configs = [c for c in configs if all(m in c.describe() for m in a.match)]
    store = Store(a.store)
    executor = a.executor
    check_options(executor, workers=a.workers, partition=a.partition, gpus=a.gpus, cpus=a.cpus,
                  timeout_min=a.timeout_min, mem_gb=a.mem_gb, max_retries=a.max_retries, wait=not a.no_wait)
    if a.dry_run:
        title = f"study {a.study!r} at scale {a.scale!r}: {len(configs)} runs, results store {store.root}"
        workers = (a.workers or 1) if executor == "local" else 1
        threads = a.cpus or sweep_threads(workers)
        print(format_plan(title, plan(configs, store, threads), store, workers))
        return
    if executor == "local":
        report = run_local(configs, store=store, workers=a.workers or 1)
    else:
        report = run_submitit(configs, store=store, cluster="slurm" if executor == "slurm" else "local",
                              partition=a.partition, gpus_per_node=a.gpus, cpus_per_task=a.cpus,
                              timeout_min=a.timeout_min, mem_gb=a.mem_gb, workers=a.workers,
                              max_retries=2 if a.max_retries is None else a.max_retries, wait=not a.no_wait)
    print(report)
    for line in report.submitted:
        print(f"submitted {line}")
    if report.failed:
        sys.exit(1)


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
    s = sub.add_parser("sweep", help=cmd_sweep.__doc__, description=cmd_sweep.__doc__)
    s.add_argument("study", help=f"one of {', '.join(study_names())} (ncutils/studies.py)")
    s.add_argument("--scale", default="cpu", help=f"one of {', '.join(SCALES)} (default cpu)")
    s.add_argument("--match", action="append", help="only the runs whose description (as --dry-run lists it) "
                   "contains this text; repeat to require several")
    s.add_argument("--dry-run", action="store_true", help="list the runs, their status and estimated cost; compute "
                   "nothing")
    s.add_argument("--executor", default="local", help="local (this machine), slurm, or submitit-local (Slurm's job "
                   "path as local processes)")
    s.add_argument("--workers", type=int, help="runs at once (local: processes; slurm: job-array parallelism)")
    s.add_argument("--partition", help="Slurm partition")
    s.add_argument("--gpus", type=int, help="GPUs per job")
    s.add_argument("--cpus", type=int, help="CPUs per job (also its torch threads)")
    s.add_argument("--timeout-min", type=int, help="job time limit in minutes (Slurm default 240; timed-out jobs "
                   "are requeued and resume from their checkpoint)")
    s.add_argument("--mem-gb", type=float, help="memory per job in GB")
    s.add_argument("--max-retries", type=int, help="resubmissions of a failed job (default 2)")
    s.add_argument("--no-wait", action="store_true", help="submit the jobs and return (run the sweep again to "
                   "collect or resubmit)")
    s.add_argument("--store", help="results directory (default data/results in the repository)")
    s.set_defaults(func=cmd_sweep)
    return p


def main(argv=None) -> None:
    a = build_parser().parse_args(argv)
    try:
        a.func(a)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
