"""A small, fast CNN for demos and tests: 3 convolutions and a linear classifier.

It has 4 weight layers, so shift_depth is in [0, 4].
"""

import torch
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16):
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(
            *block(in_channels, width),
            nn.MaxPool2d(2),  # (N, w, H/2, W/2)
            *block(width, 2 * width),
            nn.MaxPool2d(2),  # (N, 2w, H/4, W/4)
            *block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),  # (N, 4w, 1, 1)
        )
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))
