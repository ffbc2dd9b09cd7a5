"""Sweeps: compute every missing run of a list of configs, locally or as submitit jobs (Slurm).

Every executor computes through :meth:`ncutils.runs.Store.ensure`, so stored runs are skipped, a
run is computed once even when asked twice (a file lock per run), writes are atomic and results
land in the same store whichever executor computed them.

- :func:`run_local`: in this process, or in ``workers`` spawned processes.
- :func:`run_submitit`: one submitit job per missing run, on Slurm (``cluster="slurm"``) or as local
  processes (``cluster="local"``, the same job path, for testing). A job is
  ``submitit.helpers.Checkpointable``: pre-empted or timed-out jobs are requeued by submitit and
  resume training from their checkpoint; failed jobs are resubmitted up to ``max_retries`` times.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import multiprocessing
import os
import re
import shutil
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import submitit
import torch

from .config import RunConfig
from .store import Store

EXECUTORS = ("local", "slurm", "submitit-local")
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
    if todo:
        store.check_writable()
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
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
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


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """Worker initializer: end this process when ``parent`` (the sweep) dies, even by SIGKILL, instead of
    computing its queued runs as an orphan. Linux: the kernel's parent-death signal; elsewhere too, a
    watchdog thread polling the parent's PID."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watchdog", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:  # an orphan is re-parented
        time.sleep(0.5)
    os._exit(1)


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
    store.check_writable()
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


def sweep_threads(workers: int) -> int:
    """The torch threads of each run of a local sweep with ``workers`` processes started here."""
    if workers == 1 and os.environ.get("OMP_NUM_THREADS"):
        return int(os.environ["OMP_NUM_THREADS"])  # as ncutils.train.use_all_cores
    return max(1, available_cores() // workers)
