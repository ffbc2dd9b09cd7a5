"""The cost estimate (ncutils.estimate) against measured time: every stored run of a scale, and a chapter from nothing.

    python -m ncutils.bench estimate [--scale cpu] [--store DIR] [--chapter clean] [--chapter-scale smoke]
                                     [--threads 1] [--no-chapter] [--keep]

1. Stored runs: for every stored run of ``--scale``, its measured cost (``measured_seconds``: its median
   epoch times its epochs plus the other phases of its provenance.json, in CPU time for a run of one thread), the reference estimate (not
   calibrated; for the kind of CPU the run ran on) and the estimate the dry run prints for it, calibrated
   leave-one-out: on the *other* stored runs of its model, size and precision only. Ratios are
   estimate / measured; the worst is the one farthest from 1 either way.
2. A chapter from nothing: the dry run of ``sweep CHAPTER --scale smoke`` into an empty temporary store and
   cache, then that sweep in a subprocess with ``OMP_NUM_THREADS=--threads``; its wall time and its CPU time
   (user + system of the subprocess: what the load of other processes does not inflate) against the
   estimate (the runs plus one process's startup).

The machine may be shared: the load average before and after the sweep is printed beside its times.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from ..config import RunConfig
from ..estimate import duration, estimated_seconds, measured_seconds, plan
from ..store import Store
from ..studies import study_configs

ROOT = Path(__file__).resolve().parents[2]  # the checkout whose ncutils the subprocesses run


def stored_runs(store: Store, scale: str) -> pd.DataFrame:
    """One row per stored run of ``scale``: measured, reference and leave-one-out estimates, their ratios."""
    by_threads: dict[int, list] = {}
    for path in sorted(store.runs.glob("*")):
        try:
            config = RunConfig.from_dict(json.loads((path / "config.json").read_text())["config"])
            record = store.read(config)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if config.scale == scale:
            by_threads.setdefault(record.provenance["torch_threads"], []).append((config, record))
    rows = []
    for threads, runs in by_threads.items():
        table = plan([c for c, _ in runs], store, threads).set_index("key")
        for config, record in runs:
            measured = measured_seconds(record)
            reference = estimated_seconds(config, native_bf16=record.provenance.get("bf16_native", True))
            row = table.loc[config.key()]
            rows.append({"run": config.describe(), "threads": threads, "measured_s": measured,
                         "reference_s": reference, "reference_ratio": reference / measured,
                         "loo_s": row.hours * 3600, "loo_ratio": row.hours * 3600 / measured, "basis": row.basis})
    return pd.DataFrame(rows)


def worst(ratios: pd.Series) -> float:
    """The ratio farthest from 1 either way (0.4 is worse than 2.2)."""
    return ratios.loc[(ratios.apply(lambda r: max(r, 1 / r))).idxmax()]


def chapter(study: str, scale: str, threads: int, keep: bool) -> None:
    """Dry run, then sweep, ``study`` at ``scale`` into an empty temporary store; print estimate vs measured."""
    tmp = Path(tempfile.mkdtemp(prefix="ncutils-bench-estimate-"))
    store = Store(tmp / "results", tmp / "cache")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "NCUTILS_CACHE": str(store.cache),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "ncutils", "sweep", study, "--scale", scale, "--store", str(store.root)]
    print(f"$ OMP_NUM_THREADS={threads} NCUTILS_CACHE={store.cache} {' '.join(command[1:])} --dry-run")
    dry = subprocess.run(command + ["--dry-run"], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    print(dry.stdout)
    table = plan(study_configs(study, scale), store, threads)  # the same numbers, in this process
    runs, startup = table.hours.sum() * 3600, table.attrs["startup_seconds"]
    print(f"$ OMP_NUM_THREADS={threads} NCUTILS_CACHE={store.cache} {' '.join(command[1:])}")
    load_before, before = os.getloadavg(), resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(f"{'run':48s} {'estimate':>9s} {'measured':>9s}  (measured: median epoch x epochs + other phases, wall)")
    for config, row in zip(dict.fromkeys(study_configs(study, scale)), table.itertuples()):
        measured = measured_seconds(store.read(config))
        print(f"{config.describe()[:48]:48s} {duration(row.hours * 3600):>9s} {duration(measured):>9s}")
    estimate = runs + startup
    cores = len(os.sched_getaffinity(0))
    print(f"\nchapter {study!r} at scale {scale!r} from nothing, {threads} torch thread(s): "
          f"estimate {duration(estimate)} ({duration(runs)} of runs + {duration(startup)} to start); "
          f"measured wall {duration(wall)} (estimate / wall {estimate / wall:.2f}), "
          f"CPU {duration(cpu)} (estimate / CPU {estimate / cpu:.2f}); "
          f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after, on {cores} cores")
    if keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m ncutils.bench estimate", description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", default="cpu", help="the stored runs compared (default cpu)")
    p.add_argument("--store", help="results directory (default data/results in the repository)")
    p.add_argument("--chapter", default="clean", help="study computed from nothing (default clean)")
    p.add_argument("--chapter-scale", default="smoke", help="its scale (default smoke)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the chapter's sweep (default 1)")
    p.add_argument("--no-chapter", action="store_true", help="only the stored runs")
    p.add_argument("--keep", action="store_true", help="keep the chapter's temporary store")
    args = p.parse_args(argv)
    runs = stored_runs(Store(args.store), args.scale)
    if len(runs):
        pd.set_option("display.width", 250)
        pd.set_option("display.max_rows", 500)
        shown = runs.assign(run=runs.run.str.slice(0, 60), measured=runs.measured_s.map(duration),
                            reference=runs.reference_s.map(duration), calibrated=runs.loo_s.map(duration))
        print(shown[["run", "measured", "reference", "reference_ratio", "calibrated", "loo_ratio", "basis"]]
              .sort_values("run").round(2).to_string(index=False))
        for column, name in (("reference_ratio", "reference (not calibrated)"),
                             ("loo_ratio", "calibrated leave-one-out")):
            r = runs[column]
            off = runs.loc[(r.apply(lambda x: max(x, 1 / x))).idxmax()]
            print(f"{name}: estimate / measured from {r.min():.2f} to {r.max():.2f}, worst {worst(r):.2f} "
                  f"({off.run}); within 2x: {int(((r >= 0.5) & (r <= 2)).sum())} of {len(r)}")
    else:
        print(f"no stored runs of scale {args.scale!r}")
    if not args.no_chapter:
        print()
        chapter(args.chapter, args.chapter_scale, args.threads, args.keep)
