"""What every question's answer is built from: the error of a question whose runs are not all stored, and helpers.

An answer function (:mod:`ncutils.chapter.answers_paper`, :mod:`ncutils.chapter.answers_related`) takes a
:class:`ncutils.chapter.Chapter`, reads ``chapter.every_seed`` (every seed's run; a value "mean over the seeds"
is the mean of the per-seed values) and calls :func:`needs` first, which raises :class:`NotComputed` while a run
it reads is not stored; ``Chapter.answer`` shows that as "not computed: ...".
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..claims.nc1_vs_cdnv import LayerRun, by_model
from ..config import RunConfig
from ..frames import VIEWS

TRAIN_FLAT = VIEWS[0]  # ("train", "flat")


class NotComputed(LookupError):
    """A question's runs are not all stored (or the chapter has none of them)."""


def run_name(c: RunConfig) -> str:
    """A run in a sentence: model, what differs from a clean CIFAR-10 run, seed (``mlp tanh fashion-mnist untrained
    seed 0``)."""
    noise = [x for x in (c.noise, c.corruption) if x != "clean"]
    size = [str(v) for k, v in c.size if k == "activation"]
    return " ".join([c.model, *size, *noise, *([c.dataset] if c.dataset != "cifar10" else []),
                     *(["untrained"] if c.epochs == 0 else []), f"seed {c.seed}"])


def needs(chapter, select: Callable[[RunConfig], bool], what: str) -> None:
    """Raise :class:`NotComputed` unless the chapter has runs of ``what`` (those ``select`` picks), all stored."""
    if chapter.every_seed is None:
        raise NotComputed("this chapter reads no runs")
    wanted = [c for c in chapter.every_seed.configs if select(c)]
    if not wanted:
        raise NotComputed(f"this chapter has no runs of {what} (its models: {', '.join(chapter.models)})")
    missing = [c for c, _ in chapter.every_seed.missing if select(c)]
    if missing:
        names = ", ".join(run_name(c) for c in missing[:3]) + (f" and {len(missing) - 3} more"
                                                                if len(missing) > 3 else "")
        count = (f"none of the {len(wanted)} runs of {what} is stored" if len(missing) == len(wanted)
                 else f"{len(missing)} of the {len(wanted)} runs of {what} are not stored")
        raise NotComputed(f"{count} yet at the {chapter.scale} scale ({names}); the chapter's first cell says how "
                          "to compute them")


def listing(values: dict, unit: str = "", digits: int = 2) -> str:
    return ", ".join(f"{k} {v:.{digits}f}{unit}" for k, v in values.items())


def mean_over(runs, statistic) -> float:
    return float(np.mean([statistic(r) for r in runs]))



def number(value: float) -> str:
    """A count or a mean of counts: ``2``, ``1.33``."""
    return f"{round(value, 2):g}"


def cifar10_layer_runs(chapter, measures, what: str = "the chapter's models") -> dict[str, list[LayerRun]]:
    """{model: its stored runs on CIFAR-10, in seed order, with ``measures`` per layer tap}
    (:func:`ncutils.claims.nc1_vs_cdnv.by_model`), every CIFAR-10 run of the chapter stored."""
    needs(chapter, lambda c: c.dataset == "cifar10", what)
    runs = by_model(chapter.every_seed, measures)
    return {m: runs["cifar10", m] for m in chapter.models if ("cifar10", m) in runs}
