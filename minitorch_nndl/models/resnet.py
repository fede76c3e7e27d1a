"""Residual networks (He et al. 2016), with torchvision's attribute names so state dicts map 1:1.

A residual block learns a correction F(x) added to its input: y = relu(F(x) + x).
The identity path lets gradients flow straight through many layers
(dL/dx = dL/dy * (dF/dx + 1)), which is what makes 18 to 152 layers trainable.

* ``BasicBlock`` (ResNet18/34): two 3x3 convolutions.
* ``Bottleneck`` (ResNet50/101/152): 1x1 reduce, 3x3 (carrying the stride, as in
  torchvision's "v1.5"), 1x1 expand by ``expansion = 4``.
* When a block changes the resolution or the width, the shortcut becomes a 1x1
  convolution (no bias) + BatchNorm (``downsample.0`` / ``downsample.1``).

Stems: ``"imagenet"`` is torchvision's 7x7 stride-2 convolution and 3x3 stride-2
max-pool (224x224 inputs -> 56x56); ``"cifar"`` is a 3x3 stride-1 convolution and no
max-pool (``maxpool`` is an ``Identity``), keeping 32x32 inputs at 32x32 in layer1.
"""

from __future__ import annotations

from typing import Any

from .. import nn
from ..nn import init
from ..ops import validate
from ..tensor import Tensor


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, **factory: Any) -> nn.Conv2d:
    """3x3 convolution with padding 1, no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, groups=groups, bias=False, **factory)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1, **factory: Any) -> nn.Conv2d:
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False, **factory)


class BasicBlock(nn.Module):
    """y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)) with two 3x3 convolutions."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        factory = {"device": device, "dtype": dtype}
        self.conv1 = conv3x3(inplanes, planes, stride, **factory)
        self.bn1 = nn.BatchNorm2d(planes, **factory)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes, **factory)
        self.bn2 = nn.BatchNorm2d(planes, **factory)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        # relu(bn2(conv2(relu(bn1(conv1(x))))) + identity), identity = x or downsample(x): two conv_bn ops,
        # one depth-first op inside inference_mode() (nn.residual_block)
        return nn.residual_block(x, *self.residual_parts())

    def residual_parts(self) -> tuple:
        """(conv, bn) pairs, shortcut, ReLU: what ``nn.residual_block`` needs (a stage chains blocks by it)."""
        return ((self.conv1, self.bn1), (self.conv2, self.bn2)), self.downsample, self.relu


class Bottleneck(nn.Module):
    """y = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x))))))) + shortcut(x)):
    1x1 (reduce to ``width``), 3x3 (with the stride), 1x1 (expand to ``planes * 4``)."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width, **factory)
        self.bn1 = nn.BatchNorm2d(width, **factory)
        self.conv2 = conv3x3(width, width, stride, groups, **factory)
        self.bn2 = nn.BatchNorm2d(width, **factory)
        self.conv3 = conv1x1(width, planes * self.expansion, **factory)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion, **factory)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        # three conv_bn ops with the ReLUs, the last one adding the identity (x or downsample(x));
        # one depth-first op inside inference_mode() (nn.residual_block)
        return nn.residual_block(x, *self.residual_parts())

    def residual_parts(self) -> tuple:
        """(conv, bn) pairs, shortcut, ReLU: what ``nn.residual_block`` needs (a stage chains blocks by it)."""
        return ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)), self.downsample, self.relu


class ResNet(nn.Module):
    """stem -> layer1 (64) -> layer2 (128, /2) -> layer3 (256, /2) -> layer4 (512, /2) -> global avg pool -> fc.

    ``layers`` gives the number of blocks per stage ([2, 2, 2, 2] for ResNet18) and
    ``width`` the channels of the first stage (64 in the paper; the four stages have
    width * (1, 2, 4, 8)), so small, fast variants (e.g. width 16) keep the same shape.
    Convolutions are initialised with ``kaiming_normal_(mode="fan_out", nonlinearity="relu")``,
    BatchNorms with weight 1 and bias 0, and ``fc`` as any ``Linear``.  With
    ``zero_init_residual`` the last BatchNorm of every block starts at weight 0, so each
    block starts as the identity (Goyal et al. 2017).
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: list[int],
        num_classes: int = 10,
        stem: str = "cifar",
        in_channels: int = 3,
        zero_init_residual: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
        width: int = 64,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        validate.stem(stem, "ResNet")
        if len(layers) != 4:
            raise ValueError(f"ResNet: layers must give 4 block counts, got {layers}")
        factory = {"device": device, "dtype": dtype}
        self._factory = factory
        self.inplanes = width
        self.groups = groups
        self.base_width = width_per_group
        self.stem = stem
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False, **factory)
        else:
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False, **factory)
        self.bn1 = nn.BatchNorm2d(width, **factory)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width * block.expansion, num_classes, **factory)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                init.ones_(m.weight)
                init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    init.zeros_(m.bn2.weight)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        factory = self._factory
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride, **factory),
                nn.BatchNorm2d(planes * block.expansion, **factory),
            )
        shape = {"groups": self.groups, "base_width": self.base_width, **factory}
        layers = [block(self.inplanes, planes, stride, downsample, **shape)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, **shape) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(nn.conv_bn(self.conv1, self.bn1, x, relu=self.relu))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x)
        x = x.flatten(1)
        return self.fc(x)


# The five depths of the paper: which block, and how many per stage.  Every keyword of
# ResNet (stem, in_channels, zero_init_residual, width_per_group, device, dtype, ...) passes through.


def resnet10(num_classes: int = 10, **kwargs: Any) -> ResNet:
    """ResNet10: BasicBlock x [1, 1, 1, 1]; a small, fast member of the family (not in the paper)."""
    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes, **kwargs)


def resnet18(num_classes: int = 10, **kwargs: Any) -> ResNet:
    """ResNet18: BasicBlock x [2, 2, 2, 2]; 11,173,962 parameters (CIFAR stem, 10 classes)."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, **kwargs)


def resnet34(num_classes: int = 10, **kwargs: Any) -> ResNet:
    """ResNet34: BasicBlock x [3, 4, 6, 3]."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, **kwargs)


def resnet50(num_classes: int = 10, **kwargs: Any) -> ResNet:
    """ResNet50: Bottleneck x [3, 4, 6, 3]."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, **kwargs)


def resnet101(num_classes: int = 10, **kwargs: Any) -> ResNet:
    """ResNet101: Bottleneck x [3, 4, 23, 3]."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes=num_classes, **kwargs)


def resnet152(num_classes: int = 10, **kwargs: Any) -> ResNet:
    """ResNet152: Bottleneck x [3, 8, 36, 3]."""
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes=num_classes, **kwargs)
