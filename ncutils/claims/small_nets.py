"""Parker et al. 2023, intermediate neural collapse in MLP6, VGG11 and ResNet18 (chapter small_nets).

A *run* is one (model, dataset, activation) at initialisation (``epochs == 0``) or trained. Every
statistic reads one value per layer tap (the classifier's input left out) on the training split,
flat features, as Parker et al. measure. Their observations hold "in most settings", so a claim
over runs holds when it holds in at least 2/3 of the runs it reads, does not hold in at most 1/3,
and is inconclusive in between. Non-finite values (a degenerate layer) make a run unreadable for
that claim and it is left out. A claim whose runs are not all stored is not computed; its
statistic then shows what the stored runs give.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..frames import TERMINAL, layer_rows
from ..results import StudyResults
from . import figure_link, not_computed, table

STUDY = "small_nets"
CHAPTER = "small_nets"
MOST, FEW = 2 / 3, 1 / 3
NC4_ZERO = 0.01  # NC4 at most this: the network's decision is the nearest class centre's
ORDER = {"mlp": 0, "vgg11": 1, "resnet18": 2}


def activation(config) -> str:
    """The activation of a run's config (ReLU unless its size sets another)."""
    return dict(config.size).get("activation", "relu")


def runs(found: StudyResults) -> dict[str, tuple[str, str, str, bool]]:
    """{key: (model, dataset, activation, trained)} of every stored run."""
    return {c.key(): (c.model, c.dataset, activation(c), c.epochs > 0) for c in found.stored}


def curves(found: StudyResults, measure: str) -> dict[tuple[str, str, str, bool], np.ndarray]:
    """{(model, dataset, activation, trained): values of ``measure`` by layer} (train split, flat features)."""
    if found.metrics.empty:
        return {}
    stored, out = runs(found), {}
    for key, run in layer_rows(found.metrics, measure).groupby("key"):
        values = run.sort_values("layer number").value.to_numpy(dtype=float)
        if len(values) >= 2 and np.all(np.isfinite(values)):
            out[stored[key]] = values
    return out


def accuracy_table(found: StudyResults) -> pd.DataFrame:
    """Every run's accuracies with its activation, and whether a trained run reached the terminal phase."""
    summary, stored = found.summaries, runs(found)
    table = summary.assign(activation=summary.key.map(lambda k: stored[k][2]))
    table = table[["model", "size", "activation", "dataset", "epochs", "train_acc", "test_acc"]].copy()
    table["terminal phase"] = (table.train_acc >= TERMINAL) & (table.epochs > 0)
    return table.sort_values(["dataset", "model", "activation", "epochs"])


def first_half_share(values: np.ndarray) -> float:
    """Share of the log10 decrease from the first to the last layer reached at layer index
    ``(L - 1) // 2`` (at most half of the L - 1 steps); nan unless the values fall overall."""
    logs = np.log10(values)
    total = logs[0] - logs[-1]
    return float((logs[0] - logs[(len(logs) - 1) // 2]) / total) if total > 0 else float("nan")


def verdict(passed: int, total: int) -> str:
    """``holds`` in >= 2/3 of the runs, ``does not hold`` in <= 1/3, ``inconclusive`` in between."""
    share = passed / total
    return "holds" if share >= MOST else "does not hold" if share <= FEW else "inconclusive"


def _order(key: tuple) -> tuple:
    """Sort runs by dataset, then MLP6, VGG11, ResNet18, then activation."""
    return (key[1], ORDER.get(key[0], len(ORDER)), key[0], key[2])


def _name(key: tuple) -> str:
    return "/".join(str(k) for k in key[:3])


def _row(claim: str, target: str, results: dict[tuple, tuple[bool, str]], what: str, missing: list[tuple],
         every: bool = False) -> dict:
    """A claim judged over ``results`` = {run: (passed, its numbers)} by :func:`verdict` (``every``:
    holds only if every run passes), failing runs listed; not computed while runs of ``missing``
    (the runs it needs that are not stored) exist."""
    figure = figure_link(CHAPTER, target)
    passed = sum(ok for ok, _ in results.values())
    failing = [f"{_name(k)} ({results[k][1]})" for k in sorted(results, key=_order) if not results[k][0]]
    statistic = f"{passed} of {len(results)} {what}" + (f"; not in {', '.join(failing)}" if failing else "")
    if missing:
        names = ", ".join(_name(k) + (" trained" if k[3] else " at init") for k in sorted(missing, key=_order))
        why = f"not stored yet: {names if len(missing) <= 6 else f'{len(missing)} runs'}"
        return not_computed(claim, figure, why + (f"; the stored runs give: {statistic}" if results else ""))
    if not results:
        return not_computed(claim, figure, f"no {what} to judge")
    judged = ("holds" if passed == len(results) else "does not hold") if every else verdict(passed, len(results))
    return {"claim": claim, "statistic": statistic, "verdict": judged, "figure": figure}


def _pairs(values: dict) -> list[tuple]:
    """Runs (model, dataset, activation) stored both at initialisation and trained."""
    return [k[:3] for k in values if k[3] and (*k[:3], False) in values]


def claims(found: StudyResults) -> pd.DataFrame:
    absent = [(c.model, c.dataset, activation(c), c.epochs > 0) for c, _ in found.missing]
    absent_trained = [k for k in absent if k[3]]  # for the claims that read trained runs only
    nc1, angle, norms, nc4 = (curves(found, m) for m in ("nc1", "max_angle", "equal_norms", "nc4"))
    trained = {k: v for k, v in nc1.items() if k[3]}
    rows = []

    rows.append(_row("(NC1) after training, NC1 falls from the first to the last layer", "small-nets-nc1",
                     {k: (v[-1] < v[0], f"{v[0]:.3g} -> {v[-1]:.3g}") for k, v in trained.items()},
                     "trained runs", absent_trained))
    drops = {}
    for key in _pairs(nc1):
        after, before = nc1[(*key, True)], nc1[(*key, False)]
        gain = (np.log10(after[0] / after[-1]), np.log10(before[0] / before[-1]))
        drops[key] = (gain[0] > max(gain[1], 0), f"trained {gain[0]:.2f} vs init {gain[1]:.2f} decades")
    rows.append(_row("(NC1) the fall comes with training: after training NC1 falls from the first to the last "
                     "layer, and by more decades than at initialisation", "small-nets-nc1", drops,
                     "runs stored both trained and at initialisation", absent))
    shares = {k: first_half_share(v) for k, v in trained.items()}
    rows.append(_row("(NC1) almost all of the reduction happens in the shallower layers: more than half of NC1's "
                     "log decrease is reached by the middle layer (index (L-1)//2) after training",
                     "small-nets-nc1", {k: (s > 0.5, f"share {s:.2f}") for k, s in shares.items() if np.isfinite(s)},
                     "trained runs where NC1 falls", absent_trained))
    for measure, values, name in (("equal_norms", norms, "equal-norms"), ("max_angle", angle, "maximal-angle")):
        judged = {}
        for key in _pairs(values):
            after, before = values[(*key, True)], values[(*key, False)]
            judged[key] = (after[-1] < after[0] and after[-1] < before[-1],
                           f"first {after[0]:.3g}, last {after[-1]:.3g}, last at init {before[-1]:.3g}")
        rows.append(_row(f"(NC2) the class means approach the simplex ETF in the last layers: after training, the "
                         f"{name} measure at the last layer is below its value at the first layer and at initialisation",
                         f"small-nets-{measure.replace('_', '-')}", judged,
                         "runs stored both trained and at initialisation", absent))
    deeper = {}
    for key, values in angle.items():
        if key in trained:
            a, n = first_half_share(values), first_half_share(trained[key])
            if np.isfinite(a) and np.isfinite(n):
                deeper[key] = (1 - a > 1 - n, f"angle {1 - a:.2f} vs NC1 {1 - n:.2f}")
    rows.append(_row("(NC2) angular separation keeps improving in the deeper layers, unlike NC1: the share of the "
                     "log decrease after the middle layer is larger for the maximal angle than for NC1",
                     "small-nets-max-angle", deeper, "trained runs where both fall", absent_trained))
    ncc = {k: (v[-1] < v[0] and v[-1] <= NC4_ZERO, f"{v[0]:.3f} -> {v[-1]:.3f}") for k, v in nc4.items() if k[3]}
    rows.append(_row(f"(NC4) after training, NC4 falls through the layers to at most {NC4_ZERO:g} at the last layer",
                     "small-nets-nc4", ncc, "trained runs", absent_trained))
    simpler = {}
    for key, values in nc4.items():
        other = (key[0], "cifar10", key[2], True)
        if key[1] == "fashion-mnist" and key[3] and other in nc4:
            simpler[key] = (values.mean() < nc4[other].mean(),
                            f"{values.mean():.3f} vs {nc4[other].mean():.3f}")
    rows.append(_row("(NC4) the simpler dataset needs fewer layers: mean NC4 over the layers is lower on "
                     "Fashion-MNIST than on CIFAR-10 (same model and activation, trained)", "small-nets-nc4",
                     {(k[0], "fashion-mnist vs cifar10", k[2]): r for k, r in simpler.items()},
                     "model/activation pairs trained on both datasets", absent_trained))
    summary = found.summaries
    done = summary[summary.epochs > 0] if not summary.empty else summary
    stored = runs(found)
    terminal = {stored[r.key][:3]: (r.train_acc >= TERMINAL, f"train acc {r.train_acc:.3f}")
                for r in done.itertuples()}
    rows.append(_row(f"every trained run reached the terminal phase (train accuracy >= {TERMINAL:.0%})",
                     "small-nets-accuracy", terminal, "trained runs", absent_trained, every=True))
    return table(rows)
