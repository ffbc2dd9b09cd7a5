"""The three scales of every experiment. A scale sets sizes and budgets, never the method.

- ``smoke``: seconds per run, for the tests and a smoke build of the book.
- ``cpu``: the book's published results on a 2-core machine: narrower models, class-balanced
  subsets, enough SGD steps to reach the terminal phase (training accuracy >= 99%).
- ``paper``: appendix A.1 exactly: full width, full data, 200 epochs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

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
    batch_size: int = 128
    """images per SGD step (the paper: 128)"""
    longer: dict = field(default_factory=dict)
    """{model-name prefix: epochs} for models that need more steps to fit their training set"""
    noisy_longer: int = 1
    """a run under label noise trains its model's epochs times this (memorizing wrong labels takes more steps)"""
    precision: str = "bf16"
    """training precision of every model (``RunConfig.precision``) but those of ``fp32``"""
    fp32: tuple = ()
    """model-name prefixes trained in fp32 whatever ``precision`` says (where fp32 is the faster)"""
    probe_method: str = "sgd"
    """the linear probe of every run (``RunConfig.probe_method``)"""
    jackknife: int = 0
    """jackknife groups of every run's CDNV and NC2 (``RunConfig.jackknife``); 0 = none"""

    def model_size(self, model_name: str) -> dict:
        """Size overrides of ``model_name`` at this scale (empty = paper size)."""
        size = dict(longest_prefix(self.sizes, model_name, {}))
        valid = model_overrides(model_name)
        return {k: v for k, v in size.items() if k in valid}

    def model_epochs(self, model_name: str, noise: str = "clean") -> int:
        """Training epochs of ``model_name`` at this scale, under label ``noise``."""
        return self.under_noise(longest_prefix(self.longer, model_name, self.epochs), noise)

    def under_noise(self, epochs: int, noise: str) -> int:
        """``epochs`` of a clean run, for a run under label ``noise`` (times :attr:`noisy_longer`)."""
        return epochs * (self.noisy_longer if noise != "clean" else 1)

    def model_precision(self, model_name: str) -> str:
        """Training precision of ``model_name`` at this scale (``RunConfig.precision``)."""
        return "fp32" if model_name.startswith(self.fp32) else self.precision

    def note(self, models: Iterable[str] | None = None) -> str:
        """The scale in a figure title, e.g. "cpu scale: 100 training images per class, 200 epochs", with
        the longer epochs of those of ``models`` that have them (default: of every model)."""
        models = None if models is None else set(models)
        longer = "".join(f", {p}: {e}" for p, e in self.longer.items()
                         if models is None or any(m.startswith(p) for m in models))
        return (f"{self.name} scale: {self.n_per_class or 'all'} training images per class, {self.epochs} epochs"
                + (f" ({longer[2:]})" if longer else "")
                + (f", x{self.noisy_longer} under label noise" if self.noisy_longer != 1 else ""))


def longest_prefix(table: dict, model_name: str, default):
    """The value of the longest key of ``table`` that ``model_name`` starts with, else ``default``."""
    prefixes = [p for p in table if model_name.startswith(p)]
    return table[max(prefixes, key=len)] if prefixes else default


SCALES = {
    # The smoke scale trains in fp32: on CPUs without native bf16 (AVX2 only, as the machines that run
    # the tests now are) bf16 autocast is emulated, and a smoke run trained 4-9x slower in bf16 (ResNet18
    # width 4: 18.6 s against 4.0 s; Swin-T embed 6: 51 s against 5.8 s, 1 thread).
    "smoke": Scale("smoke", n_per_class=20, eval_n_per_class=20, epochs=2, sizes={
        "resnet": {"width": 4}, "vgg": {"width": 4}, "swin": {"embed_dim": 6},
        "vit": {"embed_dim": 12, "depth": 12}, "mlp": {"width": 32}}, precision="fp32",
        probe_method="converged", jackknife=5),
    # 100 images per class for the paper's 200 epochs of batch 64 (3,000 SGD steps) fit every model
    # (training accuracy >= 99%; 250 per class for 150 epochs left ResNet50, Swin-T and VGG13 short, and
    # more steps on the same images did not close the gap). Swin-B* and Swin-L* (36 and 48 blocks) get
    # 300 epochs (Swin-B* reached 98.9% in 200); the VGGs get 600, one budget for the three depths
    # compared (VGG16 reached 93.6% in 200, VGG13 99.9%). ViT widths keep 8 dimensions per head.
    # Every model trains in fp32: the CPUs computing the book (AMD EPYC, AVX2) emulate bf16, which was
    # 4-9x slower. Speeds measured there (fp32, 1 thread, batch 64, images/s): ResNet18/34/50/101/152 at
    # width 8: 536/308/152/103/72 (at width 16: 172/98/61/39/-), so every ResNet is width 8: one width
    # for the five depths compared, at a third of the cost of width 16. VGG13/19 at width 16: 350/310 (at
    # width 32: 138/82; VGG19 for 600 epochs would take 2 hours). Swin-T/S/B* at embed 24: 155/96/71.
    # ViT-small/base at embed 48/96: 102/40. Probes are converged (ncutils.logistic) and CDNV and NC2
    # carry a 10-group jackknife. Runs under label noise train twice the epochs: in 200, ResNet18 fit
    # 0.986/0.987/0.994 of its random:0.4 labels (seeds 0-2) and 0.966 of random:0.8; in 400, seed 0 1.000.
    "cpu": Scale("cpu", n_per_class=100, eval_n_per_class=200, epochs=200, batch_size=64, sizes={
        "resnet": {"width": 8}, "vgg": {"width": 16}, "swin": {"embed_dim": 24},
        "vit_tiny": {"embed_dim": 24}, "vit_small": {"embed_dim": 48}, "vit_base": {"embed_dim": 96},
        "mlp": {"width": 512}}, longer={"swin_b": 300, "swin_l": 300, "vgg13": 600, "vgg16": 600, "vgg19": 600},
        noisy_longer=2, precision="fp32", probe_method="converged", jackknife=10),
    "paper": Scale("paper", n_per_class=None, eval_n_per_class=None, epochs=200, jackknife=10),
}


def get_scale(name: str) -> Scale:
    if name not in SCALES:
        raise ValueError(f"unknown scale {name!r}; valid: {', '.join(SCALES)}")
    return SCALES[name]
