"""The primer's simulated features: classes collapsing step by step to a simplex ETF, and layers that do or
do not memorize label noise, each read by the book's measures (no dataset, no training)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import metrics

MEASURES = {"CDNV (sum)": metrics.cdnv, "NC1": metrics.nc1, "NC2": metrics.nc2, "equal norms": metrics.equal_norms,
            "max angle": metrics.max_angle, "NCC accuracy": metrics.ncc_accuracy}


class Simulation:
    """``per_class`` features of each of ``num_classes`` classes in ``dim`` dimensions, drawn with ``seed``:
    random class means, the simplex ETF they move to, and a within-class noise that shrinks to zero."""

    def __init__(self, num_classes: int, dim: int, per_class: int, seed: int):
        self.num_classes = num_classes
        self.rng = rng = np.random.default_rng(seed)
        self.labels = np.repeat(np.arange(num_classes), per_class)
        # simplex ETF: K unit vectors with pairwise cosine -1/(K-1), rotated into D dimensions
        etf = np.sqrt(num_classes / (num_classes - 1)) * (np.eye(num_classes) - 1 / num_classes)
        rotation, _ = np.linalg.qr(rng.standard_normal((dim, num_classes)))
        self.etf_means = etf @ rotation.T
        self.random_means = (rng.standard_normal((num_classes, dim)) / np.sqrt(dim)
                             * rng.uniform(0.5, 2, (num_classes, 1)))
        self.noise = rng.standard_normal((len(self.labels), dim)) / np.sqrt(dim)

    def features_at(self, t: float) -> np.ndarray:
        """Class means move from random to the ETF, and the within-class spread shrinks, as t goes 0 -> 1."""
        means = (1 - t) * self.random_means + t * self.etf_means
        return means[self.labels] + (1 - t) * 6 * self.noise

    def collapse(self, steps: int) -> pd.DataFrame:
        """Every measure at ``steps`` evenly spaced t from 0 to 1."""
        rows = []
        for t in np.linspace(0, 1, steps):
            h = self.features_at(t)
            rows.append({"collapse t": t, **{name: f(h, self.labels) for name, f in MEASURES.items()}})
        return pd.DataFrame(rows)

    def label_noise(self, rate: float = 0.4) -> pd.DataFrame:
        """CDNV under clean and noisy labels (a ``rate`` of them redrawn at random) of a layer whose features
        follow the noisy labels (memorizing) and of one whose features follow the clean ones (semantic),
        and their memorization ratio (Definition 1)."""
        flip = self.rng.random(len(self.labels)) < rate
        noisy = np.where(flip, self.rng.integers(0, self.num_classes, len(self.labels)), self.labels)
        tight = 0.3 * self.noise
        memorizing, semantic = self.etf_means[noisy] + tight, self.etf_means[self.labels] + tight
        ratios = pd.DataFrame({
            "layer kind": ["memorizing (features follow the noisy labels)",
                           "semantic (features follow the clean labels)"],
            "CDNV clean labels": [metrics.cdnv(memorizing, self.labels), metrics.cdnv(semantic, self.labels)],
            "CDNV noisy labels": [metrics.cdnv(memorizing, noisy), metrics.cdnv(semantic, noisy)],
        })
        ratios["memorization ratio"] = ratios["CDNV clean labels"] / ratios["CDNV noisy labels"]
        return ratios


def checks(table: pd.DataFrame, ratios: pd.DataFrame) -> list[str]:
    """What the simulation shows, each line "holds: ..." or "DOES NOT HOLD: ...", then the ranges of CDNV and NC2."""
    first, last = table.iloc[0], table.iloc[-1]
    results = {
        "CDNV falls monotonically as the classes collapse": bool(np.all(np.diff(table["CDNV (sum)"]) < 0)),
        "CDNV, NC2, equal norms and max angle reach 0 at the ETF": bool(
            max(abs(last[m]) for m in ["CDNV (sum)", "NC2", "equal norms", "max angle"]) < 1e-9),
        "NCC accuracy reaches 1 at the ETF": bool(last["NCC accuracy"] == 1.0),
        "memorizing features have ratio > 1, semantic ones < 1": bool(
            ratios["memorization ratio"].iloc[0] > 1 > ratios["memorization ratio"].iloc[1]),
    }
    lines = [f"{'holds' if holds else 'DOES NOT HOLD'}: {claim}" for claim, holds in results.items()]
    return lines + [f"CDNV went from {first['CDNV (sum)']:.3g} to {last['CDNV (sum)']:.3g}; "
                    f"NC2 from {first['NC2']:.3g} to {last['NC2']:.3g}"]
