"""Section 4.1, clean data: the claims of the ``clean`` chapter, judged from the ``clean`` study.

Every curve is one run's measure at each block tap in order (the classifier's input left out): CDNV
is ``cdnv_sum`` (eq. 4, summed over ordered class pairs), NC2 is eq. 5 and the probe accuracy is on the
clean test set (pooled features). The paper does not say on which split or view its CIFAR figures
measure collapse (appendix A.1 says "the NC is calculated on the test dataset" next to ImageNet), so
every CDNV and NC2 claim is judged in each of :data:`VIEWS`, named in the claim.

Every verdict is :mod:`ncutils.verdict`'s: per model, the statistic with its standard error (the spread
over seeds where the model has several; else the jackknife over images of its one run's curves, or the
binomial error of an accuracy) against the claim's threshold; a claim about several models or pairs
holds when each does. Only runs in the terminal phase (train accuracy >= ``frames.TERMINAL``) are read
(but by the claim that every run reached it); each statistic lists those left out. Each claim quotes the
sentence it tests (:data:`QUOTES`). A claim reading probe accuracies is not computed, listing why, while a
probe it reads did not converge at some block or fits its training images at the last block more than 0.02
below the network's train accuracy (:func:`ncutils.estimates.check_probes`).

- The *slope* from block a to block b is (log10 CDNV_a - log10 CDNV_b) / (b - a), decades per block.
- A model with n blocks has n - 1 steps between blocks; its early and late thirds are its first and
  last round((n - 1) / 3) steps, its middle third the steps between them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import frames
from ..estimates import Run, accuracy_estimate, curve_estimate, every_run_terminal, probe_checked, stored_runs
from ..frames import left_out_note, split_terminal
from ..studies import RESNETS, SWINS
from ..verdict import FAILS, HOLDS, INCONCLUSIVE, Estimate, all_of, binomial, judge, over_seeds
from . import figure_link, judged, table

STUDY = "clean"
CHAPTER = "clean"
ACCURACY = figure_link(CHAPTER, "clean-accuracy")
RESNET_FIGURE = figure_link(CHAPTER, "clean-resnets")
SWIN_FIGURE = figure_link(CHAPTER, "clean-swins")
PROBE_VS_CDNV = figure_link(CHAPTER, "clean-probe-vs-cdnv")
DEEP_RESNETS = ("resnet50", "resnet101", "resnet152")  # the models the paper finds on a plateau
VIEWS = frames.VIEWS
PLATEAU = 0.25  # a middle third falling at under this fraction of the slower of the early and late thirds
LITTLE = 0.01  # accuracies within one point differ "little" (the paper's deep ResNets: 0.03-0.1 points)
SMALL_GAIN = 0.02  # a "relatively small" probe gain over the last third of the blocks (two points)
GEOMETRIC_R2 = 0.9  # a log-linear fit of CDNV over the blocks explaining this share of its variance is geometric
BOOTSTRAP = 200  # parametric bootstrap draws of the probe accuracies (Fig. 7)
DATASETS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
QUOTES = {
    "improve": "intermediate neural collapse consistently improves as the model progresses through deeper layers",
    "faster": "deeper layers enhance neural collapse more rapidly than shallow layers",
    "geometric": "we observe a similar geometric rate of improvement in intermediate neural collapse when using "
                 "limited-capacity models on small datasets, such as ResNet18 on CIFAR-10",
    "plateau": "ResNet50, ResNet101, and ResNet152 all reach the plateau phase on the CIFAR-10 and CIFAR-100 "
               "datasets, whereas ResNet18 does not",
    "depth": "increasing model depth slows down the rate of neural collapse improvement for individual layers",
    "beat18": "Although deeper models outperform ResNet18, the differences among the deeper models themselves are "
              "negligible",
    "final": "the performance improvement in the final layers of ResNet models is relatively small on CIFAR datasets",
    "architectures": "ResNet layers demonstrate superior within-class compression and between-class separation "
                     "compared to Swin-Transformer layers on smaller datasets such as CIFAR-10 and CIFAR-100",
    "fig7": "models within the same architecture exhibit a consistent relationship between intermediate neural "
            "collapse and linear probing accuracy",
}


def thirds(n_blocks: int) -> tuple[int, int]:
    """0-based indices of the blocks where the middle and the last third of the steps start."""
    u = max(1, round((n_blocks - 1) / 3))
    return u, n_blocks - 1 - u


def slope(values, a: int, b: int) -> float:
    """Decades per block by which ``values`` fall from block index a to block index b."""
    v = np.log10(np.asarray(values, float))
    return float((v[a] - v[b]) / (b - a))


def thirds_slopes(c: pd.Series) -> tuple[float, float, float]:
    """The slopes over the early, middle and late thirds of the steps."""
    middle, late = thirds(len(c))
    return slope(c, 0, middle), slope(c, middle, late), slope(c, late, len(c) - 1)


def plateau_margin(c: pd.Series, _nc2=None) -> float:
    """Middle-third slope minus PLATEAU x the slower of the early and late thirds: below 0 is a plateau."""
    early, middle, late = thirds_slopes(c)
    return middle - PLATEAU * min(early, late)


def log_linear_r2(c: pd.Series, _nc2=None) -> float:
    """R^2 of a straight line through log10 CDNV over the blocks (1 for an exactly geometric decay)."""
    y = np.log10(c.to_numpy(float))
    x = np.arange(len(y))
    residual = y - np.polyval(np.polyfit(x, y, 1), x)
    return float(1 - residual.var() / y.var())


@dataclass
class Judged:
    """A claim's statistic text and verdict."""

    parts: list[str] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)

    def add(self, label: str, estimate: Estimate, threshold: float, direction: str, verdict: str | None = None):
        self.parts.append(f"{label} {estimate}")
        self.verdicts.append(verdict or judge(estimate, threshold, direction))

    def result(self, rule: str) -> tuple[str, str]:
        if not self.verdicts:
            return f"{rule}: nothing to compare among the stored runs", INCONCLUSIVE
        return f"{rule}: " + "; ".join(self.parts), all_of(self.verdicts)


def improve(models, view):
    j = Judged()
    for m, runs in models.items():
        j.add(f"{m} CDNV", curve_estimate(runs, view, lambda c, n: np.log10(c.iloc[0] / c.iloc[-1])), 0, "above")
        j.add("NC2", curve_estimate(runs, view, lambda c, n: n.iloc[0] - n.iloc[-1]), 0, "above")
    return j.result("decades CDNV falls and NC2 falls from the first to the last block (> 0)")


def faster_last(models, view):
    j = Judged()
    for m, runs in models.items():
        def excess(c, n):
            start = thirds(len(c))[1]
            return slope(c, start, len(c) - 1) - slope(c, 0, start)
        j.add(m, curve_estimate(runs, view, excess), 0, "above")
    return j.result("slope over the last third minus the slope before it, decades/block (> 0)")


def plateau(models, view):
    """Deep ResNets: a middle third slower than PLATEAU x the slower other third, a significant rise being
    its own outcome (not a plateau); ResNet18: none."""
    j = Judged()
    for m, runs in models.items():
        margin = curve_estimate(runs, view, plateau_margin)
        middle = curve_estimate(runs, view, lambda c, n: thirds_slopes(c)[1])
        rises = judge(middle, 0, "below") == HOLDS
        if m == "resnet18":
            j.add(f"{m} (none)", margin, 0, "above")
        else:
            j.add(f"{m}" + (" (CDNV rises in the middle third)" if rises else ""), margin, 0, "below",
                  FAILS if rises else None)
    return j.result(f"middle-third slope minus {PLATEAU} x the slower of the early and late thirds "
                    "(a plateau: < 0)")


def slower_with_depth(models, view):
    j = Judged()
    names = list(models)
    overall = {m: curve_estimate(r, view, lambda c, n: slope(c, 0, len(c) - 1)) for m, r in models.items()}
    for shallow, deep in zip(names, names[1:]):
        j.add(f"{shallow} - {deep}", overall[shallow] - overall[deep], 0, "above")
    return j.result("slope from the first to the last block, shallower minus deeper model, decades/block (> 0)")


def geometric(models, view):
    j = Judged()
    for m, runs in models.items():
        j.add(m, curve_estimate(runs, view, log_linear_r2), GEOMETRIC_R2, "above")
    return j.result(f"R² of a log-linear fit of CDNV over the blocks (geometric: > {GEOMETRIC_R2})")


def test_acc(models) -> dict[str, Estimate]:
    return {m: accuracy_estimate(r, lambda x: x.test_acc, lambda x: x.num_test) for m, r in models.items()}


def beat_resnet18(models, _view=None):
    acc, j = test_acc(models), Judged()
    for m in models:
        if m != "resnet18" and "resnet18" in models:
            j.add(f"{m} - resnet18", acc[m] - acc["resnet18"], 0, "above")
    return j.result("test accuracy of each deeper ResNet minus ResNet18's (> 0)")


def little_spread(estimates: dict[str, Estimate], what: str):
    top = max(estimates, key=lambda m: estimates[m].value)
    low = min(estimates, key=lambda m: estimates[m].value)
    j = Judged()
    j.add(f"{top} - {low}", estimates[top] - estimates[low], LITTLE, "below")
    return j.result(f"largest minus smallest {what} (little: < {LITTLE})")


def deep_test_accuracy(models, _view=None):
    return little_spread(test_acc(models), "test accuracy")


def deep_probe_accuracy(models, _view=None):
    last = {m: accuracy_estimate(r, lambda x: x.probe.iloc[-1], lambda x: x.num_probe_test) for m, r in models.items()}
    return little_spread(last, "last-block probe accuracy")


def final_gain(models, _view=None):
    j = Judged()
    for m, runs in models.items():
        def gain(run):
            return run.probe.iloc[-1] - run.probe.iloc[thirds(len(run.probe))[1]]
        if len(runs) >= 2:
            estimate = over_seeds([gain(r) for r in runs])
        else:
            run = runs[0]
            estimate = (binomial(run.probe.iloc[-1], run.num_probe_test)
                        - binomial(run.probe.iloc[thirds(len(run.probe))[1]], run.num_probe_test))
        j.add(m, estimate, SMALL_GAIN, "below")
    return j.result(f"probe accuracy gained over the last third of the blocks (small: < {SMALL_GAIN})")


def resnets_below_swins(models, view, measure: str):
    j = Judged()
    if measure == "CDNV":
        level = {"mean over blocks": lambda c, n: float(np.log10(c.to_numpy(float)).mean()),
                 "last block": lambda c, n: float(np.log10(c.iloc[-1]))}
    else:
        level = {"mean over blocks": lambda c, n: float(n.mean()), "last block": lambda c, n: float(n.iloc[-1])}
    for name, statistic in level.items():
        for swin in (m for m in models if m in SWINS):
            for resnet in (m for m in models if m in RESNETS):
                j.add(f"{name} {swin} - {resnet}", curve_estimate(models[swin], view, statistic)
                      - curve_estimate(models[resnet], view, statistic), 0, "above")
    unit = "log10 CDNV" if measure == "CDNV" else "NC2"
    return j.result(f"{unit}, each Swin minus each ResNet (> 0)")


def compress(models, view):
    return resnets_below_swins(models, view, "CDNV")


def separate(models, view):
    return resnets_below_swins(models, view, "NC2")


def shared_curve_excess(points: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """RMS residual of one line (probe accuracy on log10 CDNV) through every model's points, minus that of
    one line per model: how much worse one curve per architecture explains them."""
    def rms(pairs):
        residuals = [y - np.polyval(np.polyfit(x, y, 1), x) for x, y in pairs]
        return float(np.sqrt(np.mean(np.concatenate(residuals) ** 2)))
    return rms([(np.concatenate([x for x, _ in points]), np.concatenate([y for _, y in points]))]) - rms(points)


def one_curve_per_architecture(models, _view=None):
    """Fig. 7: per family, the shared line's excess RMS residual (seed-0 runs, train/flat CDNV), its standard
    error from a parametric bootstrap of the probe accuracies (binomial on their test images)."""
    j, rng = Judged(), np.random.default_rng(0)
    for family, members in (("ResNets", RESNETS), ("Swins", SWINS)):
        runs = [models[m][0] for m in members if m in models]
        if len(runs) < 2:
            continue
        points = [(np.log10(r.cdnv[VIEWS[0]].to_numpy(float)), r.probe.to_numpy(float)) for r in runs]
        draws = [shared_curve_excess([(x, rng.binomial(r.num_probe_test, y) / r.num_probe_test)
                                      for (x, y), r in zip(points, runs)]) for _ in range(BOOTSTRAP)]
        estimate = Estimate(shared_curve_excess(points), float(np.std(draws, ddof=1)),
                            f"parametric bootstrap of the probe accuracies, {BOOTSTRAP} draws")
        j.add(family, estimate, LITTLE, "below")
    if not j.verdicts:
        return "no family has two models stored", INCONCLUSIVE
    return j.result(f"RMS residual of one line per architecture minus one line per model (< {LITTLE})")


def terminal(models):
    return every_run_terminal([(f"{m} seed {r.seed}", r.train_acc) for m, rs in models.items() for r in rs])


def view_name(view) -> str:
    return f"{view[0]} split, {view[1]} features"


def claim_text(label: str, quote: str) -> str:
    return f'{label}: "{QUOTES[quote]}"'


def study_models(found) -> dict[str, list[str]]:
    """Per dataset, the models of the study (stored or missing), ResNets then Swins, shallow to deep."""
    pairs = {(c.dataset, c.model) for c in found.configs}
    order = list(RESNETS + SWINS)
    models = sorted({m for _, m in pairs}, key=lambda m: (order.index(m) if m in order else len(order), m))
    return {d: [m for m in models if (d, m) in pairs] for d in sorted({d for d, _ in pairs})}


def accuracy_table(found) -> pd.DataFrame:
    """Every run's accuracies (each seed's), and whether it reached the terminal phase."""
    return frames.run_table(found.summaries, ("model", "size", "seed", "dataset", "n_per_class", "epochs",
                                               "train_acc", "test_acc"))


def probe_problems(judge, models: dict[str, list[Run]]) -> list[str]:
    """The problems of the probes ``judge`` reads of ``models``' runs: every seed's for the last-block accuracy
    and the final gain, each model's first run for Fig. 7; none for the claims reading no probe."""
    read = {deep_probe_accuracy: slice(None), final_gain: slice(None), one_curve_per_architecture: slice(1)}
    if judge not in read:
        return []
    return [p for m, runs in models.items() for r in runs[read[judge]] for p in r.probe_problems(m)]


def judge_terminal_runs(judge, view, needed: list[str], stored: dict[str, list[Run]]) -> tuple[str, str]:
    """``judge`` over the stored runs of ``needed`` in the terminal phase (train accuracy >= ``TERMINAL``),
    listing the others as left out; not computed while a model has no such run, or a probe it reads has
    problems."""
    got, left = split_terminal({m: stored[m] for m in needed if m in stored})
    note = left_out_note([(f"{m} seed {r.seed}", r.train_acc) for m, rs in left.items() for r in rs])
    short = [m for m, rs in got.items() if not rs]
    if short:
        return f"no run of {', '.join(short)} reached the terminal phase{note}", "not computed"
    statistic, verdict = probe_checked(probe_problems(judge, got), lambda: judge(got, view))
    return statistic + note, verdict


def dataset_claims(name: str, models: list[str], stored: dict[str, list[Run]]) -> list[dict]:
    """The claims on one dataset whose study has ``models`` (``stored``: model -> its stored runs)."""
    rows = []
    resnets = [m for m in models if m in RESNETS]
    swins = [m for m in models if m in SWINS]
    deep = [m for m in resnets if m in DEEP_RESNETS]
    fewer = "the study has fewer than two of these models at this scale"

    def row(claim, figure, needed, judge, view=None, why=""):
        return judged(claim, figure, needed, stored, lambda: judge_terminal_runs(judge, view, needed, stored), why)

    for view in VIEWS:
        seen = f"{name}, {view_name(view)}"
        for family, members, figure in (("ResNets", resnets, RESNET_FIGURE), ("Swin Transformers", swins, SWIN_FIGURE)):
            if not members:
                continue
            rows.append(row(claim_text(f"(1) {family} on {seen}: CDNV and NC2 are lower at the last block than at "
                                       "the first", "improve"), figure, members, improve, view))
            rows.append(row(claim_text(f"(1) {family} on {seen}: CDNV falls faster over the last third of the blocks "
                                       "than before it", "faster"), figure, members, faster_last, view))
            if family == "ResNets":
                rows.append(row(claim_text(f"(2) ResNets on {seen}: ResNet50/101/152 have a plateau in the middle "
                                           "blocks, ResNet18 has none", "plateau"), figure,
                                [m for m in resnets if m in ("resnet18",) + DEEP_RESNETS], plateau, view,
                                "" if deep and "resnet18" in resnets else "the study lacks ResNet18 or a deep ResNet"))
                if "resnet18" in resnets and name == "CIFAR-10":
                    rows.append(row(claim_text(f"(footnote 2) ResNet18 on {seen}: CDNV decays geometrically over "
                                               "the blocks", "geometric"), figure, ["resnet18"], geometric, view))
            rows.append(row(claim_text(f"(2) {family} on {seen}: the deeper the model, the less each block lowers "
                                       "CDNV", "depth"), figure, members, slower_with_depth, view,
                            "" if len(members) >= 2 else fewer))
        for what, compared in (("compress more (lower CDNV)", compress), ("separate classes more (lower NC2)", separate)):
            rows.append(row(claim_text(f"(3) ResNets vs Swin Transformers on {seen}: ResNet blocks {what}",
                                       "architectures"), SWIN_FIGURE, models, compared, view,
                            "" if resnets and swins else "the study lacks ResNets or Swins at this scale"))
    if "resnet18" in resnets and len(resnets) >= 2:
        rows.append(row(claim_text(f"(2) ResNets on {name}: every deeper ResNet has higher test accuracy than "
                                   "ResNet18", "beat18"), ACCURACY, resnets, beat_resnet18))
    for what, figure, spread in (("test accuracy", ACCURACY, deep_test_accuracy),
                                 ("last-block probe test accuracy", RESNET_FIGURE, deep_probe_accuracy)):
        rows.append(row(claim_text(f"(2) ResNets on {name}: ResNet50/101/152 differ by at most one point in {what}",
                                   "beat18"), figure, deep, spread, why="" if len(deep) >= 2 else fewer))
    if resnets:
        rows.append(row(claim_text(f"(1) ResNets on {name}: the probe gains little over the last third of the "
                                   "blocks", "final"), RESNET_FIGURE, resnets, final_gain))
    rows.append(row(claim_text(f"(2, Fig. 7) on {name}: one probe-accuracy curve over log10 CDNV per architecture "
                               "fits all its models", "fig7"), PROBE_VS_CDNV, models, one_curve_per_architecture))
    rows.append(judged(f"every run on {name}: it reached the terminal phase (train accuracy >= 99%)", ACCURACY,
                       models, stored, lambda: terminal(stored)))  # every run, in the terminal phase or not
    return rows


def claims(found) -> pd.DataFrame:
    """The section 4.1 claims on every dataset of the study, judged from every seed's stored run in ``found``
    (a :class:`ncutils.results.StudyResults`)."""
    runs = stored_runs(found, VIEWS) if not found.summaries.empty else {}
    rows = []
    for dataset, models in study_models(found).items():
        stored = {m: runs[dataset, m] for m in models if (dataset, m) in runs}
        rows += dataset_claims(DATASETS.get(dataset, dataset), models, stored)
    return table(rows)
