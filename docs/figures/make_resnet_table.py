"""Chapter 8's table: ResNet-18/34/50/101/152, computed by our own code.

    python docs/figures/make_resnet_table.py          # prints the Markdown table (takes a minute or two on a CPU)

Parameters from ``models.summary.count_parameters`` and multiply-accumulates (MACs)
from ``models.summary.count_macs`` (one forward pass of one image, with hooks on
every Conv2d and Linear), for:

* the CIFAR stem (3x3 conv, no max-pool) at 32x32 with 10 classes: our default,
* torchvision's ImageNet stem (7x7 stride-2 conv + max-pool) at 32x32 with 10 classes:
  the course's original setup (chapter 9),
* the ImageNet stem at 224x224 with 1000 classes: the configuration of the paper and
  of torchvision's published figures (ResNet-18: 11.69 M parameters, 1.81 GMACs).
"""

from __future__ import annotations

import sys
import time

from minitorch_nndl import models
from minitorch_nndl.models import count_macs, count_parameters

ARCHS = {
    "ResNet-18": (models.resnet18, "BasicBlock", [2, 2, 2, 2]),
    "ResNet-34": (models.resnet34, "BasicBlock", [3, 4, 6, 3]),
    "ResNet-50": (models.resnet50, "Bottleneck", [3, 4, 6, 3]),
    "ResNet-101": (models.resnet101, "Bottleneck", [3, 4, 23, 3]),
    "ResNet-152": (models.resnet152, "Bottleneck", [3, 8, 36, 3]),
}


def blocks_per_stage(model: models.ResNet) -> list[int]:
    """Read the stage lengths off the built model (not off the table above)."""
    return [len(list(getattr(model, f"layer{i}").children())) for i in range(1, 5)]


def row(name: str) -> str:
    make, block, expected_blocks = ARCHS[name]
    cifar = make(num_classes=10, stem="cifar")
    stages = blocks_per_stage(cifar)
    assert stages == expected_blocks, (name, stages)
    p_cifar = count_parameters(cifar)
    macs_cifar = count_macs(cifar, (3, 32, 32))
    del cifar
    small = make(num_classes=10, stem="imagenet")
    macs_course = count_macs(small, (3, 32, 32))
    del small
    big = make(num_classes=1000, stem="imagenet")
    p_imagenet = count_parameters(big)
    macs_imagenet = count_macs(big, (3, 224, 224))
    del big
    depth = 2 + sum(stages) * (2 if block == "BasicBlock" else 3)  # stem conv + fc + convs in blocks
    assert str(depth) in name
    return (
        f"| {name} | {block} | {' / '.join(map(str, stages))} | {p_cifar:,} | {macs_cifar / 1e9:.2f} G | "
        f"{macs_course / 1e9:.3f} G | {p_imagenet / 1e6:.2f} M | {macs_imagenet / 1e9:.2f} G |"
    )


def main() -> None:
    names = sys.argv[1:] or list(ARCHS)
    print(
        "| model | block | blocks per stage | parameters (CIFAR stem, 10 classes) | MACs at 32x32, CIFAR stem "
        "| MACs at 32x32, ImageNet stem | parameters (ImageNet, 1000 classes) | MACs at 224x224, ImageNet stem |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    start = time.perf_counter()
    for name in names:
        print(row(name), flush=True)
    print(f"\n(computed in {time.perf_counter() - start:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
