"""The noise-and-shift chapter's tables: the training subset of a run, the pixel change of each corruption,
the realised rates of the label noises, and the splits of a domain shift."""
from __future__ import annotations

import torch
import pandas as pd

from ..corruptions import SEVERITY_PARAMETERS, corrupt_data, parse_corruption
from ..data import ImageData, balanced_subset, load_dataset
from ..domains import DomainShift
from ..noise import cifar10n_labels, noise_rate, noisy_labels, parse_noise
from ..scales import get_scale

# the noise rates (%) the CIFAR-10N release reports for its label sets
PUBLISHED = {"clean": 0.0, "aggre": 9.01, "random1": 17.23, "random2": 18.12, "random3": 17.64, "worse": 40.21}
SAMPLE = 2000  # training images the pixel changes are measured on


def run_subset(train: ImageData, scale: str, seed: int) -> ImageData:
    """The training images a run at ``scale`` trains on (class-balanced, drawn with ``seed``)."""
    n_per_class = get_scale(scale).n_per_class
    return train if n_per_class is None else train.subset(balanced_subset(train.labels, n_per_class, seed))


def pixel_changes(train: ImageData, names: list[str], paper_levels: list[int], seed: int) -> pd.DataFrame:
    """Per corruption and paper level (> 0), on the first :data:`SAMPLE` images: the std of the pixel change
    (0-255) against the formula's std before clipping (255 c, times the pixels' RMS for speckle noise)."""
    sample = train.subset(torch.arange(SAMPLE))
    pixel_rms = (sample.images.double() / 255).pow(2).mean().sqrt().item()
    rows = []
    for name in names:
        for level in [k for k in paper_levels if k > 0]:
            spec = parse_corruption(f"{name}:level{level}")
            c = SEVERITY_PARAMETERS[name][spec.severity - 1]
            change = corrupt_data(sample, spec, seed).images.float() - sample.images.float()
            rows.append({"corruption": name, "paper level": level, "CIFAR-10-C severity": spec.severity, "c": c,
                         "formula std": round(255 * c * (pixel_rms if name == "speckle_noise" else 1), 2),
                         "std of change": round(change.std().item(), 2)})
    return pd.DataFrame(rows)


def label_sets(run_train: ImageData, scale: str, root=None) -> pd.DataFrame:
    """Every CIFAR-10N label set: its published noise rate, the realised one, and the one on ``run_train``
    (the training subset of a run at ``scale``; its human labels are those of its own images)."""
    clean = cifar10n_labels("clean", root=root)
    return pd.DataFrame([{"label set": kind, "published [%]": rate,
                          "realised [%]": round(100 * noise_rate(clean, cifar10n_labels(kind, root=root)), 3),
                          f"{scale} subset [%]": round(100 * noisy_labels(run_train, f"cifar10n:{kind}",
                                                                          root=root).noise_rate, 2)}
                         for kind, rate in PUBLISHED.items()])


def random_labels(train: ImageData, run_train: ImageData, rates: list[float], seed: int, scale: str) -> pd.DataFrame:
    """Per rate r: the expected noise rate 0.9 r, the realised one on the whole training set and on a run's subset."""
    rows = []
    for rate in rates:
        spec = parse_noise(f"random:{rate}")
        full, run = noisy_labels(train, spec, seed=seed), noisy_labels(run_train, spec, seed=seed)
        rows.append({"noise": str(spec), "expected 0.9 r": round(0.9 * rate, 4), "realised": round(full.noise_rate, 4),
                     "noisy samples": int(full.is_noisy.sum()), f"realised, {scale} subset": round(run.noise_rate, 4)})
    return pd.DataFrame(rows)


def domains(shift: DomainShift, root=None) -> dict[str, ImageData]:
    """The training split of the source and of each target domain."""
    return {name: load_dataset(f"{shift.dataset}:{name}", "train", root=root) for name in (shift.source, *shift.targets)}


def probe_splits(shift: DomainShift, n_per_class: int, seed: int, root=None) -> pd.DataFrame:
    """Per target: the images its probes train on (``n_per_class`` per class) and are tested on."""
    return pd.DataFrame([{"target": target, "probe train": len(limited.probe_train),
                          "probe test": len(limited.probe_test)}
                         for target in shift.targets
                         for limited in [shift.limited_target(target, n_per_class, seed, root=root)]])
