"""Earlier version, Figure 4 and "Comparison between NC1 and CDNV": CDNV is more stable across the
layers than Papyan's NC1 (chapter nc1_vs_cdnv).

Both measures are read per run (a model on a dataset) on the training split, flat features, one
value per layer tap (the classifier's input left out): CDNV = ``cdnv_sum`` (eq. 4, sum over ordered
pairs) and NC1 = Tr(Sigma_W Sigma_B^+)/K (the paper's trace without the 1/K, which changes no
shape). Stability of a curve v_1, ..., v_L along the depth is measured twice, 0 meaning monotone:

- *increases*: the number of steps l with v_{l+1} > v_l;
- *excess variation*: sum_l |log10 v_{l+1} - log10 v_l| - |log10 v_L - log10 v_1|, the decades the
  curve travels beyond its net change (back-and-forth movement).

CDNV is the more stable measure when, run by run, its statistic is at most NC1's, and smaller
for at least one run (holds); the claim does not hold when CDNV's is at least NC1's for every
run; inconclusive otherwise (smaller for some runs, larger for others). A claim whose runs are not
all stored is not computed; its statistic then shows what the stored runs give.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..frames import layer_rows, run_table
from ..results import StudyResults
from . import figure_link, not_computed, table

STUDY = "clean"
CHAPTER = "nc1_vs_cdnv"
MEASURES = ("cdnv_sum", "nc1")


def increases(values: np.ndarray) -> int:
    """Steps along the depth where the value goes up."""
    return int((np.diff(values) > 0).sum())


def excess_variation(values: np.ndarray) -> float:
    """Total variation of log10 values minus their net change, in decades (0 iff monotone)."""
    logs = np.log10(values)
    return max(0.0, round(float(np.abs(np.diff(logs)).sum() - abs(logs[-1] - logs[0])), 9))  # no rounding noise


def curves(metrics: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """{"model/dataset": {measure: values by layer}} for runs with finite, positive curves of both measures."""
    out = {}
    for measure in MEASURES:
        for (model, dataset), run in layer_rows(metrics, measure).groupby(["model", "dataset"], sort=False):
            out.setdefault(f"{model}/{dataset}", {})[measure] = run.sort_values("layer number").value.to_numpy(
                dtype=float)
    return {m: c for m, c in out.items()
            if len(c) == len(MEASURES) and all(len(v) >= 2 and np.all(np.isfinite(v)) and np.all(v > 0)
                                                for v in c.values())}


def accuracy_table(found: StudyResults) -> pd.DataFrame:
    """Every run's accuracies and whether it reached the terminal phase."""
    return run_table(found.summaries)


STATISTICS = (("number of increases along the depth", increases, "d"),
              ("excess variation of log10 values (decades)", excess_variation, ".2f"))


def stability(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per run, both statistics of both measures (0 = a monotone curve)."""
    per_run = {} if metrics.empty else curves(metrics)
    names = {"cdnv_sum": "CDNV", "nc1": "NC1"}
    rows = [{"run": run, **{f"{name}: {names[m]}": fn(values) for name, fn, _ in STATISTICS
                            for m, values in by_measure.items()}} for run, by_measure in per_run.items()]
    return pd.DataFrame(rows, columns=["run"] + [f"{name}: {names[m]}" for name, _, _ in STATISTICS
                                                 for m in MEASURES]).set_index("run")


def compare(cdnv: dict[str, float], nc1: dict[str, float]) -> str:
    """Verdict of "CDNV is more stable": per run, CDNV's statistic against NC1's (see the module notes)."""
    smaller = [cdnv[m] < nc1[m] for m in cdnv]
    larger = [cdnv[m] > nc1[m] for m in cdnv]
    if any(smaller) and not any(larger):
        return "holds"
    return "does not hold" if not any(smaller) else "inconclusive"


def _row(claim: str, target: str, statistic: str, verdict: str, missing: list[str]) -> dict:
    """A judged claim; not computed while runs it needs (``missing``) are not stored."""
    figure = figure_link(CHAPTER, target)
    if missing:
        why = f"not stored yet: {', '.join(missing)}"
        return not_computed(claim, figure, why + (f"; the stored runs give: {statistic}" if statistic else ""))
    if not statistic:
        return not_computed(claim, figure, "no finite positive curves to judge")
    return {"claim": claim, "statistic": statistic, "verdict": verdict, "figure": figure}


def claims(found: StudyResults) -> pd.DataFrame:
    missing = [f"{c.model}/{c.dataset}" for c, _ in found.missing]
    per_run = {} if found.metrics.empty else curves(found.metrics)
    rows = []
    for name, statistic, fmt in STATISTICS:
        cdnv = {m: statistic(c["cdnv_sum"]) for m, c in per_run.items()}
        nc1 = {m: statistic(c["nc1"]) for m, c in per_run.items()}
        text = ", ".join(f"{m}: {cdnv[m]:{fmt}} vs {nc1[m]:{fmt}}" for m in per_run)
        rows.append(_row(f"CDNV is more stable across layers than NC1: its {name} is at most NC1's in every run, "
                         "smaller in some", "nc1-vs-cdnv-shape", text and f"CDNV vs NC1 per run: {text}",
                         compare(cdnv, nc1), missing))
    cifar10 = {m: c["nc1"] for m, c in per_run.items() if m.endswith("/cifar10")}
    falls = [v[-1] < v[0] for v in cifar10.values()]
    text = ", ".join(f"{m}: {v[0]:.3g} -> {v[-1]:.3g}" for m, v in cifar10.items())
    rows.append(_row("on CIFAR-10, NC1 too falls from the first to the last layer (Figure 4's CIFAR-10 panel)",
                     "nc1-vs-cdnv-curves", text and f"{sum(falls)} of {len(falls)} runs: {text}",
                     "holds" if all(falls) else "does not hold" if not any(falls) else "inconclusive",
                     [m for m in missing if m.endswith("/cifar10")]))
    return table(rows)
