"""Data pipeline: datasets, batch loading, augmentation and the CIFAR-10 / Fashion-MNIST readers.

* :mod:`.dataset` -- ``Dataset``, ``TensorDataset``, ``Subset``, ``ConcatDataset``, ``random_split``,
  ``random_subset``, and ``DatasetInfo`` (what ``CIFAR10.info`` / ``FashionMNIST.info`` say);
* :mod:`.dataloader` -- ``DataLoader`` (seeded shuffling, batch transforms, background prefetch);
* :mod:`.sampler` -- ``DistributedSampler`` (each rank of a data-parallel job its shard, per epoch);
* :mod:`.transforms` -- vectorized batch augmentation on the CPU (crop, flip, cutout, erasing, normalize);
* :mod:`.cifar10`, :mod:`.fashion_mnist` -- the datasets, read from the official files (``download=True``
  fetches and verifies them);
* :mod:`.catalog` -- the data sets by name (``catalog.open_split("cifar10", root, "test")``);
* :mod:`.synthetic` -- tiny look-alikes in the same on-disk formats, for tests.
"""

from . import catalog, transforms
from ._download import ChecksumError, DownloadError, download_url, md5_file, safe_extract_tar
from .cifar10 import CIFAR10, CIFAR10FormatError, RestrictedUnpickler, UnsafePickleError, restricted_loads
from .dataloader import DataLoader
from .dataset import ConcatDataset, Dataset, DatasetInfo, Subset, TensorDataset, collate, random_split, random_subset
from .fashion_mnist import FashionMNIST, IDXFormatError, read_idx
from .sampler import DistributedSampler
from .transforms import (
    Compose,
    Cutout,
    Normalize,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    ToTensor,
)

__all__ = [
    "CIFAR10",
    "CIFAR10FormatError",
    "ChecksumError",
    "Compose",
    "ConcatDataset",
    "Cutout",
    "DataLoader",
    "Dataset",
    "DatasetInfo",
    "DistributedSampler",
    "DownloadError",
    "FashionMNIST",
    "IDXFormatError",
    "Normalize",
    "RandomCrop",
    "RandomErasing",
    "RandomHorizontalFlip",
    "RestrictedUnpickler",
    "Subset",
    "TensorDataset",
    "ToTensor",
    "UnsafePickleError",
    "catalog",
    "collate",
    "download_url",
    "md5_file",
    "random_split",
    "random_subset",
    "read_idx",
    "restricted_loads",
    "safe_extract_tar",
    "transforms",
]
