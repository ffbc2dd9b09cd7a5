"""Command line: ``python -m ncutils {models,run,profile,sweep} ...``; ``run`` (alias ``train``) options are
generated from :class:`~ncutils.config.RunConfig`'s fields and their docstrings."""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import sys

from . import models
from .config import RunConfig
from .estimate import format_plan, plan
from .grid import read_grid
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


def cmd_run(a) -> None:
    """Train and measure one run at a scale's sizes, through the results store (a stored run is read, not
    retrained), and print its last epochs and accuracies (--plot FILE: its per-layer figure)."""
    fields = {f.name: getattr(a, f.name) for f in dataclasses.fields(RunConfig)
              if f.name not in NOT_OPTIONS and getattr(a, f.name) is not None}
    size = dict(_size_pair(pair) for pair in a.size or ())
    size.update({k: v for k, v in (("width", a.width), ("embed_dim", a.embed_dim)) if v is not None})
    if size:
        fields["size"] = size
    if a.domain:
        fields["dataset"], fields["targets"] = _domain_shift(a.domain)
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
    if a.plot:
        from .plots import plot_layers
        from .results import results

        plot_layers(results([config], store=store, progress=False), title=config.describe()).savefig(a.plot, dpi=150)
        print(f"figure: {a.plot}")


def _domain_shift(text: str) -> tuple[str, tuple[str, ...]]:
    """``"PACS:photo->sketch,cartoon"`` -> (``"pacs:photo"``, (``"sketch"``, ``"cartoon"``))."""
    source, arrow, targets = text.partition("->")
    if not arrow or ":" not in source or not targets:
        raise ValueError(f"--domain takes FAMILY:SOURCE->TARGET[,TARGET...], e.g. PACS:photo->sketch; got {text!r}")
    return source.lower(), tuple(t.strip() for t in targets.split(","))


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


def cmd_profile(a) -> None:
    """Measure every layer of any model (a registry name, torchvision:NAME, timm:NAME or package.module:callable)
    on a dataset: write the per-layer table (parquet) and figure (PNG), print a per-layer summary."""
    from pathlib import Path

    from .data import load_dataset
    from .plots import plot_layers
    from .profiling import measure
    from .zoo import load_weights, make_model

    data = load_dataset(a.dataset, a.split, n_per_class=a.n_per_class, seed=a.seed)
    model = make_model(a.model, data.num_classes, data.shape if a.image_size is None else (data.shape[0], a.image_size,
                                                                                          a.image_size))
    if a.weights:
        load_weights(model, a.weights)
    test = load_dataset(a.dataset, "test", n_per_class=a.n_per_class, seed=a.seed) if a.probe else None
    table = measure(model, data, split=a.split, image_size=a.image_size, probe=a.probe, test=test, seed=a.seed)
    out = Path(a.out or f"profile-{a.model.replace(':', '-').replace('/', '-')}")
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "layers.parquet", index=False)
    plot_layers(table, title=f"{a.model} on {a.dataset} {a.split}").savefig(out / "layers.png", dpi=150)
    summary = table[table.features == "pooled"].pivot_table(index=["layer_index", "layer"], values="value",
                                                            columns="measure", sort=True)
    shown = [m for m in ("cdnv_sum", "nc1", "nc2", "probe_train_acc", "probe_test_acc") if m in summary]
    print(summary[shown].droplevel(0).to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"table: {out / 'layers.parquet'}\nfigure: {out / 'layers.png'}")


def cmd_sweep(a) -> None:
    """Compute every run a study (or a --grid file) needs at a scale, skipping stored ones (--dry-run: list them
    with their cost)."""
    if bool(a.grid) == bool(a.study):
        raise ValueError("name a study (one of " + ", ".join(study_names()) + ") or give --grid FILE, not both")
    configs = read_grid(a.grid) if a.grid else study_configs(a.study, a.scale)
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
        what = f"grid {a.grid}" if a.grid else f"study {a.study!r} at scale {a.scale!r}"
        title = f"{what}: {len(configs)} runs, results store {store.root}"
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
    t = sub.add_parser("run", aliases=["train"], help=cmd_run.__doc__, description=cmd_run.__doc__)
    t.add_argument("model", choices=models.model_names())
    t.add_argument("--scale", default="smoke", choices=list(SCALES), help="sizes and budgets (default smoke)")
    t.add_argument("--width", type=int, help="model width (ResNet, VGG, MLP), instead of the scale's")
    t.add_argument("--embed-dim", type=int, help="embedding width (Swin, ViT), instead of the scale's")
    t.add_argument("--size", action="append", metavar="KEY=VALUE",
                   help="any model size override added to the scale's, e.g. activation=tanh; repeat for several")
    t.add_argument("--domain", metavar="FAMILY:SOURCE->TARGETS", help="domain shift: train on SOURCE, measure and "
                   "probe on the targets, e.g. PACS:photo->sketch,cartoon (sets --dataset and --targets)")
    add_config_options(t)
    t.add_argument("--store", help="results directory (default data/results in the repository)")
    t.add_argument("--plot", metavar="FILE", help="write the run's per-layer figure (PNG) to FILE")
    t.set_defaults(func=cmd_run)
    f = sub.add_parser("profile", help=cmd_profile.__doc__, description=cmd_profile.__doc__)
    f.add_argument("model", help="a registry name (python -m ncutils models), torchvision:NAME, timm:NAME or "
                   "package.module:callable (called with num_classes=)")
    f.add_argument("--weights", metavar="FILE", help="a local state dict to load (loaded weights_only); pretrained "
                   "downloads need network and are not made")
    f.add_argument("--dataset", default="cifar10", help="an ncutils dataset name (default cifar10)")
    f.add_argument("--split", default="train", choices=["train", "test"], help="the split measured (default train)")
    f.add_argument("--n-per-class", type=int, default=100, help="images per class measured (default 100)")
    f.add_argument("--image-size", type=int, help="resize the images to this side (e.g. 224 for ImageNet models)")
    f.add_argument("--probe", action="store_true", help="also fit a converged linear probe per layer (tested on the "
                   "test split)")
    f.add_argument("--seed", type=int, default=0, help="draws the images measured")
    f.add_argument("--out", metavar="DIR", help="where to write layers.parquet and layers.png (default "
                   "./profile-MODEL)")
    f.set_defaults(func=cmd_profile)
    s = sub.add_parser("sweep", help=cmd_sweep.__doc__, description=cmd_sweep.__doc__)
    s.add_argument("study", nargs="?", help=f"one of {', '.join(study_names())} (ncutils/studies.py)")
    s.add_argument("--grid", metavar="FILE", help="a YAML grid of runs instead of a study (ncutils/grid.py: models, "
                   "datasets, noise, corruption, seeds at a scale)")
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
