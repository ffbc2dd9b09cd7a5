"""One registry of the paper's models, each a :class:`TappedModel` with ordered, named layer taps.

    model = build_model("resnet18", num_classes=10, width=16)
    layer_taps(model)                    # ['stem', 'layer1.0', ..., 'layer4.1']
    logits, feats = forward_with_taps(model, x)   # feats[tap]: (B, C, ...) channels at dim 1

Every family takes ``in_shape`` (C, H, W), default (3, 32, 32), and its own size overrides
(:func:`model_overrides` lists them). A scale narrows a model; it never changes its depth.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .mlp import MLP, mlp_taps
from .resnet import DEPTHS as RESNET_DEPTHS
from .resnet import ResNet, resnet_taps
from .tapped import TappedModel
from .vgg import CONFIGS as VGG_CONFIGS
from .vgg import VGG, vgg_taps

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU}

# Swin for 32x32 inputs: patch 2 gives 16x16 tokens, window 4 divides every stage (16, 8, 4; the
# last 2x2 stage is one window). Heads (3, 6, 12, 24) throughout, as in the paper's depth sweep.
SWIN_DEPTHS = {
    "swin_t": (2, 2, 6, 2),  # Tiny
    "swin_s": (2, 2, 18, 2),  # Small
    "swin_b": (2, 2, 30, 2),  # Base* of appendix A.1 (heads reduced to 3, 6, 12, 24)
    "swin_l": (2, 2, 42, 2),  # Large* of appendix A.1 (heads reduced to 3, 6, 12, 24)
}
# ViT for 32x32 inputs: patch 4 gives 8x8 tokens; (embed, depth, heads). No class token: the head reads the mean
# of the last block's tokens (global average pooling, as Beyer et al. 2022, "Better plain ViT baselines for
# ImageNet-1k"), like every other model here reads its pooled last tap, so the last tap's probe and pooled
# features measure what the classifier reads (with a class token the probe on the mean fitted 0.742 of the
# training images a ViT-small fitted 0.992 of, cpu scale).
VIT_SIZES = {"vit_tiny": (192, 12, 3), "vit_small": (384, 12, 6), "vit_base": (768, 12, 12)}


@dataclass(frozen=True)
class Family:
    """How to build one registered model: defaults of its overrides and the constructor."""

    defaults: dict
    build: Callable[..., TappedModel]
    doc: str


def _resnet(depth: int) -> Family:
    def build(num_classes, in_shape, width, activation):
        net = ResNet(depth, num_classes, _positive("width", width), in_shape[0], ACTIVATIONS[activation])
        return TappedModel(net, resnet_taps(depth), "channels_first", "fc", f"resnet{depth}")
    return Family({"width": 64, "activation": "relu"}, build, f"CIFAR ResNet{depth}, base width 64 in the paper")


def _vgg(depth: int) -> Family:
    def build(num_classes, in_shape, width, activation):
        net = VGG(depth, num_classes, _positive("width", width), in_shape[0], ACTIVATIONS[activation])
        return TappedModel(net, vgg_taps(depth), "channels_first", "fc", f"vgg{depth}")
    return Family({"width": 64, "activation": "relu"}, build, f"CIFAR VGG{depth}-BN, base width 64")


def _swin(name: str) -> Family:
    depths = SWIN_DEPTHS[name]

    def build(num_classes, in_shape, embed_dim, drop_path_rate):
        from timm.models.swin_transformer import SwinTransformer

        _divisible("embed_dim", embed_dim, 3)  # stage s has embed*2^s channels over 3*2^s heads
        net = SwinTransformer(img_size=in_shape[1:], patch_size=2, in_chans=in_shape[0], num_classes=num_classes,
                              embed_dim=embed_dim, depths=depths, num_heads=(3, 6, 12, 24), window_size=4,
                              drop_path_rate=drop_path_rate)
        taps = {f"stage{s + 1}.block{b}": f"layers.{s}.blocks.{b}" for s, n in enumerate(depths) for b in range(n)}
        return TappedModel(net, taps, "nhwc", "head.fc", name)
    return Family({"embed_dim": 96, "drop_path_rate": 0.0}, build,
                  f"Swin {'-'.join(map(str, depths))} (timm), patch 2, window 4, embed 96 in the paper")


def _vit(name: str) -> Family:
    embed, depth, heads = VIT_SIZES[name]

    def build(num_classes, in_shape, embed_dim, depth, drop_path_rate):
        from timm.models.vision_transformer import VisionTransformer

        _divisible("embed_dim", embed_dim, heads)
        net = VisionTransformer(img_size=in_shape[1:], patch_size=4, in_chans=in_shape[0], num_classes=num_classes,
                                embed_dim=embed_dim, depth=_positive("depth", depth), num_heads=heads,
                                drop_path_rate=drop_path_rate, class_token=False, global_pool="avg")
        return TappedModel(net, {f"block{b}": f"blocks.{b}" for b in range(depth)}, "tokens", "head", name)
    return Family({"embed_dim": embed, "depth": depth, "drop_path_rate": 0.0}, build,
                  f"ViT (timm), patch 4, embed {embed}, {depth} blocks, {heads} heads, mean-pooled tokens")


def _mlp() -> Family:
    def build(num_classes, in_shape, width, depth, activation):
        net = MLP(num_classes, in_shape, _positive("width", width), _positive("depth", depth), ACTIVATIONS[activation])
        return TappedModel(net, mlp_taps(depth), "channels_first", "fc", "mlp")
    return Family({"width": 4096, "depth": 6, "activation": "relu"}, build,
                  "MLP6 of Parker et al. 2023: 6 hidden layers of width 4096")


REGISTRY: dict[str, Family] = {
    **{f"resnet{d}": _resnet(d) for d in RESNET_DEPTHS},
    **{f"vgg{d}": _vgg(d) for d in VGG_CONFIGS},
    **{name: _swin(name) for name in SWIN_DEPTHS},
    **{name: _vit(name) for name in VIT_SIZES},
    "mlp": _mlp(),
}


def model_names() -> list[str]:
    return list(REGISTRY)


def model_overrides(name: str) -> dict:
    """The size overrides ``name`` accepts, with their paper-size defaults."""
    return dict(_family(name).defaults)


def build_model(name: str, num_classes: int = 10, *, in_shape: tuple[int, int, int] = (3, 32, 32),
                **overrides) -> TappedModel:
    """Build a registered model at paper size, or smaller with ``overrides`` (e.g. ``width=16``)."""
    family = _family(name)
    unknown = set(overrides) - set(family.defaults)
    if unknown:
        raise ValueError(f"{name} takes no {sorted(unknown)}; valid overrides: {family.defaults}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if len(in_shape) != 3 or min(in_shape) < 1:
        raise ValueError(f"in_shape must be (channels, height, width), got {in_shape}")
    kwargs = {**family.defaults, **overrides}
    if "activation" in kwargs and kwargs["activation"] not in ACTIVATIONS:
        raise ValueError(f"unknown activation {kwargs['activation']!r}; valid: {', '.join(ACTIVATIONS)}")
    return family.build(num_classes, tuple(in_shape), **kwargs)


def layer_taps(model: TappedModel) -> list[str]:
    """The model's tap names, in forward order."""
    return list(_tapped(model).taps)


def forward_with_taps(model: TappedModel, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits and {tap: features} from one forward pass; features have channels at dim 1."""
    return _tapped(model).forward_with_taps(x)


def classifier(model: TappedModel) -> nn.Linear:
    """The final linear layer (its weights are the class vectors of NC3)."""
    return _tapped(model).classifier


def _family(name: str) -> Family:
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def _tapped(model) -> TappedModel:
    if not isinstance(model, TappedModel):
        raise TypeError(f"expected a model from ncutils.build_model, got {type(model).__name__}")
    return model


def _positive(what: str, value: int) -> int:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


def _divisible(what: str, value: int, by: int) -> None:
    if not isinstance(value, int) or value < by or value % by:
        raise ValueError(f"{what} must be a positive multiple of {by} (one per attention head), got {value!r}")


__all__ = ["build_model", "layer_taps", "forward_with_taps", "classifier", "model_names", "model_overrides",
           "TappedModel", "ACTIVATIONS"]
