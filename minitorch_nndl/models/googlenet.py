"""GoogLeNet / Inception v1 (Szegedy et al. 2015), as torchvision defines it, so state dicts map 1:1.

The ImageNet 2014 winner, 22 layers deep with 6.6 million parameters (torchvision's count;
the paper says about 5 million: 12x fewer than AlexNet).  Its ideas:

* **Inception modules**: four branches side by side -- 1x1, 3x3, "5x5" convolutions and a
  3x3 max-pool -- concatenated along the channels, so each module sees several scales.
* **1x1 reductions** before the expensive 3x3/5x5 convolutions (and after the pool):
  a cheap linear map from many channels to few cuts the cost of the big kernels ~4-8x.
* **Global average pooling** instead of AlexNet's/VGG's fully connected layers: the last
  features (1024 x 7 x 7) are averaged to 1024 numbers, and a single Linear classifies.
  This is where the parameters go: AlexNet's and VGG's classifiers hold most of theirs.
* **Auxiliary classifiers** on inception4a and inception4d (``aux_logits=True``): small
  heads whose losses (weighted 0.3 in the paper) add gradient to the middle of the network
  during training; they are ignored at test time.

What torchvision (and so this module) does differently from the paper: every convolution
is a :class:`BasicConv2d` (convolution without bias + BatchNorm with eps 0.001 + ReLU; the
paper predates BatchNorm), and the "5x5" branch uses a **3x3** convolution -- a known
discrepancy kept in torchvision for compatibility with its pretrained weights, and kept
here so the parameter names and counts match torchvision's (6,624,904 at 1000 classes
without the auxiliary heads).  The max-pools round their output size up (PyTorch's
``ceil_mode=True``), which :class:`MaxPool2dCeil` provides.

Stems: ``"imagenet"`` is torchvision's (7x7 stride-2 convolution and a stride-2 max-pool
before conv2/conv3, another after; 224x224 -> 28x28 at inception3a).  ``"cifar"`` is for
32x32 inputs: a 3x3 stride-1 conv1 and no max-pool after it (``maxpool1`` is an
``Identity``), so inception3 runs at 16x16, inception4 at 8x8 and inception5 at 4x4.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from .. import nn
from ..nn import functional as F  # noqa: N812  (PyTorch's conventional name)
from ..nn import init
from ..ops import validate
from ..ops.shape import concatenate, pad
from ..tensor import Tensor


class MaxPool2dCeil(nn.MaxPool2d):
    """Max-pool whose output size rounds up, PyTorch's ``MaxPool2d(..., ceil_mode=True)`` with no padding.

    out = ceil((H - k) / s) + 1 (less one when that last window would start past the
    input): the input is padded on the bottom/right with -inf just enough for a plain
    (rounding-down) max-pool to produce that many outputs.  A -inf never wins a window, since every
    window holds at least one real input, so the gradient still goes only to real inputs.
    """

    def forward(self, x: Tensor) -> Tensor:
        k, s = self.kernel_size, self.stride
        extra = [0, 0]
        for axis, size in enumerate(x.shape[2:]):
            out = -(-(size - k) // s) + 1
            if (out - 1) * s >= size:
                out -= 1
            extra[axis] = max(0, (out - 1) * s + k - size)
        if extra != [0, 0]:
            x = pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])), value=-math.inf)
        return F.max_pool2d(x, k, s, 0)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, ceil_mode=True"


class BasicConv2d(nn.Module):
    """relu(bn(conv(x))): a convolution without bias, BatchNorm (eps 0.001), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **conv: Any) -> None:
        super().__init__()
        factory = {key: conv.pop(key) for key in ("device", "dtype") if key in conv}
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv, **factory)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001, **factory)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four branches concatenated along the channels (ch1x1 + ch3x3 + ch5x5 + pool_proj outputs):
    1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 (the paper's 5x5, see the module docstring) | 3x3 max-pool -> 1x1."""

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        **factory: Any,
    ) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1, **factory)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1, **factory),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1, **factory),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1, **factory),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1, **factory),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),  # stride 1: ceil_mode changes nothing
            BasicConv2d(in_channels, pool_proj, kernel_size=1, **factory),
        )

    def forward(self, x: Tensor) -> Tensor:
        return concatenate([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], axis=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: 4x4 adaptive average pool -> 1x1 conv (128) -> fc 2048-1024 -> ReLU -> dropout -> fc."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7, **factory: Any) -> None:
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1, **factory)
        self.fc1 = nn.Linear(2048, 1024, **factory)
        self.fc2 = nn.Linear(1024, num_classes, **factory)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = F.adaptive_avg_pool2d(x, (4, 4))
        x = self.conv(x).flatten(1)
        x = F.relu(self.fc1(x))
        return self.fc2(self.dropout(x))


class GoogLeNetOutputs(NamedTuple):
    """What a GoogLeNet with auxiliary heads returns in training mode (torchvision's order)."""

    logits: Tensor
    aux_logits2: Tensor
    aux_logits1: Tensor


# (in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj) of each module, torchvision's table
INCEPTION_CFG: dict[str, tuple[int, ...]] = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nn.Module):
    """conv1 -> maxpool1 -> conv2 (1x1) -> conv3 (3x3) -> maxpool2 -> inception3a, 3b -> maxpool3 ->
    inception4a..4e -> maxpool4 -> inception5a, 5b -> global average pool -> dropout -> fc.

    ``aux_logits=True`` adds ``aux1`` (on inception4a) and ``aux2`` (on inception4d); in
    training mode ``forward`` then returns :class:`GoogLeNetOutputs` ``(logits, aux_logits2,
    aux_logits1)``, in eval mode the logits only.  ``width`` scales every channel count by
    ``width / 64`` (64, torchvision's, is conv1's channels), for small, fast variants.
    Initialisation as torchvision: convolutions and linears N(0, 0.01^2) (torchvision
    truncates at +-2, i.e. 200 standard deviations: never reached), biases 0, BatchNorm (1, 0).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        aux_logits: bool = False,
        stem: str = "imagenet",
        in_channels: int = 3,
        dropout: float = 0.2,
        dropout_aux: float = 0.7,
        width: int = 64,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        validate.stem(stem, "GoogLeNet")
        if width < 1:
            raise ValueError(f"GoogLeNet: width must be positive, got {width}")
        factory = {"device": device, "dtype": dtype}

        def ch(n: int) -> int:
            return max(1, n * width // 64)

        self.aux_logits = aux_logits
        self.stem = stem
        if stem == "imagenet":
            self.conv1 = BasicConv2d(in_channels, ch(64), kernel_size=7, stride=2, padding=3, **factory)
            self.maxpool1: nn.Module = MaxPool2dCeil(3, stride=2)
        else:
            self.conv1 = BasicConv2d(in_channels, ch(64), kernel_size=3, stride=1, padding=1, **factory)
            self.maxpool1 = nn.Identity()
        self.conv2 = BasicConv2d(ch(64), ch(64), kernel_size=1, **factory)
        self.conv3 = BasicConv2d(ch(64), ch(192), kernel_size=3, padding=1, **factory)
        self.maxpool2 = MaxPool2dCeil(3, stride=2)
        for name in ("inception3a", "inception3b"):
            setattr(self, name, Inception(*(ch(c) for c in INCEPTION_CFG[name]), **factory))
        self.maxpool3 = MaxPool2dCeil(3, stride=2)
        for name in ("inception4a", "inception4b", "inception4c", "inception4d", "inception4e"):
            setattr(self, name, Inception(*(ch(c) for c in INCEPTION_CFG[name]), **factory))
        self.maxpool4 = MaxPool2dCeil(2, stride=2)
        for name in ("inception5a", "inception5b"):
            setattr(self, name, Inception(*(ch(c) for c in INCEPTION_CFG[name]), **factory))
        if aux_logits:
            self.aux1: InceptionAux | None = InceptionAux(ch(512), num_classes, dropout_aux, **factory)
            self.aux2: InceptionAux | None = InceptionAux(ch(528), num_classes, dropout_aux, **factory)
        else:
            self.aux1 = None
            self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(ch(1024), num_classes, **factory)

        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                init.normal_(m.weight, 0.0, 0.01)
                if m.bias is not None:
                    init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                init.ones_(m.weight)
                init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor | GoogLeNetOutputs:
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.avgpool(x).flatten(1)
        x = self.fc(self.dropout(x))
        if aux1 is not None and aux2 is not None:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


def googlenet(num_classes: int = 1000, aux_logits: bool = False, **kwargs: Any) -> GoogLeNet:
    """torchvision's GoogLeNet (Inception v1): 6,624,904 parameters (13,004,888 with the auxiliary heads)
    and 1.50 G MACs per 224x224 image at 1000 classes; ``stem="cifar"`` for 32x32 inputs (5,602,474
    parameters and 0.45 G MACs at 10 classes).  Every keyword of :class:`GoogLeNet` passes through."""
    return GoogLeNet(num_classes=num_classes, aux_logits=aux_logits, **kwargs)
