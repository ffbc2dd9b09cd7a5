"""Is CDNV the steadier measure of within-class variability, and NC1 the more sensitive indicator of
generalization than NC2? (chapter nc1_vs_cdnv, on the runs of the ``clean`` study); and the per-layer curves
of any measure with their within-run uncertainty, which the small_nets and train_vs_test chapters share.

CDNV = ``cdnv_sum`` (eq. 4, summed over ordered pairs: the paper's NC_1), NC1 = Tr(Sigma_W Sigma_B^+)/K
(Papyan's, as in [10]; the 1/K changes no shape), NC2 = eq. 5, one value per layer tap (the classifier's
input left out), judged in each of :data:`VIEWS` (train/test split x flat/pooled features). Stability of a
curve v_1, ..., v_L along the depth is measured twice, 0 meaning monotone:

- *increases*: the number of steps l with v_{l+1} > v_l;
- *excess variation*: sum_l |log10 v_{l+1} - log10 v_l| - |log10 v_L - log10 v_1|, the decades the curve
  travels beyond its net change (back-and-forth movement).

Every verdict is :mod:`ncutils.verdict`'s, a claim over several models holding when each does. Each model's
statistic has the uncertainty its runs allow (:func:`run_estimate`): the spread over its seeds; else, for one
run, the jackknife over images of CDNV and NC2 (their replicates ``cdnv_sum@jk<g>``, ``nc2@jk<g>``); NC1 has
no replicates, so a statistic reading NC1 of one run has no within-run uncertainty, says so, and is
inconclusive. An accuracy or a share of images (NC4, NCC accuracy) has its binomial error. Each claim quotes
the sentence it tests (:data:`QUOTES`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..estimates import every_run_terminal, read_runs
from ..frames import VIEWS, layer_rows, run_table
from ..results import StudyResults
from ..streaming import JACKKNIFE_MEASURES
from ..verdict import INCONCLUSIVE, Estimate, binomial, estimate_runs, over_seeds
from . import figure_link, judged, table
from .clean import Judged, view_name

STUDY = "clean"
CHAPTER = "nc1_vs_cdnv"
MEASURES = ("cdnv_sum", "nc1")
NAMES = {"cdnv_sum": "CDNV", "nc1": "NC1", "nc2": "NC2", "equal_norms": "equal norms", "max_angle": "maximal angle",
         "nc4": "NC4", "ncc_accuracy": "NCC accuracy"}
NO_UNCERTAINTY = "no within-run uncertainty for"
BOOTSTRAP = 1000  # parametric bootstrap draws of the rank-correlation difference
SHAPE = figure_link(CHAPTER, "nc1-vs-cdnv-shape")
CURVES = figure_link(CHAPTER, "nc1-vs-cdnv-curves")
SENSITIVITY = figure_link(CHAPTER, "nc1-vs-cdnv-sensitivity")
DATASETS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
QUOTES = {
    "stable": "it is typically more numerically stable and computationally efficient",
    "nc1_falls": "differs slightly from that used in [10], we observe a similar geometric rate of improvement in "
                 "intermediate neural collapse when using limited-capacity models on small datasets, such as ResNet18 "
                 "on CIFAR-10",
    "sensitive": "This explains why $NC_1$ serves as a more sensitive indicator of generalization performance than "
                 "$NC_2$",
}


@dataclass(frozen=True)
class LayerRun:
    """One stored run: per (measure, split, features) its values over the layer taps and the images it read;
    the jackknife replicates of CDNV and NC2 (one dict like ``curves`` per group); its summary row."""

    summary: dict
    curves: dict
    images: dict
    replicates: tuple = ()

    @property
    def seed(self) -> int:
        return int(self.summary.get("seed", 0))


def layer_runs(found: StudyResults, measures) -> dict[str, LayerRun]:
    """Every stored run of ``found`` by its key (:func:`ncutils.estimates.read_runs`), with ``measures`` (and
    their jackknife replicates) on the run's own data, clean labels and inputs."""
    def own(run, values: dict) -> dict:
        return {(m, split, features): v for (m, split, features, labels, inputs, data), v in values.items()
                if m in measures and labels == inputs == "clean" and data == run.summary["dataset"]}

    def arrays(run, curves: dict) -> dict:
        return {k: c.to_numpy(float) for k, c in own(run, curves).items()}
    return {key: LayerRun(run.summary, arrays(run, run.curves), own(run, run.images),
                          tuple(arrays(run, g) for g in run.replicates))
            for key, run in read_runs(found).items()}


def by_model(found: StudyResults, measures) -> dict[tuple[str, str], list[LayerRun]]:
    """Per (dataset, model), its stored runs in seed order."""
    out = {}
    for run in sorted(layer_runs(found, measures).values(), key=lambda r: r.seed):
        out.setdefault((run.summary["dataset"], run.summary["model"]), []).append(run)
    return out


def run_estimate(runs: list[LayerRun], statistic, reads) -> Estimate:
    """``statistic(curves)`` of a setting's runs: over its seeds; else the jackknife of its one run when each of
    the measures it ``reads`` has replicates (CDNV, NC2); else no within-run uncertainty, saying for what."""
    values = [statistic(r.curves) for r in runs]
    bare = [NAMES.get(m, m) for m in reads if m not in JACKKNIFE_MEASURES]
    if len(runs) == 1 and bare:
        return Estimate(values[0], math.nan, f"{NO_UNCERTAINTY} {' or '.join(bare)} (one run; no replicates)")
    return estimate_runs(values, lambda: [statistic(g) for g in runs[0].replicates])


def share_estimate(runs: list[LayerRun], terms) -> Estimate:
    """The sum over ``terms`` [(sign, (measure, split, features), layers)] of sign x the mean over ``layers`` of a
    share of images (NC4, NCC accuracy): over the seeds, else the binomial errors on the images each read, in
    quadrature. A mean over several layers gets the binomial error of the mean share, an upper bound whatever
    their correlation; layers of one split read the same images, so the quadrature of a difference between
    them is conservative while they correlate positively (two splits are independent images)."""
    def share(curves, key, layers):
        return float(np.mean(curves[key][layers]))

    def value(curves):
        return sum(sign * share(curves, key, layers) for sign, key, layers in terms)

    if len(runs) >= 2:
        return over_seeds([value(r.curves) for r in runs])
    run = runs[0]
    errors = [binomial(min(max(share(run.curves, key, layers), 0.0), 1.0), run.images[key]) for _, key, layers in terms]
    images = "/".join(dict.fromkeys(str(run.images[key]) for _, key, _ in terms))
    return Estimate(value(run.curves), math.hypot(*(e.se for e in errors)), f"binomial, {images} images")


def summary_estimate(runs: list[LayerRun], accuracy: str, images: str) -> Estimate:
    """A summary accuracy of a setting: over its seeds, else the binomial error of its one run."""
    if len(runs) >= 2:
        return over_seeds([r.summary[accuracy] for r in runs])
    return binomial(float(runs[0].summary[accuracy]), int(runs[0].summary[images]))


def terminal(runs: dict[str, list[LayerRun]]) -> tuple[str, str]:
    """Whether every run fits its training set (:func:`ncutils.estimates.every_run_terminal`)."""
    return every_run_terminal([(f"{label} seed {r.seed}", r.summary["train_acc"])
                               for label, rs in runs.items() for r in rs])


@dataclass
class Cases(Judged):
    """A :class:`Judged` that lists an estimate without within-run uncertainty by its value (the case is
    inconclusive) and says once why."""

    bare: set = field(default_factory=set)

    def add(self, label: str, estimate: Estimate, threshold: float, direction: str, verdict: str | None = None):
        if not estimate.kind.startswith(NO_UNCERTAINTY):
            return super().add(label, estimate, threshold, direction, verdict)
        self.parts.append(f"{label} {estimate.value:.3g}")
        self.verdicts.append(INCONCLUSIVE)
        self.bare.add(estimate.kind)

    def result(self, rule: str) -> tuple[str, str]:
        statistic, verdict = super().result(rule)
        return statistic + "".join(f"; {kind}" for kind in sorted(self.bare)), verdict


def increases(values: np.ndarray) -> int:
    """Steps along the depth where the value goes up."""
    return int((np.diff(values) > 0).sum())


def excess_variation(values: np.ndarray) -> float:
    """Total variation of log10 values minus their net change, in decades (0 iff monotone)."""
    logs = np.log10(values)
    return max(0.0, round(float(np.abs(np.diff(logs)).sum() - abs(logs[-1] - logs[0])), 9))  # no rounding noise


def curves(metrics: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """{"model/dataset": {measure: values by layer}} (training split, flat features) for runs with finite,
    positive curves of both measures: the curves the chapter's shape figure draws."""
    out = {}
    for measure in MEASURES:
        for (model, dataset), run in layer_rows(metrics, measure).groupby(["model", "dataset"], sort=False):
            out.setdefault(f"{model}/{dataset}", {})[measure] = run.sort_values("layer number").value.to_numpy(
                dtype=float)
    return {m: c for m, c in out.items()
            if len(c) == len(MEASURES) and all(len(v) >= 2 and np.all(np.isfinite(v)) and np.all(v > 0)
                                                for v in c.values())}


def accuracy_table(found: StudyResults) -> pd.DataFrame:
    """Every run's accuracies (each seed's) and whether it reached the terminal phase."""
    return run_table(found.summaries, ("model", "size", "seed", "dataset", "n_per_class", "epochs", "train_acc",
                                       "test_acc"))


STATISTICS = (("number of increases along the depth", increases),
              ("excess variation of log10 values (decades)", excess_variation))


def stability(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per run, both statistics of both measures (0 = a monotone curve)."""
    per_run = {} if metrics.empty else curves(metrics)
    rows = [{"run": run, **{f"{name}: {NAMES[m]}": fn(values) for name, fn in STATISTICS
                            for m, values in by_measure.items()}} for run, by_measure in per_run.items()]
    return pd.DataFrame(rows, columns=["run"] + [f"{name}: {NAMES[m]}" for name, _ in STATISTICS
                                                 for m in MEASURES]).set_index("run")


def indicators(found: StudyResults) -> pd.DataFrame:
    """Per model: its test accuracy and its last-layer CDNV and NC2 (training split, flat features), each with
    its rank among the models of its dataset (1: the highest accuracy, the lowest CDNV or NC2)."""
    out = found.summaries.reindex(columns=["dataset", "model", "test_acc"]).set_index(["dataset", "model"])
    for measure in ("cdnv_sum", "nc2"):
        rows = layer_rows(found.metrics, measure) if not found.metrics.empty else pd.DataFrame(
            columns=["dataset", "model", "layer number", "value"])
        last = rows.sort_values("layer number").groupby(["dataset", "model"]).value.last()
        out[f"last-layer {NAMES[measure]}"] = last.reindex(out.index)
    for column in out.columns:
        out[f"rank: {column}"] = out.groupby(level="dataset")[column].rank(ascending=column != "test_acc")
    return out


def steadier(what: str, statistic, view):
    """A judge of "CDNV is the steadier curve": per model, ``statistic`` of NC1 minus that of CDNV, above 0."""
    def judge(models):
        j = Cases()
        for model, runs in models.items():
            j.add(model, run_estimate(runs, lambda c: statistic(c["nc1", *view]) - statistic(c["cdnv_sum", *view]),
                                      ("nc1", "cdnv_sum")), 0, "above")
        return j.result(f"{what}, NC1's minus CDNV's (> 0: CDNV the steadier)")
    return judge


def nc1_falls(view):
    def judge(models):
        j = Cases()
        for model, runs in models.items():
            j.add(model, run_estimate(runs, lambda c: float(np.log10(c["nc1", *view][0] / c["nc1", *view][-1])),
                                      ("nc1",)), 0, "above")
        return j.result("decades NC1 falls from the first to the last layer (> 0)")
    return judge


def spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation of each row of ``x`` with the same row of ``y`` (ties get average ranks)."""
    rx, ry = (pd.DataFrame(np.atleast_2d(v)).rank(axis=1).to_numpy() for v in (x, y))
    rx, ry = rx - rx.mean(axis=1, keepdims=True), ry - ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(axis=1) / np.sqrt((rx ** 2).sum(axis=1) * (ry ** 2).sum(axis=1))


def more_sensitive(view):
    """A judge of "NC1 is the more sensitive indicator": over the models, Spearman's correlation of test accuracy
    with minus last-layer CDNV minus that with minus last-layer NC2, above 0. Its standard error: a parametric
    bootstrap drawing each model's test accuracy, last-layer CDNV and NC2 from normals of their estimates."""
    def judge(models):
        estimates = [(summary_estimate(runs, "test_acc", "num_test"),
                      *(run_estimate(runs, lambda c, m=m: float(c[m, *view][-1]), (m,)) for m in ("cdnv_sum", "nc2")))
                     for runs in models.values()]
        value, se = (np.array([[getattr(e, part) for e in model] for model in estimates]).T for part in ("value", "se"))
        kind = (f"parametric bootstrap of the test accuracies (binomial or seeds) and last-layer CDNV and NC2 "
                f"(jackknife or seeds), {BOOTSTRAP} draws")
        if not np.isfinite(se).all():
            kind = "no bootstrap: " + "; ".join(sorted({e.kind for model in estimates for e in model
                                                         if not math.isfinite(e.se)}))
        draws = np.random.default_rng(0).normal(value, se, size=(BOOTSTRAP, *value.shape))
        rho_cdnv, rho_nc2 = (spearman(value[0], -value[k])[0] for k in (1, 2))
        spread = spearman(draws[:, 0], -draws[:, 1]) - spearman(draws[:, 0], -draws[:, 2])
        j = Cases()
        j.add(f"ρ(accuracy, -CDNV) {rho_cdnv:.2f}, ρ(accuracy, -NC2) {rho_nc2:.2f}, difference",
              Estimate(rho_cdnv - rho_nc2, float(np.std(spread, ddof=1)), kind), 0, "above")
        return j.result(f"over the {len(models)} models, Spearman correlation of test accuracy with minus the "
                        "last-layer CDNV (the paper's NC_1, eq. 4) minus that with minus the last-layer NC2 (> 0)")
    return judge


def claim_text(label: str, quote: str) -> str:
    return f'{label}: "{QUOTES[quote]}"'


def dataset_claims(name: str, models: list[str], stored: dict[str, list[LayerRun]]) -> list[dict]:
    """The claims on one dataset whose study has ``models`` (``stored``: model -> its stored runs)."""
    def row(claim, figure, judge, why=""):
        return judged(claim, figure, models, stored, lambda: judge({m: stored[m] for m in models if m in stored}),
                      why)

    rows = []
    for view in VIEWS:
        seen = f"{name}, {view_name(view)}"
        for what, statistic in STATISTICS:
            rows.append(row(claim_text(f"every model on {seen}: CDNV is steadier along the depth than NC1, its {what} "
                                       "smaller", "stable"), SHAPE, steadier(what, statistic, view)))
        if name == DATASETS["cifar10"]:
            rows.append(row(claim_text(f"every model on {seen}: NC1 (Papyan's, as in [10]) also falls from the first "
                                       "to the last layer", "nc1_falls"), CURVES, nc1_falls(view)))
        rows.append(row(claim_text(f"the models on {seen}: the paper's NC_1 (CDNV) ranks their test accuracy more "
                                   "closely than NC2 does", "sensitive"), SENSITIVITY, more_sensitive(view),
                        "" if len(models) >= 3 else "a rank correlation needs at least three models"))
    return rows


def claims(found: StudyResults) -> pd.DataFrame:
    """The chapter's claims on every dataset of the study, from every seed's stored run in ``found``."""
    runs = by_model(found, ("cdnv_sum", "nc1", "nc2")) if not found.summaries.empty else {}
    pairs = list(dict.fromkeys((c.dataset, c.model) for c in found.configs))
    rows = []
    for dataset in dict.fromkeys(d for d, _ in pairs):
        models = [m for d, m in pairs if d == dataset]
        rows += dataset_claims(DATASETS.get(dataset, dataset), models,
                               {m: runs[dataset, m] for m in models if (dataset, m) in runs})
    return table(rows)
