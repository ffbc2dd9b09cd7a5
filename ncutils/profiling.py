"""Measure any model: the per-layer table of every neural-collapse measure (and linear probes) of a ``torch.nn.Module``.

    import ncutils, torchvision
    table = ncutils.measure(torchvision.models.resnet18(num_classes=10), "cifar10", n_per_class=20)
    ncutils.plot_layers(table)

The table has a ``model`` and a ``dataset`` column, then the columns of the results store
(:data:`ncutils.experiment.METRIC_COLUMNS`), so every query of :mod:`ncutils.frames` and every plot of
the book works on it.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable

import pandas as pd
import torch
from torch import nn

from .data import Batches, ImageData, load_dataset
from .experiment import METRIC_COLUMNS
from .probe import converged_probe, probe_rows
from .streaming import FEATURE_VIEWS, unpack_batch
from .streaming import measure as measure_taps
from .taps import tapped
from .train import default_device

BATCH_SIZE = 128  # images per forward pass


def measure(model: nn.Module, data: str | ImageData | Iterable, *, taps="auto", split: str = "train",
            n_per_class: int | None = None, image_size: int | None = None, probe: bool = False,
            test: str | ImageData | Iterable | None = None, features: tuple[str, ...] = FEATURE_VIEWS,
            num_classes: int | None = None, layout: str | None = None, classifier: str | None = None,
            device: str | torch.device | None = None, seed: int = 0, verbose: bool = True) -> pd.DataFrame:
    """Every neural-collapse measure of every layer tap of ``model`` on ``data``, one row per layer x
    measure x feature view (and the converged linear probes with ``probe=True``).

    data: a dataset name (``ncutils.load_dataset``: its ``split``, ``n_per_class`` images per class drawn
        with ``seed``, resized to ``image_size``), an :class:`~ncutils.data.ImageData`, a ``DataLoader`` or
        any re-iterable of ``(x, y)`` batches.
    taps: "auto" (the model's blocks, :func:`ncutils.taps_of`), a list of module paths or {name: path}.
    probe: also fit a converged linear probe per tap on ``data`` and test it on ``test`` (for a dataset
        name, default: its test split).
    layout, classifier: override the detected tap layout and the final linear layer's path.
    device: default CUDA when present, else CPU; the model is moved there.
    """
    if probe and test is None and not isinstance(data, str):
        raise ValueError("probe=True needs test data: pass test= (a dataset name, ImageData or batches)")
    device = torch.device(device) if device is not None else default_device()
    batches, name, classes = _batches(data, split, n_per_class, image_size, seed, device)
    x, _ = unpack_batch(next(iter(batches)))
    model = tapped(model.to(device), x.to(device), taps, classifier=classifier, layout=layout)
    num_classes = num_classes or classes or model.classifier.out_features
    if verbose:
        print(f"measuring {len(model.taps)} taps of {model.family} (layout {model.layout}): "
              f"{', '.join(model.taps)}", file=sys.stderr)
    table = measure_taps(model, batches, num_classes=num_classes, features=features)
    frames = [table.assign(eval_data=name, split=split, inputs="clean", labels="clean")]
    if probe:
        tested, _, _ = _batches(data if test is None else test, "test", n_per_class, image_size, seed, device)
        fits = converged_probe(model, batches, tested, num_classes=num_classes)
        frames.append(probe_rows(fits, name, num_classes, fits.num_train[0], fits.num_test[0]))
    table = pd.concat(frames, ignore_index=True)[list(METRIC_COLUMNS)]
    return table.assign(model=model.family, dataset=name)[["model", "dataset", *METRIC_COLUMNS]]


def _batches(data, split: str, n_per_class, image_size, seed: int, device):
    """(re-iterable batches, a name for the data, its number of classes if known)."""
    if isinstance(data, str):
        data = load_dataset(data, split, n_per_class=n_per_class, seed=seed)
    if isinstance(data, ImageData):
        data = data.resized(image_size) if image_size else data
        return Batches(data, BATCH_SIZE, device=device), data.name, data.num_classes
    if iter(data) is data:
        raise TypeError("data is a one-shot iterator, but measuring reads it twice: pass a list of (x, y) batches, "
                        "a DataLoader, a dataset name or an ImageData")
    return data, "data", None
