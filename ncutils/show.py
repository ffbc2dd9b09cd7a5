"""Showing a figure on a book page: legible at the page's width, linked to its full-size image.

Every figure of the book goes through :func:`show`, which raises any text smaller than
:data:`MIN_TEXT_PT` to it, renders the PNG at :data:`DPI` (tight bounding box), writes the size of
its smallest text in pixels into the PNG (text chunk :data:`TEXT_PX_KEY`, which the browser test
reads to compute the size a reader sees) and displays it with its natural width as output metadata:
the book (myst-nb, then Sphinx) shows it scaled to the text column and linked to the full-size file.
A figure whose natural width is at most :data:`MAX_WIDTH_PX` keeps its smallest text at 9 pt
(12 CSS pixels) or more in the book's 676-pixel column, the width at a 1280-pixel window;
:func:`wrapped` titles and :func:`legend_below` keep figures within it.
"""
from __future__ import annotations

import io
import struct
import textwrap

import matplotlib.pyplot as plt
from matplotlib.text import Text

DPI = 100  # pixels per inch of the PNG
MIN_TEXT_PT = 11.0  # no text of a figure is smaller (15.3 px at DPI)
READABLE_PX = 12.0  # 9 pt on a screen (96 CSS pixels per inch)
COLUMN_PX = 676  # the width of a figure in the book's text column at a 1280-pixel window
MAX_WIDTH_PX = int(COLUMN_PX * MIN_TEXT_PT * DPI / 72 / READABLE_PX)  # 860 px: wider ones shrink text below 9 pt
TEXT_PX_KEY = "ncutils:smallest-text-px"


def texts(fig: plt.Figure) -> list[Text]:
    """The visible, non-empty texts of ``fig`` (titles, labels, tick labels, legends, annotations)."""
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def enlarge_small_text(fig: plt.Figure, minimum: float = MIN_TEXT_PT) -> float:
    """Raise every text of ``fig`` under ``minimum`` points to it; return the smallest size in points."""
    for t in texts(fig):
        if t.get_fontsize() < minimum:
            t.set_fontsize(minimum)
    return min((t.get_fontsize() for t in texts(fig)), default=minimum)


def png(fig: plt.Figure) -> bytes:
    """``fig`` as a PNG at :data:`DPI` with a tight box, its smallest text (pixels) in :data:`TEXT_PX_KEY`."""
    smallest = enlarge_small_text(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight",
                metadata={TEXT_PX_KEY: f"{smallest * DPI / 72:.2f}"})
    return buffer.getvalue()


def png_width(data: bytes) -> int:
    """The width in pixels of a PNG (its IHDR chunk)."""
    return struct.unpack(">I", data[16:20])[0]


def wrapped(title: str, width: int = 70) -> str:
    """A title in lines that fit a figure at page width."""
    return "\n".join(textwrap.wrap(title, width))


def legend_below(fig: plt.Figure, ax) -> None:
    """Move ``ax``'s legend under the figure, in columns (a legend at the side would widen the figure)."""
    handles, labels = ax.get_legend_handles_labels()
    title = ax.get_legend().get_title().get_text()
    ax.get_legend().remove()
    fig.legend(handles, labels, title=title or None, loc="upper center", bbox_to_anchor=(0.5, 0),
               ncol=min(3, len(labels)), frameon=False)


def in_notebook() -> bool:
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def show(fig: plt.Figure | None = None) -> None:
    """Show ``fig`` (default: the current figure) in a notebook as described above, then close it;
    elsewhere (a script, the tests) ``plt.show()``."""
    fig = fig or plt.gcf()
    if not in_notebook():
        enlarge_small_text(fig)
        plt.show()
        plt.close(fig)
        return
    from IPython.display import Image, display

    data = png(fig)
    plt.close(fig)
    display(Image(data=data, format="png", width=png_width(data)))
