"""A study's stored runs as per-block curves (:func:`read_runs`, the one reader of the results table that
every chapter's claims use), and a model's statistic as an estimate with its uncertainty:
the spread over its seeds, else the jackknife over images of its one run (CDNV and NC2) or the binomial
error of an accuracy (:mod:`ncutils.verdict`); and the issue's probe-validity rule (:func:`check_probes`).

A probe that does not converge, or fits less than the network itself fits at its last layer, is reported,
and any verdict reading it is not computed (:func:`probe_checked`). A run's probe is trained on clean
training images with their clean labels, so the network's fit it is compared with is its accuracy on those
(:func:`network_fit`): a clean run's train accuracy, a noisy-label run's accuracy on the clean labels of its
training images (not on the noisy labels it trained with, which the probe never sees), a corrupted-input
run's accuracy on the clean originals of its training images.

Whether a study's runs reached the terminal phase is one claim for every chapter (:func:`every_run_terminal`).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .frames import TERMINAL, VIEWS
from .streaming import PENULTIMATE
from .verdict import Estimate, all_of, binomial, estimate_runs, judge, over_seeds


@dataclass
class Run:
    """One stored run: CDNV and NC2 per block in each view, with their jackknife replicates; the probe's test
    and train accuracy and whether it converged, per block; the run's accuracies."""

    cdnv: dict = field(default_factory=dict)  # view -> Series over blocks
    nc2: dict = field(default_factory=dict)
    cdnv_jk: dict = field(default_factory=dict)  # view -> list of Series, one per jackknife group
    nc2_jk: dict = field(default_factory=dict)
    probe: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    probe_train: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    probe_converged: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))  # 1/0; none for SGD probes
    seed: int = 0
    train_acc: float = float("nan")
    test_acc: float = float("nan")
    network_fit: float = float("nan")  # the network's accuracy on its probe's training data (network_fit)
    num_test: int = 0
    num_probe_test: int = 0

    def probe_problems(self, model: str) -> list[str]:
        """The problems of this run's probes (:func:`check_probes`), naming it by ``model`` and its seed."""
        return check_probes(f"{model} seed {self.seed}", self.probe_train, self.probe_converged, self.network_fit)


PROBE_MEASURES = ("probe_test_acc", "probe_train_acc", "probe_converged")
PROBE_FIT_TOLERANCE = 0.02  # a last-block probe may fit its training images this much less than the network


def network_fit(summary: pd.Series | dict) -> float:
    """A run's accuracy on the training images and labels its probe trains on (clean ones): ``train_acc`` of a
    clean run, ``train_acc_clean_labels`` of a noisy-label run, ``train_acc_clean_inputs`` of a corrupted-input
    run; nan when not stored (or for a run both noisy and corrupted: none is comparable)."""
    noisy, corrupted = (summary.get(c, "clean") != "clean" for c in ("noise", "corruption"))
    column = None if noisy and corrupted else "train_acc_clean_labels" if noisy else \
        "train_acc_clean_inputs" if corrupted else "train_acc"
    return float(summary.get(column, math.nan)) if column else math.nan


def check_probes(name: str, train_acc: Sequence[float], converged: Sequence[float], network_acc: float) -> list[str]:
    """The problems of one run's probes (``train_acc`` and ``converged`` per block, in order), each naming the
    run ``name``: blocks whose probe did not converge (``converged`` 0; an SGD probe stores none, so only its
    fit is checked), and a last-block probe fitting its training images less than ``network_acc`` (the
    network's fit, :func:`network_fit`) minus :data:`PROBE_FIT_TOLERANCE`, or no fit stored to compare."""
    train, converged = np.asarray(train_acc, float), np.asarray(converged, float)
    stuck = [str(i + 1) for i in np.flatnonzero(converged == 0)]
    blocks = "blocks" if len(stuck) > 1 else "block"
    problems = [f"{name}: the probe did not converge at {blocks} {', '.join(stuck)}"] if stuck else []
    if not len(train) or not math.isfinite(network_acc):
        problems.append(f"{name}: no probe train accuracy or network fit stored to compare")
    elif train[-1] < network_acc - PROBE_FIT_TOLERANCE:
        problems.append(f"{name}: the last block's probe fits {train[-1]:.3f} of its training images, the network "
                        f"{network_acc:.3f}")
    return problems


def probe_checked(problems: list[str], judge: Callable[[], tuple[str, str]]) -> tuple[str, str]:
    """``judge()`` (statistic, verdict) of a claim reading probes, unless one of them has ``problems``
    (:func:`check_probes`): then not computed, listing them."""
    if problems:
        return (f"a probe it reads fails the probe check (converged at every block, the last block fitting its "
                f"training images within {PROBE_FIT_TOLERANCE} of the network): " + "; ".join(problems)), "not computed"
    return judge()


@dataclass(frozen=True)
class StoredRun:
    """One stored run as read from a study's table: its summary row; each measure's values per layer number
    (every tap but the classifier's input), keyed (measure, split, features, labels, inputs, eval_data), with
    the images each read; its jackknife replicates, one dict like ``curves`` per group (measures named
    without their ``@jk<g>``)."""

    summary: dict
    curves: dict
    images: dict
    replicates: tuple = ()

    @property
    def seed(self) -> int:
        return int(self.summary.get("seed", 0))

    def selected(self, curves: dict, split: str, features: str, labels: str = "clean", inputs: str = "clean",
                 eval_data: str | None = None) -> dict:
        """{measure: curve} of ``curves`` (this run's or a replicate's) in one view, on ``eval_data`` (the
        run's own dataset unless named)."""
        where = (split, features, labels, inputs, eval_data or self.summary["dataset"])
        return {measure: curve for (measure, *key), curve in curves.items() if tuple(key) == where}

    def probes(self, eval_data: str | None = None) -> dict[str, pd.Series]:
        """{measure: per layer} of the probes (:data:`PROBE_MEASURES`) on ``eval_data`` (own dataset unless named)."""
        eval_data = eval_data or self.summary["dataset"]
        return {m: c for (m, *_, e), c in self.curves.items() if m in PROBE_MEASURES and e == eval_data}

    def probe_images(self, eval_data: str | None = None) -> int:
        """The test images of the probes on ``eval_data`` (0 when none is stored)."""
        eval_data = eval_data or self.summary["dataset"]
        return next((n for (m, *_, e), n in self.images.items() if m == "probe_test_acc" and e == eval_data), 0)

    def probe_problems(self, name: str, eval_data: str | None = None) -> list[str]:
        """The problems of this run's probes on ``eval_data`` (:func:`check_probes`; its own data unless named),
        naming it ``name``. On another dataset (a domain it never trained on), the network's fit is its
        accuracy there, ``test_acc_<domain>``."""
        fit = (self.probes(eval_data).get(m, pd.Series(dtype=float)) for m in ("probe_train_acc", "probe_converged"))
        own = eval_data in (None, self.summary["dataset"])
        network = network_fit(self.summary) if own else float(
            self.summary.get(f"test_acc_{eval_data.partition(':')[2]}", math.nan))
        return check_probes(name, *fit, network)


def read_runs(found) -> dict[str, StoredRun]:
    """Every stored run of ``found`` (a :class:`ncutils.results.StudyResults`) by its key, in the summaries'
    order: the one reader of the table that every chapter's claims use, in one pass over it."""
    per_run: dict = {}
    metrics = found.metrics
    if not metrics.empty:
        rows = metrics[metrics.layer != PENULTIMATE].sort_values("layer_index", kind="stable")
        for (key, measure, *where), g in rows.groupby(["key", "measure", "split", "features", "labels", "inputs",
                                                       "eval_data"], sort=False):
            curves, images, groups = per_run.setdefault(key, ({}, {}, {}))
            name, _, group = measure.partition("@jk")
            curve = pd.Series(g.value.to_numpy(float), index=pd.Index(g.layer_index.to_numpy() + 1,
                                                                       name="layer number"))
            if group:
                groups.setdefault(int(group), {})[name, *where] = curve
            else:
                curves[name, *where] = curve
                images[name, *where] = int(g.num_samples.iloc[0]) if pd.notna(g.num_samples.iloc[0]) else 0
    out = {}
    for summary in found.summaries.to_dict("records"):
        curves, images, groups = per_run.get(summary["key"], ({}, {}, {}))
        out[summary["key"]] = StoredRun(summary, curves, images, tuple(groups[g] for g in sorted(groups)))
    return out


def stored_runs(found, views=VIEWS) -> dict[tuple[str, str], list[Run]]:
    """Per (dataset, model), its stored runs in seed order (:func:`read_runs`), with CDNV and NC2 in each of
    ``views`` on clean labels and inputs of the run's own data."""
    runs: dict[tuple[str, str], list[Run]] = {}
    for stored in sorted(read_runs(found).values(), key=lambda r: (r.summary["dataset"], r.summary["model"], r.seed)):
        summary = stored.summary
        run = Run(seed=stored.seed, train_acc=float(summary["train_acc"]), test_acc=float(summary["test_acc"]),
                  network_fit=network_fit(summary), num_test=int(summary["num_test"]))
        for view in views:
            own, groups = stored.selected(stored.curves, *view), [stored.selected(g, *view) for g in stored.replicates]
            for name, curves, replicates in (("cdnv_sum", run.cdnv, run.cdnv_jk), ("nc2", run.nc2, run.nc2_jk)):
                if name in own:
                    curves[view] = own[name]
                replicates[view] = [g[name] for g in groups if name in g]
        probe = stored.probes()
        run.probe_train = probe.get("probe_train_acc", run.probe_train)
        run.probe_converged = probe.get("probe_converged", run.probe_converged)
        if "probe_test_acc" in probe:
            run.probe, run.num_probe_test = probe["probe_test_acc"], stored.probe_images()
        runs.setdefault((summary["dataset"], summary["model"]), []).append(run)
    return runs


def curve_estimate(runs: list[Run], view, statistic: Callable[[pd.Series, pd.Series], float]) -> Estimate:
    """``statistic(cdnv, nc2)`` of a model in ``view``: over its seeds, else the jackknife of its one run."""
    return estimate_runs([statistic(r.cdnv[view], r.nc2[view]) for r in runs],
                         lambda: [statistic(c, n) for c, n in zip(runs[0].cdnv_jk.get(view, []), runs[0].nc2_jk.get(view, []))])


def accuracy_estimate(runs: list[Run], accuracy: Callable[[Run], float], images: Callable[[Run], int]) -> Estimate:
    """An accuracy (or a difference of two) of a model: over its seeds, else the binomial error of its one run."""
    if len(runs) >= 2:
        return over_seeds([accuracy(r) for r in runs])
    return binomial(accuracy(runs[0]), images(runs[0]))


EXACT = "exact, every training image"  # the kind of a run's own train accuracy: a property of the run, not a sample


def every_run_terminal(runs: Sequence[tuple[str, float]]) -> tuple[str, str]:
    """Whether every run, (name, train accuracy), reached the terminal phase: by the one rule, each run's accuracy
    on every image it trained with against ``frames.TERMINAL`` with standard error 0 (the claim is about these
    runs, and their accuracy over the whole training set is exact; a run exactly at the threshold leaves it
    inconclusive, as any tie does); the lowest shown, those below listed."""
    if not runs:
        raise ValueError("the terminal-phase claim needs at least one run")
    estimates = [(name, Estimate(accuracy, 0.0, EXACT)) for name, accuracy in runs]
    verdict = all_of(judge(e, TERMINAL, "above") for _, e in estimates)
    lowest = min(estimates, key=lambda run: run[1].value)
    below = [f"{name} {e.value:.4f}" for name, e in estimates if e.value < TERMINAL]
    statistic = (f"train accuracy, lowest of {len(runs)} runs: {lowest[0]} {lowest[1]} (>= {TERMINAL:.0%}); "
                 f"{len(runs) - len(below)} of {len(runs)} runs reach it")
    return statistic + (f"; below: {', '.join(below)}" if below else ""), verdict
