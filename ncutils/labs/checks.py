"""Self-checks of the labs: a student's answer against a value computed independently, printed as "correct" or "not yet: ...".

The reference values do not go through the streaming accumulators a student calls
(:func:`ncutils.streaming.measure`, :func:`ncutils.measure`): every tap's output is captured by a forward hook
of its own, flattened, held in memory, and measured by the plain-array functions of :mod:`ncutils.metrics`
(CDNV eq. 4 summed over ordered pairs, NC1, NC2 eq. 5, the memorization ratio of Definition 1).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import pandas as pd
import torch
from torch import nn

from .. import metrics
from ..data import Batches, ImageData
from ..models import TappedModel
from ..taps import ACTIVATIONS, taps_of

BATCH = 250  # images per forward pass of the reference


def _modules(model: nn.Module, taps) -> tuple[nn.Module, dict[str, str]]:
    """(the network to run, {tap name: module path in it}): a TappedModel's own taps, else ``taps`` (a list
    of module paths or {name: path}; default :func:`ncutils.taps_of`)."""
    if isinstance(model, TappedModel):
        chosen = dict(model.taps) if taps is None else {t: model.taps[t] for t in taps}
        return model.net, chosen
    if taps is None:
        return model, taps_of(model)
    return model, dict(taps) if isinstance(taps, Mapping) else {path: path for path in taps}


def tap_features(model: nn.Module, data: ImageData, taps=None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """({tap: (N, D) flattened float32 outputs}, (N, K) logits) of ``model`` in eval mode on ``data``,
    from forward hooks (the model's training flag is restored)."""
    net, chosen = _modules(model, taps)
    modules = dict(net.named_modules())
    captured: dict[str, list[torch.Tensor]] = {name: [] for name in chosen}
    handles = [modules[path].register_forward_hook(
        lambda _m, _i, out, name=name: captured[name].append(out.detach().flatten(1).float().cpu()))
        for name, path in chosen.items()]
    was_training = net.training
    net.eval()
    logits = []
    try:
        with torch.inference_mode():
            for x, _ in Batches(data, BATCH):
                logits.append(net(x).float().cpu())
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)
    return {name: torch.cat(parts) for name, parts in captured.items()}, torch.cat(logits)


def reference_measures(model: nn.Module, data: ImageData, labels: torch.Tensor | None = None,
                       taps=None) -> pd.DataFrame:
    """CDNV (summed over ordered pairs, the paper's), NC1 and NC2 of every tap's flattened features under
    ``labels`` (default the data's): one row per tap, in forward order."""
    features, _ = tap_features(model, data, taps)
    y = data.labels if labels is None else labels
    rows = {name: {"cdnv": metrics.cdnv(h, y), "nc1": metrics.nc1(h, y), "nc2": metrics.nc2(h, y)}
            for name, h in features.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("tap")


def reference_ratios(model: nn.Module, data: ImageData, clean: torch.Tensor, noisy: torch.Tensor,
                     taps=None) -> pd.Series:
    """The memorization ratio CDNV(clean labels) / CDNV(noisy labels) of every tap (flattened features)."""
    features, _ = tap_features(model, data, taps)
    return pd.Series({name: metrics.memorization_ratio(h, clean, h, noisy) for name, h in features.items()},
                     name="memorization ratio").rename_axis("tap")


def reference_accuracy(model: nn.Module, data: ImageData, labels: torch.Tensor | None = None) -> float:
    """Share of ``data`` whose arg-max logit is its label (``labels``, default the data's)."""
    _, logits = tap_features(model, data, taps={})
    y = data.labels if labels is None else labels
    return float((logits.argmax(1) == y).double().mean())


def decades_fallen(values: pd.Series) -> pd.Series:
    """How many decades (factors of 10) ``values`` fall at each tap from the tap before it (first tap: nan)."""
    return -values.astype(float).apply(math.log10).diff()


def check_model(exercise: str, model, taps, *, min_taps: int = 3, num_classes: int = 10,
                shape: tuple[int, ...] = (3, 32, 32)) -> bool:
    """Print "correct" when ``model`` is an ``nn.Module`` mapping a batch of ``shape`` images to
    ``num_classes`` logits, with at least ``min_taps`` activation layers, and ``taps`` lists the paths of
    its activation modules (what :func:`ncutils.taps_of` finds in a network without blocks), in order."""
    if not isinstance(model, nn.Module):
        problem = f"model is a {type(model).__name__}, not a torch.nn.Module"
    else:
        try:
            with torch.inference_mode():
                out = model.eval()(torch.zeros(2, *shape))
            problem = None if tuple(out.shape) == (2, num_classes) else \
                f"a batch of 2 images gives outputs of shape {tuple(out.shape)}, expected (2, {num_classes})"
        except Exception as e:  # noqa: BLE001 - any failure of the student's model is reported, not raised
            problem = f"a batch of 2 images of shape {shape} fails: {type(e).__name__}: {e}"
        model.train()
        activations = [path for path, m in model.named_modules() if path and isinstance(m, ACTIVATIONS)]
        if problem is None and len(activations) < min_taps:
            problem = f"it has {len(activations)} activation layers, expected at least {min_taps}"
        if problem is None:
            problem = _difference(taps, activations, 0)
    print(f"correct: {exercise} (the model and its taps)" if problem is None else f"not yet: {exercise}: {problem}")
    return problem is None


def check(exercise: str, answer, expected, *, rtol: float = 1e-4, what: str = "") -> bool:
    """Print "correct" when ``answer`` matches ``expected`` (numbers within ``rtol``; a per-tap Series or
    dict tap by tap, in the same order; strings, booleans and lists exactly), else "not yet: " and the first
    difference; return whether it matched."""
    problem = _difference(answer, expected, rtol)
    label = f"{exercise}{f' ({what})' if what else ''}"
    print(f"correct: {label}" if problem is None else f"not yet: {label}: {problem}")
    return problem is None


def _difference(answer, expected, rtol: float) -> str | None:
    """None when ``answer`` matches ``expected``, else what differs (one line)."""
    if isinstance(expected, (pd.Series, Mapping)):
        return _series_difference(answer, pd.Series(expected), rtol)
    if isinstance(expected, numbers.Real) and not isinstance(expected, bool):
        if isinstance(answer, torch.Tensor) and answer.numel() == 1:
            answer = answer.item()
        if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
            return f"expected a number, got {type(answer).__name__} {answer!r:.80}"
        if not _close(float(answer), float(expected), rtol):
            return f"got {float(answer):.6g}, expected {float(expected):.6g}"
        return None
    if isinstance(expected, (list, tuple)):
        if not isinstance(answer, (list, tuple, pd.Index)):
            return f"expected a list, got {type(answer).__name__} {answer!r:.80}"
        return None if list(answer) == list(expected) else f"got {list(answer)}, expected {list(expected)}"
    if answer == expected and type(answer) is type(expected):
        return None
    return f"got {answer!r:.80}, expected {expected!r:.80}"


def _series_difference(answer, expected: pd.Series, rtol: float) -> str | None:
    if isinstance(answer, Mapping):
        answer = pd.Series(answer)
    if not isinstance(answer, pd.Series):
        return f"expected a pandas Series (one value per tap), got {type(answer).__name__}"
    got, want = [str(i) for i in answer.index], [str(i) for i in expected.index]
    if got != want:
        missing, extra = [t for t in want if t not in got], [t for t in got if t not in want]
        detail = (f"missing {missing}" if missing else "") + ("; " if missing and extra else "") + \
                 (f"not a tap: {extra}" if extra else "")
        return f"its index is {got}, expected the taps {want}" + (f" ({detail})" if detail else " (order differs)")
    for tap, a, e in zip(want, answer.to_numpy(), expected.to_numpy()):
        try:
            a = float(a)
        except (TypeError, ValueError):
            return f"at {tap}: got {a!r:.40}, not a number"
        if not _close(a, float(e), rtol):
            return f"at {tap}: got {a:.6g}, expected {float(e):.6g}"
    return None


def _close(a: float, e: float, rtol: float) -> bool:
    if math.isnan(e):
        return math.isnan(a)
    if math.isinf(e):
        return a == e
    return math.isfinite(a) and abs(a - e) <= rtol * max(abs(e), 1e-12)
