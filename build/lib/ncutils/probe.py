"""Layer-wise linear probing, every tap from one frozen-backbone pass: the appendix's SGD probe and a converged one.

:func:`converged_probe`: each tap's average-pooled training features are extracted once and a
multinomial logistic regression is fitted to convergence on them (:mod:`ncutils.logistic`), so a
probe's accuracy says what the layer's features allow, not how far a short optimisation got.

:func:`probe` (appendix A.1 of Zhou et al. 2025): the backbone is frozen in eval mode; each tap's features are average-pooled to (B, C) (adaptive
average pooling to 1x1) and feed their own ``nn.Linear``. All heads train together on the sum of
their cross-entropy losses (the heads share no parameters, so each gets exactly its own gradient)
with SGD (momentum 0.9, weight decay 5e-4), lr 0.1 for 10 epochs, x0.2 at epochs 5 and 7.

Without augmentation the pooled features of the training set never change, so by default they are
computed once (during the first epoch) and replayed: the backbone runs once over the training data
instead of once per epoch.
"""
from __future__ import annotations

from itertools import accumulate

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .logistic import L2, fit_logistic
from .models import classifier, forward_with_taps
from .streaming import is_one_shot, iterate_batches, model_device, select_taps, unpack_batch


def lr_schedule(epochs: int = 10, lr: float = 0.1, gamma: float = 0.2) -> list[float]:
    """Learning rate of each epoch: x``gamma`` from 50% and again from 70% of the epochs (epochs 5
    and 7 of 10, as in appendix A.1; milestones scale with ``epochs``)."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    milestones = [max(1, int(epochs * share)) for share in (0.5, 0.7)]
    return [lr * gamma ** sum(epoch >= m for m in milestones) for epoch in range(epochs)]


def probe(model: nn.Module, train, test, *, augmented: bool = True, cache: bool | None = None,
          num_classes: int | None = None, epochs: int = 10, lr: float = 0.1, momentum: float = 0.9,
          weight_decay: float = 5e-4, gamma: float = 0.2, shuffle: bool = True, labels: str | None = None,
          taps=None, seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """Train a linear probe on every tap; return layer, layer_index, train_acc, test_acc.

    train, test: ``(x, y)`` batches as for :func:`ncutils.streaming.measure` (a re-iterable or a
        callable returning a fresh iterable); ``labels`` picks the grouping when y is a dict.
    augmented: whether ``train`` yields a new random augmentation each epoch. If not, ``cache``
        (the default then) computes the pooled features once and replays them; ``shuffle``
        reshuffles the cached samples each epoch (seeded, batch size of the first batch), like a
        shuffling DataLoader; ``shuffle=False`` replays the batches in the order first seen.
    train_acc is measured after training, over one more read of ``train`` (or the cache).
    """
    cache = not augmented if cache is None else cache
    if cache and augmented:
        raise ValueError("cache=True would freeze one draw of an augmented training set; use cache=False "
                         "(the backbone then runs every epoch) or pass augmented=False")
    if not cache and is_one_shot(train):
        raise TypeError("train is a one-shot iterator, but uncached probing reads it every epoch: pass a list, "
                        "a DataLoader, or a callable returning a fresh iterable (or cache with augmented=False)")
    num_classes = classifier(model).out_features if num_classes is None else num_classes
    selected = select_taps(model, taps)
    schedule = lr_schedule(epochs, lr, gamma)
    was_training = model.training
    model.eval()
    try:
        store = _FeatureStore() if cache else None
        shuffler = torch.Generator().manual_seed(seed)
        heads = optimizer = None
        for epoch, epoch_lr in enumerate(schedule):
            if store is not None and store.complete:
                batches = store.replay(shuffle, shuffler)
            else:
                batches = _pooled_batches(model, train, selected, labels, f"probe epoch {epoch + 1}", progress)
                batches = batches if store is None else store.record(batches)
            for features, y in batches:
                if heads is None:
                    heads = _make_heads([f.shape[1] for f in features], num_classes, seed, y.device)
                    optimizer = torch.optim.SGD(heads.parameters(), lr=lr, momentum=momentum,
                                                weight_decay=weight_decay)
                for group in optimizer.param_groups:
                    group["lr"] = epoch_lr
                loss = sum(F.cross_entropy(head(f), y) for head, f in zip(heads, features))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        if heads is None:
            raise ValueError("train yielded no batches")
        train_batches = store.replay(False, shuffler) if store is not None else \
            _pooled_batches(model, train, selected, labels, "probe train accuracy", progress)
        train_acc = _accuracies(heads, train_batches)
        test_acc = _accuracies(heads, _pooled_batches(model, test, selected, labels, "probe test", progress))
    finally:
        model.train(was_training)
    return pd.DataFrame({"layer": selected, "layer_index": range(len(selected)),
                         "train_acc": train_acc, "test_acc": test_acc})


def converged_probe(model: nn.Module, train, test, *, num_classes: int | None = None, labels: str | None = None,
                    taps=None, l2: float = L2, progress: bool = False) -> pd.DataFrame:
    """Fit a converged linear probe on every tap's pooled features (one backbone pass over ``train``
    and one over ``test``, as for :func:`probe` with ``augmented=False``); return layer, layer_index,
    train_acc, test_acc, train_loss (mean cross-entropy), iterations and converged (see
    :func:`ncutils.logistic.fit_logistic`), num_train and num_test. The training features of every tap are held in memory."""
    num_classes = classifier(model).out_features if num_classes is None else num_classes
    selected = select_taps(model, taps)
    was_training = model.training
    model.eval()
    try:
        train_features, train_labels = _collected(_pooled_batches(model, train, selected, labels, "probe train", progress))
        test_features, test_labels = _collected(_pooled_batches(model, test, selected, labels, "probe test", progress))
    finally:
        model.train(was_training)
    rows = []
    for index, (layer, features, tested) in enumerate(zip(selected, train_features, test_features)):
        fit = fit_logistic(features, train_labels, num_classes, l2=l2)
        rows.append({"layer": layer, "layer_index": index, "train_acc": fit.train_acc,
                     "test_acc": fit.accuracy(tested, test_labels), "train_loss": fit.train_loss,
                     "iterations": fit.iterations, "converged": fit.converged,
                     "num_train": len(train_labels), "num_test": len(test_labels)})
    return pd.DataFrame(rows)


def probe_rows(fits: pd.DataFrame, eval_data: str, num_classes: int, num_train: int, num_test: int) -> pd.DataFrame:
    """A probe table (:func:`probe` or :func:`converged_probe`) as rows of the tidy metrics table: measures
    ``probe_train_acc`` and ``probe_test_acc``, and a converged probe's ``probe_train_loss``,
    ``probe_iterations`` and ``probe_converged`` (split "train"); pooled features, clean inputs and labels."""
    rows = []
    for split, count in (("train", num_train), ("test", num_test)):
        rows.append(pd.DataFrame({
            "eval_data": eval_data, "split": split, "inputs": "clean", "labels": "clean", "features": "pooled",
            "layer": fits["layer"], "layer_index": fits["layer_index"], "measure": f"probe_{split}_acc",
            "value": fits[f"{split}_acc"], "num_classes": num_classes, "num_samples": count, "dim": pd.NA}))
    for fit in ("train_loss", "iterations", "converged"):
        if fit in fits:
            rows.append(rows[0].assign(measure=f"probe_{fit}", value=fits[fit].astype(float)))
    return pd.concat(rows, ignore_index=True)


def _collected(batches) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(every tap's features of all batches, concatenated; the labels)."""
    parts = list(batches)
    if not parts:
        raise ValueError("the probe's batches are empty")
    return [torch.cat(per_tap) for per_tap in zip(*(f for f, _ in parts))], torch.cat([y for _, y in parts])


class _FeatureStore:
    """Pooled features of every tap for the whole training set, recorded once, in the order seen."""

    def __init__(self):
        self.recorded, self.complete = [], False

    def record(self, batches):
        """Pass ``batches`` through, keeping them; complete once they are exhausted."""
        for batch in batches:
            self.recorded.append(batch)
            yield batch
        if not self.recorded:
            raise ValueError("train yielded no batches")
        self.sizes = [len(y) for _, y in self.recorded]
        self.features = [torch.cat(per_tap) for per_tap in zip(*(f for f, _ in self.recorded))]
        self.labels = torch.cat([y for _, y in self.recorded])
        self.recorded, self.complete = [], True

    def replay(self, shuffle: bool, generator: torch.Generator):
        """The recorded samples again: reshuffled into batches of the first batch's size, or as seen."""
        if shuffle:
            order = torch.randperm(len(self.labels), generator=generator).to(self.labels.device)
            return (([f[idx] for f in self.features], self.labels[idx]) for idx in order.split(self.sizes[0]))
        starts = accumulate(self.sizes[:-1], initial=0)
        return (([f[start:start + size] for f in self.features], self.labels[start:start + size])
                for start, size in zip(starts, self.sizes))


def _pooled_batches(model, batches, taps, labels, what, progress):
    """(list of pooled (B, C) features per tap, labels) per batch, one frozen-backbone pass each."""
    device = model_device(model)
    for batch in iterate_batches(batches, what, progress):
        x, y = unpack_batch(batch)
        x = x if device is None else x.to(device)
        with torch.no_grad():
            _, tapped = forward_with_taps(model, x)
            pooled = [_pool(tapped[t]) for t in taps]
        yield pooled, _labels(y, labels, len(x)).to(x.device)


def _pool(t: torch.Tensor) -> torch.Tensor:
    """Adaptive average pooling to 1x1: mean over every dim after the channels, in float32."""
    return (t if t.ndim == 2 else t.mean(dim=tuple(range(2, t.ndim)))).float()


def _labels(y, grouping: str | None, batch_size: int) -> torch.Tensor:
    if isinstance(y, dict):
        if grouping not in y:
            raise ValueError(f"batches carry label groupings {list(y)}; choose one with labels=...")
        y = y[grouping]
    y = torch.as_tensor(y)
    if y.ndim != 1 or len(y) != batch_size or y.dtype.is_floating_point:
        raise ValueError(f"labels must be a 1-D integer tensor of the batch's length {batch_size}, "
                         f"got {y.dtype} {tuple(y.shape)}")
    return y.long()


def _make_heads(channels: list[int], num_classes: int, seed: int, device) -> nn.ModuleList:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        heads = nn.ModuleList(nn.Linear(c, num_classes) for c in channels)
    return heads.to(device)


def _accuracies(heads: nn.ModuleList, batches) -> list[float]:
    correct = torch.zeros(len(heads), dtype=torch.int64)
    total = 0
    with torch.no_grad():
        for features, y in batches:
            correct += torch.stack([(head(f).argmax(1) == y).sum().cpu() for head, f in zip(heads, features)])
            total += len(y)
    return (correct.double() / total).tolist()
