"""The cost of runs before computing them: status, estimated and measured time of each run (``sweep --dry-run``).

A run's estimate (:func:`cost_terms`) is the sum of

- ``train``: every SGD step costs its batch over the model's training speed (measured at
  :data:`REFERENCE_SIZES`, scaled by forward FLOPs to the run's size and input, and by its precision) plus
  a fixed cost per forward op of the model (dispatch, autograd, optimiser: what a narrow model's step costs);
- ``measure``: the images evaluated, measured and probed over the forward speed, plus a fixed cost per
  layer tap and set measured or probed, and per forward op and measured batch;
- ``run``: a fixed cost per run (model, subsets, provenance, writing the results);

and a sweep pays once per process the imports and the full load of each dataset (:func:`startup_seconds`).
Stored runs of the same model, size, precision and thread count calibrate it (the median of their measured
over estimated time); a stored run's own estimate is calibrated on the *other* stored runs only, so the
dry run's estimate beside a stored run's measured time is a prediction, never a copy of it.
"""
from __future__ import annotations

import functools
import json
import math
import os
import statistics

import pandas as pd
import torch

from .config import RunConfig
from .data import load_dataset, steps_per_epoch
from .experiment import MEASURE_BATCH, bf16_native
from .scales import Scale, longest_prefix
from .store import Store
from .train import default_device

# Training images per second of every model at its cpu-scale size on 32x32 CIFAR-10, measured on the
# 2-core reference machine: ncutils.train.train (bf16 autocast, batch 128, 2 threads) for two epochs of
# 1,280 images, the second epoch's images_per_s, the better of two repetitions. The machine was shared:
# repeating a measurement gave up to 2x different speeds, so take estimates as +-50%; the dry run
# calibrates them on the measured time of stored runs (measured_seconds). ViT small and base were
# re-measured at their cpu sizes (embed 48, 96): so narrow, a ViT's speed does not follow its FLOPs (scaling the speeds
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

# The reference CPU has native bf16 (its bf16 training is twice its fp32 speed). A CPU without it (oneDNN
# without bf16 kernels, e.g. AVX2 only: ncutils.experiment.bf16_native) emulates bf16 autocast. Measured
# on such a 2-core AMD EPYC (AVX2), one thread, process CPU time of training steps of batch 128: training
# images per second under bf16 over the reference's fp32 speed (ResNet18 width 16 and VGG16 width 32:
# 0.04, Swin-T embed 24: 0.14, ViT-small embed 48: 0.09), and a further cost per forward op of a step
# (3 ms, from the steps of the smoke-size models: ResNet18/34 4.6/5.2 ms, VGG16 1.6, Swin-T/S 2.1/1.6, ViT 3.8).
EMULATED_BF16_OVER_FP32 = {"swin": 0.14, "vit": 0.09}
EMULATED_BF16_OVER_FP32_OTHERS = 0.04
EMULATED_BF16_OP_SECONDS = 3e-3
# Fixed costs, in process CPU seconds of one thread (other processes on the machine do not count),
# measured on the AVX2 machine with smoke runs of the vgg_vit, small_nets and label_noise studies
# (python -m ncutils.bench estimate prints how they add up):
OP_SECONDS = 1e-4  # per forward op of a training step in fp32 or native bf16 (0.1-0.3 ms measured; the
# stored cpu-scale runs bound it at 0.18 ms: Swin-L's 3,048 ops per step took 0.55 s)
TAP_SET_SECONDS = 0.02  # per layer tap and set measured or probed (a split of the run or of a target): its metrics
FORWARD_OP_SECONDS = 1.3e-4  # per measured batch (MEASURE_BATCH images) and forward op
# (these two fitted to the evaluate + measure + probe phases of those smoke runs and of the stored cpu-scale
# runs, which ran on the faster reference CPU: estimate / measured 0.6-2.1 and 0.4-1.9)
RUN_SECONDS = 0.1  # per run: model, subsets, provenance, results written
STARTUP_SECONDS = 7.0  # per process: python and the imports of ncutils (torch, timm, pandas: 3.3-4.2 s), and
# the first training step's one-time initialisation (about 3 s more than the next run's)
LOAD_SECONDS = 0.5  # per dataset and process, plus per image (train and test) loaded in full: arrays
LOAD_SECONDS_PER_IMAGE = {"arrays": 1.5e-5, "folders": 3e-4}  # (CIFAR: 1.0 s) or decoded files (PACS sketch: 1.7 s)
COLUMNS = ["status", "key", "run", "hours", "basis", "measured_hours"]


def plan(configs: list[RunConfig], store: Store, threads: int) -> pd.DataFrame:
    """Status, key, estimated cost (``hours``, with its ``basis``) and, for stored runs, measured cost
    (``measured_hours``, :func:`measured_seconds`) of each run: one row per config, in order.

    The estimate (:func:`estimated_seconds`) is for this machine, or for a stored run the kind of CPU it
    ran on. When the store holds trained runs of the same model, size and precision that used ``threads``
    torch threads (as the sweep would give its runs), the estimate of a trained run is scaled by their
    measured over estimated time (median) and ``basis`` names the device they ran on; a stored run is
    never among its own calibrating runs, and those measured by their CPU time, when there are any, stand
    for the rest (:func:`calibrating`).
    ``table.attrs``: ``startup_seconds``, what each process of the sweep pays once (:func:`startup_seconds`),
    and ``threads``.
    """
    configs = list(dict.fromkeys(configs))
    stored = _stored_runs(store, configs, threads)
    native = bf16_native(default_device())
    rows = []
    for config in configs:
        key, own = config.key(), stored.get(config.key())
        row = {"status": store.status(config), "key": key, "run": config.describe(),
               "measured_hours": own["seconds"] / 3600 if own else math.nan}
        try:
            seconds = estimated_seconds(config, native_bf16=own["native"] if own else native)
        except FileNotFoundError as error:  # a dataset this machine does not have
            rows.append({**row, "hours": math.nan, "basis": f"unknown: {str(error).splitlines()[0]}"})
            continue
        others = calibrating([r for k, r in stored.items() if k != key and r["calibrates"]
                              and r["group"] == _group(config) and config.epochs > 0])  # (not a run at initialisation)
        basis = REFERENCE_DEVICE
        if others:
            seconds *= statistics.median(r["seconds"] / r["estimate"] for r in others)
            basis = f"{len(others)} stored run(s) on {others[0]['device']}"
        rows.append({**row, "hours": seconds / 3600, "basis": basis})
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs.update(startup_seconds=_startup_or_nan(configs), threads=threads)
    return table


def calibrating(runs: list[dict]) -> list[dict]:
    """The stored runs that calibrate an estimate, of ``runs`` (:func:`_stored_runs`' values): those measured by
    their CPU time if any is (a run measured by wall time counts the time it waited for a shared core), else all."""
    return [r for r in runs if r["by_cpu"]] or runs


def format_plan(title: str, table: pd.DataFrame, store: Store, workers: int = 1) -> str:
    """The dry-run listing: one line per run (estimated cost, and measured cost of a stored run), then
    totals (and the wall time when ``workers`` runs share the machine) and results from other code versions."""
    lines = [title, f"{'status':12s} {'key':16s} {'estimate':>9s} {'measured':>9s}  run"]
    lines += [f"{r.status:12s} {r.key:16s} {duration(r.hours * 3600):>9s} {duration(r.measured_hours * 3600):>9s}  "
              f"{r.run}" for r in table.itertuples()]
    todo = table[table.status != "stored"]
    counts = ", ".join(f"{n} {s}" for s, n in table.status.value_counts().items())
    startup = duration(table.attrs.get("startup_seconds", math.nan))
    lines.append(f"{len(table)} runs: {counts or 'none'}.")
    lines.append(f"estimated cost: {duration(todo.hours.sum() * 3600)} for the {len(todo)} runs to compute "
                 f"({duration(table.hours.sum() * 3600)} for all), on "
                 f"{' / '.join(sorted(set(table.basis))) or REFERENCE_DEVICE}; plus {startup} to start each process "
                 "(imports, loading the data).")
    done = table[table.measured_hours.notna()]
    if len(done):
        lines.append(f"the {len(done)} stored runs: estimated {duration(done.hours.sum() * 3600)} (each calibrated "
                     f"on the other stored runs), measured {duration(done.measured_hours.sum() * 3600)}.")
    if workers > 1:
        lines.append(f"with {workers} runs at a time: about {duration(todo.hours.sum() * 3600 / workers)} "
                     f"({duration(table.hours.sum() * 3600 / workers)} for all) on this machine, plus {startup}.")
    lines += _machine_notes(table)
    incompatible = store.incompatible()
    if incompatible:
        lines.append(f"{len(incompatible)} stored run(s) from other code versions (not used; recomputed under the "
                     "current version if asked for):")
        lines += [f"  {item['path']}  code version {item['code_version']}" for item in incompatible]
    return "\n".join(lines)


def duration(seconds: float) -> str:
    """``seconds`` as "42 s", "7.5 min" or "3.9 h" ("-" if not a number)."""
    if math.isnan(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def estimated_seconds(config: RunConfig, native_bf16: bool | None = None) -> float:
    """Seconds one run takes on the reference CPU, or on a CPU without native bf16 when ``native_bf16``
    is False (None: this machine's). The sum of :func:`cost_terms`."""
    return sum(cost_terms(config, native_bf16).values())


def cost_terms(config: RunConfig, native_bf16: bool | None = None) -> dict[str, float]:
    """The seconds of a run's training, measuring (evaluating, measuring, probing) and fixed cost (see the
    module doc), on a CPU with native bf16 or not (``native_bf16``; None: this machine)."""
    native = bf16_native(default_device()) if native_bf16 is None else native_bf16
    classes, train_images, test_images, in_shape, _ = dataset_facts(config.dataset)
    if config.image_size is not None:
        in_shape = (in_shape[0], config.image_size, config.image_size)
    n_train = config.n_per_class * classes if config.n_per_class else train_images
    n_test = config.eval_n_per_class * classes if config.eval_n_per_class else test_images
    flops, ops, taps = _architecture(config.model, _without_activation(config.size), in_shape)
    reference = tuple(sorted(REFERENCE_SIZES.model_size(config.model).items()))
    speed = REFERENCE_TRAIN_IMAGES_PER_S[config.model] * _architecture(config.model, reference, (3, 32, 32))[0] / flops
    train_speed, op_seconds = speed, OP_SECONDS  # bf16 on the reference CPU
    if config.precision == "fp32" or not native:
        train_speed *= longest_prefix(FP32_OVER_BF16, config.model, FP32_OVER_BF16_OTHERS)
    if config.precision == "bf16" and not native:
        train_speed *= longest_prefix(EMULATED_BF16_OVER_FP32, config.model, EMULATED_BF16_OVER_FP32_OTHERS)
        op_seconds = EMULATED_BF16_OP_SECONDS
    steps = config.epochs * steps_per_epoch(n_train, config.batch_size)
    train = steps * (min(config.batch_size, n_train) / train_speed + ops * op_seconds)

    copies = 2 if config.corruption != "clean" else 1  # clean and corrupted inputs are measured
    forward = copies * (3 * n_train + 3 * n_test)  # evaluated once, measured in two passes
    batches, sets = copies * 2 * (_batches(n_train) + _batches(n_test)), 2 * copies
    if config.probe:
        forward += 2 * n_train + n_test  # probe features once, train accuracy from them, test once
        batches, sets = batches + _batches(n_train) + _batches(n_test), sets + 2
    for target in config.targets:  # evaluated, measured (two passes) and probed on its test split
        target_classes, _, target_test, _, smallest = dataset_facts(f"{config.dataset.partition(':')[0]}:{target}")
        probed = (config.target_n_per_class or smallest) * target_classes
        forward += 3 * target_test + (2 * probed + target_test if config.probe else 0)
        batches += 2 * _batches(target_test) + (_batches(probed) + _batches(target_test) if config.probe else 0)
        sets += 3 if config.probe else 1
    measure = forward / (FORWARD_SPEEDUP * speed) + taps * sets * TAP_SET_SECONDS + ops * batches * FORWARD_OP_SECONDS
    return {"train": train, "measure": measure, "run": RUN_SECONDS}


def startup_seconds(configs: list[RunConfig]) -> float:
    """What a process of the sweep pays once: the imports and the full load of every dataset its runs use
    (sources and targets)."""
    datasets = {c.dataset for c in configs} | {f"{c.dataset.partition(':')[0]}:{t}" for c in configs for t in c.targets}
    loads = 0.0
    for name in datasets:
        _, train_images, test_images, _, _ = dataset_facts(name)
        kind = "folders" if ":" in name else "arrays"  # folder-per-domain sets decode image files
        loads += LOAD_SECONDS + (train_images + test_images) * LOAD_SECONDS_PER_IMAGE[kind]
    return STARTUP_SECONDS + loads if configs else 0.0


@functools.lru_cache(maxsize=None)
def dataset_facts(dataset: str) -> tuple[int, int, int, tuple[int, int, int], int]:
    """(classes, training images, test images, image shape, images of the smallest training class) of a
    dataset, from its loader (:func:`ncutils.data.load_dataset`, which reads it; nothing is downloaded)."""
    train = load_dataset(dataset, "train", download=False)
    test = load_dataset(dataset, "test", download=False)
    return train.num_classes, len(train), len(test), train.shape, int(torch.bincount(train.labels).min())


def measured_seconds(record) -> float:
    """A stored run's cost: its median epoch times its epochs, plus its other phases (measuring, probing, ...).

    A run of one thread that recorded its CPU time is measured by it: other processes sharing the cores
    slow its wall clock, not its CPU time. Otherwise (several threads, or a run stored before CPU time was
    recorded) by wall time, where the median, not the sum, keeps an epoch slowed by another process (or a
    paused run) out of the run's cost."""
    log, provenance = record.train_log, record.provenance
    if measured_by_cpu(record):
        epochs, phases = log["cpu_seconds"].dropna() if len(log) else log.iloc[:0, 0], provenance["cpu_seconds"]
    else:
        epochs, phases = log["seconds"], provenance["seconds"]
    other = sum(v for k, v in phases.items() if k not in ("train", "total"))
    return (epochs.median() * len(log) if len(epochs) else 0.0) + other


def measured_by_cpu(record) -> bool:
    """Whether :func:`measured_seconds` measures a stored run by its CPU time: a run of one thread that recorded
    it (for some epoch, or with none trained)."""
    log, provenance = record.train_log, record.provenance
    logged = log.empty or ("cpu_seconds" in log and log["cpu_seconds"].notna().any())
    return provenance.get("torch_threads") == 1 and "cpu_seconds" in provenance and logged


def _batches(images: int) -> int:
    return -(-images // MEASURE_BATCH)


def _group(config: RunConfig) -> tuple:
    """Runs that calibrate each other: the same model, size (but activation: the same FLOPs) and precision."""
    return config.model, _without_activation(config.size), config.precision


def _without_activation(size: tuple) -> tuple:
    return tuple((k, v) for k, v in size if k != "activation")  # costs the same FLOPs


@functools.lru_cache(maxsize=None)
def _architecture(model: str, size: tuple, in_shape: tuple) -> tuple[float, int, int]:
    """Forward FLOPs and ops (aten calls) of one image, and layer taps, of ``model`` at ``size`` on ``in_shape``."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    from .models import build_model, layer_taps

    class OpCounter(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.calls += 1
            return func(*args, **(kwargs or {}))

    with torch.device("meta"):
        net = build_model(model, 10, in_shape=in_shape, **dict(size))
        flops, ops = FlopCounterMode(display=False), OpCounter()
        with flops, ops:
            net(torch.zeros(1, *in_shape))
    return float(flops.get_total_flops()), ops.calls, len(layer_taps(net))


def _stored_runs(store: Store, configs: list[RunConfig], threads: int) -> dict[str, dict]:
    """{key: seconds (measured), native, device, group, calibrates, estimate} of the valid stored runs
    that are among ``configs`` or may calibrate them: trained runs (a run at initialisation is all loading
    and measuring: no basis for a training run's cost) of one of their groups with ``threads`` torch threads
    (another thread count says little about the speed of the runs this sweep would start)."""
    keys, groups = {c.key() for c in configs}, {_group(c) for c in configs}
    found = {}
    for path in sorted(store.runs.glob("*")):
        try:
            config = RunConfig.from_dict(json.loads((path / "config.json").read_text())["config"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if config.key() not in keys and (config.epochs == 0 or _group(config) not in groups):
            continue
        try:
            record = store.read(config)
        except (OSError, ValueError):
            continue
        provenance = record.provenance
        native = provenance.get("bf16_native", True)  # runs stored before it was recorded ran on the reference CPU
        run = {"seconds": measured_seconds(record), "by_cpu": measured_by_cpu(record), "native": native,
               "device": provenance["device"],
               "group": _group(config), "calibrates": config.epochs > 0 and provenance.get("torch_threads") == threads}
        if run["calibrates"]:
            try:
                run["estimate"] = estimated_seconds(config, native_bf16=native)
            except FileNotFoundError:
                run["calibrates"] = False
        found[config.key()] = run
    return found


def _startup_or_nan(configs: list[RunConfig]) -> float:
    try:
        return startup_seconds(configs)
    except FileNotFoundError:
        return math.nan


def _machine_notes(table: pd.DataFrame) -> list[str]:
    """What this machine does differently from the estimate's: emulated bf16 (when a run uses it), other
    processes' load."""
    notes = []
    if not bf16_native(default_device()) and table.run.str.contains("precision=bf16").any():
        notes.append("note: this CPU has no native bf16 (oneDNN without bf16 kernels): bf16 autocast is emulated, "
                     "and the estimates of runs to compute here count it (training several times slower than fp32).")
    cores, load = len(os.sched_getaffinity(0)), os.getloadavg()[0]
    if load > cores:
        notes.append(f"note: load average {load:.1f} on {cores} cores: other processes share this machine, so runs "
                     "take longer than estimated (for an idle machine).")
        if table.attrs.get("threads", 1) > 1:
            notes.append(f"note: {table.attrs['threads']} torch threads per run on a loaded machine wait for each "
                         "other: the smoke clean chapter took 6x longer with 2 threads than with 1 at load 6 on 2 "
                         "cores (OMP_NUM_THREADS=1 gives each run one).")
    return notes
