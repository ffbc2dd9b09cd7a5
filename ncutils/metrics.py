"""Neural-collapse measures from per-class statistics, and the same measures of in-memory arrays.

Notation (one layer, K classes, N samples, features h_i in R^D with labels y_i):
    n_k   samples of class k              mu_k = mean of class k
    mu_G  global mean = mean over all N samples (Zhou et al. 2025, sec. 3.2); it equals the
          mean of the class means when classes are balanced, and is weighted by n_k otherwise
    c_k   = mu_k - mu_G, the centred class means (rows of C, K x D)
    sigma_k^2 = (1/n_k) sum_{i in k} ||h_i - mu_k||^2   (biased, as in the paper)

Choices, for every function here:
- Classes are the labels that occur (a ``ClassMoments`` holds only classes with samples), so
  K is the number of distinct labels; every measure needs K >= 2.
- Measures of within-class spread (CDNV, NC1) need >= 2 samples in every class; a class with
  one sample has no spread to measure and raises ``ValueError``.
- Degenerate geometry gives a value and a ``DegenerateGeometryWarning``: two identical class
  means give CDNV = inf for that pair; all class means equal (no between-class signal) give
  NC1 = inf and NC2 = nan; a class mean equal to the global mean gives max_angle = nan.
- Non-finite features, labels that are not a 1-D integer vector of the features' length, and
  features that are not 2-D raise ``ValueError``.
- Computation is in float64 on the device of the input; float32 input loses nothing because
  deviations are taken from float64 means, never as E[x^2] - E[x]^2.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch


class DegenerateGeometryWarning(RuntimeWarning):
    """A measure met coincident class means and returned inf or nan (see the module notes)."""


@dataclass(frozen=True)
class ClassMoments:
    """Per-class count, mean and sum of squared deviations from the mean, in float64.

    classes: (K,) int64 label of each row; count: (K,); mean: (K, D); ssd: (K,) with
    ssd_k = sum_{i in k} ||h_i - mu_k||^2. All on one device.
    """

    classes: torch.Tensor
    count: torch.Tensor
    mean: torch.Tensor
    ssd: torch.Tensor

    @classmethod
    def from_features(cls, features, labels) -> "ClassMoments":
        """One-shot statistics of an (N, D) array and N integer labels (numpy or torch)."""
        h, y = as_features_and_labels(features, labels)
        classes, index = torch.unique(y, return_inverse=True)
        count = torch.bincount(index, minlength=len(classes)).to(torch.float64)
        mean = torch.zeros(len(classes), h.shape[1], dtype=torch.float64, device=h.device)
        mean.index_add_(0, index, h).div_(count[:, None])
        deviation = h - mean[index]
        ssd = torch.zeros_like(count).index_add_(0, index, deviation.square().sum(1))
        return cls(classes, count, mean, ssd)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_samples(self) -> int:
        return int(self.count.sum().item())

    @property
    def dim(self) -> int:
        return self.mean.shape[1]

    def variances(self) -> torch.Tensor:
        """sigma_k^2 = ssd_k / n_k, the mean squared distance to the class mean."""
        return self.ssd / self.count

    def global_mean(self) -> torch.Tensor:
        """mu_G, the mean over all samples (count-weighted mean of the class means)."""
        return self.count @ self.mean / self.count.sum()

    def centred_means(self) -> torch.Tensor:
        """C = [mu_k - mu_G], (K, D)."""
        return self.mean - self.global_mean()

    def row_of(self, labels: torch.Tensor) -> torch.Tensor:
        """Row index of each label (labels must be among ``classes``)."""
        return torch.searchsorted(self.classes, labels)


def merge_groups(cells: ClassMoments, groups: int, leave_out: int | None = None) -> ClassMoments:
    """The class moments of samples kept in ``groups`` cells per class (cell label = class * groups + group),
    over every group or every group but ``leave_out`` (the delete-a-group jackknife's subsets). Exact: the
    cells' sums of squared deviations add up with n_c ||mu_c - mu_k||^2 of each cell c of class k."""
    keep = cells.classes % groups != leave_out if leave_out is not None else torch.ones_like(cells.classes, dtype=torch.bool)
    count, mean, ssd = cells.count[keep], cells.mean[keep], cells.ssd[keep]
    classes, index = torch.unique(cells.classes[keep] // groups, return_inverse=True)
    total = torch.zeros(len(classes), dtype=torch.float64, device=count.device).index_add_(0, index, count)
    merged = torch.zeros(len(classes), mean.shape[1], dtype=torch.float64, device=mean.device)
    merged.index_add_(0, index, mean * count[:, None]).div_(total[:, None])
    spread = ssd + count * (mean - merged[index]).square().sum(1)
    return ClassMoments(classes, total, merged, torch.zeros_like(total).index_add_(0, index, spread))


# ----------------------------------------------------------------------------------------------
# measures of ClassMoments (used by the plain-array functions below and by ncutils.streaming)

def cdnv_of(moments: ClassMoments, reduction: str = "sum") -> float:
    """CDNV of Galanti et al., paper eq. 4: (sigma_k^2 + sigma_k'^2) / (2 ||mu_k - mu_k'||^2).

    reduction "sum" is the paper's sum over ordered pairs k != k'; "mean" divides it by K(K-1).
    Pairs with identical means count as inf (with a warning).
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    check_classes(moments, need_spread=True)
    means = moments.mean
    # exact pairwise distances (no Gram-matrix cancellation), so identical means give exactly 0
    distance_sq = torch.cdist(means, means, compute_mode="donot_use_mm_for_euclid_dist").square()
    variances = moments.variances()
    off_diagonal = ~torch.eye(len(means), dtype=torch.bool, device=means.device)
    spread = (variances[:, None] + variances[None, :])[off_diagonal]
    distance_sq = distance_sq[off_diagonal]
    coincident = distance_sq == 0
    if coincident.any():
        _warn(f"{int(coincident.sum()) // 2} pair(s) of classes have identical means; their CDNV is inf")
    pairwise = torch.where(coincident, torch.inf, spread / (2 * distance_sq.clamp_min(torch.finfo(torch.float64).tiny)))
    total = pairwise.sum()
    return float(total if reduction == "sum" else total / len(pairwise))


def nc2_of(moments: ClassMoments) -> float:
    """Paper eq. 5: || G/||G||_F - (I_K - 11^T/K)/sqrt(K-1) ||_F with G = C C^T."""
    check_classes(moments)
    centred = moments.centred_means()
    gram = centred @ centred.T
    norm = torch.linalg.matrix_norm(gram)
    if norm == 0:
        _warn("all class means coincide; NC2 (distance of their Gram matrix to the ETF) is undefined: nan")
        return float("nan")
    k = moments.num_classes
    etf = (torch.eye(k, dtype=gram.dtype, device=gram.device) - 1.0 / k) / (k - 1) ** 0.5
    return float(torch.linalg.matrix_norm(gram / norm - etf))


def equal_norms_of(moments: ClassMoments) -> float:
    """Parker et al. 2023: std_k ||c_k|| / mean_k ||c_k|| (std with Bessel's correction, as in
    the reference code of Papyan et al. 2020)."""
    check_classes(moments)
    norms = torch.linalg.vector_norm(moments.centred_means(), dim=1)
    if norms.mean() == 0:
        _warn("all class means coincide; equal_norms (std/mean of zero norms) is nan")
        return float("nan")
    return float(norms.std() / norms.mean())


def max_angle_of(moments: ClassMoments) -> float:
    """Parker et al. 2023: mean over k != k' of |cos(c_k, c_k') + 1/(K-1)|."""
    check_classes(moments)
    centred = moments.centred_means()
    norms = torch.linalg.vector_norm(centred, dim=1)
    if (norms == 0).any():
        _warn("a class mean equals the global mean, so its angle is undefined: max_angle is nan")
        return float("nan")
    unit = centred / norms[:, None]
    k = moments.num_classes
    off_diagonal = ~torch.eye(k, dtype=torch.bool, device=unit.device)
    cosines = (unit @ unit.T)[off_diagonal]
    return float((cosines + 1.0 / (k - 1)).abs().mean())


def nc3_of(moments: ClassMoments, classifier_weight) -> float:
    """Self-duality (Papyan et al. 2020): ||W/||W||_F - C/||C||_F||_F^2, with W the rows of the
    classifier for the classes present (row k of ``classifier_weight`` is label k)."""
    check_classes(moments)
    weight = torch.as_tensor(classifier_weight).detach().to(moments.mean.device, torch.float64)
    if weight.ndim != 2 or weight.shape[1] != moments.dim or weight.shape[0] <= int(moments.classes.max()):
        raise ValueError(f"classifier weight must be (num_classes, {moments.dim}) covering labels up to "
                         f"{int(moments.classes.max())}; got shape {tuple(weight.shape)}")
    weight = weight[moments.classes]
    centred = moments.centred_means()
    if torch.linalg.matrix_norm(centred) == 0 or torch.linalg.matrix_norm(weight) == 0:
        _warn("class means coincide or the classifier is zero; NC3 is nan")
        return float("nan")
    difference = weight / torch.linalg.matrix_norm(weight) - centred / torch.linalg.matrix_norm(centred)
    return float(torch.linalg.matrix_norm(difference).square())


def class_mean_basis(moments: ClassMoments) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal basis U (D x r) of the span of the centred class means, and their singular values S.

    With the thin SVD C^T = U S V^T, Sigma_B = C^T C / K and Sigma_B^+ = K U S^-2 U^T, so
    NC1 = Tr(Sigma_W Sigma_B^+)/K = (1/N) sum_i ||S^-1 U^T (h_i - mu_{y_i})||^2: no D x D matrix.
    The rank r is at most K - 1 (sum_k n_k c_k = 0) and counts singular values above
    max(K, D) * eps * max(s_max, ||means||_F), numpy's matrix_rank rule with the scale of the
    uncentred means, whose rounding (large common offsets) sets the error of C. r = 0 (with a
    warning) when all class means coincide.
    """
    check_classes(moments)
    _, singular, right = torch.linalg.svd(moments.centred_means(), full_matrices=False)
    scale = torch.maximum(singular[0], torch.linalg.matrix_norm(moments.mean))
    tolerance = scale * max(moments.num_classes, moments.dim) * torch.finfo(torch.float64).eps
    rank = min(moments.num_classes - 1, int((singular > tolerance).sum()))
    if rank == 0:
        _warn("all class means coincide (Sigma_B = 0); NC1 is inf")
    return right[:rank].T.contiguous(), singular[:rank]


def check_classes(moments: ClassMoments, need_spread: bool = False) -> None:
    """Raise ValueError unless K >= 2 (and, if ``need_spread``, every class has >= 2 samples)."""
    if moments.num_classes < 2:
        raise ValueError(f"neural-collapse measures need at least 2 classes; the labels hold "
                         f"{moments.num_classes} ({moments.classes.tolist()})")
    if need_spread and (moments.count < 2).any():
        small = moments.classes[moments.count < 2].tolist()
        raise ValueError(f"class(es) {small[:10]} have fewer than 2 samples, so their within-class "
                         f"spread is undefined; CDNV and NC1 need >= 2 samples per class")


def _warn(message: str) -> None:
    warnings.warn(message, DegenerateGeometryWarning, stacklevel=3)


# ----------------------------------------------------------------------------------------------
# plain-array functions: (N, D) features (numpy or torch) and N integer labels -> float

def cdnv(features, labels, reduction: str = "sum") -> float:
    """CDNV, paper eq. 4 (Galanti et al.): sum ('sum', the paper's) or mean over ordered pairs.
    Scale-invariant, so features of any finite scale are scaled to about 1 before squaring."""
    h, y = as_features_and_labels(features, labels)
    return cdnv_of(ClassMoments.from_features(_scaled_to_one(h), y), reduction)


def _scaled_to_one(h: torch.Tensor) -> torch.Tensor:
    """``h`` times the power of two that brings its largest magnitude into [0.5, 1): exact (no rounding
    for normal numbers), and its squares can neither overflow nor underflow."""
    exponent = int(torch.frexp(h.abs().max()).exponent)
    return h * math.ldexp(1.0, -min(max(exponent, -1021), 1021))


def nc1(features, labels) -> float:
    """NC1 = Tr(Sigma_W Sigma_B^+)/K (Papyan et al. 2020; Parker et al. 2023), with
    Sigma_W = (1/N) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T and Sigma_B = (1/K) sum_k c_k c_k^T."""
    h, y = as_features_and_labels(features, labels)
    moments = ClassMoments.from_features(h, y)
    check_classes(moments, need_spread=True)
    basis, singular = class_mean_basis(moments)
    if len(singular) == 0:
        return float("inf")
    deviations = h - moments.mean[moments.row_of(y)]
    return float((deviations @ basis / singular).square().sum() / len(h))


def nc2(features, labels) -> float:
    """NC2, paper eq. 5: distance of the normalised Gram matrix of centred means to the ETF."""
    return nc2_of(ClassMoments.from_features(features, labels))


def equal_norms(features, labels) -> float:
    """Equal norms (Parker et al. 2023): std/mean of the centred class-mean norms."""
    return equal_norms_of(ClassMoments.from_features(features, labels))


def max_angle(features, labels) -> float:
    """Maximal angle (Parker et al. 2023): mean |cos(c_k, c_k') + 1/(K-1)| over k != k'."""
    return max_angle_of(ClassMoments.from_features(features, labels))


def nc3(features, labels, classifier_weight) -> float:
    """NC3 self-duality (Papyan et al. 2020) of the classifier (K x D) with the class means."""
    return nc3_of(ClassMoments.from_features(features, labels), classifier_weight)


def nearest_class_centre(features, moments: ClassMoments) -> torch.Tensor:
    """Label of the nearest class mean (Euclidean) for each row of ``features``."""
    h = _as_float64(features, "features").to(moments.mean.device)
    centred = moments.centred_means()
    # argmin_k ||x - c_k||^2 = argmin_k (||c_k||^2 / 2 - x . c_k), in coordinates centred at mu_G
    scores = 0.5 * centred.square().sum(1) - (h - moments.global_mean()) @ centred.T
    return moments.classes[scores.argmin(1)]


def ncc_accuracy(features, labels) -> float:
    """Share of samples whose nearest class mean is their own class (NC4's classifier)."""
    h, y = as_features_and_labels(features, labels)
    moments = ClassMoments.from_features(h, y)
    check_classes(moments)
    return float((nearest_class_centre(h, moments) == y).double().mean())


def nc4(features, labels, predictions) -> float:
    """NC4 (Parker et al. 2023): share of samples where the nearest class centre (class means
    from ``labels``) disagrees with the network's prediction ``predictions``."""
    h, y = as_features_and_labels(features, labels)
    _, predicted = as_features_and_labels(h, predictions)
    moments = ClassMoments.from_features(h, y)
    check_classes(moments)
    return float((nearest_class_centre(h, moments) != predicted).double().mean())


def memorization_ratio(clean_features, clean_labels, noisy_features, noisy_labels,
                       reduction: str = "sum") -> float:
    """Memorization ratio, paper Definition 1: CDNV(clean) / CDNV(noisy) at one layer.

    Label noise: the same features twice, with the clean and the noisy (trained-with) labels.
    Corrupted inputs: features of the clean and of the corrupted inputs, with the same labels.
    The layer is a memorization layer (Definition 2) when the ratio is > 1.
    """
    return cdnv(clean_features, clean_labels, reduction) / cdnv(noisy_features, noisy_labels, reduction)


# ----------------------------------------------------------------------------------------------
# input checks

def as_features_and_labels(features, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) float64 features and (N,) int64 labels on the features' device, or ValueError."""
    h = _as_float64(features, "features")
    try:
        y = torch.as_tensor(labels).detach() if not isinstance(labels, np.ndarray) else torch.from_numpy(labels)
    except (TypeError, ValueError, RuntimeError):  # names, objects: no tensor
        first = np.asarray(labels, dtype=object).ravel()[:1].tolist()
        raise ValueError(f"labels must be a 1-D integer vector, got {type(labels).__name__} of non-numbers (e.g. "
                         f"{first[0] if first else None!r}); map class names to integers first, e.g. "
                         "np.unique(labels, return_inverse=True)[1]") from None
    if y.ndim != 1 or y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise ValueError(f"labels must be a 1-D integer vector, got dtype {y.dtype} and shape {tuple(y.shape)}")
    if len(y) != len(h):
        raise ValueError(f"labels has {len(y)} entries but features has {len(h)} rows; they must match")
    return h, y.to(h.device, torch.int64)


def _as_float64(features, what: str) -> torch.Tensor:
    h = torch.from_numpy(features) if isinstance(features, np.ndarray) else torch.as_tensor(features)
    if h.ndim != 2:
        raise ValueError(f"{what} must be 2-D (N samples, D dims), got shape {tuple(h.shape)}; "
                         f"flatten first, e.g. x.reshape(len(x), -1)")
    if len(h) == 0:
        raise ValueError(f"{what} has no rows")
    h = h.detach().to(torch.float64)
    if not torch.isfinite(h).all():
        raise ValueError(f"{what} contain non-finite values (nan or inf); neural-collapse measures are "
                         f"undefined for them")
    return h
