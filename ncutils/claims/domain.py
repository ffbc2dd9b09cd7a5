"""Earlier version, section 4.3 and Figure 3: the claims of the ``domain`` chapter, judged from the ``domain`` study.

Each run trains ResNet50 (ResNet18 below the paper scale, ``ncutils.studies.domain_model``) on one PACS
source domain (for the paper's Office-Home), with three seeds per source; every layer tap is measured
on the test split of each other domain (CDNV: ``cdnv_sum``) and probed there (a logistic regression
fitted to convergence below the paper scale on 20 training images per class of that domain, tested on
its test split). The paper does not say with which features it measures the targets: every CDNV claim
is judged with flat and with pooled features (:data:`VIEWS`), named in the claim.

Every verdict is :mod:`ncutils.verdict`'s: a statistic of the runs with its standard error (the spread
over seeds of the statistic of seed s's run of every source; with one seed, the jackknife over the
targets' images of its CDNV curves) against the claim's threshold, stated in its statistic; a claim
about several (source, target) pairs or targets holds when each does and does not hold when one does
not. Each claim quotes the sentence it tests (:data:`QUOTES`).

A target probe failing the probe check of every run (:func:`ncutils.estimates.check_probes`: converged at
every layer, the last fitting its training images at least as well as the network, which never trained on
the target, classifies that domain) makes the verdicts reading probe accuracies not computed, naming it. A
probe passing it whose last layer fits its training images more than ``estimates.PROBE_FIT_TOLERANCE``
below a perfect fit is named in those verdicts' statistic but does not void them: such a fit can be the
penalty's doing (the two such probes of the cpu results have separable features, an unpenalised fit
reaching 1.000, yet the book's one penalty, ``ncutils.logistic.L2``, holds them below). Earlier layers may
fit less: their few pooled channels limit them; the probe table shows it.
Chance is 1/7 (:data:`CHANCE`); a probe test accuracy below chance by more than :data:`BELOW_CHANCE`
binomial standard errors (at chance, on the probe's test images) is flagged in the statistic.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import frames
from ..estimates import PROBE_FIT_TOLERANCE, every_run_terminal, read_runs
from ..frames import TERMINAL
from ..results import StudyResults
from ..studies import PACS, PACS_CLASSES
from ..verdict import Estimate, binomial, estimate_runs
from . import figure_link, judged, table
from .clean import Judged, view_name

STUDY = "domain"
CHAPTER = "domain"
FIGURE = figure_link(CHAPTER, "domain-figure")
SCATTER = figure_link(CHAPTER, "domain-probe-vs-cdnv")
TABLE = figure_link(CHAPTER, "domain-accuracy")
VIEWS = (("test", "flat"), ("test", "pooled"))  # the targets are measured on their test split
STRONG = 0.5  # a Spearman rho below -STRONG is a strong monotone (negative) association
CHANCE = 1 / PACS_CLASSES  # the accuracy of guessing among PACS's 7 classes
BELOW_CHANCE = 3  # binomial standard errors below chance that flag a probe's test accuracy
QUOTES = {
    "similar": "pretrained on semantically similar domains display a similar trend of progressive neural collapse",
    "minimal": "While the differences in the intermediate neural collapse between pretrained models are minimal",
    "pronounced": "these discrepancies become more pronounced in the deeper layers",
    "probe": "we find that the intermediate features have better neural collapse will induces better linear-probing",
}


def target_rows(metrics: pd.DataFrame, measure: str, features: str = "flat") -> pd.DataFrame:
    """Rows of ``measure`` per layer tap on the target domains, with ``source`` and ``target`` columns.

    NC measures on each target's test split (``features``: flat, the paper's, or pooled); probes trained
    on the target's limited training data and tested on its test split (pooled features).
    """
    if metrics.empty:
        return pd.DataFrame(columns=["source", "seed", "target", "layer number", "value", "num_samples"])
    shifted = metrics[metrics.eval_data != metrics.dataset]
    rows = frames.layer_rows(shifted.assign(source=shifted.dataset, dataset=shifted.eval_data), measure,
                             split="test", features=features)
    return rows.assign(source=rows.source.str.partition(":")[2], target=rows.eval_data.str.partition(":")[2])


@dataclass
class Targets:
    """Every stored source run's curves on its target domains, each keyed (source, seed, target)."""

    cdnv: dict = field(default_factory=dict)  # view -> {key: CDNV per layer}
    cdnv_jk: dict = field(default_factory=dict)  # view -> [{key: CDNV without jackknife group g} per g]
    probe: dict = field(default_factory=dict)  # key -> probe test accuracy per layer
    probe_train: dict = field(default_factory=dict)  # key -> probe training accuracy per layer
    converged: dict = field(default_factory=dict)  # key -> 1 where the probe converged, 0 where not
    probe_images: dict = field(default_factory=dict)  # key -> the probe's test images
    problems: dict = field(default_factory=dict)  # key -> its probes' problems (StoredRun.probe_problems)

    def seeds(self) -> list[int]:
        """The seeds every stored source has."""
        by_source: dict[str, set] = {}
        for source, seed, _ in self.cdnv[VIEWS[0]]:
            by_source.setdefault(source, set()).add(seed)
        return sorted(set.intersection(*by_source.values())) if by_source else []

    def pairs(self) -> list[tuple[str, str]]:
        return sorted({(s, t) for s, _, t in self.cdnv[VIEWS[0]]})

    def estimate(self, view, statistic: Callable[[dict, dict], float]) -> Estimate:
        """``statistic(cdnv, probe)`` of one draw ({(source, target): curve}, seed s of every source): over the
        seeds every source has; with one, the jackknife over the targets' images of its CDNV curves (its
        probe accuracies held fixed)."""
        seeds = self.seeds()
        if not seeds:
            return Estimate(math.nan, math.nan, "no seed stored for every source")

        def draw(curves: dict, seed: int) -> dict:
            return {(s, t): v for (s, sd, t), v in curves.items() if sd == seed}
        return estimate_runs([statistic(draw(self.cdnv[view], s), draw(self.probe, s)) for s in seeds],
                             lambda: [statistic(draw(g, seeds[0]), draw(self.probe, seeds[0]))
                                      for g in self.cdnv_jk.get(view, [])])


def measured(found: StudyResults) -> Targets:
    """The stored runs' target curves (:class:`Targets`) in each of :data:`VIEWS`
    (:func:`ncutils.estimates.read_runs`)."""
    t = Targets(cdnv={v: {} for v in VIEWS}, cdnv_jk={v: [] for v in VIEWS})
    for run in sorted(read_runs(found).values(), key=lambda r: (r.summary["dataset"], r.seed)):  # keys in order
        for data in sorted({key[-1] for key in run.curves} - {run.summary["dataset"]}):
            key = (run.summary["dataset"].partition(":")[2], run.seed, data.partition(":")[2])
            for view in VIEWS:
                t.cdnv[view][key] = run.selected(run.curves, *view, eval_data=data)["cdnv_sum"]
                for g, replicate in enumerate(run.replicates):
                    if g == len(t.cdnv_jk[view]):
                        t.cdnv_jk[view].append({})
                    t.cdnv_jk[view][g][key] = run.selected(replicate, *view, eval_data=data)["cdnv_sum"]
            probes = run.probes(data)
            for field_, measure in (("probe", "probe_test_acc"), ("probe_train", "probe_train_acc"),
                                    ("converged", "probe_converged")):
                if measure in probes:
                    getattr(t, field_)[key] = probes[measure]
            t.probe_images[key] = run.probe_images(data)
            t.problems[key] = run.probe_problems(run_label(key), data)
    return t


def spearman(a, b) -> float:
    """Spearman's rank correlation (Pearson's on average ranks); nan when either side is constant."""
    a, b = pd.Series(np.asarray(a, float)).rank(), pd.Series(np.asarray(b, float)).rank()
    return float(a.corr(b)) if a.nunique() > 1 and b.nunique() > 1 else float("nan")


def fall(cdnv: dict, pair) -> float:
    """Decades by which CDNV on the target falls from the first to the last layer."""
    return float(np.log10(cdnv[pair].iloc[0] / cdnv[pair].iloc[-1]))


def spread_excess(cdnv: dict, target: str) -> float:
    """The range across source models of log10 CDNV on ``target`` (decades), its mean over the last third
    of the layers minus its mean over the first third."""
    logs = pd.DataFrame({s: np.log10(v) for (s, t), v in cdnv.items() if t == target})
    spread = (logs.max(axis=1) - logs.min(axis=1)).to_numpy()
    third = max(1, len(spread) // 3)
    return float(spread[-third:].mean() - spread[:third].mean())


def joined(cdnv: dict, probe: dict) -> pd.DataFrame:
    """One row per (source, target, layer): its CDNV and probe test accuracy on the target."""
    parts = [pd.DataFrame({"source": s, "target": t, "cdnv": c, "probe": probe[s, t]}).dropna()
             for (s, t), c in cdnv.items() if (s, t) in probe]
    return pd.concat(parts) if parts else pd.DataFrame(columns=["source", "target", "cdnv", "probe"])


def pooled_rho(cdnv: dict, probe: dict) -> float:
    """Spearman's rho of CDNV and probe accuracy over every (source, target, layer)."""
    points = joined(cdnv, probe)
    return spearman(points.cdnv, points.probe)


def between_sources_rho(cdnv: dict, probe: dict) -> float:
    """Spearman's rho across the source models at one target and layer, averaged over (target, layer)."""
    points = joined(cdnv, probe).rename_axis("layer").reset_index()
    rhos = np.array([spearman(g.cdnv, g.probe) for _, g in points.groupby(["target", "layer"]) if len(g) >= 2])
    return float(np.mean(rhos[np.isfinite(rhos)])) if np.isfinite(rhos).any() else math.nan


def listed(items: list[str], most: int = 4) -> str:
    return ", ".join(items[:most]) + (f" and {len(items) - most} more" if len(items) > most else "")


def run_label(key) -> str:
    source, seed, target = key
    return f"{source} seed {seed} → {target}"


def unfit_probes(t: Targets) -> list[str]:
    """The problems of the target probes (:func:`ncutils.estimates.check_probes`, the network's fit being its
    accuracy on that target): they void the verdicts reading probes."""
    return [problem for _, problems in sorted(t.problems.items()) for problem in problems]


def short_fits(t: Targets) -> list[str]:
    """The target probes whose last layer fits its training images more than PROBE_FIT_TOLERANCE
    below a perfect fit: named beside the verdicts, not voiding them (the module's doc says why)."""
    return [f"{run_label(key)} layer {train.index.max()} {train.iloc[-1]:.3f}" for key, train in
            sorted(t.probe_train.items()) if train.iloc[-1] < 1 - PROBE_FIT_TOLERANCE]


def chance_note(t: Targets) -> str:
    """Chance, and the probe test accuracies below it by more than :data:`BELOW_CHANCE` binomial errors."""
    below = [f"{run_label(key)} layer {layer} {accuracy:.3f}" for key, test in sorted(t.probe.items())
             for layer, accuracy in test.items()
             if CHANCE - accuracy > BELOW_CHANCE * binomial(CHANCE, t.probe_images[key]).se]
    return (f"chance {CHANCE:.3f} (1/{PACS_CLASSES}); probe test accuracies below chance by more than {BELOW_CHANCE} "
            f"binomial standard errors: {f'{len(below)}, {listed(below)}' if below else 'none'}")


def progressive(t: Targets, view):
    j = Judged()
    for pair in t.pairs():
        j.add(f"{pair[0]} → {pair[1]}", t.estimate(view, lambda c, p: fall(c, pair)), 0, "above")
    return j.result("decades CDNV on the target falls from the first to the last layer, per source → target (> 0)")


def spread(t: Targets, view):
    j = Judged()
    for target in PACS:
        if len({s for s, tg in t.pairs() if tg == target}) >= 2:
            j.add(target, t.estimate(view, lambda c, p: spread_excess(c, target)), 0, "above")
    return j.result("range of log10 CDNV across the source models, mean over the last third of the layers minus "
                    "the first third, decades, per target (> 0)")


def collapse_vs_probe(statistic: Callable[[dict, dict], float], what: str):
    def judge(t: Targets, view):
        j = Judged()
        j.add("rho", t.estimate(view, statistic), -STRONG, "below")
        text, verdict = j.result(f"Spearman rho of target CDNV and probe test accuracy {what} (< -{STRONG})")
        short = short_fits(t)
        fits = (f"; converged last-layer probes fitting below {1 - PROBE_FIT_TOLERANCE:.2f} of their training "
                f"images: {len(short)}, {listed(short)}") if short else ""
        return f"{text}; {chance_note(t)}{fits}", verdict
    return judge


def terminal(summaries: pd.DataFrame) -> tuple[str, str]:
    return every_run_terminal([(f"{d.partition(':')[2]} seed {s}", a)
                               for d, s, a in zip(summaries.dataset, summaries.seed, summaries.train_acc)])


def accuracy_table(found) -> pd.DataFrame:
    """Per source run (source, seed): its training images and accuracy, whether it reached the terminal phase,
    and its own classifier's test accuracy on each domain without adaptation (the diagonal: its own test
    split; chance is :data:`CHANCE`)."""
    summary = found.summaries
    runs = summary.assign(source=summary.dataset.str.partition(":")[2]).set_index(["source", "seed"]).sort_index()
    accuracy = pd.DataFrame({d: runs.reindex(columns=[f"test_acc_{d}"]).iloc[:, 0] for d in PACS})
    sources = runs.index.get_level_values("source")
    for source in PACS:
        accuracy.loc[sources == source, source] = runs.test_acc[sources == source]
    table_ = pd.concat([runs[["num_train", "train_acc"]], accuracy.add_prefix("test on ")], axis=1)
    table_["terminal phase"] = frames.terminal_phase(table_)
    return table_


def probe_table(found) -> pd.DataFrame:
    """Per source run and target: how its probes fit (converged, lowest training accuracy), their test
    accuracy (first, last and lowest layer; chance is :data:`CHANCE`) and the layers below chance by more
    than :data:`BELOW_CHANCE` binomial standard errors."""
    t, rows = measured(found), []
    for key, test in sorted(t.probe.items()):
        converged = t.converged.get(key)
        rows.append((*key, len(test), int((converged != 0).sum()) if converged is not None else pd.NA,
                     t.probe_train[key].min() if key in t.probe_train else math.nan, test.iloc[0], test.iloc[-1],
                     test.min(), int((CHANCE - test > BELOW_CHANCE * binomial(CHANCE, t.probe_images[key]).se).sum())))
    return pd.DataFrame(rows, columns=["source", "seed", "target", "layers", "converged", "lowest train accuracy",
                                       "test accuracy, first layer", "last layer", "lowest",
                                       f"layers below chance by > {BELOW_CHANCE} SE"]).set_index(
        ["source", "seed", "target"])


def claim_text(label: str, *quotes: str) -> str:
    return f"{label}: " + " ... ".join(f'"{QUOTES[q]}"' for q in quotes)


def claims(found) -> pd.DataFrame:
    """The earlier version's section 4.3 claims, judged from every seed's stored run in ``found`` (a
    :class:`ncutils.results.StudyResults`); every claim compares or quantifies over all source runs, so
    each needs all of them."""
    t = measured(found)
    needed = [f"source {c.dataset} seed {c.seed}" for c in found.configs]
    stored = {f"source {c.dataset} seed {c.seed}" for c in found.stored}
    unfit = unfit_probes(t)
    failing = sum(bool(problems) for problems in t.problems.values())
    unfit_why = (f"{failing} of {len(t.problems)} (source run, target) probes fail the probe check (converged at "
                 f"every layer, the last fitting its training images within {PROBE_FIT_TOLERANCE} of what the network "
                 f"classifies of that domain): {listed(unfit)}; {chance_note(t)}" if unfit else "")

    def row(claim, figure, judge, view=None, why=""):
        return judged(claim, figure, needed, stored, lambda: judge(t, view),
                      why or ("" if needed else "the study has no runs at this scale"))

    rows = []
    for view in VIEWS:
        seen = view_name(view)
        rows.append(row(claim_text(f"(1) every source model on every other domain, {seen}: CDNV on the target falls "
                                   "from the first to the last layer", "similar"), FIGURE, progressive, view))
        rows.append(row(claim_text(f"(2) the source models on each target, {seen}: their CDNV differs little in the "
                                   "early layers and more in the deep ones", "minimal", "pronounced"), FIGURE, spread,
                        view))
        rows.append(row(claim_text(f"(3) every (source, target, layer), {seen}: lower CDNV on the target goes with "
                                   "higher probe accuracy on it", "probe"), SCATTER,
                        collapse_vs_probe(pooled_rho, "over every (source, target, layer)"), view, unfit_why))
        rows.append(row(claim_text(f"(3) between the source models at one target and layer, {seen}: lower CDNV on "
                                   "the target goes with higher probe accuracy on it", "probe"), SCATTER,
                        collapse_vs_probe(between_sources_rho, "across the source models at one (target, layer), "
                                                               "averaged over them"), view, unfit_why))
    rows.append(judged(f"every source run: it reached the terminal phase (train accuracy >= {TERMINAL:.0%})", TABLE,
                       needed, stored, lambda: terminal(found.summaries),
                       "" if needed else "the study has no runs at this scale"))
    return table(rows)
