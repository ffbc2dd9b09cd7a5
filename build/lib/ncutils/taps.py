"""Layer taps of any ``torch.nn.Module``: find its natural layers, detect their layout, wrap it as a :class:`TappedModel`.

The natural layers of a network are its blocks, in forward order: the outermost modules whose class is
a block (torchvision and timm ResNet ``BasicBlock``/``Bottleneck``, ConvNeXt ``CNBlock``/``ConvNeXtBlock``,
EfficientNet ``MBConv``/``InvertedResidual``, ViT ``EncoderBlock``/``Block``, Swin
``SwinTransformerBlock``, ...). A network without blocks (a VGG) is tapped after every activation of its
longest ``nn.Sequential``. The layout (channels first, NHWC, tokens) is read off one forward pass.
"""
from __future__ import annotations

import re

import torch
from torch import nn

from .models import TappedModel
from .models.tapped import LAYOUTS

BLOCK = re.compile(r"(Block|Bottleneck|MBConv|InvertedResidual|DepthwiseSeparableConv|EdgeResidual)$")
ACTIVATIONS = (nn.ReLU, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.Tanh, nn.Hardswish, nn.ELU)


def taps_of(model: nn.Module) -> dict[str, str]:
    """The natural layers of ``model`` as {tap name: module path} in forward order (the name is the path).

    ValueError when none is found: pass the taps explicitly (a list of module paths or {name: path})."""
    if isinstance(model, TappedModel):
        return dict(model.taps)
    blocks = _outermost([path for path, module in model.named_modules() if path and BLOCK.search(type(module).__name__)])
    if not blocks:
        blocks = _activations_of_longest_sequential(model)
    if not blocks:
        raise ValueError(f"found no blocks or activation layers in {type(model).__name__}; pass taps=[module paths] "
                         f"(e.g. {[p for p, _ in model.named_children()][:4]})")
    return {path: path for path in blocks}


def classifier_path(model: nn.Module) -> str:
    """The path of the final ``nn.Linear`` (timm's ``get_classifier()`` where the model has it)."""
    modules = dict(model.named_modules())
    if hasattr(model, "get_classifier"):
        head = model.get_classifier()
        found = [path for path, module in modules.items() if module is head and isinstance(module, nn.Linear)]
        if found:
            return found[0]
    linear = [path for path, module in modules.items() if isinstance(module, nn.Linear)]
    if not linear:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier; pass classifier='module path'")
    return linear[-1]


def tapped(model: nn.Module, x: torch.Tensor, taps="auto", *, classifier: str | None = None,
           layout: str | None = None) -> TappedModel:
    """``model`` with named taps, ready for :func:`ncutils.streaming.measure` and the probes.

    taps: "auto" (:func:`taps_of`), a list of module paths, or {tap name: module path}.
    x: an example input batch: one forward pass reads the taps' outputs to detect their layout (unless
        ``layout`` is one of ``channels_first``, ``nhwc``, ``tokens``).
    """
    if isinstance(model, TappedModel):
        return model
    chosen = taps_of(model) if isinstance(taps, str) and taps == "auto" else \
        dict(taps) if isinstance(taps, dict) else {path: path for path in taps}
    modules = dict(model.named_modules())
    unknown = [path for path in chosen.values() if path not in modules]
    if unknown:
        raise ValueError(f"{type(model).__name__} has no submodules {unknown}; taps_of(model) lists its blocks")
    if layout is None:
        layout = detect_layout(model, x, chosen)
    return TappedModel(model, chosen, layout, classifier or classifier_path(model), type(model).__name__)


def detect_layout(model: nn.Module, x: torch.Tensor, taps: dict[str, str]) -> str:
    """The layout every tap's output shares, from the shapes of one forward pass on ``x[:2]``: (B, T, C)
    tokens; (B, H, W, C) NHWC when its two middle sizes agree and the last differs; else channels first."""
    shapes: dict[str, tuple] = {}
    modules = dict(model.named_modules())
    handles = [modules[path].register_forward_hook(
        lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape) if torch.is_tensor(out) else None))
        for name, path in taps.items()]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(x[:2])
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    layouts = {name: _layout(shape) for name, shape in shapes.items()}
    bad = [name for name, found in layouts.items() if found is None]
    if bad or len(set(layouts.values())) != 1:
        raise ValueError(f"the taps' outputs have no common layout ({ {n: shapes[n] for n in list(shapes)[:6]} }); "
                         f"pass layout= one of {', '.join(LAYOUTS)} or taps with tensor outputs of one layout")
    return next(iter(layouts.values()))


def _layout(shape: tuple | None) -> str | None:
    if shape is None or len(shape) < 2:
        return None
    if len(shape) == 3:
        return "tokens"
    if len(shape) == 4 and shape[1] == shape[2] and shape[3] != shape[2]:
        return "nhwc"
    return "channels_first"


def _outermost(paths: list[str]) -> list[str]:
    kept: list[str] = []
    for path in paths:
        if not any(path.startswith(outer + ".") for outer in kept):
            kept.append(path)
    return kept


def _activations_of_longest_sequential(model: nn.Module) -> list[str]:
    sequentials = [(len(m), path) for path, m in model.named_modules() if isinstance(m, nn.Sequential)]
    if not sequentials:
        return []
    _, path = max(sequentials, key=lambda item: item[0])
    prefix = f"{path}." if path else ""
    return [f"{prefix}{name}" for name, child in model.get_submodule(path).named_children()
            if isinstance(child, ACTIVATIONS)]
