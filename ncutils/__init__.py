"""ncutils: layer-wise neural collapse, after Zhou, Jiang, Zhu, "Are all layers created equal: A neural
collapse perspective" (CPAL 2025). Data, models with layer taps, training, and exact streaming metrics.
"""
from .data import load_dataset
from .models import build_model, classifier, forward_with_taps, layer_taps
from .profiling import measure
from .taps import taps_of

__version__ = "0.1.0"
__all__ = ["build_model", "layer_taps", "forward_with_taps", "classifier", "load_dataset", "measure", "taps_of",
           "plot_layers"]


def __getattr__(name: str):
    """``ncutils.plot_layers``, imported on first use (matplotlib and seaborn are not needed to measure)."""
    if name == "plot_layers":
        from .plots import plot_layers
        return plot_layers
    raise AttributeError(f"module 'ncutils' has no attribute {name!r}")
