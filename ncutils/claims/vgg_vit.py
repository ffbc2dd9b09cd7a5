"""Appendices B and C (Figures 13, 14): VGG13/16/19 and ViT small/base on CIFAR-10, layer by layer.

CDNV (eq. 4) and NC2 (eq. 5) on the training set, flat features. "Geometric decay" is judged by a
least-squares line through log10(value) against the layer number: its slope (decades per layer)
and R^2.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import frames
from . import figure_link, not_computed, table

STUDY = "vgg_vit"
VGGS = ("vgg13", "vgg16", "vgg19")
VITS = ("vit_small", "vit_base")
VGG_FIGURE = figure_link("vgg_vit", "vgg-figure")
VIT_FIGURE = figure_link("vgg_vit", "vit-figure")
TABLE = figure_link("vgg_vit", "vgg-vit-accuracy")
R2_GEOMETRIC = 0.9  # R^2 of the log-linear fit at or above which a decay counts as (near) geometric


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


def curves(metrics: pd.DataFrame, models, measure: str = "cdnv_sum") -> dict[str, np.ndarray]:
    """{model: values of ``measure`` per layer tap, in order} for the stored ``models``."""
    if metrics.empty:
        return {}
    rows = frames.layer_rows(metrics[metrics.model.isin(models)], measure)
    return {m: rows[rows.model == m].sort_values("layer number").value.to_numpy()
            for m in models if (rows.model == m).any()}


def accuracy_table(found) -> pd.DataFrame:
    """Every run's accuracies, recipe and whether it reached the terminal phase."""
    return frames.run_table(found.summaries, ("model", "size", "recipe", "n_per_class", "train_acc", "test_acc"))


def _all_or_most(flags) -> str:
    """holds when every case agrees, does not hold when fewer than half do, inconclusive in between."""
    flags = list(flags)
    return "holds" if all(flags) else ("does not hold" if sum(flags) < len(flags) / 2 else "inconclusive")


def _geometric(found: dict[str, np.ndarray], label: str) -> tuple[list[str], list[bool]]:
    parts, flags = [], []
    for model, values in found.items():
        slope, r2 = log_linear_fit(values)
        parts.append(f"{model}{label}: {slope:+.2g} decades/layer, R^2 {r2:.2f} "
                     f"(plateau shape {plateau_r2(len(values)):.2f})")
        flags.append(slope < 0 and r2 >= R2_GEOMETRIC)
    return parts, flags


def vgg_geometric(metrics: pd.DataFrame) -> dict:
    """VGG's CDNV decays at a near-geometric rate through the layers."""
    claim = "VGG13/16/19: CDNV decays at an almost geometric rate across layers (App. B)"
    found = curves(metrics, VGGS)
    if not found:
        return not_computed(claim, VGG_FIGURE)
    parts, flags = _geometric(found, "")
    return {"claim": claim, "statistic": "; ".join(parts) + f"; holds at slope < 0 and R^2 >= {R2_GEOMETRIC}",
            "verdict": _all_or_most(flags), "figure": VGG_FIGURE}


def vgg_rate_vs_depth(metrics: pd.DataFrame) -> dict:
    """The per-layer decay rate of VGG's CDNV is smaller in deeper VGGs."""
    claim = "VGG: the per-layer decay rate of CDNV decreases as depth grows (VGG13 > VGG16 > VGG19)"
    found = curves(metrics, VGGS)
    if len(found) < 2:
        return not_computed(claim, VGG_FIGURE, "needs at least two stored VGG runs")
    rates = {m: -log_linear_fit(v)[0] for m, v in found.items()}
    order = list(rates)  # VGGS order: shallow to deep
    return {"claim": claim,
            "statistic": "decay rate (decades/layer): " + ", ".join(f"{m} {r:.2g}" for m, r in rates.items()),
            "verdict": _all_or_most(rates[a] > rates[b] for a, b in zip(order, order[1:])), "figure": VGG_FIGURE}


def vit_not_terminal(summaries: pd.DataFrame) -> dict:
    """ViT small/base do not fit CIFAR-10's training set (no terminal phase)."""
    claim = "ViT small/base do not reach the terminal phase on CIFAR-10 (train accuracy < 99%) (App. C)"
    vits = summaries[summaries.model.isin(VITS)] if not summaries.empty else summaries
    if vits.empty:
        return not_computed(claim, TABLE)
    return {"claim": claim,
            "statistic": ", ".join(f"{m}: train {a:.3f}" for m, a in zip(vits.model, vits.train_acc)),
            "verdict": _all_or_most(vits.train_acc < frames.TERMINAL), "figure": TABLE}


def vit_geometric(metrics: pd.DataFrame) -> dict:
    """ViT's CDNV and NC2 both fall at a continuous, geometric rate."""
    claim = "ViT small/base: CDNV and NC2 both decrease at a continuous, geometric rate (App. C)"
    cdnv, nc2 = curves(metrics, VITS), curves(metrics, VITS, "nc2")
    if not cdnv:
        return not_computed(claim, VIT_FIGURE)
    parts, flags = _geometric(cdnv, " CDNV")
    more, more_flags = _geometric(nc2, " NC2")
    return {"claim": claim, "statistic": "; ".join(parts + more) + f"; holds at slope < 0 and R^2 >= {R2_GEOMETRIC}",
            "verdict": _all_or_most(flags + more_flags), "figure": VIT_FIGURE}


def vit_weaker(metrics: pd.DataFrame) -> dict:
    """On CIFAR-10, ViT layers compress and separate less than the CNNs' (here the VGGs)."""
    claim = "on CIFAR-10 ViT layers compress and separate less than CNN layers (here: VGG) (App. C)"
    means = {}
    for measure, label in (("cdnv_sum", "CDNV"), ("nc2", "NC2")):
        for family, models in (("ViT", VITS), ("VGG", VGGS)):
            means[label, family] = {m: 10 ** np.log10(v).mean() for m, v in curves(metrics, models, measure).items()}
    if not means["CDNV", "ViT"] or not means["CDNV", "VGG"]:
        return not_computed(claim, VIT_FIGURE, "needs stored ViT and VGG runs")
    flags = [vit > vgg for label in ("CDNV", "NC2")
             for vit in means[label, "ViT"].values() for vgg in means[label, "VGG"].values()]
    text = "; ".join(f"{label}: " + ", ".join(f"{m} {v:.3g}" for family in ("ViT", "VGG")
                                              for m, v in means[label, family].items())
                     for label in ("CDNV", "NC2"))
    return {"claim": claim,
            "statistic": f"geometric mean over layers, {text}; ViT above VGG in {sum(flags)} of {len(flags)} pairs",
            "verdict": _all_or_most(flags), "figure": VIT_FIGURE}


def claims(found) -> pd.DataFrame:
    """Appendices B and C's claims on CIFAR-10, judged from the stored VGG and ViT runs; a claim is
    not computed while a run it reads is not stored."""
    metrics = found.metrics
    judged = [(vgg_geometric(metrics), VGGS), (vgg_rate_vs_depth(metrics), VGGS),
              (vit_not_terminal(found.summaries), VITS), (vit_geometric(metrics), VITS),
              (vit_weaker(metrics), VITS + VGGS)]
    missing = {c.model: status for c, status in found.missing}
    rows = []
    for row, needed in judged:
        absent = [f"{m} ({missing[m]})" for m in needed if m in missing]
        why = "not stored yet: " + ", ".join(absent)
        rows.append(not_computed(row["claim"], row["figure"], why) if absent else row)
    rows.append(not_computed("the ImageNet-1k panels of Figures 13 and 14 (VGG's geometric decay; ViT's stronger "
                             "intermediate compression and separation on ImageNet)", VIT_FIGURE,
                             "ImageNet-1k is not available on the machines computing this book"))
    return table(rows)
