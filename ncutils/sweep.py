"""Sweeps: compute every missing run of a list of configs, locally or as submitit jobs (Slurm).

Every executor computes through :meth:`ncutils.runs.Store.ensure`, so stored runs are skipped, a
run is computed once even when asked twice (a file lock per run), writes are atomic and results
land in the same store whichever executor computed them.

- :func:`run_local`: in this process, or in ``workers`` spawned processes.
- :func:`run_submitit`: one submitit job per missing run, on Slurm (``cluster="slurm"``) or as local
  processes (``cluster="local"``, the same job path, for testing). A job is
  ``submitit.helpers.Checkpointable``: pre-empted or timed-out jobs are requeued by submitit and
  resume training from their checkpoint; failed jobs are resubmitted up to ``max_retries`` times.
- :func:`plan`: status and estimated cost of each run (``sweep --dry-run``).
"""
from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
import os
import re
import shutil
import statistics
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import submitit
import torch

from .runs import RunConfig, Store
from .scales import Scale, longest_prefix

EXECUTORS = ("local", "slurm", "submitit-local")
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
MAX_TIMEOUTS = 50  # requeues of a timed-out Slurm job (each resumes from its checkpoint)
DEFAULT_TIMEOUT_MIN = {"slurm": 240, "local": 7 * 24 * 60}


def set_threads(threads: int | None) -> None:
    """Use ``threads`` torch threads in this process (and tell ncutils.train not to change them)."""
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


def compute_one(config: dict, store_root: str, cache_root: str, threads: int | None = None,
                progress: bool = False) -> str:
    """Compute one run (a config dict) through the store: "stored" or "computed". Runs in a worker or job."""
    set_threads(threads)
    return Store(store_root, cache_root).ensure(RunConfig.from_dict(config), progress=progress)


@dataclass
class SweepReport:
    """What a sweep did, by run name."""

    stored: list[str] = field(default_factory=list)
    computed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    submitted: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)

    def add(self, config: RunConfig, outcome: str) -> None:
        (self.computed if outcome == "computed" else self.stored).append(config.name)

    def __str__(self) -> str:
        lines = [f"{len(self.computed)} computed, {len(self.stored)} already stored, {len(self.failed)} failed"
                 + (f", {len(self.submitted)} submitted without waiting" if self.submitted else "")
                 + (f", {len(self.running)} being computed by another process (skipped)" if self.running else "")]
        lines += [f"FAILED {name}: {error}" for name, error in self.failed.items()]
        return "\n".join(lines)


def _todo(configs: list[RunConfig], store: Store, report: SweepReport, skip_running: bool) -> list[RunConfig]:
    """The configs to compute; stored ones (and, with ``skip_running``, running ones) go to the report."""
    todo = []
    for config in dict.fromkeys(configs):
        status = store.status(config)
        if status == "stored":
            report.stored.append(config.name)
        elif status == "running" and skip_running:
            report.running.append(config.name)
        else:
            todo.append(config)
    return todo


# --- local -----------------------------------------------------------------------------------------

def run_local(configs: list[RunConfig], *, store: Store | None = None, workers: int = 1, threads: int | None = None,
              progress: bool = True) -> SweepReport:
    """Compute the missing runs here: sequentially in this process (``workers=1``) or in ``workers``
    spawned processes with ``threads`` torch threads each (default: the cores shared out)."""
    from tqdm import tqdm

    check_options("local", workers=workers, threads=threads)
    store = store or Store()
    report = SweepReport()
    todo = _todo(configs, store, report, skip_running=False)  # a running run is waited for, then read
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=not progress or not todo)
    if workers == 1:
        set_threads(threads)
        for config in todo:
            try:
                report.add(config, store.ensure(config, progress=progress))
            except Exception:
                report.failed[config.name] = traceback.format_exc(limit=-3).strip()
            _done(bar, config, report)
        bar.close()
        return report
    threads = threads or sweep_threads(workers)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(compute_one, c.to_dict(), str(store.root), str(store.cache), threads): c for c in todo}
        for future in as_completed(futures):
            config = futures[future]
            try:
                report.add(config, future.result())
            except Exception as error:
                report.failed[config.name] = f"{type(error).__name__}: {error}"
            _done(bar, config, report)
    bar.close()
    return report


def _done(bar, config: RunConfig, report: SweepReport) -> None:
    """Say which run just ended and how (a sweep of hours is watched run by run), then advance the bar."""
    outcome = ("FAILED" if config.name in report.failed else "computed" if config.name in report.computed
               else "stored by another process")
    if not bar.disable:
        bar.write(f"{time.strftime('%H:%M:%S')} {outcome}: {config.describe()}")
    bar.update()


# --- submitit --------------------------------------------------------------------------------------

class RunJob(submitit.helpers.Checkpointable):
    """A submitit job computing one run through the store. On pre-emption or timeout submitit calls
    :meth:`checkpoint` (inherited: resubmit the same call) and the requeued job resumes training
    from its per-epoch checkpoint."""

    def __init__(self, store_root: str, cache_root: str, threads: int | None):
        self.store_root, self.cache_root, self.threads = store_root, cache_root, threads

    def __call__(self, config: dict) -> str:
        return compute_one(config, self.store_root, self.cache_root, self.threads, progress=False)


def run_submitit(configs: list[RunConfig], *, store: Store | None = None, cluster: str = "slurm",
                 folder: str | os.PathLike | None = None, partition: str | None = None,
                 gpus_per_node: int | None = None, cpus_per_task: int | None = None, timeout_min: int | None = None,
                 mem_gb: float | None = None, workers: int | None = None, max_retries: int = 2,
                 threads: int | None = None, wait: bool = True, poll_s: float | None = None,
                 progress: bool = True) -> SweepReport:
    """One submitit job per missing run, on ``cluster`` "slurm" or "local" (local processes).

    partition, gpus_per_node, cpus_per_task, timeout_min, mem_gb: the job's resources (Slurm's
    defaults when None; timeout_min defaults to 240 on Slurm, where timed-out jobs are requeued and
    resume from their checkpoint). workers: at most this many runs at once (Slurm: the job array's
    parallelism). threads: torch threads per job (default: cpus_per_task on Slurm, the cores shared
    out locally). Failed jobs are resubmitted up to ``max_retries`` times. Job logs go to ``folder``
    (default ``<cache>/submitit``). With ``wait=False`` the jobs are submitted and left running:
    run the sweep again later to collect and resubmit what is still missing.
    """
    executor_name = {"slurm": "slurm", "local": "submitit-local"}.get(cluster)
    if executor_name is None:
        raise ValueError(f"unknown submitit cluster {cluster!r}; valid: slurm, local")
    check_options(executor_name, partition=partition, gpus=gpus_per_node, cpus=cpus_per_task,
                  timeout_min=timeout_min, mem_gb=mem_gb, workers=workers, max_retries=max_retries, threads=threads)
    store = store or Store()
    report = SweepReport()
    todo = _todo(configs, store, report, skip_running=True)  # a job would only wait for it
    if not todo:
        return report
    folder = Path(folder) if folder is not None else store.cache / "submitit"
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=cluster, slurm_max_num_timeout=MAX_TIMEOUTS,
                                     local_max_num_timeout=MAX_TIMEOUTS)
    parameters = {"name": "ncutils", "timeout_min": timeout_min or DEFAULT_TIMEOUT_MIN[cluster],
                  "gpus_per_node": gpus_per_node, "cpus_per_task": cpus_per_task, "mem_gb": mem_gb}
    if cluster == "slurm":
        parameters.update(slurm_partition=partition, slurm_array_parallelism=workers)
        threads = threads or cpus_per_task
    else:
        threads = threads or max(1, available_cores() // (workers or 1))
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    job = RunJob(str(store.root), str(store.cache), threads)
    submit = functools.partial(_submit, executor, job)
    in_flight = len(todo) if cluster == "slurm" or workers is None else workers
    queue = list(todo)
    with executor.batch() if cluster == "slurm" else contextlib.nullcontext():
        pending = {submit(c): (c, 0) for c in queue[:in_flight]}
    queue = queue[in_flight:]
    if not wait:
        report.submitted = [f"{j.job_id} {c.name}" for j, (c, _) in pending.items()]
        return report
    return _collect(pending, queue, submit, max_retries, store, report, progress,
                    poll_s if poll_s is not None else (30.0 if cluster == "slurm" else 1.0), len(todo))


def _submit(executor, job: RunJob, config: RunConfig):
    return executor.submit(job, config.to_dict())


def _collect(pending: dict, queue: list, submit, max_retries: int, store: Store, report: SweepReport,
             progress: bool, poll_s: float, total: int) -> SweepReport:
    """Wait for the jobs, resubmitting failures, and keep up to len(pending) jobs in flight."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc="jobs", unit="run", disable=not progress)
    while pending:
        finished = [j for j in pending if j.done()]
        if not finished:
            time.sleep(poll_s)
            continue
        for j in finished:
            config, attempt = pending.pop(j)
            try:
                report.add(config, j.result())
            except Exception as error:
                if attempt < max_retries and store.status(config) != "stored":
                    print(f"job {j.job_id} ({config.describe()}) failed; resubmitting "
                          f"({attempt + 1}/{max_retries}): {_error_line(error)}", file=sys.stderr)
                    pending[submit(config)] = (config, attempt + 1)
                    continue
                report.failed[config.name] = f"{_error_line(error)} (log: {j.paths.stderr})"
            bar.update()
            if queue:
                next_config = queue.pop(0)
                pending[submit(next_config)] = (next_config, 0)
    bar.close()
    return report


def _error_line(error: Exception) -> str:
    """The line naming the exception a job raised (submitit wraps it, with its traceback, in its own error)."""
    lines = str(error).strip().splitlines()
    raised = [line for line in lines if re.match(r"[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b", line)]
    return raised[-1] if raised else f"{type(error).__name__}: {lines[-1] if lines else ''}"


# --- options ---------------------------------------------------------------------------------------

def check_options(executor: str, *, workers: int | None = None, partition: str | None = None,
                  gpus: int | None = None, cpus: int | None = None, timeout_min: int | None = None,
                  mem_gb: float | None = None, max_retries: int | None = None, threads: int | None = None,
                  wait: bool = True) -> None:
    """ValueError naming any option that makes no sense with ``executor`` (one of :data:`EXECUTORS`)."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; valid: {', '.join(EXECUTORS)}")
    for name, value, low in (("--workers", workers, 1), ("--gpus", gpus, 0), ("--cpus", cpus, 1),
                             ("--timeout-min", timeout_min, 1), ("--max-retries", max_retries, 0),
                             ("threads", threads, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if mem_gb is not None and not mem_gb > 0:
        raise ValueError(f"--mem-gb must be positive, got {mem_gb!r}")
    if executor == "local":
        job_options = {"--partition": partition, "--gpus": gpus, "--cpus": cpus, "--timeout-min": timeout_min,
                       "--mem-gb": mem_gb, "--max-retries": max_retries}
        given = [name for name, value in job_options.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: option(s) of the job executors (slurm, submitit-local) only; the "
                             "local executor runs in this machine's processes (use --workers N; CUDA is used "
                             "when present)")
        if not wait:
            raise ValueError("--no-wait needs a job executor (slurm, submitit-local): local runs end with the sweep")
    if executor == "submitit-local":
        if partition is not None:
            raise ValueError("--partition is a Slurm option; the submitit-local executor has no partitions")
        if gpus and gpus > torch.cuda.device_count():
            raise ValueError(f"--gpus {gpus} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if executor == "slurm" and shutil.which("sbatch") is None:
        raise ValueError("the slurm executor needs Slurm's sbatch on PATH (run the sweep on the cluster's login "
                         "node); to try the job path on this machine use --executor submitit-local")


# --- plans and cost estimates ----------------------------------------------------------------------

def plan(configs: list[RunConfig], store: Store | None = None, threads: int | None = None) -> pd.DataFrame:
    """Status, key and estimated cost of each run (one row per config, in order).

    The cost is the run's training images over the model's training speed plus the images measured,
    probed and evaluated over its forward speed, from :data:`REFERENCE_TRAIN_IMAGES_PER_S` (measured at
    :data:`REFERENCE_SIZES`) scaled by forward FLOPs to the config's size and input shape. When the store
    holds trained runs of the same model and size that used ``threads`` torch threads (default: as a
    run started here would, see :func:`sweep_threads`), the estimate is scaled by their measured over
    estimated time (median), and ``basis`` names the device they ran on.
    """
    store = store or Store()
    configs = list(dict.fromkeys(configs))
    calibration = _calibration(store, threads or sweep_threads(1))
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


def sweep_threads(workers: int) -> int:
    """The torch threads of each run of a local sweep with ``workers`` processes started here."""
    if workers == 1 and os.environ.get("OMP_NUM_THREADS"):
        return int(os.environ["OMP_NUM_THREADS"])  # as ncutils.train.use_all_cores
    return max(1, available_cores() // workers)


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
