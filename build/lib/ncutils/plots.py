"""Figures in the paper's layout: layers on x, one line per model (or noise level), log scale for CDNV."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator


# (measure, axis label, log scale) of the paper's rows
CDNV = ("cdnv_sum", "CDNV (eq. 4, sum over pairs)", True)
NC2 = ("nc2", "NC2 (eq. 5)", False)
NC1 = ("nc1", "NC1 = Tr(Σ_W Σ_B⁺)/K", True)
PROBE = ("probe_test_acc", "linear-probe test accuracy", False)
MEMORIZATION = ("memorization_ratio", "memorization ratio (Def. 1)", True)


def layer_figure(frames: list[pd.DataFrame], rows: list[tuple[str, str, bool]], *, hue: str = "model",
                 title: str = "", hue_order=None) -> plt.Figure:
    """One panel per (frame, row): ``frames[i]`` holds the rows of measure ``rows[i][0]``."""
    fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows), 3.4), squeeze=False)
    legend_panel = max((i for i, f in enumerate(frames) if not f.empty), default=None)
    for i, (ax, frame, (_, label, log)) in enumerate(zip(axes[0], frames, rows)):
        ax.set(ylabel=label, xlabel="layer (block)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers are numbered, not measured
        if frame.empty:
            ax.text(0.5, 0.5, "no stored runs yet", ha="center", va="center", transform=ax.transAxes)
            continue
        sns.lineplot(data=frame, x="layer number", y="value", hue=hue, hue_order=hue_order, marker="o",
                     markersize=4, ax=ax, legend=i == legend_panel)
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    if legend_panel is not None:
        sns.move_legend(axes[0][legend_panel], "upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_layers(table: pd.DataFrame, *, title: str = "", hue: str = "model") -> plt.Figure:
    """The paper's per-layer panels of a :func:`ncutils.measure` or :func:`ncutils.results.results` table:
    CDNV, NC2, NC1 and (when probed) the linear-probe test accuracy, one line per ``hue`` value."""
    from .frames import layer_rows

    rows = [CDNV, NC2, NC1] + ([PROBE] if (table.measure == PROBE[0]).any() else [])
    return layer_figure([layer_rows(table, measure) for measure, _, _ in rows], rows, hue=hue, title=title)
