"""A study's stored runs as per-block curves, and a model's statistic as an estimate with its uncertainty:
the spread over its seeds, else the jackknife over images of its one run (CDNV and NC2) or the binomial
error of an accuracy (:mod:`ncutils.verdict`)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from .frames import VIEWS
from .streaming import PENULTIMATE
from .verdict import Estimate, binomial, jackknife, over_seeds


@dataclass
class Run:
    """One stored run: CDNV and NC2 per block in each view, with their jackknife replicates; the probe's test
    accuracy per block; the run's accuracies."""

    cdnv: dict = field(default_factory=dict)  # view -> Series over blocks
    nc2: dict = field(default_factory=dict)
    cdnv_jk: dict = field(default_factory=dict)  # view -> list of Series, one per jackknife group
    nc2_jk: dict = field(default_factory=dict)
    probe: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    train_acc: float = float("nan")
    test_acc: float = float("nan")
    num_test: int = 0
    num_probe_test: int = 0


def stored_runs(found, views=VIEWS) -> dict[tuple[str, str], list[Run]]:
    """Per (dataset, model), its stored runs in seed order, with CDNV and NC2 in each of ``views`` (rows as
    :func:`ncutils.frames.layer_rows` selects them: clean labels and inputs, the run's own data, no
    classifier input), read in one pass over the table."""
    runs: dict[tuple[str, str], list[Run]] = {}
    metrics, summaries = found.metrics, found.summaries
    if not metrics.empty:
        metrics = metrics[(metrics.eval_data == metrics.dataset) & (metrics.layer != PENULTIMATE)
                          & (metrics.labels == "clean") & (metrics.inputs == "clean")]
        metrics = metrics[metrics.measure.str.startswith(("cdnv_sum", "nc2", "probe_test_acc"))]
    per_run = dict(iter(metrics.groupby(["dataset", "model", "seed"], sort=False))) if not metrics.empty else {}
    for (dataset, model, seed), summary in summaries.groupby(["dataset", "model", "seed"], sort=True):
        run = Run(train_acc=float(summary.train_acc.iloc[0]), test_acc=float(summary.test_acc.iloc[0]),
                  num_test=int(summary.num_test.iloc[0]))
        mine = per_run.get((dataset, model, seed), metrics.iloc[:0])
        curves = {key: g.set_index(g.layer_index + 1).value.sort_index().rename_axis("layer number")
                  for key, g in mine.groupby(["measure", "split", "features"], sort=False)}
        for view in views:
            for name, own, replicates in (("cdnv_sum", run.cdnv, run.cdnv_jk), ("nc2", run.nc2, run.nc2_jk)):
                if (name, *view) in curves:
                    own[view] = curves[name, *view]
                groups = sorted((int(m.rpartition("@jk")[2]), c) for (m, *v), c in curves.items()
                                if m.startswith(f"{name}@jk") and tuple(v) == view)
                replicates[view] = [c for _, c in groups]
        probe = [c for (m, *_), c in curves.items() if m == "probe_test_acc"]
        if probe:
            run.probe = probe[0]
            run.num_probe_test = int(mine[mine.measure == "probe_test_acc"].num_samples.iloc[0])
        runs.setdefault((dataset, model), []).append(run)
    return runs


def curve_estimate(runs: list[Run], view, statistic: Callable[[pd.Series, pd.Series], float]) -> Estimate:
    """``statistic(cdnv, nc2)`` of a model in ``view``: over its seeds, else the jackknife of its one run."""
    if len(runs) >= 2:
        return over_seeds([statistic(r.cdnv[view], r.nc2[view]) for r in runs])
    run = runs[0]
    value = statistic(run.cdnv[view], run.nc2[view])
    if len(run.cdnv_jk.get(view, [])) < 2:
        return Estimate(value, float("nan"), "one run without jackknife replicates")
    return jackknife(value, [statistic(c, n) for c, n in zip(run.cdnv_jk[view], run.nc2_jk[view])])


def accuracy_estimate(runs: list[Run], accuracy: Callable[[Run], float], images: Callable[[Run], int]) -> Estimate:
    """An accuracy (or a difference of two) of a model: over its seeds, else the binomial error of its one run."""
    if len(runs) >= 2:
        return over_seeds([accuracy(r) for r in runs])
    return binomial(accuracy(runs[0]), images(runs[0]))
