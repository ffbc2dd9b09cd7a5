"""One run end to end: load the data of a :class:`~ncutils.config.RunConfig`, train, measure every layer.

1. Data: class-balanced training and test subsets drawn with the seed (the same images for every
   label noise and corruption of a seed); noisy training labels with the clean ones kept; train and
   test images corrupted with the seed, clean copies kept; for domain shift, each target domain.
2. Train with the config's recipe, checkpointed every epoch (a killed run resumes).
3. Measure every tap (:func:`ncutils.streaming.measure`) on the training and test data: under the
   clean and the noisy labels, on clean and corrupted inputs, and on each target domain's test split.
4. Probe every tap linearly (:func:`ncutils.probe.probe`, or :func:`~ncutils.probe.converged_probe`): trained on clean training data, tested
   on clean test data ("linear probing accuracy using clean test data"); for a target domain,
   trained on its limited training data and tested on its test split. The probe's training
   features are computed once, without augmentation.

The metrics come back as one tidy table, one row per layer x measure x evaluation set, columns
:data:`METRIC_COLUMNS`: ``eval_data`` (the dataset measured), ``split`` (train/test), ``inputs``
(clean/corrupted), ``labels`` (the grouping: clean/noisy), ``features`` (flat/pooled; probes use
pooled), ``layer``, ``layer_index``, ``measure``, ``value``, ``num_classes``, ``num_samples``, ``dim``.
Probe accuracies are rows with measure ``probe_train_acc`` / ``probe_test_acc`` (a converged probe adds
``probe_train_loss``, ``probe_iterations``, ``probe_converged``).
"""
from __future__ import annotations

import datetime
import platform
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path

import pandas as pd
import torch

from .corruptions import corrupt_data
from . import paths
from .data import Batches, ImageData, load_dataset
from .domains import DomainShift, LimitedTarget
from .models import build_model
from .noise import NoisyLabels, noisy_labels
from .probe import converged_probe, probe, probe_rows
from .config import CODE_VERSION, RunConfig
from .streaming import measure
from .train import TrainConfig, default_device, evaluate, load_checkpoint, train

METRIC_COLUMNS = ("eval_data", "split", "inputs", "labels", "features", "layer", "layer_index", "measure", "value",
                  "num_classes", "num_samples", "dim")
LOG_COLUMNS = ("epoch", "lr", "loss", "acc", "images_per_s", "seconds", "cpu_seconds")
MEASURE_BATCH = 128  # images per measuring batch (eval mode: the numbers do not depend on it beyond rounding)
VERSIONED_PACKAGES = ("torch", "torchvision", "timm", "numpy", "pandas", "pyarrow", "ncutils")


@dataclass(frozen=True)
class RunRecord:
    """What one run produces (and the store keeps): its config, tidy metrics, the per-epoch training
    log, accuracies and provenance."""

    config: RunConfig
    metrics: pd.DataFrame
    train_log: pd.DataFrame
    summary: dict
    provenance: dict


@dataclass(frozen=True)
class RunData:
    """The data of one run: clean and (possibly corrupted) inputs, noisy labels, target domains."""

    train: ImageData
    test: ImageData
    train_inputs: ImageData  # what the model trains on: ``train``, corrupted if the config says so
    test_inputs: ImageData
    labels: NoisyLabels  # training labels, with the clean ones
    targets: dict[str, LimitedTarget]  # target domain -> its limited training data and test split


@dataclass(frozen=True)
class EvalSet:
    """Images measured, with the label groupings to measure them under."""

    data: ImageData
    eval_data: str
    split: str
    inputs: str
    groupings: dict


def run_experiment(config: RunConfig, *, checkpoint: str | Path | None = None, progress: bool = True,
                   device: str | torch.device | None = None) -> RunRecord:
    """Run ``config`` end to end (see the module doc); ``checkpoint``: the training checkpoint file."""
    device = torch.device(device) if device is not None else default_device()
    seconds: dict[str, float] = {}  # wall time of each phase
    cpu_seconds: dict[str, float] = {}  # this process's CPU time of each phase
    started = datetime.datetime.now(datetime.timezone.utc)
    run = config.training_identity()
    # a checkpoint of another run is refused (and a damaged one set aside) before any work
    state = load_checkpoint(checkpoint, run=run) if config.epochs and checkpoint is not None else None
    resumed_from = state["epoch"] if state is not None else 0
    del state
    with _timed(seconds, cpu_seconds, "data"):
        data = load_run_data(config)

    torch.manual_seed(config.seed)
    model = build_model(config.model, data.train.num_classes, in_shape=data.train.shape, **dict(config.size))
    with _timed(seconds, cpu_seconds, "train"):
        if config.epochs:
            log = train(model, data.train_inputs, TrainConfig(recipe=config.recipe, epochs=config.epochs,
                                                              batch_size=config.batch_size, seed=config.seed,
                                                              bf16=config.precision == "bf16"),
                        labels=data.labels.labels, checkpoint=checkpoint, run=run, device=device,
                        progress=progress)
        else:
            model.to(device)
            log = pd.DataFrame(columns=list(LOG_COLUMNS))
    with _timed(seconds, cpu_seconds, "evaluate"):
        summary = _accuracies(model, config, data)
    with _timed(seconds, cpu_seconds, "measure"):
        frames = [_measured(model, s, config, data.train.num_classes, device) for s in _eval_sets(config, data)]
    with _timed(seconds, cpu_seconds, "probe"):
        if config.probe:
            frames.append(_probed(model, data.train, data.test, config.dataset, config, device))
            frames += [_probed(model, t.probe_train, t.probe_test, _target_name(config, name), config, device)
                       for name, t in data.targets.items()]
    metrics = pd.concat(frames, ignore_index=True)[list(METRIC_COLUMNS)]
    for column in ("num_classes", "num_samples", "dim"):
        metrics[column] = metrics[column].astype("Int64")

    seconds["total"], cpu_seconds["total"] = sum(seconds.values()), sum(cpu_seconds.values())
    provenance = {
        "code_version": CODE_VERSION, "git": _git_state(), "versions": _versions(), "device": _device_name(device),
        "torch_threads": torch.get_num_threads(), "bf16_native": bf16_native(device), "platform": platform.platform(),
        "started_utc": started.isoformat(),
        "seconds": seconds, "cpu_seconds": cpu_seconds, "resumed_from_epoch": resumed_from, "trained_epochs": config.epochs - resumed_from,
        "data": {"train": _data_provenance(data.train_inputs), "test": _data_provenance(data.test_inputs),
                 **{f"target:{name}": _data_provenance(t.probe_test) for name, t in data.targets.items()}},
    }
    return RunRecord(config, metrics, log.reset_index(drop=True), summary, provenance)


def load_run_data(config: RunConfig) -> RunData:
    """The run's data: seeded class-balanced subsets (the same images for every noise and corruption),
    its training labels, its inputs, and each target domain's limited training data and test split."""
    train_data = load_dataset(config.dataset, "train", n_per_class=config.n_per_class, seed=config.seed)
    test_data = load_dataset(config.dataset, "test", n_per_class=config.eval_n_per_class, seed=config.seed)
    targets = {}
    if config.targets:
        family, _, source = config.dataset.partition(":")
        shift = DomainShift(family, source, config.targets)
        targets = {t: shift.limited_target(t, config.target_n_per_class or _smallest_class(shift, t), config.seed)
                   for t in config.targets}
    if config.image_size is not None:
        side = config.image_size
        train_data, test_data = train_data.resized(side), test_data.resized(side)
        targets = {t: replace(v, probe_train=v.probe_train.resized(side), probe_test=v.probe_test.resized(side))
                   for t, v in targets.items()}
    return RunData(train=train_data, test=test_data,
                   train_inputs=corrupt_data(train_data, config.corruption, config.seed),
                   test_inputs=corrupt_data(test_data, config.corruption, config.seed),
                   labels=noisy_labels(train_data, config.noise, config.seed), targets=targets)


def _accuracies(model, config: RunConfig, data: RunData) -> dict:
    """train_acc (the inputs and labels trained on) and test_acc, and the same on clean labels, clean
    inputs and each target domain's test split when the run has them."""
    summary = {"num_train": len(data.train), "num_test": len(data.test),
               "train_acc": evaluate(model, data.train_inputs, labels=data.labels.labels),
               "test_acc": evaluate(model, data.test_inputs)}
    if config.noise != "clean":
        summary["train_acc_clean_labels"] = evaluate(model, data.train_inputs, labels=data.labels.clean)
        summary["noise_rate"] = data.labels.noise_rate
    if config.corruption != "clean":
        summary["train_acc_clean_inputs"] = evaluate(model, data.train, labels=data.labels.labels)
        summary["test_acc_clean_inputs"] = evaluate(model, data.test)
    for name, target in data.targets.items():
        summary[f"test_acc_{name}"] = evaluate(model, target.probe_test)
    return summary


def _eval_sets(config: RunConfig, data: RunData) -> list[EvalSet]:
    """What to measure: the training data under its clean (and noisy) labels and the test data, on the
    inputs the model saw (and on clean inputs when corrupted), and each target domain's test split."""
    corrupted = config.corruption != "clean"
    inputs = "corrupted" if corrupted else "clean"
    train_groupings = {"clean": data.labels.clean, **({"noisy": data.labels.labels} if config.noise != "clean" else {})}
    test_groupings = {"clean": data.test.labels}
    sets = [EvalSet(data.train_inputs, config.dataset, "train", inputs, train_groupings),
            EvalSet(data.test_inputs, config.dataset, "test", inputs, test_groupings)]
    if corrupted:
        sets += [EvalSet(data.train, config.dataset, "train", "clean", train_groupings),
                 EvalSet(data.test, config.dataset, "test", "clean", test_groupings)]
    sets += [EvalSet(t.probe_test, _target_name(config, name), "test", "clean", {"clean": t.probe_test.labels})
             for name, t in data.targets.items()]
    return sets


def _target_name(config: RunConfig, target: str) -> str:
    return f"{config.dataset.partition(':')[0]}:{target}"


def _measured(model, s: EvalSet, config: RunConfig, num_classes: int, device) -> pd.DataFrame:
    frame = measure(model, _labelled_batches(s.data, s.groupings, device), num_classes=num_classes,
                    features=config.features, jackknife=config.jackknife)
    return frame.assign(eval_data=s.eval_data, split=s.split, inputs=s.inputs)


def _labelled_batches(data: ImageData, groupings: dict, device):
    """A zero-argument callable giving fresh (x, {grouping: labels}) batches of ``data`` (no augmentation)."""
    positions = torch.arange(len(data))

    def batches():
        for x, index in Batches(data, MEASURE_BATCH, labels=positions, device=device):
            index = index.cpu()
            yield x, {name: labels[index] for name, labels in groupings.items()}
    return batches


def _probed(model, train_data: ImageData, test_data: ImageData, eval_data: str, config: RunConfig,
            device) -> pd.DataFrame:
    """Probe rows: accuracy of every tap's linear probe on its training and test data (clean); a converged
    probe adds its training loss, iterations and whether it converged (rows of split "train")."""
    train = _labelled_batches(train_data, {"clean": train_data.labels}, device)
    test = _labelled_batches(test_data, {"clean": test_data.labels}, device)
    if config.probe_method == "converged":
        accuracies = converged_probe(model, train, test, labels="clean", num_classes=train_data.num_classes)
    else:
        accuracies = probe(model, train, test, augmented=False, labels="clean", num_classes=train_data.num_classes,
                           epochs=config.probe_epochs, seed=config.seed)
    return probe_rows(accuracies, eval_data, train_data.num_classes, len(train_data), len(test_data))


def _smallest_class(shift: DomainShift, target: str) -> int:
    """All of a target's training images usable class-balanced: its smallest class's count."""
    labels = shift.target_data(target, "train").labels
    return int(torch.bincount(labels).min())


@contextmanager
def _timed(seconds: dict, cpu_seconds: dict, phase: str):
    start, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        seconds[phase], cpu_seconds[phase] = time.perf_counter() - start, time.process_time() - cpu


def _git_state() -> dict | None:
    """The repository's commit and whether tracked files differ from it (None outside a git checkout)."""
    root = paths.checkout()
    if root is None:
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def _versions() -> dict:
    versions = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 autocast natively: a GPU with bf16, or a CPU whose oneDNN has bf16
    kernels (AVX512-BF16, AMX). Elsewhere (e.g. an AVX2-only CPU) bf16 is emulated, several times slower
    than fp32 (ncutils.estimate)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({_cpu_model()})"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _data_provenance(data: ImageData) -> dict:
    """The data's provenance without local paths (they name the user's directories, not the data)."""
    return {"name": data.name, "split": data.split, "images": len(data),
            **{k: v for k, v in data.provenance.items() if k != "path"}}
