"""CIFAR-style ResNets (He et al. 2016): 3x3 stem, no max-pool, four stages of residual blocks.

Base width 64 is the paper's size; stage widths are (w, 2w, 4w, 8w) (bottleneck outputs x4).
Taps: the stem, then every residual block in order (``layer<s>.<b>``), as the paper plots per block.
"""
from __future__ import annotations

from torch import nn

# blocks per stage for each depth, and whether the depth uses bottleneck blocks
DEPTHS = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
    152: ((3, 8, 36, 3), True),
}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int, activation: type[nn.Module]):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.shortcut = _shortcut(cin, width, stride)
        self.act = activation()

    def forward(self, x):
        out = self.act(self.bn1(self.conv1(x)))
        return self.act(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int, activation: type[nn.Module]):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride)
        self.act = activation()

    def forward(self, x):
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        return self.act(self.bn3(self.conv3(out)) + self.shortcut(x))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class ResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int, width: int = 64, in_channels: int = 3,
                 activation: type[nn.Module] = nn.ReLU):
        super().__init__()
        blocks, bottleneck = DEPTHS[depth]
        block = Bottleneck if bottleneck else BasicBlock
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), activation())
        cin = width
        for s, n in enumerate(blocks):
            layer = []
            for b in range(n):
                layer.append(block(cin, width * 2 ** s, stride=2 if s > 0 and b == 0 else 1,
                                   activation=activation))
                cin = width * 2 ** s * block.expansion
            setattr(self, f"layer{s + 1}", nn.Sequential(*layer))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.pool(x).flatten(1))


def resnet_taps(depth: int) -> dict[str, str]:
    blocks, _ = DEPTHS[depth]
    return {"stem": "stem", **{f"layer{s + 1}.{b}": f"layer{s + 1}.{b}"
                               for s, n in enumerate(blocks) for b in range(n)}}
