"""Hui, Belkin, Nakkiran 2022: collapse on the training set does not carry over to the test set
(chapter train_vs_test), judged layer by layer.

Every run measures each layer tap (the classifier's input left out, flat features) on its training
split and on its test split, each split grouped by its own class means. The *gap* of a measure at a
layer is positive when collapse is weaker on test than on train:

- CDNV (``cdnv_sum``) and NC1: log10(test / train), in decades;
- NC2: test - train;
- NCC accuracy: train - test.

A claim over models holds when it holds for every model, does not hold for none, and is
inconclusive otherwise. A claim whose runs are not all stored is not computed; its statistic then
shows what the stored runs give.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..frames import TERMINAL, layer_rows, run_table
from ..results import StudyResults
from . import figure_link, not_computed, table

STUDY = "train_vs_test"
CHAPTER = "train_vs_test"
GAPS = {"cdnv_sum": ("CDNV", "log10(test/train), decades"), "nc1": ("NC1", "log10(test/train), decades"),
        "nc2": ("NC2", "test - train"), "ncc_accuracy": ("NCC accuracy", "train - test")}


def gap_rows(metrics: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Per model and layer: ``train``, ``test`` and the gap ``value`` of ``measure`` (see the module notes)."""
    keys = ["model", "layer number"]
    train = layer_rows(metrics, measure, split="train")[keys + ["value"]].rename(columns={"value": "train"})
    test = layer_rows(metrics, measure, split="test")[keys + ["value"]].rename(columns={"value": "test"})
    both = train.merge(test, on=keys).sort_values(keys, ignore_index=True)
    if measure in ("cdnv_sum", "nc1"):
        both["value"] = np.log10(both.test / both.train)
    elif measure == "ncc_accuracy":
        both["value"] = both.train - both.test
    else:
        both["value"] = both.test - both.train
    return both


def accuracy_table(found: StudyResults) -> pd.DataFrame:
    """Every run's accuracies and whether it reached the terminal phase."""
    return run_table(found.summaries)


def thirds(values: np.ndarray) -> tuple[float, float]:
    """Mean of the first and of the last third of the layers (at least one layer each)."""
    third = max(1, len(values) // 3)
    return float(values[:third].mean()), float(values[-third:].mean())


def verdict(passed: int, total: int) -> str:
    return "holds" if passed == total else "does not hold" if passed == 0 else "inconclusive"


def _row(claim: str, target: str, results: dict[str, tuple[bool, str]], missing: list[str]) -> dict:
    """A claim judged over ``results`` = {model: (passed, its numbers)}; not computed while models of
    the study (``missing``) are not stored."""
    figure = figure_link(CHAPTER, target)
    passed = sum(ok for ok, _ in results.values())
    statistic = f"{passed} of {len(results)} models: " + ", ".join(f"{m} {text}" for m, (_, text) in results.items())
    if missing:
        why = f"not stored yet: {', '.join(missing)}"
        return not_computed(claim, figure, why + (f"; the stored runs give: {statistic}" if results else ""))
    if not results:
        return not_computed(claim, figure, "no finite values to judge")
    return {"claim": claim, "statistic": statistic, "verdict": verdict(passed, len(results)), "figure": figure}


def claims(found: StudyResults) -> pd.DataFrame:
    metrics = found.metrics
    missing = [c.model for c, _ in found.missing]
    rows = []
    for measure, (name, unit) in GAPS.items():
        gaps = {} if metrics.empty else {m: g.value.to_numpy(dtype=float)
                                          for m, g in gap_rows(metrics, measure).groupby("model", sort=False)}
        last = {m: (v[-1] > 0, f"{v[-1]:+.3g}") for m, v in gaps.items() if np.isfinite(v[-1])}
        rows.append(_row(f"collapse is weaker on test than on train at the last layer: {name} gap ({unit}) > 0",
                         "train-vs-test-gap", last, missing))
        grows = {}
        for m, v in gaps.items():
            if np.all(np.isfinite(v)):
                first, final = thirds(v)
                grows[m] = (final > first, f"{first:+.3g} -> {final:+.3g}")
        rows.append(_row(f"the gap grows in the last layers: mean {name} gap over the last third of the layers "
                         "exceeds the mean over the first third", "train-vs-test-gap", grows, missing))
    summary = found.summaries
    terminal = {} if summary.empty else {r.model: (r.train_acc >= TERMINAL, f"train acc {r.train_acc:.3f}")
                                         for r in summary.itertuples()}
    rows.append(_row(f"every run reached the terminal phase (train accuracy >= {TERMINAL:.0%})",
                     "train-vs-test-accuracy", terminal, missing))
    return table(rows)
