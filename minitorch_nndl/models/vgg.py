"""VGG (Simonyan & Zisserman 2015) with BatchNorm, sized for 32x32 inputs (CIFAR).

Five stages of 3x3 convolutions, each ended by a 2x2 max-pool: 32 -> 16 -> 8 -> 4 -> 2 -> 1,
so the features are 512 x 1 x 1 and the classifier is a single ``Linear(512, num_classes)``.
"""

from __future__ import annotations

from typing import Any

from .. import nn
from ..nn import init
from ..tensor import Tensor

# numbers are conv output channels, "M" a 2x2 max-pool
CFGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """``features`` (conv3x3-BN-ReLU blocks and max-pools from ``cfg``) -> flatten -> ``classifier``.

    ``cfg`` is a list like ``[64, "M", 128, "M", ...]`` or a name in ``CFGS`` ("vgg11", "vgg16").
    Initialisation as torchvision: convs kaiming_normal_(fan_out, relu) with zero bias,
    BatchNorm (1, 0), the Linear N(0, 0.01^2) with zero bias.
    """

    def __init__(
        self,
        cfg: list[int | str] | str,
        num_classes: int = 10,
        in_channels: int = 3,
        batch_norm: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if isinstance(cfg, str):
            if cfg not in CFGS:
                raise ValueError(f"VGG: unknown configuration {cfg!r}; choose from {sorted(CFGS)} or pass a list")
            cfg = CFGS[cfg]
        factory = {"device": device, "dtype": dtype}
        layers: list[nn.Module] = []
        channels = in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            if not isinstance(v, int):
                raise ValueError(f"VGG: cfg entries must be ints or 'M', got {v!r}")
            layers.append(nn.Conv2d(channels, v, kernel_size=3, padding=1, **factory))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v, **factory))
            layers.append(nn.ReLU())
            channels = v
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(channels, num_classes, **factory)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                init.ones_(m.weight)
                init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                init.normal_(m.weight, 0.0, 0.01)
                init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        if x.shape[-2:] != (1, 1):
            raise ValueError(
                f"VGG: expected 32x32 inputs (features of 1x1 after 5 max-pools), got features of shape {x.shape}"
            )
        return self.classifier(self.flatten(x))


def vgg11(num_classes: int = 10, in_channels: int = 3, device: Any = None, dtype: Any = None) -> VGG:
    """VGG11 with BatchNorm for 32x32 inputs."""
    return VGG("vgg11", num_classes=num_classes, in_channels=in_channels, device=device, dtype=dtype)


def vgg16(num_classes: int = 10, in_channels: int = 3, device: Any = None, dtype: Any = None) -> VGG:
    """VGG16 with BatchNorm for 32x32 inputs."""
    return VGG("vgg16", num_classes=num_classes, in_channels=in_channels, device=device, dtype=dtype)
