"""Per-class streaming statistics of a stream of (B, D) feature batches: exact in float64, memory
independent of the number of samples (pass 1: class moments; pass 2: NC1 and nearest-class-centre counts)."""
from __future__ import annotations

import torch

from . import metrics
from .metrics import ClassMoments

CENTRE_ABOVE = 1e4  # pass 2 subtracts mu_G first when ||mu_G||^2 exceeds this many mean squared spreads
MAX_CANCELLED_DIGITS = 6  # of float64's 16 that the one-read pass 1 may cancel (ssd keeps ~1e-10 relative precision)
# float64 elements per column block of a batch: 8 MiB on CPU (of 2-32 MiB, the fastest at D = 512-4096
# on a 2-core EPYC: fewer, larger BLAS calls), large on GPUs, where each block costs kernel launches
BLOCK_ELEMENTS = {"cpu": 1 << 20, "cuda": 1 << 26}


class ClassAccumulator:
    """Per-class count, mean and sum of squared deviations of a stream of (B, D) features.

    Each batch is reduced to per-class batch moments in float64 and merged with Chan's parallel
    update  ssd = ssd_a + ssd_b + ||mean_b - mean_a||^2 n_a n_b / (n_a + n_b),  so the stream's
    length and order cost no precision. A batch's moments come from one read of its features:
    ssd_b = sum ||h_i||^2 - n_b ||mean_b||^2.  That subtraction cancels about
    log10(n_b ||mean_b||^2 / ssd_b) digits; where it would cancel more than
    :data:`MAX_CANCELLED_DIGITS` of float64's 16 (features far from the origin relative to their
    spread, e.g. float32 features with a large common offset, or tightly collapsed classes), the batch
    is reduced again from its deviations from the class means, the exact two-read way. Work is done
    in column blocks of the batch.

    With ``groups`` G > 1 the moments are kept per cell (class k, group g), each sample's group given with
    its batch (:class:`StratifiedGroups`: about 1/G of every class in each group, whatever the order of
    the stream). :meth:`moments` merges the groups; :meth:`cell_moments` gives the cells, from which
    ``metrics.merge_groups`` forms the delete-a-group jackknife's subsets.
    """

    def __init__(self, num_classes: int, groups: int = 1):
        self.num_classes, self.groups = num_classes, groups
        self.count = self.mean = self.ssd = None
        self.pending = PendingRows()

    def update(self, features: torch.Tensor, labels: torch.Tensor, group: torch.Tensor | None = None) -> None:
        """Add a batch: features (B, D) of any float dtype, labels (B,) int64 in [0, num_classes), and with
        ``groups`` > 1 each sample's group (B,) in [0, groups)."""
        if self.groups > 1 and group is None:
            raise ValueError(f"an accumulator of {self.groups} groups needs each sample's group")
        cells = labels if self.groups == 1 else labels * self.groups + group.to(labels.device)
        if self.pending.add(features.detach().reshape(len(features), -1), cells):
            self._merge(*self.pending.take())

    def _merge(self, parts: list[torch.Tensor], labels: torch.Tensor) -> None:
        if self.mean is None:
            device, dim = parts[0].device, parts[0].shape[1]
            self.count = torch.zeros(self.num_classes * self.groups, dtype=torch.float64, device=device)
            self.mean = torch.zeros(self.num_classes * self.groups, dim, dtype=torch.float64, device=device)
            self.ssd = torch.zeros_like(self.count)
        # classes in the batch, the row of each sample among them, and their counts
        present, index, batch_count = torch.unique(labels, return_inverse=True, return_counts=True)
        batch_count = batch_count.to(torch.float64)
        batch_mean = torch.zeros(len(present), self.mean.shape[1], dtype=torch.float64, device=self.mean.device)
        squared_norm = torch.zeros(len(labels), dtype=torch.float64, device=self.mean.device)
        for block, columns in column_blocks(parts):
            batch_mean[:, columns].index_add_(0, index, block)
            squared_norm += torch.linalg.vector_norm(block, dim=1).square()
        batch_mean.div_(batch_count[:, None])
        cancelled = batch_count * batch_mean.square().sum(1)  # n_b ||mean_b||^2
        batch_ssd = torch.zeros_like(batch_count).index_add_(0, index, squared_norm) - cancelled
        if bool((cancelled > 10.0 ** MAX_CANCELLED_DIGITS * batch_ssd).any()):
            batch_ssd = self._deviations(parts, index, batch_mean)
        old_count = self.count[present]
        total = old_count + batch_count
        delta = batch_mean - self.mean[present]
        self.mean[present] += delta * (batch_count / total)[:, None]
        self.ssd[present] += batch_ssd + delta.square().sum(1) * old_count * batch_count / total
        self.count[present] = total

    def _deviations(self, parts: list[torch.Tensor], index: torch.Tensor, batch_mean: torch.Tensor) -> torch.Tensor:
        """Per-class sum of squared deviations from the batch's class means, by a second read."""
        squared_deviation = torch.zeros(len(index), dtype=torch.float64, device=self.mean.device)
        for block, columns in column_blocks(parts, batch_mean, index):  # block = h_i - mean of class y_i
            squared_deviation += torch.linalg.vector_norm(block, dim=1).square()
        return torch.zeros(len(batch_mean), dtype=torch.float64, device=self.mean.device).index_add_(
            0, index, squared_deviation)

    def moments(self) -> ClassMoments:
        """Statistics of the classes that have samples (absent classes are left out)."""
        cells = self.cell_moments()
        return cells if self.groups == 1 else metrics.merge_groups(cells, self.groups)

    def cell_moments(self) -> ClassMoments:
        """Statistics of the cells that have samples (cell label: class * groups + group)."""
        if self.pending.rows:
            self._merge(*self.pending.take())
        if self.mean is None:
            raise ValueError("no batches were seen")
        if not (torch.isfinite(self.mean).all() and torch.isfinite(self.ssd).all()):
            raise ValueError("features contain non-finite values (nan or inf); the measures are undefined")
        present = self.count > 0
        classes = torch.nonzero(present).flatten()
        return ClassMoments(classes, self.count[present], self.mean[present], self.ssd[present])


class StratifiedGroups:
    """Jackknife groups of a stream: the i-th sample of class k (under the labels given) is in group i mod
    ``groups``. One assignment serves every label grouping of a batch, so a replicate of a ratio of two
    groupings' measures (the memorization ratio) leaves out the same images from both."""

    def __init__(self, num_classes: int, groups: int):
        self.num_classes, self.groups = num_classes, groups
        self.seen = torch.zeros(num_classes, dtype=torch.int64)  # samples of each class so far

    def __call__(self, labels: torch.Tensor) -> torch.Tensor:
        """The group of each sample of the next batch."""
        self.seen = self.seen.to(labels.device)
        onehot = torch.nn.functional.one_hot(labels, self.num_classes)
        rank = (onehot.cumsum(0) - 1).gather(1, labels[:, None]).squeeze(1) + self.seen[labels]
        self.seen += onehot.sum(0)
        return rank % self.groups


class SecondPassAccumulator:
    """NC1 and nearest-class-centre counts over a second pass, class means fixed from pass 1.

    Both need only the coordinates z = U^T (h - o) in the span U of the centred class means
    (r <= K - 1 of them, one matmul per column block): NC1 sums ||S^-1 (z_i - U^T (mu_{y_i} - o))||^2,
    and since every mu_k - mu_k' lies in that span, ||h - mu_k||^2 = ||h_perp||^2 + ||z - U^T (mu_k - o)||^2
    with h_perp the same for all k, so the nearest class mean is the nearest U^T (mu_k - o) to z. The
    origin o is 0, or mu_G when the features lie so far from 0 relative to their spread
    (||mu_G||^2 > :data:`CENTRE_ABOVE` x the mean squared within-class distance) that z = U^T h
    would lose precision.
    """

    def __init__(self, moments: ClassMoments, num_classes: int):
        metrics.check_classes(moments, need_spread=True)
        self.moments = moments
        self.global_mean = moments.global_mean()
        self.basis, singular = metrics.class_mean_basis(moments)  # (D, r), (r,)
        self.basis_rows = self.basis.T.contiguous()
        self.inverse_singular = 1.0 / singular
        spread = moments.ssd.sum() / moments.count.sum()
        far = bool(self.global_mean.square().sum() > CENTRE_ABOVE * spread)
        self.origin = self.global_mean if far else torch.zeros_like(self.global_mean)
        self.mean_coordinates = (moments.mean - self.origin) @ self.basis  # U^T (mu_k - o), (K, r)
        self.half_sq_norms = 0.5 * self.mean_coordinates.square().sum(1)
        device = self.global_mean.device
        self.row_of = torch.full((num_classes,), -1, dtype=torch.int64, device=device)
        self.row_of[moments.classes] = torch.arange(moments.num_classes, device=device)
        self.count = torch.zeros_like(moments.count)
        self.coordinate_sum = torch.zeros_like(self.inverse_singular)  # sum_k n_k U^T (mu_k - o) if the data are the same
        self.nc1_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.ncc_correct = torch.zeros((), dtype=torch.int64, device=device)
        self.nc4_disagree = torch.zeros_like(self.ncc_correct)
        self.pending = PendingRows()

    def update(self, features: torch.Tensor, labels: torch.Tensor, predictions: torch.Tensor) -> None:
        """Add a batch: features (B, D), labels (B,), the network's predicted labels (B,)."""
        if self.pending.add(features.detach().reshape(len(features), -1), labels, predictions):
            self._accumulate(*self.pending.take())

    def _accumulate(self, parts: list[torch.Tensor], labels: torch.Tensor, predictions: torch.Tensor) -> None:
        rows = self.row_of[labels]
        if (rows < 0).any():
            raise ValueError("the second pass has labels of classes that had no samples in the first pass: "
                             "both passes must see the same data")
        transposed = torch.zeros(self.basis.shape[1], len(labels), dtype=torch.float64, device=labels.device)
        for block, columns in column_blocks(parts, self.origin if self.origin.any() else None):  # h - o
            transposed.addmm_(self.basis_rows[:, columns], block.T)  # z^T = U^T x^T (faster than x U on CPU BLAS)
        coordinates = transposed.T
        self.coordinate_sum += transposed.sum(1)
        residual = (coordinates - self.mean_coordinates[rows]) * self.inverse_singular
        self.nc1_sum += residual.square().sum()
        nearest = (self.half_sq_norms - coordinates @ self.mean_coordinates.T).argmin(1)  # argmin ||z - U^T c_k||
        self.ncc_correct += (nearest == rows).sum()
        self.nc4_disagree += (self.moments.classes[nearest] != predictions).sum()
        self.count += torch.bincount(rows, minlength=self.moments.num_classes)

    def result(self) -> dict[str, float]:
        """{"nc1", "ncc_accuracy", "nc4"}, after checking pass 2 saw the data of pass 1."""
        if self.pending.rows:
            self._accumulate(*self.pending.take())
        moments = self.moments
        if not torch.equal(self.count, moments.count):
            raise ValueError(f"the second pass saw {self.count.long().tolist()} samples per class but the first saw "
                             f"{moments.count.long().tolist()}: both passes must see the same data")
        n = moments.count.sum()
        centred_sq = (moments.mean - self.global_mean).square().sum(1)
        scale = torch.sqrt((moments.ssd.sum() + moments.count @ centred_sq) / n)
        drift = torch.linalg.vector_norm((self.coordinate_sum - moments.count @ self.mean_coordinates) / n)
        if drift > 1e-4 * scale:
            raise ValueError(f"the mean feature (in the span of the class means) differs between the two passes by "
                             f"{float(drift / scale):.2g} of "
                             "the feature scale: the batches must be deterministic (no augmentation) and the same")
        nc1 = float(self.nc1_sum / n) if len(self.inverse_singular) else torch.inf
        return {"nc1": float(nc1), "ncc_accuracy": float(self.ncc_correct / n), "nc4": float(self.nc4_disagree / n)}


class PendingRows:
    """Small batches held back until they fill a column block: narrow features (small D) are then
    reduced a few hundred rows at a time, so the fixed cost of an update is paid less often."""

    def __init__(self):
        self.parts: list[tuple[torch.Tensor, ...]] = []
        self.rows = 0

    def add(self, h: torch.Tensor, *per_row: torch.Tensor) -> bool:
        """Hold (h, labels, ...); True when the held rows fill a block and should be reduced."""
        self.parts.append((h, *per_row))
        self.rows += len(h)
        return self.rows * h.shape[1] >= BLOCK_ELEMENTS.get(h.device.type, BLOCK_ELEMENTS["cpu"])

    def take(self) -> tuple:
        """(the held feature batches as a list, then each per-row tensor concatenated)."""
        parts, self.parts, self.rows = self.parts, [], 0
        features, *per_row = zip(*parts)
        return (list(features), *(torch.cat(column) for column in per_row))


def column_blocks(parts: list[torch.Tensor], shift: torch.Tensor | None = None, index: torch.Tensor | None = None):
    """Yield (float64 block of the stacked ``parts``, minus ``shift`` if given, and its column slice),
    written part by part into one reused buffer. ``shift`` is a (D,) vector, or with ``index`` (one
    entry per row) a (K, D) matrix whose row ``index[i]`` is subtracted from row i."""
    rows, dim, device = sum(len(h) for h in parts), parts[0].shape[1], parts[0].device
    elements = BLOCK_ELEMENTS.get(device.type, BLOCK_ELEMENTS["cpu"])
    width = max(1, min(dim, elements // max(1, rows)))
    buffer = torch.empty(rows, width, dtype=torch.float64, device=device)
    for start in range(0, dim, width):
        columns = slice(start, min(start + width, dim))
        block = buffer[:, : columns.stop - start]
        first = 0
        for h in parts:
            rows_of_part = slice(first, first + len(h))
            block[rows_of_part].copy_(h[:, columns])
            if shift is not None:
                block[rows_of_part].sub_(shift[columns] if index is None else
                                         shift[:, columns].index_select(0, index[rows_of_part]))
            first += len(h)
        yield block, columns
