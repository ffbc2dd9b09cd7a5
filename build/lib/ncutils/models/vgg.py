"""CIFAR-style VGG with BatchNorm (Simonyan & Zisserman 2015): conv-BN-ReLU blocks, 2x2 max-pools,
one linear classifier on the pooled 8w-channel features. Base width 64 is the standard size.
Taps: every conv block (``conv<i>``, after its ReLU), as He & Su and the paper's Fig. 13 measure.
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

# channels as multiples of the base width; "M" is a max-pool
CONFIGS = {
    11: [1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"],
    13: [1, 1, "M", 2, 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"],
    16: [1, 1, "M", 2, 2, "M", 4, 4, 4, "M", 8, 8, 8, "M", 8, 8, 8, "M"],
    19: [1, 1, "M", 2, 2, "M", 4, 4, 4, 4, "M", 8, 8, 8, 8, "M", 8, 8, 8, 8, "M"],
}


class VGG(nn.Module):
    def __init__(self, depth: int, num_classes: int, width: int = 64, in_channels: int = 3,
                 activation: type[nn.Module] = nn.ReLU):
        super().__init__()
        layers, cin, i = {}, in_channels, 0
        for v in CONFIGS[depth]:
            if v == "M":
                # ceil_mode keeps 28x28 inputs (Fashion-MNIST) at >= 1x1 through five pools
                layers[f"pool{i}"] = nn.MaxPool2d(2, ceil_mode=True)
            else:
                i += 1
                layers[f"conv{i}"] = nn.Sequential(nn.Conv2d(cin, v * width, 3, padding=1, bias=False),
                                                   nn.BatchNorm2d(v * width), activation())
                cin = v * width
        self.features = nn.Sequential(OrderedDict(layers))  # features.conv1, features.pool1, ...
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def vgg_taps(depth: int) -> dict[str, str]:
    n = sum(v != "M" for v in CONFIGS[depth])
    return {f"conv{i}": f"features.conv{i}" for i in range(1, n + 1)}
