"""The data sets by the names programs give them (``--dataset cifar10``), and how to open one.

info = catalog.info("fashion-mnist")             # DatasetInfo: classes, mean, std, image size
test = catalog.open_split("cifar10", "data", "test", download=True)
"""

from __future__ import annotations

import os
from typing import Any

from .cifar10 import CIFAR10
from .dataset import DatasetInfo
from .fashion_mnist import FashionMNIST

__all__ = ["DATASETS", "info", "open_split"]

#: name -> reader class (each has ``.info``)
DATASETS: dict[str, Any] = {"cifar10": CIFAR10, "fashion-mnist": FashionMNIST}


def _reader(name: str) -> Any:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}: choose from {', '.join(DATASETS)}") from None


def info(name: str) -> DatasetInfo:
    """What the named data set is: classes, per-channel mean and std, image size, channels."""
    return _reader(name).info


def open_split(name: str, root: str | os.PathLike, split: str, download: bool = False) -> Any:
    """One split (``"train"``, ``"dev"``, ``"train+dev"``, ``"test"``) of the named data set in ``root``.

    ``download=True`` fetches and verifies what ``root`` lacks.  Fashion-MNIST is read from Debian's
    system copy when ``root`` holds none (its ``source_note`` then says so).  Every problem with the
    data is an ``OSError`` or ``ValueError`` with a one-line message naming the file and the fix.
    """
    reader = _reader(name)
    if reader is FashionMNIST:
        return FashionMNIST(root, split=split, download=download, fallback=True)
    return reader(root, split=split, download=download)
