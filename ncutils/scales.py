"""The three scales of every experiment. A scale sets sizes and budgets, never the method.

- ``smoke``: seconds per run, for the tests and a smoke build of the book.
- ``cpu``: the book's published results on a 2-core machine: narrower models, class-balanced
  subsets, enough SGD steps to reach the terminal phase (training accuracy >= 99%).
- ``paper``: appendix A.1 exactly: full width, full data, 200 epochs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .models import model_overrides


@dataclass(frozen=True)
class Scale:
    name: str
    n_per_class: int | None
    """training images per class (class-balanced, seeded); None = the whole training set"""
    eval_n_per_class: int | None
    """test images per class measured; None = the whole test set"""
    epochs: int
    """training epochs"""
    sizes: dict = field(default_factory=dict)
    """{model-name prefix: size overrides}; the longest matching prefix wins"""

    def model_size(self, model_name: str) -> dict:
        """Size overrides of ``model_name`` at this scale (empty = paper size)."""
        prefixes = [p for p in self.sizes if model_name.startswith(p)]
        size = dict(self.sizes[max(prefixes, key=len)]) if prefixes else {}
        valid = model_overrides(model_name)
        return {k: v for k, v in size.items() if k in valid}


SCALES = {
    "smoke": Scale("smoke", n_per_class=20, eval_n_per_class=20, epochs=2, sizes={
        "resnet": {"width": 4}, "vgg": {"width": 4}, "swin": {"embed_dim": 6},
        "vit": {"embed_dim": 12, "depth": 12}, "mlp": {"width": 32}}),
    # 250 images per class and 150 epochs is about 2,900 SGD steps of batch 128: measured on this
    # kind of machine, enough for a width-16 ResNet18 to fit its training set (about 8 minutes).
    "cpu": Scale("cpu", n_per_class=250, eval_n_per_class=200, epochs=150, sizes={
        "resnet": {"width": 16}, "resnet101": {"width": 8}, "resnet152": {"width": 8},
        "vgg": {"width": 16}, "swin": {"embed_dim": 24}, "vit_tiny": {"embed_dim": 48}, "vit_small": {"embed_dim": 96},
        "vit_base": {"embed_dim": 192}, "mlp": {"width": 512}}),
    "paper": Scale("paper", n_per_class=None, eval_n_per_class=None, epochs=200),
}


def get_scale(name: str) -> Scale:
    if name not in SCALES:
        raise ValueError(f"unknown scale {name!r}; valid: {', '.join(SCALES)}")
    return SCALES[name]
