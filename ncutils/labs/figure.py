"""The labs' figure: values per layer tap, one panel per measure, one line per model or split, shown by :func:`ncutils.show.show`.

    labs.per_tap({"CDNV": cdnv, "NC1": nc1}, title="ResNet18")        # a Series per panel: one line
    labs.per_tap({"ratio": pd.DataFrame({"noisy": r1, "clean": r2})}, line=1.0)
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ..show import DPI, MAX_WIDTH_PX, legend_below, show, wrapped

MAX_WIDTH_IN = MAX_WIDTH_PX / DPI * 0.95  # within the book's column, with room for the tight box's margins


def per_tap(panels: dict[str, pd.Series | pd.DataFrame], *, title: str = "", log: bool = True,
            line: float | None = None) -> None:
    """Draw and show one panel per entry of ``panels`` (its name on the y axis): a Series (values indexed by
    tap) is one line, a DataFrame one line per column (legend below); taps along x in their order; ``log``: a
    log y axis; ``line``: a dashed horizontal line at that value (e.g. 1 for the memorization ratio)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(min(2.9 * len(panels) + 1.2, MAX_WIDTH_IN), 3.4), squeeze=False)
    for ax, (name, values) in zip(axes[0], panels.items()):
        frame = values.to_frame(name) if isinstance(values, pd.Series) else values
        for column in frame.columns:
            ax.plot(range(len(frame)), frame[column].to_numpy(dtype=float), marker="o", label=str(column))
        ax.set_xticks(range(len(frame)), [str(t) for t in frame.index], rotation=60, ha="right")
        ax.set(ylabel=name, xlabel="layer tap")
        if log:
            ax.set_yscale("log")
        if line is not None:
            ax.axhline(line, color="grey", linestyle="--", linewidth=1)
        ax.grid(alpha=0.3)
    fig.suptitle(wrapped(title))
    fig.tight_layout()
    multi = [ax for ax, values in zip(axes[0], panels.values()) if isinstance(values, pd.DataFrame)]
    if multi:
        multi[0].legend()
        legend_below(fig, multi[0])
    show(fig)
