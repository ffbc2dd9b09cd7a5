"""A classifier with an ordered list of named layer taps, read from one forward pass."""
from __future__ import annotations

import torch
from torch import nn

# How a tapped module lays its output out, and how to move channels to dim 1.
LAYOUTS = {
    "channels_first": lambda t: t,  # (B, C, ...) already
    "nhwc": lambda t: t.permute(0, 3, 1, 2),  # timm Swin blocks: (B, H, W, C)
    "tokens": lambda t: t.transpose(1, 2),  # ViT blocks: (B, T, C)
}


class TappedModel(nn.Module):
    """Wraps ``net`` and names the submodules whose outputs are the layer features.

    taps: {tap name: dotted path of a submodule of ``net``}, in forward order.
    layout: one of :data:`LAYOUTS`, how those outputs are laid out.
    classifier: dotted path of the final ``nn.Linear`` (for NC3 and probing).
    """

    def __init__(self, net: nn.Module, taps: dict[str, str], layout: str, classifier: str, family: str):
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; valid: {', '.join(LAYOUTS)}")
        self.net = net
        self.taps = dict(taps)
        self.layout = layout
        self.classifier_path = classifier
        self.family = family
        modules = dict(net.named_modules())
        missing = [p for p in [*taps.values(), classifier] if p not in modules]
        if missing:
            raise ValueError(f"{family}: no submodule named {missing}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward_with_taps(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and {tap: features (B, C, ...)} from one forward pass (hooks, removed after)."""
        features: dict[str, torch.Tensor] = {}
        to_channels_first = LAYOUTS[self.layout]
        modules = dict(self.net.named_modules())
        handles = [modules[path].register_forward_hook(
            lambda _m, _i, out, name=name: features.__setitem__(name, to_channels_first(out)))
            for name, path in self.taps.items()]
        try:
            logits = self.net(x)
        finally:
            for h in handles:
                h.remove()
        return logits, {name: features[name] for name in self.taps}

    @property
    def classifier(self) -> nn.Linear:
        return self.net.get_submodule(self.classifier_path)
