"""The cost of runs before computing them: status and estimated time of each run (``sweep --dry-run``).

The estimate is a run's training images over the model's measured training speed plus the images it
measures and probes over its forward speed, calibrated on the measured time of stored runs.
"""
from __future__ import annotations

import functools
import json
import statistics

import pandas as pd
import torch

from .config import RunConfig
from .scales import Scale, longest_prefix
from .store import Store

# Training images per second of every model at its cpu-scale size on 32x32 CIFAR-10, measured on the
# 2-core reference machine: ncutils.train.train (bf16 autocast, batch 128, 2 threads) for two epochs of
# 1,280 images, the second epoch's images_per_s, the better of two repetitions. The machine was shared:
# repeating a measurement gave up to 2x different speeds, so take estimates as +-50%; the dry run
# calibrates them on the wall time of stored runs. ViT small and base were re-measured at their cpu sizes
# (embed 48, 96): so narrow, a ViT's speed does not follow its FLOPs (scaling the speeds
# measured at embed 96 and 192 by FLOPs overestimated them about 4x).
REFERENCE_TRAIN_IMAGES_PER_S = {
    "resnet18": 871, "resnet34": 486, "resnet50": 300, "resnet101": 161, "resnet152": 173,
    "vgg11": 2235, "vgg13": 2107, "vgg16": 1470, "vgg19": 1002,
    "swin_t": 357, "swin_s": 282, "swin_b": 177, "swin_l": 147,
    "vit_tiny": 197, "vit_small": 150, "vit_base": 69, "mlp": 8759,
}
# The sizes those speeds were measured at (the first cpu scale; batch 128, 32x32 inputs).
REFERENCE_SIZES = Scale("reference", n_per_class=250, eval_n_per_class=200, epochs=150, sizes={
    "resnet": {"width": 16}, "resnet101": {"width": 8}, "resnet152": {"width": 8}, "vgg": {"width": 16},
    "swin": {"embed_dim": 24}, "vit_tiny": {"embed_dim": 48}, "vit_small": {"embed_dim": 48},
    "vit_base": {"embed_dim": 96}, "mlp": {"width": 512}})
REFERENCE_DEVICE = "the 2-core reference CPU"
# Training images per second in fp32 over those in bf16 autocast (RunConfig.precision): ViT small/base
# 1.8/1.7 (measured alike; bf16 is slow for ViT on this CPU), Swin-T 0.6 and ResNet18 0.5 (1 thread, batch 64).
FP32_OVER_BF16 = {"vit": 1.75, "swin": 0.6}
FP32_OVER_BF16_OTHERS = 0.5
# Forward (evaluate: fp32, batch 500) over training images per second, measured alike: ResNet18 2.0,
# VGG11 2.3, Swin S 1.9, Swin B 2.4, MLP 2.8.
FORWARD_SPEEDUP = 2.0
# (classes, training images, test images, input shape) of each dataset, for estimates without loading it;
# a PACS domain's images are split 80/20 into train/test.
DATASET_SHAPES = {
    "cifar10": (10, 50_000, 10_000, (3, 32, 32)), "cifar100": (100, 50_000, 10_000, (3, 32, 32)),
    "fashion-mnist": (10, 60_000, 10_000, (1, 28, 28)),
    **{f"pacs:{d}": (7, round(0.8 * n), n - round(0.8 * n), (3, 64, 64))
       for d, n in {"art_painting": 2048, "cartoon": 2344, "photo": 1670, "sketch": 3929}.items()},
}
def plan(configs: list[RunConfig], store: Store, threads: int) -> pd.DataFrame:
    """Status, key and estimated cost of each run (one row per config, in order).

    The cost is the run's training images over the model's training speed plus the images measured,
    probed and evaluated over its forward speed, from :data:`REFERENCE_TRAIN_IMAGES_PER_S` (measured at
    :data:`REFERENCE_SIZES`) scaled by forward FLOPs to the config's size and input shape. When the store
    holds trained runs of the same model and size that used ``threads`` torch threads (as the sweep
    would give its runs), the estimate is scaled by their measured over estimated time (median), and
    ``basis`` names the device they ran on.
    """
    configs = list(dict.fromkeys(configs))
    calibration = _calibration(store, threads)
    rows = []
    for config in configs:
        seconds = estimated_seconds(config)
        ratios = calibration.get((config.model, config.size))
        basis = REFERENCE_DEVICE
        if ratios:
            seconds *= statistics.median(r for r, _ in ratios)
            basis = f"{len(ratios)} stored run(s) on {ratios[0][1]}"
        rows.append({"status": store.status(config), "key": config.key(), "run": config.describe(),
                     "hours": seconds / 3600, "basis": basis})
    return pd.DataFrame(rows, columns=["status", "key", "run", "hours", "basis"])


def format_plan(title: str, table: pd.DataFrame, store: Store, workers: int = 1) -> str:
    """The dry-run listing: one line per run, then totals (and the wall time when ``workers`` runs share
    the machine) and results from other code versions."""
    lines = [title, f"{'status':12s} {'key':16s} {'est. cost':>9s}  run"]
    lines += [f"{r.status:12s} {r.key:16s} {duration(r.hours * 3600):>9s}  {r.run}" for r in table.itertuples()]
    todo = table[table.status != "stored"]
    counts = ", ".join(f"{n} {s}" for s, n in table.status.value_counts().items())
    lines.append(f"{len(table)} runs: {counts or 'none'}.")
    lines.append(f"estimated cost: {duration(todo.hours.sum() * 3600)} for the {len(todo)} runs to compute "
                 f"({duration(table.hours.sum() * 3600)} for all), on "
                 f"{' / '.join(sorted(set(table.basis))) or REFERENCE_DEVICE}.")
    if workers > 1:
        lines.append(f"with {workers} runs at a time: about {duration(todo.hours.sum() * 3600 / workers)} "
                     f"({duration(table.hours.sum() * 3600 / workers)} for all) on this machine.")
    incompatible = store.incompatible()
    if incompatible:
        lines.append(f"{len(incompatible)} stored run(s) from other code versions (not used; recomputed under the "
                     "current version if asked for):")
        lines += [f"  {item['path']}  code version {item['code_version']}" for item in incompatible]
    return "\n".join(lines)


def duration(seconds: float) -> str:
    """``seconds`` as "42 s", "7.5 min" or "3.9 h"."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def estimated_seconds(config: RunConfig) -> float:
    """Seconds one run takes on the reference CPU (see :func:`plan`)."""
    classes, train_images, test_images, in_shape = _dataset_shape(config.dataset)
    if config.image_size is not None:
        in_shape = (in_shape[0], config.image_size, config.image_size)
    n_train = config.n_per_class * classes if config.n_per_class else train_images
    n_test = config.eval_n_per_class * classes if config.eval_n_per_class else test_images
    steps = n_train // config.batch_size if n_train > config.batch_size else 1
    trained = config.epochs * steps * min(config.batch_size, n_train)
    copies = 2 if config.corruption != "clean" else 1  # clean and corrupted inputs are measured
    forward = copies * (3 * n_train + 3 * n_test)  # evaluate once, measure in two passes
    if config.probe:
        forward += 2 * n_train + n_test  # probe features once, train accuracy from them, test once
    for target in config.targets:  # evaluated, measured (two passes) and probed on its test split
        _, target_train, target_test, _ = _dataset_shape(f"{config.dataset.split(':')[0]}:{target}")
        probed = config.target_n_per_class * classes if config.target_n_per_class else target_train
        forward += 4 * target_test + 2 * probed
    speed = REFERENCE_TRAIN_IMAGES_PER_S[config.model] * _flop_ratio(config.model, config.size, in_shape)
    fp32_factor = longest_prefix(FP32_OVER_BF16, config.model, FP32_OVER_BF16_OTHERS) if config.precision == "fp32" else 1
    return trained / (fp32_factor * speed) + forward / (FORWARD_SPEEDUP * speed)


def _dataset_shape(dataset: str) -> tuple:
    if dataset not in DATASET_SHAPES:
        raise ValueError(f"no size known for dataset {dataset!r} to estimate its cost; "
                         f"known: {', '.join(DATASET_SHAPES)}")
    return DATASET_SHAPES[dataset]


def _flop_ratio(model: str, size: tuple, in_shape: tuple) -> float:
    """Forward FLOPs of the reference size on 32x32 over those of ``size`` on ``in_shape``."""
    reference = tuple(sorted(REFERENCE_SIZES.model_size(model).items()))
    if _without_activation(size) == reference and in_shape == (3, 32, 32):
        return 1.0
    return _forward_flops(model, reference, (3, 32, 32)) / _forward_flops(model, _without_activation(size), in_shape)


def _without_activation(size: tuple) -> tuple:
    return tuple((k, v) for k, v in size if k != "activation")  # costs the same FLOPs


@functools.lru_cache(maxsize=None)
def _forward_flops(model: str, size: tuple, in_shape: tuple) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    from .models import build_model

    with torch.device("meta"):
        net = build_model(model, 10, in_shape=in_shape, **dict(size))
        counter = FlopCounterMode(display=False)
        with counter:
            net(torch.zeros(1, *in_shape))
    return float(counter.get_total_flops())


def _calibration(store: Store, threads: int) -> dict:
    """{(model, size): [(measured / estimated seconds, device)]} over the valid stored runs that trained
    (a run at initialisation is all loading and measuring: no basis for a training run's cost) with as
    many torch threads as ``threads``."""
    found: dict = {}
    for path in sorted(store.runs.glob("*")):
        try:
            config = RunConfig.from_dict(json.loads((path / "config.json").read_text())["config"])
            if config.epochs == 0 or store.status(config) != "stored":
                continue
            record = store.read(config)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if record.provenance.get("torch_threads") != threads:
            continue  # another thread count says little about the speed of the runs this sweep would start
        found.setdefault((config.model, config.size), []).append(
            (measured_seconds(record) / estimated_seconds(config), record.provenance["device"]))
    return found


def measured_seconds(record) -> float:
    """A stored run's cost: its median epoch times its epochs, plus its other phases (measuring,
    probing, ...). The median, not the sum: an epoch slowed by another process (or a paused run) says
    nothing about the run's cost."""
    epochs = record.train_log["seconds"]
    phases = sum(v for k, v in record.provenance["seconds"].items() if k not in ("train", "total"))
    return (epochs.median() * len(epochs) if len(epochs) else 0.0) + phases
