"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), as torchvision defines it, so state dicts map 1:1.

The network that won ImageNet 2012 by a wide margin: five convolutions and three fully
connected layers, 61.1 million parameters (58.6 million of them in the classifier).  What
was new, and what each piece is here:

* **ReLU** instead of tanh/sigmoid: non-saturating, so deep stacks train several times faster.
* **Dropout** (p = 0.5) before the first two fully connected layers, against over-fitting.
* **Data augmentation** (random crops, flips, colour jitter): in the data pipeline, not the model.
* **Local response normalisation** after the first two ReLUs: ``lrn=True`` adds it
  (:class:`~minitorch_nndl.nn.LocalResponseNorm`, size 5, the paper's alpha 1e-4, beta 0.75, k 2).
  torchvision leaves it out, as later work found it adds little once networks have BatchNorm.
* **Two GPUs**: the paper split the channels over two 3 GB GTX 580s, with some layers
  seeing only their own GPU's half.  torchvision's single-GPU variant (followed here) has
  64-192-384-256-256 channels and an adaptive 6x6 average pool before the classifier.

Stems: ``"imagenet"`` is torchvision's (11x11 stride-4 convolution; 224x224 inputs ->
6x6 features).  ``"cifar"`` is for 32x32 inputs: a 3x3 stride-1 first convolution and a
3x3 average pool, so the features are 256 x 3 x 3 and the classifier starts with 2304
inputs instead of 9216 (32x32 -> 32 -> 15 -> 15 -> 7 -> 7 -> 3: the three 3x3 stride-2
max-pools still halve the image).  The layer names (``features.0`` ... ``classifier.6``)
are the same in both.
"""

from __future__ import annotations

from typing import Any

from .. import nn
from ..ops import validate
from ..tensor import Tensor


class AlexNet(nn.Module):
    """features (5 convolutions, 3 max-pools) -> adaptive average pool -> classifier (3 Linear, 2 Dropout).

    ``width`` is the channels of the first convolution (64 in torchvision; the five have
    width * (1, 3, 6, 4, 4)), ``hidden`` the width of the two hidden fully connected layers
    (4096).  ``lrn=True`` puts local response normalisation after the first two ReLUs as
    in the paper: ``features.1`` and ``features.4`` then become ``Sequential(ReLU, LRN)``,
    which have no parameters, so the state dict keeps torchvision's names.
    Initialisation: PyTorch's default for Conv2d and Linear (torchvision sets none).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        dropout: float = 0.5,
        stem: str = "imagenet",
        in_channels: int = 3,
        lrn: bool = False,
        width: int = 64,
        hidden: int = 4096,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        validate.stem(stem, "AlexNet")
        if width < 1 or hidden < 1:
            raise ValueError(f"AlexNet: width and hidden must be positive, got width={width}, hidden={hidden}")
        factory = {"device": device, "dtype": dtype}
        self.stem = stem
        c1, c2, c3, c4, c5 = (width * m for m in (1, 3, 6, 4, 4))
        if stem == "imagenet":
            conv1 = nn.Conv2d(in_channels, c1, kernel_size=11, stride=4, padding=2, **factory)
        else:
            conv1 = nn.Conv2d(in_channels, c1, kernel_size=3, stride=1, padding=1, **factory)
        self.features = nn.Sequential(
            conv1,
            _relu(lrn),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2, **factory),
            _relu(lrn),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1, **factory),
            nn.ReLU(),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1, **factory),
            nn.ReLU(),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1, **factory),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        side = 6 if stem == "imagenet" else 3
        self.avgpool = nn.AdaptiveAvgPool2d((side, side))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(c5 * side * side, hidden, **factory),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden, **factory),
            nn.ReLU(),
            nn.Linear(hidden, num_classes, **factory),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = x.flatten(1)
        return self.classifier(x)


def _relu(lrn: bool) -> nn.Module:
    """ReLU, followed by the paper's local response normalisation when ``lrn``."""
    if not lrn:
        return nn.ReLU()
    return nn.Sequential(nn.ReLU(), nn.LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0))


def alexnet(num_classes: int = 1000, **kwargs: Any) -> AlexNet:
    """torchvision's AlexNet: 61,100,840 parameters and 0.71 G MACs per 224x224 image at 1000 classes;
    ``stem="cifar"`` for 32x32 inputs (28,711,754 parameters and 0.20 G MACs at 10 classes),
    ``lrn=True`` for the paper's local response normalisation.
    Every keyword of :class:`AlexNet` (dropout, in_channels, width, hidden, device, dtype) passes through."""
    return AlexNet(num_classes=num_classes, **kwargs)
