"""Appendices B and C (Figures 13, 14): the claims of the ``vgg_vit`` chapter, judged from the ``vgg_vit`` study.

VGG13/16/19 and ViT small/base on CIFAR-10, one run each. CDNV is ``cdnv_sum`` (eq. 4, summed over
ordered class pairs), NC2 is eq. 5, at every layer tap in order (the classifier's input left out). The
appendices do not say on which split or with which features their figures measure collapse, so every
CDNV and NC2 claim is judged in each of :data:`VIEWS` (train/test split x flat/pooled features), named
in the claim, as in the ``clean`` chapter.

Every verdict is :mod:`ncutils.verdict`'s: per model, the statistic with its standard error (the
delete-a-group jackknife over images of the one run's curves, :func:`ncutils.estimates.curve_estimate`;
the binomial error of an accuracy; the spread over seeds should a model have several) against the
claim's threshold, stated in its statistic; a claim about several models, pairs or curves holds when
each does and does not hold when one does not (:func:`ncutils.verdict.all_of`). Each claim quotes the
sentence it tests (:data:`QUOTES`).

*Geometric decay* is judged by the least-squares line through log10 of the value against the layer
number: its slope (decades per layer) must be below 0 and its R^2 above :data:`R2_GEOMETRIC`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import frames
from ..estimates import Run, curve_estimate, stored_runs
from ..frames import TERMINAL
from ..verdict import Estimate, binomial, over_seeds
from . import figure_link, judged, not_computed, table
from .clean import Judged, view_name

STUDY = "vgg_vit"
CHAPTER = "vgg_vit"
VGGS = ("vgg13", "vgg16", "vgg19")
VITS = ("vit_small", "vit_base")
VGG_FIGURE = figure_link(CHAPTER, "vgg-figure")
VIT_FIGURE = figure_link(CHAPTER, "vit-figure")
TABLE = figure_link(CHAPTER, "vgg-vit-accuracy")
VIEWS = frames.VIEWS
R2_GEOMETRIC = 0.9  # R^2 of the log-linear fit above which a decay counts as (near) geometric
QUOTES = {
    "vgg_geometric": "The results reveal an almost geometric decay rate of CDNV on both the CIFAR10 and ImageNet "
                     "datasets",
    "vgg_depth": "the decay rate decreases as model depth increases",
    "vit_terminal": "the last-layer training accuracy of ViT-small and ViT-base fails to reach the neural collapse "
                    "regime on the small CIFAR10 dataset",
    "vit_geometric": "both the CDNV and $NC_2$ metrics exhibit a continuous, geometric-rate decreasing trend",
    "vit_weaker": "the weaker intermediate compression and separation observed in ViT models on the CIFAR10 dataset",
    "imagenet": "as the dataset size increases to ImageNet, ViT models demonstrate improved intermediate compression "
                "and separation",
}
CURVES = {"CDNV": lambda cdnv, nc2: cdnv, "NC2": lambda cdnv, nc2: nc2}


def log_linear_line(values) -> tuple[float, float]:
    """Slope (decades per layer) and intercept of the least-squares line through log10(values) vs 1, 2, ..."""
    y = np.log10(np.asarray(values, float))
    slope, intercept = np.polyfit(np.arange(1, len(y) + 1, dtype=float), y, 1)
    return float(slope), float(intercept)


def log_linear_fit(values) -> tuple[float, float]:
    """Slope (decades per layer) and R^2 of the line of :func:`log_linear_line`."""
    y = np.log10(np.asarray(values, float))
    x = np.arange(1, len(y) + 1, dtype=float)
    slope, intercept = log_linear_line(values)
    residual = y - (slope * x + intercept)
    total = ((y - y.mean()) ** 2).sum()
    return float(slope), float(1 - (residual ** 2).sum() / total) if total > 0 else float("nan")


def plateau_r2(n: int) -> float:
    """R^2 of the same fit to a curve of ``n`` layers that is flat over its first n - n//3 and falls
    linearly (in log) over its last n//3: the plateau shape of section 4.1, for contrast."""
    k = max(1, n // 3)
    x = np.arange(1, n + 1)
    return log_linear_fit(10.0 ** -np.clip(x - (n - k), 0, None))[1]


def accuracy_table(found) -> pd.DataFrame:
    """Every run's accuracies, recipe and epochs, and whether it reached the terminal phase."""
    return frames.run_table(found.summaries, ("model", "size", "seed", "recipe", "epochs", "n_per_class",
                                               "train_acc", "test_acc"))


def geometric(models: dict[str, list[Run]], view, measures=("CDNV",)):
    """Per model and measure: the log-linear fit's slope below 0 and its R^2 above :data:`R2_GEOMETRIC`."""
    j = Judged()
    for model, runs in models.items():
        for measure in measures:
            pick = CURVES[measure]
            layers = len(pick(runs[0].cdnv[view], runs[0].nc2[view]))
            j.add(f"{model} {measure} slope", curve_estimate(runs, view, lambda c, n: log_linear_fit(pick(c, n))[0]),
                  0, "below")
            j.add(f"R² (plateau shape: {plateau_r2(layers):.2f})",
                  curve_estimate(runs, view, lambda c, n: log_linear_fit(pick(c, n))[1]), R2_GEOMETRIC, "above")
    return j.result(f"slope of the least-squares line through log10 {' and '.join(measures)} over the layers, "
                    f"decades/layer (< 0), and its R² (> {R2_GEOMETRIC}; for contrast, the R² of a curve with as "
                    "many layers, flat over two thirds, then falling)")


def vgg_geometric(models, view):
    return geometric(models, view)


def vit_geometric(models, view):
    return geometric(models, view, ("CDNV", "NC2"))


def vgg_rate_vs_depth(models, view):
    """Each VGG's CDNV decay rate (minus the fit's slope) minus that of the next deeper VGG, above 0."""
    rates = {m: curve_estimate(runs, view, lambda c, n: -log_linear_fit(c)[0]) for m, runs in models.items()}
    j, names = Judged(), [m for m in VGGS if m in rates]
    for shallow, deep in zip(names, names[1:]):
        j.add(f"{shallow} - {deep}", rates[shallow] - rates[deep], 0, "above")
    return j.result("CDNV decay rate (minus the slope of the log-linear fit, decades/layer), each VGG minus the "
                    "next deeper one (> 0)")


def vit_weaker(models, view):
    """Per measure, the mean over layers of log10 CDNV (of log10 NC2) of each ViT minus each VGG, above 0."""
    j = Judged()
    for measure, pick in CURVES.items():
        level = {m: curve_estimate(runs, view, lambda c, n: float(np.log10(pick(c, n).to_numpy(float)).mean()))
                 for m, runs in models.items()}
        for vit in (m for m in VITS if m in level):
            for vgg in (m for m in VGGS if m in level):
                j.add(f"{measure} {vit} - {vgg}", level[vit] - level[vgg], 0, "above")
    return j.result("mean over the layers of log10 CDNV and of log10 NC2 (higher: weaker compression and "
                    "separation), each ViT minus each VGG (> 0)")


def train_accuracies(summaries: pd.DataFrame) -> dict[str, Estimate]:
    """Per model, its training accuracy: over its seeds, else the binomial error on its training images."""
    out = {}
    for model, runs in summaries.groupby("model", sort=False):
        out[model] = (over_seeds(runs.train_acc) if len(runs) >= 2
                      else binomial(float(runs.train_acc.iloc[0]), int(runs.num_train.iloc[0])))
    return out


def vit_not_terminal(accuracies: dict[str, Estimate]):
    j = Judged()
    for model, estimate in accuracies.items():
        j.add(model, estimate, TERMINAL, "below")
    return j.result(f"training accuracy (the terminal phase: >= {TERMINAL}; the claim: < {TERMINAL})")


def claim_text(label: str, quote: str) -> str:
    return f'{label}: "{QUOTES[quote]}"'


def claims(found) -> pd.DataFrame:
    """Appendices B and C's claims on CIFAR-10, judged from every stored run of the study in ``found`` (a
    :class:`ncutils.results.StudyResults`); a claim is not computed while a run it reads is not stored."""
    runs = stored_runs(found, VIEWS) if not found.summaries.empty else {}
    stored = {m: r for (dataset, m), r in runs.items() if dataset == "cifar10"}
    study = {c.model for c in found.configs}
    vggs, vits = [m for m in VGGS if m in study], [m for m in VITS if m in study]

    def row(claim, figure, needed, judge, view=None):
        return judged(claim, figure, needed, stored, lambda: judge({m: stored[m] for m in needed if m in stored}, view),
                      "" if needed else "the study has none of these models at this scale")

    rows = []
    for view in VIEWS:
        seen = f"CIFAR-10, {view_name(view)}"
        rows.append(row(claim_text(f"(B) VGG13/16/19 on {seen}: CDNV decays at an almost geometric rate over the "
                                   "layers", "vgg_geometric"), VGG_FIGURE, vggs, vgg_geometric, view))
        rows.append(row(claim_text(f"(B) VGG13/16/19 on {seen}: the deeper the VGG, the slower CDNV decays per "
                                   "layer", "vgg_depth"), VGG_FIGURE, vggs, vgg_rate_vs_depth, view))
        rows.append(row(claim_text(f"(C) ViT small/base on {seen}: CDNV and NC2 both decay at a continuous, "
                                   "geometric rate", "vit_geometric"), VIT_FIGURE, vits, vit_geometric, view))
        rows.append(row(claim_text(f"(C) ViT small/base vs VGG13/16/19 on {seen}: ViT layers compress and separate "
                                   "less (higher CDNV and NC2)", "vit_weaker"), VIT_FIGURE, vits + vggs, vit_weaker,
                        view))
    accuracies = train_accuracies(found.summaries) if not found.summaries.empty else {}
    rows.append(judged(claim_text("(C) ViT small/base on CIFAR-10: they do not reach the terminal phase (training "
                                  f"accuracy below {TERMINAL:.0%})", "vit_terminal"), TABLE, vits, accuracies,
                       lambda: vit_not_terminal({m: accuracies[m] for m in vits if m in accuracies}),
                       "" if vits else "the study has no ViT at this scale"))
    rows.append(not_computed(claim_text("(B, C) the ImageNet-1k panels of Figures 13 and 14 (VGG's geometric decay; "
                                        "ViT's stronger compression and separation)", "imagenet"), VIT_FIGURE,
                             "ImageNet-1k is not available on the machines computing this book"))
    return table(rows)
