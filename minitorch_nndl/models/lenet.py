"""LeNet-5 (LeCun et al. 1998), with ReLU and max-pooling as it is usually taught today."""

from __future__ import annotations

from typing import Any

from .. import nn
from ..ops.shape import pad
from ..tensor import Tensor


class LeNet5(nn.Module):
    """conv 5x5 (6) -> relu -> maxpool 2 -> conv 5x5 (16) -> relu -> maxpool 2 -> fc 400-120-84-classes.

    The network is defined on 32x32 images (the 16 x 5 x 5 = 400 features of conv2 need it).
    28x28 inputs (MNIST, Fashion-MNIST) are zero-padded by 2 pixels on each side first, as
    in the original paper, which equals a first convolution with ``padding=2``.  A 61,706
    parameter network for 10 classes and one input channel.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.conv1 = nn.Conv2d(in_channels, 6, 5, **factory)
        self.conv2 = nn.Conv2d(6, 16, 5, **factory)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120, **factory)
        self.fc2 = nn.Linear(120, 84, **factory)
        self.fc3 = nn.Linear(84, num_classes, **factory)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[-2:] not in ((28, 28), (32, 32)):
            raise ValueError(f"LeNet5: expected input (N, C, 28, 28) or (N, C, 32, 32), got shape {x.shape}")
        if x.shape[-2:] == (28, 28):
            x = pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
        x = self.pool(self.relu(self.conv1(x)))  # (N, 6, 14, 14)
        x = self.pool(self.relu(self.conv2(x)))  # (N, 16, 5, 5)
        x = self.flatten(x)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)
