"""Exact neural-collapse measures of every layer tap from a stream of batches, in two passes.

Pass 1 keeps, per (tap, feature view, label grouping), the per-class count, mean and sum of
squared deviations in float64 (Chan et al.'s parallel update), from which CDNV (eq. 4), NC2
(eq. 5), equal norms, max angle and NC3 follow. Pass 2 reads the data again with the class means
fixed and accumulates the few numbers NC1 and NCC need, from the coordinates of every sample in
the span of the centred class means (rank <= K - 1, so no D x D matrix). Memory is O(taps x K x D),
independent of the number of samples.

Every batch is ``(x, y)``: x ready for the model, y an int64 label tensor (grouping "y") or a dict
{grouping name: labels}, e.g. {"clean": ..., "noisy": ...}, all served by one forward pass.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator

import pandas as pd
import torch
from torch import nn

from . import metrics
from .accumulators import ClassAccumulator, SecondPassAccumulator, StratifiedGroups
from .metrics import ClassMoments
from .models import classifier, forward_with_taps, layer_taps

FEATURE_VIEWS = ("flat", "pooled")
DEFAULT_GROUPING = "y"
PENULTIMATE = "penultimate"  # the classifier's input, measured after the taps (and NC3 on it)
JACKKNIFE_MEASURES = ("cdnv_sum", "nc2")  # the measures given jackknife replicates (measure(jackknife=G))

def measure(model: nn.Module, batches, *, num_classes: int | None = None, features: str | Iterable[str] = "flat",
            second_pass: bool = True, penultimate: bool = True, taps: Iterable[str] | None = None,
            jackknife: int = 0, progress: bool = False) -> pd.DataFrame:
    """Neural-collapse measures of every tap of ``model`` over ``batches``, as a tidy DataFrame.

    batches: ``(x, y)`` pairs (see the module doc). With ``second_pass`` (NC1, NCC accuracy, NC4)
        the data are read twice, so pass a re-iterable (list, DataLoader) or a zero-argument
        callable returning a fresh iterable, with deterministic batches (no augmentation).
    num_classes: labels lie in [0, num_classes); default: the classifier's output size.
    features: "flat" (x.flatten(1), the paper's), "pooled" (mean over spatial/token dims), or both.
    second_pass: False gives the pass-1 measures only (CDNV, NC2, equal norms, max angle, NC3).
    penultimate: also measure the classifier's input (layer "penultimate"), with NC3.
    taps: a subset of ``layer_taps(model)``; default all.
    jackknife: G > 1 adds the measures of :data:`JACKKNIFE_MEASURES` without each group g < G of samples
        (the i-th sample of each class of the first label grouping is in group i mod G, for every grouping),
        as measures ``"<name>@jk<g>"`` (:func:`jackknife_name`):
        the delete-a-group jackknife's replicates, from which :func:`ncutils.verdict.jackknife` gives the
        standard error over images of any statistic of them. Pass 1 then keeps G cells per class (memory x G).

    Columns: layer, layer_index, features, labels (grouping), measure, value, num_classes,
    num_samples, dim. Measures: cdnv_sum (eq. 4, the paper's figures), cdnv_mean, nc2 (eq. 5),
    equal_norms, max_angle, nc1, ncc_accuracy, nc4 and, on the penultimate layer, nc3 (see
    :mod:`ncutils.metrics`). The model's training flag is restored afterwards.
    """
    views = _feature_views(features)
    if not isinstance(jackknife, int) or jackknife < 0 or jackknife == 1:
        raise ValueError(f"jackknife must be 0 (no replicates) or a number of groups >= 2, got {jackknife!r}")
    if second_pass and is_one_shot(batches):
        raise TypeError("batches is a one-shot iterator (e.g. a generator), but the second pass (NC1, NCC, NC4) "
                        "needs the data again: pass a list, a DataLoader, or a zero-argument callable returning a "
                        "fresh iterable; or set second_pass=False")
    head = classifier(model) if penultimate or num_classes is None else None
    num_classes = head.out_features if num_classes is None else num_classes
    head = head if penultimate else None
    selected = select_taps(model, taps)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            first, assign = {}, StratifiedGroups(num_classes, max(1, jackknife))
            for _, layers, groups in _forward_passes(model, batches, selected, head, num_classes, progress, "pass 1"):
                group = assign(next(iter(groups.values()))) if jackknife >= 2 else None  # by the first grouping
                for key, h in _keyed_views(layers, views, groups):
                    first.setdefault(key, ClassAccumulator(num_classes, max(1, jackknife))).update(
                        h, groups[key[2]], group)
            cells = {key: _located(key, acc.cell_moments) for key, acc in first.items()}
            del first  # the moments are copies; free the accumulators before pass 2
            moments = cells if jackknife < 2 else {key: metrics.merge_groups(c, jackknife) for key, c in cells.items()}
            _warn_absent_classes(moments, num_classes)
            layer_index = {layer: i for i, layer in enumerate(dict.fromkeys(key[0] for key in moments))}
            rows = [row for key, m in moments.items()
                    for row in _rows(key, layer_index, m, _located(key, _first_pass_measures, m, head, key[0]))]
            if jackknife >= 2:
                rows += [row for key, c in cells.items() for g in range(jackknife)
                         for row in _replicate_rows(key, layer_index, metrics.merge_groups(c, jackknife, g),
                                                    moments[key].classes, g)]
            del cells
            if second_pass:
                second = {key: _located(key, SecondPassAccumulator, m, num_classes) for key, m in moments.items()}
                for logits, layers, groups in _forward_passes(model, batches, selected, head, num_classes, progress,
                                                              "pass 2"):
                    predictions = logits.argmax(1)
                    for key, h in _keyed_views(layers, views, groups):
                        second[key].update(h, groups[key[2]], predictions)
                rows += [row for key, acc in second.items()
                         for row in _rows(key, layer_index, moments[key], _located(key, acc.result))]
    finally:
        model.train(was_training)
    table = pd.DataFrame(rows, columns=["layer", "layer_index", "features", "labels", "measure", "value",
                                        "num_classes", "num_samples", "dim"])
    return table.sort_values(["layer_index", "features", "labels"], kind="stable", ignore_index=True)


def iterate_batches(batches, what: str, progress: bool = False) -> Iterator:
    """A fresh iteration of ``batches`` (a re-iterable, or a callable returning an iterable)."""
    iterable = batches() if callable(batches) else batches
    if progress:
        from tqdm import tqdm

        return iter(tqdm(iterable, desc=what))
    return iter(iterable)


def is_one_shot(batches) -> bool:
    """True for an iterator that can be read only once (a generator, ``iter(list)``); checked
    without calling ``iter``, which would start a DataLoader's workers."""
    return not callable(batches) and isinstance(batches, Iterator)


def _forward_passes(model, batches, selected, head, num_classes, progress, what):
    """Yield (logits, {layer: features}, {grouping: labels}) per batch, one forward each."""
    device = model_device(model)
    captured = {}
    hook = None if head is None else head.register_forward_pre_hook(
        lambda _m, args: captured.__setitem__(PENULTIMATE, args[0]))
    groupings = None
    try:
        for batch in iterate_batches(batches, what, progress):
            x, y = unpack_batch(batch)
            x = x if device is None else x.to(device)
            groups = _label_groups(y, len(x), num_classes, x.device)
            if groupings is None:
                groupings = list(groups)
            elif list(groups) != groupings:
                raise ValueError(f"every batch must carry the same label groupings; got {list(groups)} "
                                 f"after {groupings}")
            logits, tapped = forward_with_taps(model, x)
            layers = {name: tapped[name] for name in selected}
            if hook is not None:
                layers[PENULTIMATE] = captured.pop(PENULTIMATE)
            yield logits, layers, groups
    finally:
        if hook is not None:
            hook.remove()
    if groupings is None:
        raise ValueError(f"{what}: batches yielded nothing")


def select_taps(model, taps) -> list[str]:
    """The model's taps in forward order, restricted to ``taps`` if given."""
    available = layer_taps(model)
    if taps is None:
        return available
    unknown = [t for t in taps if t not in available]
    if unknown:
        raise ValueError(f"unknown taps {unknown}; this model has {available}")
    return [t for t in available if t in taps]


def _keyed_views(layers: dict, views: tuple[str, ...], groups: dict):
    """((layer, view, grouping), features) for every combination, each view computed once."""
    for layer, t in layers.items():
        for view in views:
            h = t.flatten(1) if view == "flat" or t.ndim == 2 else t.mean(dim=tuple(range(2, t.ndim)),
                                                                            dtype=torch.float64)
            for grouping in groups:
                yield (layer, view, grouping), h


def _first_pass_measures(moments: ClassMoments, head: nn.Linear | None, layer: str) -> dict[str, float]:
    cdnv_sum = metrics.cdnv_of(moments, "sum")
    pairs = moments.num_classes * (moments.num_classes - 1)
    values = {"cdnv_sum": cdnv_sum, "cdnv_mean": cdnv_sum / pairs, "nc2": metrics.nc2_of(moments),
              "equal_norms": metrics.equal_norms_of(moments), "max_angle": metrics.max_angle_of(moments)}
    if layer == PENULTIMATE and head is not None:
        values["nc3"] = metrics.nc3_of(moments, head.weight)
    return values


def jackknife_name(measure: str, group: int) -> str:
    """The measure name of a jackknife replicate: ``measure`` without the samples of ``group``."""
    return f"{measure}@jk{group}"


def _replicate_rows(key, layer_index, moments: ClassMoments, classes: torch.Tensor, group: int) -> list[tuple]:
    """A replicate's measures; nan where leaving the group out loses a class or leaves one with < 2 samples
    (a replicate must measure the classes the full data measure)."""
    complete = torch.equal(moments.classes, classes) and bool((moments.count >= 2).all())
    values = {"cdnv_sum": lambda: metrics.cdnv_of(moments, "sum"), "nc2": lambda: metrics.nc2_of(moments)}
    return _rows(key, layer_index, moments, {jackknife_name(name, group): _located(key, values[name]) if complete
                                             else float("nan") for name in JACKKNIFE_MEASURES})


def _rows(key, layer_index, moments: ClassMoments, values: dict[str, float]) -> list[tuple]:
    layer, view, grouping = key
    return [(layer, layer_index[layer], view, grouping, name, value, moments.num_classes, moments.num_samples,
             moments.dim) for name, value in values.items()]


def _located(key, fn: Callable, *args):
    """Call fn, naming the layer, view and grouping in its errors and degenerate-geometry warnings."""
    where = f"{key[0]} ({key[1]} features, labels {key[2]!r})"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", metrics.DegenerateGeometryWarning)
        try:
            result = fn(*args)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from error
    for w in caught:
        warnings.warn(f"{where}: {w.message}", w.category, stacklevel=2)
    return result


def _warn_absent_classes(moments: dict, num_classes: int) -> None:
    seen = set()
    for (_, _, grouping), m in moments.items():
        if grouping not in seen and m.num_classes < num_classes:
            seen.add(grouping)
            absent = sorted(set(range(num_classes)) - set(m.classes.tolist()))
            warnings.warn(f"labels {grouping!r}: classes {absent[:10]} have no samples; measures use the "
                          f"{m.num_classes} classes present", UserWarning, stacklevel=3)


def _feature_views(features) -> tuple[str, ...]:
    views = (features,) if isinstance(features, str) else tuple(features)
    bad = [v for v in views if v not in FEATURE_VIEWS]
    if bad or not views:
        raise ValueError(f"features must be one or more of {FEATURE_VIEWS}, got {features!r}")
    return tuple(dict.fromkeys(views))


def unpack_batch(batch):
    """(x, y) of a batch, or a ValueError saying what a batch must be."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise ValueError(f"each batch must be a pair (x, y); got {type(batch).__name__}"
                         f"{' of length ' + str(len(batch)) if isinstance(batch, (tuple, list)) else ''}")
    return batch


def _label_groups(y, batch_size: int, num_classes: int, device) -> dict[str, torch.Tensor]:
    groups = dict(y) if isinstance(y, dict) else {DEFAULT_GROUPING: y}
    if not groups:
        raise ValueError("the label dict of a batch is empty; give at least one grouping")
    checked = {}
    for name, labels in groups.items():
        labels = torch.as_tensor(labels)
        if labels.ndim != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise ValueError(f"labels {name!r} must be a 1-D integer tensor, got {labels.dtype} {tuple(labels.shape)}")
        if len(labels) != batch_size:
            raise ValueError(f"labels {name!r} has {len(labels)} entries but the batch has {batch_size} inputs")
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"labels {name!r} must lie in [0, {num_classes}); got [{int(labels.min())}, "
                             f"{int(labels.max())}] (set num_classes)")
        checked[name] = labels.to(device, torch.int64)
    return checked


def model_device(model: nn.Module) -> torch.device | None:
    """The model's device (None for a model without parameters: inputs stay where they are)."""
    parameter = next(model.parameters(), None)
    return None if parameter is None else parameter.device
