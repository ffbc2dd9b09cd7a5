"""Figures of the data-scale chapter: the layer-wise curves of each rung of data side by side, and test
accuracy against the training images per class beside the paper's."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from . import palette
from .claims import data_scale, label_noise
from .frames import layer_rows
from .plots import CDNV, MEMORIZATION, NC2, PROBE, layer_figure
from .show import legend_below, show, wrapped

RUNG = palette.RUNG


def _panels(metrics: pd.DataFrame, noisy: bool) -> list[pd.DataFrame]:
    """CDNV and NC2 under the trained labels, the memorization ratio (noisy runs), the probe accuracy, per
    layer, each row tagged with its rung (computed rung by rung: a ratio pairs runs of one rung)."""
    measures = [lambda m: label_noise.trained_label_rows(m, "cdnv_sum"),
                lambda m: label_noise.trained_label_rows(m, "nc2"),
                *([label_noise.memorization_rows] if noisy else []), lambda m: layer_rows(m, "probe_test_acc")]
    by_rung = list(metrics.groupby("n_per_class", dropna=False, sort=True))
    name = {n: data_scale.rung_name(None if pd.isna(n) else int(n)) for n, _ in by_rung}  # NaN: every image
    return [pd.concat([rows(m).assign(**{RUNG: name[n]}) for n, m in by_rung], ignore_index=True) for rows in measures]


def rung_figures(metrics: pd.DataFrame, rungs, note: str) -> None:
    """Per model and label noise: CDNV, NC2 (and the memorization ratio under noise) and the probe accuracy
    per layer, one line per rung of ``rungs`` (training images per class), light to dark as the data grow."""
    order = [data_scale.rung_name(n) for n in rungs]
    for (model, noise), runs in metrics.groupby(["model", "noise"], sort=False):
        noisy = noise != "clean"
        rows = [CDNV, NC2, *([MEMORIZATION] if noisy else []), PROBE]
        panels = _panels(runs, noisy)
        fig = layer_figure(panels, rows, hue=RUNG, hue_order=[r for r in order if r in set(panels[0][RUNG])],
                           title=f"{model}, {'clean labels' if not noisy else noise}, by training images per class "
                                 f"({note})")
        if noisy:
            fig.axes[2].axhline(1.0, color="grey", linestyle="--", linewidth=1)
        show()


def accuracy_figure(summaries: pd.DataFrame, note: str) -> None:
    """Test accuracy against training images per class (log axis), one line per model and label noise; a star
    where the paper states a model's accuracy on the whole training set (5,000 images per class)."""
    if summaries.empty:
        print(f"no stored runs yet ({note})")
        return
    runs = summaries.assign(setting=summaries.model + ", " + summaries.noise,
                            images=summaries.n_per_class.fillna(data_scale.ALL_IMAGES))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sns.lineplot(runs, x="images", y="test_acc", hue="setting", style="setting", marker="o", errorbar=("se", 2), ax=ax)
    for (model, noise), accuracy in data_scale.PAPER_TEST_ACC.items():
        ax.plot([data_scale.ALL_IMAGES], [accuracy], "*", markersize=14, color="black",
                label=f"paper: {model}, {noise}, all images")
    ax.set_xscale("log")
    ax.set(xlabel="training images per class", ylabel="test accuracy", ylim=(0, 1),
           title=wrapped(f"Test accuracy by training images per class ({note})", 60))
    ax.grid(alpha=0.3)
    ax.legend()
    legend_below(fig, ax)
    show()
