"""Small CNNs for the shipped models, plus the wrapper that puts softmax inside the graph."""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class SmallCNN(nn.Module):
    """Conv-BN-ReLU stages with 2x2 max-pooling between them, global average pool, linear head."""

    def __init__(
        self,
        in_channels: int,
        widths: tuple[int, ...],
        pools: tuple[bool, ...],
        num_classes: int,
        dropout: float = 0.2,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for width, pool in zip(widths, pools, strict=True):
            layers += _block(cin, width)
            if pool:
                layers.append(nn.MaxPool2d(2))
            cin = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N, num_classes)."""
        return self.head(self.features(x))


def mnist_net() -> SmallCNN:
    """~100k parameters: 28x28x1 -> 16 -> 32 (14x14) -> 64 (7x7) -> 128 -> 10 classes."""
    return SmallCNN(1, (16, 32, 64, 128), (False, True, True, False), 10)


def leukemia_net(num_classes: int = 2) -> SmallCNN:
    """~110k parameters: 64x64x3 -> 16 (32) -> 32 (16) -> 64 (8) -> 128 -> classes."""
    return SmallCNN(3, (16, 32, 64, 128), (True, True, True, False), num_classes)


class WithSoftmax(nn.Module):
    """Exported graph: logits -> class probabilities, so clients get probabilities directly."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities of shape (N, num_classes), rows summing to one."""
        return torch.softmax(self.net(x), dim=1)


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
