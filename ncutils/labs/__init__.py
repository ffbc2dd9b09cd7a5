"""Teaching labs: where their notebooks live, their settings per scale, and the one face the notebooks import.

A lab is ``notebooks/labs/<name>.md`` (jupytext MyST), listed in ``book/_toc.yml`` as ``_labs/<name>`` and
executed by :mod:`ncutils.book` like a chapter (parameters ``scale`` and ``compute``) into
``book/_labs/<name>.ipynb``. Each states its learning objectives, then 2-4 exercises: a cell tagged
``solution`` (the answer) followed by a cell tagged ``self-check`` that prints "correct" or "not yet: ..."
(:func:`check`, against a value computed independently, :mod:`ncutils.labs.checks`). The students' copies
have every solution replaced by a stub (:mod:`ncutils.labs.student`); the trained weights the labs load are
small state dicts shipped in ``notebooks/labs/weights/`` (:mod:`ncutils.labs.weights`).

    python -m ncutils.labs student [OUT_DIR]   # the students' notebooks (default notebooks/labs/student/)
    python -m ncutils.labs weights             # re-export the shipped weights from the runs' checkpoints
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from ..chapter.parameters import ParameterError, boolean, integer, one_of, optional
from ..paths import PACKAGE_PARENT
from ..scales import SCALES
from .checks import (check, check_model, decades_fallen, reference_accuracy, reference_measures, reference_ratios,
                     tap_features)
from .figure import per_tap
from .weights import WEIGHTS, load_model, run_config, test_data, training_data, weights_file

NOTEBOOKS = PACKAGE_PARENT / "notebooks" / "labs"
EXECUTED = "_labs"  # the book's folder of executed labs (book/_labs/<name>.ipynb, git-ignored)
BOOK = PACKAGE_PARENT / "book"

__all__ = ["EXECUTED", "NOTEBOOKS", "ParameterError", "Settings", "WEIGHTS", "check", "check_model",
           "decades_fallen", "lab_names", "load_model", "per_tap", "reference_accuracy", "reference_measures",
           "reference_ratios", "run_config", "settings", "tap_features", "test_data", "training_data", "weights_file"]


def lab_names(book: Path = BOOK) -> list[str]:
    """Names of the labs the book's table of contents lists (``_labs/<name>`` entries), in order."""
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    files = [c["file"] for part in [toc] + toc.get("parts", []) for c in part.get("chapters", [])]
    return [f.split("/", 1)[1] for f in files if f.startswith(EXECUTED + "/")]


@dataclass(frozen=True)
class Settings:
    """How much a lab computes: images per class measured (and trained on), training epochs."""

    scale: str
    n_per_class: int
    epochs: int


# per scale: (images per class, epochs of the short trainings); the paper scale has no lab of its own
DEFAULTS = {"smoke": (10, 1), "cpu": (100, 20), "paper": (100, 20)}


def settings(scale: str, compute: bool, n_per_class: int | None = None, epochs: int | None = None) -> Settings:
    """A lab's settings at ``scale``, each parameter checked first (a one-line ``ParameterError``, as the
    chapters' :func:`ncutils.chapter.check_parameters`); ``compute`` is checked but unused: labs store nothing."""
    one_of(tuple(SCALES))("scale", scale)
    boolean("compute", compute)
    optional(integer(2))("n_per_class", n_per_class)
    optional(integer(1))("epochs", epochs)
    default_n, default_epochs = DEFAULTS[scale]
    return Settings(scale, n_per_class or default_n, epochs or default_epochs)
