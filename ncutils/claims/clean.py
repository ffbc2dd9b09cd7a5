"""Section 4.1, clean data: the claims of the ``clean`` chapter, judged from the ``clean`` study.

Every curve is one run's measure at each block tap in order (the classifier's input left out): CDNV
is ``cdnv_sum`` (eq. 4, summed over ordered class pairs) and NC2 is eq. 5, both on the training set
with flattened features; probe accuracy is on the clean test set (pooled features).

- The *slope* from block a to block b is the decrease of log10 CDNV per block,
  (log10 CDNV_a - log10 CDNV_b) / (b - a), in decades per block.
- A model with n blocks has n - 1 steps between consecutive blocks; its first and last
  round((n - 1) / 3) steps are its early and last third, the steps between them its middle third.

A claim about several models holds when it holds for each, does not hold when it holds for none,
and is inconclusive otherwise (each judge says where it differs). A claim whose runs are not all
stored is not computed; its statistic then shows what the stored runs give.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import frames
from ..frames import TERMINAL
from ..studies import RESNETS, SWINS
from . import figure_link, judged, table

STUDY = "clean"
CHAPTER = "clean"
ACCURACY = figure_link(CHAPTER, "clean-accuracy")
RESNET_FIGURE = figure_link(CHAPTER, "clean-resnets")
SWIN_FIGURE = figure_link(CHAPTER, "clean-swins")
PROBE_VS_CDNV = figure_link(CHAPTER, "clean-probe-vs-cdnv")
DEEP_RESNETS = ("resnet50", "resnet101", "resnet152")  # the models the paper finds on a plateau
PLATEAU = 0.25  # a middle third falling at under this fraction of the model's overall slope is a plateau
LITTLE = 0.01  # accuracies within one point differ "little" (the paper's deep ResNets: 0.03-0.1 points)
DATASETS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


def consensus(flags) -> str:
    """'holds' if every flag is true, 'does not hold' if none is, 'inconclusive' otherwise."""
    flags = list(flags)
    return "holds" if all(flags) else "does not hold" if not any(flags) else "inconclusive"


def spearman(a, b) -> float:
    """Spearman's rank correlation of two equally long sequences (nan if one is constant)."""
    ra, rb = pd.Series(np.asarray(a, float)).rank(), pd.Series(np.asarray(b, float)).rank()
    return float(ra.corr(rb)) if ra.nunique() > 1 and rb.nunique() > 1 else float("nan")


def curves(metrics: pd.DataFrame, measure: str) -> dict[tuple[str, str], pd.Series]:
    """Per (dataset, model): ``measure`` at every block, indexed by layer number."""
    if metrics.empty:
        return {}
    rows = frames.layer_rows(metrics, measure).sort_values("layer number")
    return {key: g.set_index("layer number").value for key, g in rows.groupby(["dataset", "model"])}


def thirds(n_blocks: int) -> tuple[int, int]:
    """0-based indices of the blocks where the middle and the last third of the steps start."""
    u = max(1, round((n_blocks - 1) / 3))
    return u, n_blocks - 1 - u


def slope(values, a: int, b: int) -> float:
    """Decades per block by which ``values`` fall from block index a to block index b."""
    v = np.log10(np.asarray(values, float))
    return float((v[a] - v[b]) / (b - a))


@dataclass
class Runs:
    """The stored curves and run summaries of some models on one dataset (dicts shallow to deep)."""

    cdnv: dict[str, pd.Series]
    nc2: dict[str, pd.Series]
    probe: dict[str, pd.Series]
    summaries: pd.DataFrame  # one row per run, indexed by model

    def only(self, models) -> Runs:
        def keep(d):
            return {m: d[m] for m in models if m in d}
        return Runs(keep(self.cdnv), keep(self.nc2), keep(self.probe),
                    self.summaries[self.summaries.index.isin(models)])


def improve(r: Runs) -> tuple[str, str]:
    """(1) CDNV and NC2 at the last block below their values at the first block."""
    parts, flags = [], []
    for m, c in r.cdnv.items():
        n = r.nc2[m]
        flags.append(c.iloc[-1] < c.iloc[0] and n.iloc[-1] < n.iloc[0])
        parts.append(f"{m} CDNV {c.iloc[0]:.3g} → {c.iloc[-1]:.3g}, NC2 {n.iloc[0]:.3g} → {n.iloc[-1]:.3g}")
    return "first → last block: " + "; ".join(parts), consensus(flags)


def faster_last(r: Runs) -> tuple[str, str]:
    """(1) The slope over the last third of the steps above the slope from the first block to it."""
    parts, flags = [], []
    for m, c in r.cdnv.items():
        start = thirds(len(c))[1]
        before, last = slope(c, 0, start), slope(c, start, len(c) - 1)
        flags.append(last > before)
        parts.append(f"{m} {last:.3f} vs {before:.3f}")
    return ("slope over the last third vs from the first block to it (decades/block): " + "; ".join(parts),
            consensus(flags))


def plateau_ratio(c: pd.Series) -> float:
    """Slope over the middle third / slope from the first to the last block (nan if CDNV does not fall)."""
    middle, last = thirds(len(c))
    overall = slope(c, 0, len(c) - 1)
    return slope(c, middle, last) / overall if overall > 0 else float("nan")


def plateau(r: Runs) -> tuple[str, str]:
    """(2) A plateau (ratio < PLATEAU) in every stored deep ResNet and none in ResNet18: holds; no
    deep ResNet with a plateau: does not hold; otherwise inconclusive."""
    ratios = {m: plateau_ratio(c) for m, c in r.cdnv.items()}
    flat = {m: bool(q < PLATEAU) for m, q in ratios.items()}
    statistic = (f"middle-third slope / slope from first to last block (a plateau below {PLATEAU}): "
                 + "; ".join(f"{m} n/a (CDNV does not fall)" if np.isnan(q) else f"{m} {q:.2f}"
                             for m, q in ratios.items()))
    deep = [flat[m] for m in DEEP_RESNETS if m in flat]
    verdict = ("holds" if all(deep) and not flat.get("resnet18", False)
               else "does not hold" if not any(deep) else "inconclusive")
    return statistic, verdict


def slower_with_depth(r: Runs) -> tuple[str, str]:
    """(2) The slope from the first to the last block strictly falls with depth: holds; falls in rank
    (Spearman's rho with depth order < 0) but not strictly: inconclusive; otherwise does not hold."""
    slopes = {m: slope(c, 0, len(c) - 1) for m, c in r.cdnv.items()}
    rho = spearman(range(len(slopes)), list(slopes.values()))
    statistic = ("slope from first to last block (decades/block), shallow to deep: "
                 + "; ".join(f"{m} {s:.3f}" for m, s in slopes.items()) + f" (Spearman's rho with depth {rho:.2f})")
    verdict = "holds" if np.all(np.diff(list(slopes.values())) < 0) else "inconclusive" if rho < 0 else "does not hold"
    return statistic, verdict


def little_spread(values: dict[str, float], n_test: int) -> tuple[str, str]:
    """(2) Accuracies within LITTLE of each other: holds; spread above two standard errors of a
    difference of two accuracies on ``n_test`` images: does not hold; otherwise inconclusive."""
    spread = max(values.values()) - min(values.values())
    mean = float(np.mean(list(values.values())))
    noise = 2 * np.sqrt(2 * mean * (1 - mean) / n_test)
    statistic = (", ".join(f"{m} {a:.3f}" for m, a in values.items())
                 + f": spread {100 * spread:.1f} points (little: at most {100 * LITTLE:.0f}; two standard errors"
                   f" of a difference on {n_test} test images: {100 * noise:.1f})")
    return statistic, "holds" if spread <= LITTLE else "does not hold" if spread > noise else "inconclusive"


def deep_test_accuracy(r: Runs) -> tuple[str, str]:
    return little_spread(r.summaries.test_acc.to_dict(), int(r.summaries.num_test.iloc[0]))


def deep_probe_accuracy(r: Runs) -> tuple[str, str]:
    last = {m: float(p.iloc[-1]) for m, p in r.probe.items()}
    return little_spread(last, int(r.summaries.num_test.iloc[0]))


def _range(stats: dict[str, float]) -> str:
    if not stats:
        return "none stored"
    v = np.array(list(stats.values()))
    return f"{v.min():.3g}-{v.max():.3g} (median {np.median(v):.3g})"


def resnets_below_swins(per_model: dict[str, pd.Series], measure: str, mean: Callable) -> tuple[str, str]:
    """(3) ResNets below Swins in ``mean`` over the blocks and at the last block. Every ResNet below
    every Swin in both: holds; the ResNets' median below the Swins' in neither: does not hold;
    otherwise inconclusive."""
    stats = {"mean over blocks": {m: mean(c) for m, c in per_model.items()},
             "last block": {m: float(c.iloc[-1]) for m, c in per_model.items()}}
    parts, every, median = [], [], []
    for name, values in stats.items():
        res = {m: v for m, v in values.items() if m in RESNETS}
        swin = {m: v for m, v in values.items() if m in SWINS}
        parts.append(f"{name}: ResNets {_range(res)}, Swins {_range(swin)}")
        if res and swin:
            every.append(max(res.values()) < min(swin.values()))
            median.append(np.median(list(res.values())) < np.median(list(swin.values())))
    statistic = f"{measure} per model, min-max (median): " + "; ".join(parts)
    return statistic, "holds" if all(every) else "does not hold" if not any(median) else "inconclusive"


def geometric_mean(c: pd.Series) -> float:
    return float(10 ** np.log10(c.to_numpy(float)).mean())


def compress(r: Runs) -> tuple[str, str]:
    return resnets_below_swins(r.cdnv, "CDNV (geometric mean)", geometric_mean)


def separate(r: Runs) -> tuple[str, str]:
    return resnets_below_swins(r.nc2, "NC2 (arithmetic mean)", lambda c: float(c.mean()))


def probe_follows_cdnv(r: Runs) -> tuple[str, str]:
    """Figure 7: Spearman's rho between CDNV and probe accuracy over each model's blocks below 0."""
    rhos = {}
    for m, c in r.cdnv.items():
        joined = pd.concat([c, r.probe[m]], axis=1, join="inner")
        rhos[m] = spearman(joined.iloc[:, 0], joined.iloc[:, 1])
    statistic = ("Spearman's rho(CDNV, probe test accuracy) over blocks: "
                 + "; ".join(f"{m} {q:.2f}" for m, q in rhos.items()))
    return statistic, consensus(q < 0 for q in rhos.values())


def terminal(r: Runs) -> tuple[str, str]:
    """Every run fits its training set (train accuracy >= TERMINAL)."""
    below = r.summaries[r.summaries.train_acc < TERMINAL]
    statistic = f"{len(r.summaries) - len(below)} of {len(r.summaries)} runs have train accuracy >= {TERMINAL:.0%}"
    if len(below):
        statistic += "; below: " + ", ".join(f"{m} {a:.4f}" for m, a in below.train_acc.items())
    return statistic, "holds" if below.empty else "does not hold"


def _row(claim: str, figure: str, runs: Runs, needed: list[str], judge: Callable[[Runs], tuple[str, str]],
         why: str = "") -> dict:
    """The claim judged on the runs of ``needed`` once all are stored (:func:`judged`)."""
    return judged(claim, figure, needed, runs.cdnv, lambda: judge(runs.only(needed)), why)


def study_models(found) -> dict[str, list[str]]:
    """Per dataset, the models of the study (stored or missing), ResNets then Swins, shallow to deep."""
    pairs = {(c.dataset, c.model) for c in found.configs}
    order = list(RESNETS + SWINS)
    models = sorted({m for _, m in pairs}, key=lambda m: (order.index(m) if m in order else len(order), m))
    return {d: [m for m in models if (d, m) in pairs] for d in sorted({d for d, _ in pairs})}


def accuracy_table(found) -> pd.DataFrame:
    """Every run's accuracies and whether it reached the terminal phase."""
    return frames.run_table(found.summaries)


def dataset_claims(name: str, models: list[str], runs: Runs) -> list[dict]:
    """The claims on one dataset whose study has ``models``."""
    rows = []
    resnets = [m for m in models if m in RESNETS]
    swins = [m for m in models if m in SWINS]
    deep = [m for m in resnets if m in DEEP_RESNETS]
    fewer = "the study has fewer than two of these models at this scale"
    for family, members, figure in (("ResNets", resnets, RESNET_FIGURE), ("Swin Transformers", swins, SWIN_FIGURE)):
        if not members:  # the study has no model of this family at this scale
            continue
        rows.append(_row(f"(1) {family} on {name}: CDNV and NC2 are lower at the last block than at the first",
                         figure, runs, members, improve))
        rows.append(_row(f"(1) {family} on {name}: CDNV falls faster (decades per block) over the last third of"
                         " the blocks than before it", figure, runs, members, faster_last))
        if family == "ResNets":
            rows.append(_row(f"(2) ResNets on {name}: ResNet50/101/152 have a plateau in the middle blocks, ResNet18"
                             " has none", figure, runs, [m for m in resnets if m in ("resnet18",) + DEEP_RESNETS],
                             plateau, "" if deep else "the study has no ResNet50/101/152 at this scale"))
        rows.append(_row(f"(2) {family} on {name}: the deeper the model, the less each block lowers CDNV",
                         figure, runs, members, slower_with_depth, "" if len(members) >= 2 else fewer))
    for what, figure, judge in (("test accuracy", ACCURACY, deep_test_accuracy),
                                ("last-block probe test accuracy", RESNET_FIGURE, deep_probe_accuracy)):
        rows.append(_row(f"(2) ResNets on {name}: ResNet50/101/152 differ by at most one point in {what}",
                         figure, runs, deep, judge, "" if len(deep) >= 2 else fewer))
    for what, judge in (("compress more (lower CDNV)", compress), ("separate classes more (lower NC2)", separate)):
        rows.append(_row(f"(3) ResNets vs Swin Transformers on {name}: ResNet blocks {what}", SWIN_FIGURE, runs,
                         models, judge, "" if resnets and swins else "the study lacks ResNets or Swins at this scale"))
    rows.append(_row(f"(2, Fig. 7) every model on {name}: across its blocks, lower CDNV goes with higher probe"
                     " accuracy", PROBE_VS_CDNV, runs, models, probe_follows_cdnv))
    rows.append(_row(f"every model on {name}: its run reached the terminal phase (train accuracy >= 99%)",
                     ACCURACY, runs, models, terminal))
    return rows


def claims(found) -> pd.DataFrame:
    """The section 4.1 claims on every dataset of the study, judged from the stored runs of ``found``
    (a :class:`ncutils.runs.StudyResults`)."""
    cdnv, nc2, probe = (curves(found.metrics, m) for m in ("cdnv_sum", "nc2", "probe_test_acc"))
    rows = []
    for dataset, models in study_models(found).items():
        per_model = [{m: d[dataset, m] for m in models if (dataset, m) in d} for d in (cdnv, nc2, probe)]
        summaries = found.summaries[found.summaries.dataset == dataset].set_index("model")
        rows += dataset_claims(DATASETS.get(dataset, dataset), models, Runs(*per_model, summaries))
    return table(rows)
