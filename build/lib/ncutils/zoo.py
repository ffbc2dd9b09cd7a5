"""Any model by name, untrained: a registry name, ``torchvision:NAME``, ``timm:NAME`` or ``package.module:callable``;
and a local state dict loaded safely (``weights_only``). Nothing is downloaded."""
from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from .models import build_model, model_names


def make_model(spec: str, num_classes: int, in_shape: tuple[int, int, int] = (3, 32, 32)) -> nn.Module:
    """An untrained model for ``num_classes`` classes and ``in_shape`` (C, H, W) inputs (see the module doc).
    Transformers of torchvision and timm are built for the input size (``image_size`` / ``img_size``)."""
    source, colon, name = spec.partition(":")
    if not colon:
        return build_model(spec, num_classes, in_shape=in_shape)
    if source == "torchvision":
        import torchvision

        if name not in torchvision.models.list_models():
            raise ValueError(f"torchvision has no model {name!r}; see torchvision.models.list_models()")
        return _with_input_size(lambda **k: torchvision.models.get_model(name, num_classes=num_classes, **k),
                                image_size=in_shape[1])
    if source == "timm":
        import timm

        if not timm.is_model(name):
            raise ValueError(f"timm has no model {name!r}; see timm.list_models()")
        return _with_input_size(lambda **k: timm.create_model(name, pretrained=False, num_classes=num_classes,
                                                              in_chans=in_shape[0], **k), img_size=in_shape[1])
    try:
        factory = getattr(importlib.import_module(source), name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot load {spec!r} ({error}); a model is one of {', '.join(model_names())}, "
                         "torchvision:NAME, timm:NAME or package.module:callable") from None
    return factory(num_classes=num_classes)


def _with_input_size(build, **size) -> nn.Module:
    """``build(**size)`` where the model takes an input size, else ``build()``."""
    try:
        return build(**size)
    except TypeError:
        return build()


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a local state dict (or a checkpoint holding one under "state_dict" or "model") into ``model``,
    with ``torch.load(weights_only=True)``: a file that pickles code is refused, not run."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--weights takes a local state-dict file and {str(path)!r} is none; pretrained weights "
                         "are not downloaded (no network): fetch them elsewhere and pass the file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds for a file that is not a safe state dict
        raise ValueError(f"{path} is not a state dict loadable with weights_only=True: {str(error).splitlines()[0]}") \
            from None
    for key in ("state_dict", "model"):
        state = state.get(key, state) if isinstance(state, dict) and isinstance(state.get(key), dict) else state
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # tensors of other shapes
        raise ValueError(f"{path} does not fit the model: {str(error).splitlines()[1].strip()}") from None
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"{path} does not fit the model: {len(result.missing_keys)} missing keys (e.g. "
                         f"{result.missing_keys[:3]}), {len(result.unexpected_keys)} unexpected (e.g. "
                         f"{result.unexpected_keys[:3]})")
