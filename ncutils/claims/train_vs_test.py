"""Hui, Belkin, Nakkiran 2022: collapse on the training set does not carry over to the test set
(chapter train_vs_test), judged layer by layer.

Every run measures each layer tap (the classifier's input left out) on its training split and on its test
split, each split grouped by its own class means, with flat and with pooled features: every claim is judged
with each (the papers' figures use flat features; the probes pool them). The *gap* of a measure at a layer
is positive when collapse is weaker on test than on train:

- CDNV (``cdnv_sum``) and NC1: log10(test / train), in decades;
- NC2: test - train;
- NCC accuracy: train - test.

Every verdict is :mod:`ncutils.verdict`'s: per model, the gap statistic with its standard error against 0;
a claim over the models holds when each does, does not hold when one does not. The standard error is what
the runs allow (:func:`ncutils.claims.nc1_vs_cdnv.run_estimate`): the spread over seeds should a model have
several; else, for its one run, the jackknife over images of CDNV and NC2 (replicate g removes group g of the
training and of the test images: the two splits' images are independent, so the pair is one deleted group),
the binomial errors of the NCC accuracies (independent images on the two splits; a mean over layers gets the
binomial error of its mean share, an upper bound); NC1 has no replicates, so its rows have no within-run
uncertainty, say so, and are inconclusive. Each claim quotes the sentence it tests (:data:`QUOTES`, with
its paper).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..frames import TERMINAL, layer_rows, run_table
from ..results import StudyResults
from . import figure_link, judged, table
from .nc1_vs_cdnv import Cases, LayerRun, by_model, run_estimate, share_estimate, terminal

STUDY = "train_vs_test"
CHAPTER = "train_vs_test"
GAPS = {"cdnv_sum": ("CDNV", "log10(test/train), decades"), "nc1": ("NC1", "log10(test/train), decades"),
        "nc2": ("NC2", "test - train"), "ncc_accuracy": ("NCC accuracy", "train - test")}
FEATURES = ("flat", "pooled")
GAP_FIGURE = figure_link(CHAPTER, "train-vs-test-gap")
ACCURACY = figure_link(CHAPTER, "train-vs-test-accuracy")
HUI = "hui-belkin-nakkiran-2022-limitations-of-neural-collapse-abstract.md"
ZHOU = "zhou-jiang-zhu-2025-are-all-layers-created-equal.md"
QUOTES = {  # claim -> (the paper's text in /work/shared/papers, the sentence it tests)
    "test": (HUI, "We find that while Neural Collapse often occurs on the train set, it does not occur on the test "
                  "set"),
    "deeper": (ZHOU, "Deeper layers significantly enhance neural collapse and play a vital role in generalization but "
                     "are also more susceptible to memorization"),
}


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
    """Every run's accuracies (each seed's) and whether it reached the terminal phase."""
    return run_table(found.summaries, ("model", "size", "seed", "dataset", "n_per_class", "epochs", "train_acc",
                                       "test_acc"))


def thirds(values: np.ndarray) -> tuple[float, float]:
    """Mean of the first and of the last third of the layers (at least one layer each)."""
    third = max(1, len(values) // 3)
    return float(values[:third].mean()), float(values[-third:].mean())


def gap(measure: str, features: str):
    """The gap of ``measure`` per layer from a run's curves (see the module notes)."""
    def per_layer(c):
        train, test = c[measure, "train", features], c[measure, "test", features]
        if measure in ("cdnv_sum", "nc1"):
            return np.log10(test / train)
        return train - test if measure == "ncc_accuracy" else test - train
    return per_layer


def last_gap(runs: list[LayerRun], measure: str, features: str):
    """The gap at the last layer of a model's runs, with its standard error."""
    if measure == "ncc_accuracy":
        return share_estimate(runs, [(1, (measure, "train", features), -1), (-1, (measure, "test", features), -1)])
    return run_estimate(runs, lambda c: float(gap(measure, features)(c)[-1]), (measure,))


def growth(runs: list[LayerRun], measure: str, features: str):
    """The mean gap over the last third of the layers minus over the first third, with its standard error."""
    if measure == "ncc_accuracy":
        n = len(runs[0].curves[measure, "train", features])
        third = max(1, n // 3)
        ends = ((1, slice(n - third, None)), (-1, slice(None, third)))
        return share_estimate(runs, [(end * side, (measure, split, features), layers) for end, layers in ends
                                     for side, split in ((1, "train"), (-1, "test"))])

    def grows(c):
        first, final = thirds(gap(measure, features)(c))
        return final - first
    return run_estimate(runs, grows, (measure,))


def judge_models(statistic, rule: str):
    def judge(models):
        j = Cases()
        for model, runs in models.items():
            j.add(model, statistic(runs), 0, "above")
        return j.result(rule)
    return judge


def claim_text(label: str, quote: str) -> str:
    return f'{label}: "{QUOTES[quote][1]}"'


def claims(found: StudyResults) -> pd.DataFrame:
    """The claims on CIFAR-10, judged from every seed's stored run of the study in ``found``."""
    runs = by_model(found, tuple(GAPS)) if not found.summaries.empty else {}
    models = list(dict.fromkeys(c.model for c in found.configs))
    stored = {m: rs for (dataset, m), rs in runs.items() if dataset == "cifar10" and m in models}

    def row(claim, figure, judge):
        return judged(claim, figure, models, stored, lambda: judge({m: stored[m] for m in models if m in stored}))

    rows = []
    for features in FEATURES:
        for measure, (name, unit) in GAPS.items():
            rows.append(row(claim_text(f"every model, {features} features: collapse is weaker on test than on train "
                                       f"at the last layer ({name})", "test"), GAP_FIGURE,
                            judge_models(lambda rs, m=measure, f=features: last_gap(rs, m, f),
                                         f"{name} gap at the last layer, {unit} (> 0)")))
            rows.append(row(claim_text(f"every model, {features} features: the gap grows in the last layers ({name})",
                                       "deeper"), GAP_FIGURE,
                            judge_models(lambda rs, m=measure, f=features: growth(rs, m, f),
                                         f"mean {name} gap ({unit}) over the last third of the layers minus over "
                                         "the first third (> 0)")))
    rows.append(row(f"every run reached the terminal phase (train accuracy >= {TERMINAL:.0%})", ACCURACY, terminal))
    return table(rows)
