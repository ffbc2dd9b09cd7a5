"""The one verdict rule of the book: a statistic, its standard error, and a threshold in the paper's direction.

A claim's statistic is an :class:`Estimate` (a value, its standard error and the kind of that
uncertainty). Against a threshold in the direction the paper states (:func:`judge`):

- **holds** when it clears the threshold in the paper's direction by more than :data:`Z` standard errors,
- **does not hold** when it lies beyond the threshold in the other direction by more than :data:`Z`
  standard errors,
- **inconclusive** otherwise (within :data:`Z` standard errors of the threshold, or no standard error).

A claim about several cases (models, noise rates, views) is their conjunction (:func:`all_of`): it holds
when every case holds, does not hold when some case does not hold, and is inconclusive otherwise.

The uncertainty comes from what the runs allow, in this order: the spread over seeds
(:func:`over_seeds`, two or more seeds of the same config); else within one run, the binomial standard
error of an accuracy (:func:`binomial`) or the delete-a-group jackknife over images of a statistic of
CDNV or NC2 curves (:func:`jackknife`, from the replicates ``ncutils.streaming.measure`` stores).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

Z = 2.0  # standard errors a statistic must clear its threshold by
HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
DIRECTIONS = ("above", "below")


@dataclass(frozen=True)
class Estimate:
    """A statistic's value, its standard error and the kind of uncertainty, e.g. "3 seeds"."""

    value: float
    se: float
    kind: str

    def __str__(self) -> str:
        return f"{self.value:.3g} ± {self.se:.2g} ({self.kind})"

    def __sub__(self, other: "Estimate") -> "Estimate":
        """The difference of two independent estimates (standard errors added in quadrature)."""
        kind = self.kind if self.kind == other.kind else f"{self.kind}; {other.kind}"
        return Estimate(self.value - other.value, math.hypot(self.se, other.se), kind)


def judge(estimate: Estimate, threshold: float = 0.0, direction: str = "above") -> str:
    """The verdict on ``estimate`` against ``threshold``, the paper claiming it lies ``direction`` of it."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    margin = (estimate.value - threshold) * (1 if direction == "above" else -1)
    if not (math.isfinite(margin) and math.isfinite(estimate.se)):
        return INCONCLUSIVE
    if margin > Z * estimate.se:
        return HOLDS
    if margin < -Z * estimate.se:
        return FAILS
    return INCONCLUSIVE


def all_of(verdicts: Iterable[str]) -> str:
    """A claim over several cases: holds if every case holds, does not hold if any does not, else inconclusive."""
    verdicts = list(verdicts)
    if not verdicts:
        raise ValueError("all_of needs at least one verdict")
    unknown = set(verdicts) - {HOLDS, FAILS, INCONCLUSIVE}
    if unknown:
        raise ValueError(f"unknown verdicts {sorted(unknown)}; valid: {HOLDS}, {FAILS}, {INCONCLUSIVE}")
    return HOLDS if all(v == HOLDS for v in verdicts) else FAILS if FAILS in verdicts else INCONCLUSIVE


def over_seeds(values: Sequence[float]) -> Estimate:
    """The mean over seeds and its standard error (sample standard deviation / sqrt(n); n >= 2)."""
    values = np.asarray(values, float)
    if len(values) < 2:
        raise ValueError(f"a spread over seeds needs at least 2 seeds, got {len(values)}")
    return Estimate(float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values))), f"{len(values)} seeds")


def binomial(accuracy: float, n: int) -> Estimate:
    """An accuracy measured on ``n`` images, with its binomial standard error sqrt(p (1 - p) / n)."""
    if n < 1:
        raise ValueError(f"an accuracy needs n >= 1 images, got {n}")
    return Estimate(accuracy, math.sqrt(accuracy * (1 - accuracy) / n), f"binomial, {n} images")


def jackknife(full: float, replicates: Sequence[float]) -> Estimate:
    """The delete-a-group jackknife (Efron 1982): ``full`` is the statistic of all images, ``replicates``
    the statistic without each of G groups; SE^2 = (G - 1) / G * sum (theta_g - mean theta)^2."""
    r = np.asarray(replicates, float)
    if len(r) < 2:
        raise ValueError(f"a jackknife needs at least 2 replicates, got {len(r)}")
    se = math.sqrt((len(r) - 1) / len(r) * float(np.square(r - r.mean()).sum())) if np.isfinite(r).all() else math.nan
    return Estimate(full, se, f"jackknife over images, {len(r)} groups")


def estimate_runs(values: Sequence[float], replicates: Callable[[], Sequence[float]] | None = None) -> Estimate:
    """A statistic of repeated runs or of one run, by the module's order: its ``values`` (one per seed) over the
    seeds when there are two or more; for one run, the jackknife over ``replicates()`` (the statistic without
    each group of images, computed only then) when there are two or more; else no uncertainty."""
    if len(values) >= 2:
        return over_seeds(values)
    if len(values) != 1:
        raise ValueError("estimate_runs needs at least one run")
    replicated = list(replicates()) if replicates is not None else []
    if len(replicated) < 2:
        return Estimate(values[0], math.nan, "one run without jackknife replicates")
    return jackknife(values[0], replicated)
