"""Figures for the noise and shift data: corruption grids, label-noise transition matrices, domain samples."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import seaborn as sns
import torch

from .corruptions import Corruption, corrupt_data
from .data import ImageData
from .noise import noise_rate, transition_matrix


def _first_of_each_class(data: ImageData) -> torch.Tensor:
    return torch.stack([torch.nonzero(data.labels == k).flatten()[0] for k in range(data.num_classes)])


def _show(ax, image: torch.Tensor) -> None:
    ax.imshow(image.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray" if image.shape[0] == 1 else None,
              vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def corruption_grid(data: ImageData, names: Sequence[str], severities: Sequence[int], seed: int = 0):
    """One image per class (rows: the first of each class in ``data``) at each corruption and severity
    (columns; severities on the CIFAR-10-C scale 0..5, a 0 gives one shared "clean" column).

    The images are corrupted through :func:`ncutils.corruptions.corrupt_data`, so they show exactly the
    pixels a training run on the corrupted ``data`` with this ``seed`` sees.
    """
    picks = data.subset(_first_of_each_class(data))
    columns = [("clean", picks)] if 0 in severities else []
    for name in names:
        for severity in (s for s in severities if s != 0):
            spec = Corruption(name, severity)
            level = f"\nlevel {spec.paper_level}" if spec.paper_level is not None else ""
            columns.append((f"{name.split('_')[0]}\nseverity {severity}{level}", corrupt_data(picks, spec, seed)))
    side = min(1.25, 7.2 / len(columns))  # the figure fits the page's width
    fig, axes = plt.subplots(len(picks), len(columns), squeeze=False,
                             figsize=(side * len(columns) + 1.0, side * len(picks) + 1.2))
    for j, (title, images) in enumerate(columns):
        axes[0, j].set_title(title)
        for i in range(len(picks)):
            _show(axes[i, j], images.images[i])
    for i, k in enumerate(picks.labels.tolist()):
        axes[i, 0].set_ylabel(data.classes[k])
    fig.suptitle(f"{data.name} {data.split}: CIFAR-10-C corruptions (seed {seed})")
    fig.tight_layout()
    return fig


def transition_heatmap(clean, noisy, classes: Sequence[str], *, title: str | None = None):
    """Heatmap of the empirical transition matrix P(noisy label | clean label) in percent."""
    matrix = transition_matrix(clean, noisy, num_classes=len(classes)).numpy() * 100
    fig, ax = plt.subplots(figsize=(0.55 * len(classes) + 2.3, 0.55 * len(classes) + 1.5))
    sns.heatmap(matrix, annot=True, fmt=".0f", cmap="viridis", vmin=0, vmax=100, square=True, ax=ax,
                xticklabels=classes, yticklabels=classes, cbar_kws={"label": "P(noisy | clean) [%]"},
                annot_kws={"fontsize": 10})
    ax.set_xlabel("noisy label")
    ax.set_ylabel("clean label")
    rate = noise_rate(clean, noisy)
    ax.set_title(f"{title + ': ' if title else ''}noise rate {rate:.2%}")
    fig.tight_layout()
    return fig


def domain_grid(domains: Mapping[str, ImageData]):
    """One image per class (columns) for each domain (rows) of a folder-per-domain dataset."""
    classes = next(iter(domains.values())).classes
    fig, axes = plt.subplots(len(domains), len(classes), squeeze=False,
                             figsize=(min(1.3, 7.2 / len(classes)) * len(classes) + 0.8, 1.1 * len(domains) + 0.6))
    for i, (domain, data) in enumerate(domains.items()):
        if data.classes != classes:
            raise ValueError(f"domain {domain!r} has classes {data.classes}, expected the shared {classes}")
        picks = data.subset(_first_of_each_class(data))
        for j in range(len(classes)):
            _show(axes[i, j], picks.images[j])
            axes[0, j].set_title(classes[j])
        axes[i, 0].set_ylabel(domain)
    fig.tight_layout()
    return fig

