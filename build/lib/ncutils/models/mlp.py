"""MLP of Parker et al. 2023 ("MLP6"): flattened input, ``depth`` hidden Linear+activation layers of
one width (4096 in the paper), then a linear classifier. Taps: every hidden layer, post-activation.
"""
from __future__ import annotations

import math
from collections import OrderedDict

from torch import nn


class MLP(nn.Module):
    def __init__(self, num_classes: int, in_shape: tuple[int, ...], width: int = 4096, depth: int = 6,
                 activation: type[nn.Module] = nn.ReLU):
        super().__init__()
        layers, cin = OrderedDict(flatten=nn.Flatten()), math.prod(in_shape)
        for i in range(1, depth + 1):
            layers[f"fc{i}"] = nn.Sequential(nn.Linear(cin, width), activation())
            cin = width
        self.hidden = nn.Sequential(layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(self.hidden(x))


def mlp_taps(depth: int) -> dict[str, str]:
    return {f"fc{i}": f"hidden.fc{i}" for i in range(1, depth + 1)}
