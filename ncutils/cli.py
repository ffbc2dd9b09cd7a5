"""Command line: ``python -m ncutils {models,train,sweep} ...``; ``train`` options are generated from
:class:`~ncutils.config.RunConfig`'s fields and their docstrings."""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import sys

from . import models
from .config import RunConfig
from .estimate import format_plan, plan
from .scales import SCALES, get_scale
from .store import Store
from .studies import study_configs, study_names
from .sweep import check_options, run_local, run_submitit, sweep_threads

# RunConfig fields that are not options of ``train``: the model is its argument, the scale its own option
# (it sets the sizes), and ``size`` is given as KEY=VALUE pairs.
NOT_OPTIONS = ("model", "scale", "size")


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
    """Train and measure one run at a scale's sizes, through the results store (a stored run is read, not
    retrained), and print its last epochs and accuracies."""
    fields = {f.name: getattr(a, f.name) for f in dataclasses.fields(RunConfig)
              if f.name not in NOT_OPTIONS and getattr(a, f.name) is not None}
    if a.size:
        fields["size"] = dict(_size_pair(pair) for pair in a.size)
    config = RunConfig.at_scale(a.model, fields.pop("dataset", "cifar10"), a.scale, **fields)
    store = Store(a.store)
    outcome = store.ensure(config)
    record = store.read(config)
    print(f"{outcome}: {config.describe()}\n  {store.run_dir(config)}")
    if not config.epochs:
        print("epochs 0: no training; the model was measured at initialisation")
    if len(record.train_log):
        print(record.train_log.tail(3).to_string(index=False))
    print(f"train accuracy {record.summary['train_acc']:.4f}, test accuracy {record.summary['test_acc']:.4f}")


def _size_pair(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--size takes KEY=VALUE (e.g. width=16), got {text!r}")
    for kind in (int, float):  # numbers as numbers, names (an activation) as text
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def cmd_sweep(a) -> None:
    """Compute every run a study needs at a scale, skipping stored ones (--dry-run: list them with their cost)."""
    configs = study_configs(a.study, a.scale)
    if a.match:
        matching = [c for c in configs if all(m in c.describe() for m in a.match)]
        if not matching:
            raise ValueError(f"no run of study {a.study!r} at scale {a.scale!r} matches --match "
                             f"{' '.join(map(repr, a.match))}; its runs: {'; '.join(c.describe() for c in configs)}")
        configs = matching
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


def field_docs(cls) -> dict[str, str]:
    """The docstring under each field of a dataclass (the string that follows its annotation)."""
    body = ast.parse(inspect.getsource(cls)).body[0].body
    return {node.target.id: " ".join(body[i + 1].value.value.replace("``", "").split())
            for i, node in enumerate(body[:-1])
            if isinstance(node, ast.AnnAssign) and isinstance(body[i + 1], ast.Expr)
            and isinstance(body[i + 1].value, ast.Constant) and isinstance(body[i + 1].value.value, str)}


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`RunConfig` field (but :data:`NOT_OPTIONS`), typed from its annotation and
    documented by its docstring; an option left out takes the scale's value or the field's default."""
    docs = field_docs(RunConfig)
    for f in dataclasses.fields(RunConfig):
        if f.name in NOT_OPTIONS:
            continue
        option, kind = "--" + f.name.replace("_", "-"), str(f.type)
        default = "the scale's" if f.name in _SCALED else repr(f.default)
        help_text = f"{docs.get(f.name, '')} (default: {default})".replace("%", "%%")
        if kind == "bool":
            parser.add_argument(option, action=argparse.BooleanOptionalAction, help=help_text)
        elif kind.startswith("tuple"):
            parser.add_argument(option, nargs="+", metavar=f.name.upper(), help=help_text)
        else:
            parser.add_argument(option, type=int if kind.startswith("int") else str, metavar=f.name.upper(),
                                help=help_text)


# The fields RunConfig.at_scale takes from the scale (ncutils.scales.Scale).
_SCALED = ("n_per_class", "eval_n_per_class", "epochs", "batch_size", "precision")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ncutils", description="Layer-wise neural collapse toolkit.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    m = sub.add_parser("models", help=cmd_models.__doc__, description=cmd_models.__doc__)
    m.add_argument("--scale", default="paper", choices=list(SCALES))
    m.add_argument("--num-classes", type=int, default=10)
    m.set_defaults(func=cmd_models)
    t = sub.add_parser("train", help=cmd_train.__doc__, description=cmd_train.__doc__)
    t.add_argument("model", choices=models.model_names())
    t.add_argument("--scale", default="smoke", choices=list(SCALES), help="sizes and budgets (default smoke)")
    t.add_argument("--size", action="append", metavar="KEY=VALUE",
                   help="a model size override added to the scale's, e.g. width=32; repeat for several")
    add_config_options(t)
    t.add_argument("--store", help="results directory (default data/results in the repository)")
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
    except (ValueError, OSError) as e:  # bad options, missing data, unwritable store, full disk: one line
        sys.exit(f"error: {e}")
