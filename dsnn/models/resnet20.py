"""ResNet20 for CIFAR (He et al. 2016, section 4.2), the network the paper tunes.

Three stages of three basic blocks (16, 32, 64 channels by default), 6n+2 = 20 weight layers
(19 convolutions + 1 linear classifier). Shortcuts are "option A": parameter-free,
subsample by 2 and zero-pad the new channels, so every weight layer is a conv or the
classifier (269,722 parameters for 3x32x32 inputs and 10 classes).
"""

import torch
import torch.nn.functional as F
from torch import nn


class PadShortcut(nn.Module):
    """Option-A shortcut: x[:, :, ::2, ::2] with zero channels added on both sides."""

    def __init__(self, extra_channels: int):
        super().__init__()
        self.extra_channels = extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.extra_channels // 2
        # (N, C, H, W) -> (N, C + 2*pad, H/2, W/2)
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut = PadShortcut(planes - in_planes)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """ResNet20; `in_channels` and `num_classes` come from the data module.

    `width` is the first stage's channel count (16 in the paper); a thinner network
    (width 4 or 8) keeps all 20 weight layers for fast CPU demos.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 16):
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(in_channels, w, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.layer1 = self._stage(w, w, stride=1)
        self.layer2 = self._stage(w, 2 * w, stride=2)
        self.layer3 = self._stage(2 * w, 4 * w, stride=2)
        self.linear = nn.Linear(4 * w, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight)

    @staticmethod
    def _stage(in_planes: int, planes: int, stride: int) -> nn.Sequential:
        blocks = [
            BasicBlock(in_planes, planes, stride),
            BasicBlock(planes, planes),
            BasicBlock(planes, planes),
        ]
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))  # (N, w, H, W)
        out = self.layer3(self.layer2(self.layer1(out)))  # (N, 4w, H/4, W/4)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)  # (N, 4w)
        return self.linear(out)
