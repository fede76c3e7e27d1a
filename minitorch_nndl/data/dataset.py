"""Datasets: indexable collections of samples.

A :class:`Dataset` answers two questions: how many samples there are (``len``) and
what sample ``i`` is (``dataset[i]``, usually a tuple such as ``(image, label)``).

Looking samples up one at a time is simple but slow in Python: a batch of 128
CIFAR images would cost 128 ``__getitem__`` calls and a ``np.stack``.  Datasets
whose samples live in arrays therefore also offer :meth:`Dataset.get_batch`, which
gathers a whole batch with one fancy-indexing expression per array
(``images[indices]``).  The :class:`~minitorch_nndl.data.DataLoader` uses it; a
dataset without fast batch access still works through the generic fallback, which
stacks the per-sample items.

All index arithmetic here is host-side NumPy; the arrays themselves may be NumPy or
(for :class:`TensorDataset` built from CUDA tensors) CuPy arrays.
"""

from __future__ import annotations

import bisect
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import backend

__all__ = [
    "ConcatDataset",
    "Dataset",
    "DatasetInfo",
    "Subset",
    "TensorDataset",
    "as_index_array",
    "collate",
    "random_split",
    "random_subset",
]


@dataclass(frozen=True)
class DatasetInfo:
    """What a program needs to know about an image data set besides its samples.

    Each reader carries one as ``.info`` (``CIFAR10.info``, ``FashionMNIST.info``), so a
    program builds its model, normalization and plots from it instead of copying numbers.
    """

    #: the short name programs use for it (``"cifar10"``, ``"fashion-mnist"``)
    name: str
    #: the class names, in label order
    classes: tuple[str, ...]
    #: per-channel mean and std of the training images, pixel values scaled to [0, 1]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    #: images are ``image_size`` x ``image_size`` pixels with ``channels`` channels
    image_size: int
    channels: int

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def as_index_array(indices: Any, length: int, where: str = "get_batch") -> np.ndarray:
    """``indices`` as a 1-D ``intp`` NumPy array, negatives wrapped, bounds checked against ``length``."""
    idx = np.asarray(indices)
    if idx.ndim == 0:
        idx = idx.reshape(1)
    if idx.ndim != 1:
        raise ValueError(f"{where}: indices must be 1-D, got shape {idx.shape}")
    if idx.size and idx.dtype.kind not in "iu":
        raise TypeError(f"{where}: indices must be integers, got dtype {idx.dtype}")
    idx = idx.astype(np.intp, copy=False)
    if idx.size and (idx.min() < -length or idx.max() >= length):
        raise IndexError(f"{where}: index out of range for a dataset of length {length}")
    return np.where(idx < 0, idx + length, idx) if idx.size and idx.min() < 0 else idx


def _stack_field(values: list[Any]) -> Any:
    """Stack one field of many samples: arrays/tensors with ``stack``, numbers with ``asarray``."""
    first = values[0]
    data = getattr(first, "data", None)
    if data is not None and hasattr(first, "requires_grad"):  # a minitorch Tensor
        arrays = [v.data for v in values]
        return backend.xp_of(arrays[0]).stack(arrays)
    if backend.is_cuda_array(first):
        return backend.xp_of(first).stack(values)
    return np.stack([np.asarray(v) for v in values])


def collate(samples: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch.

    Tuples/lists of fields give a tuple of stacked fields (``[(x0, y0), (x1, y1)]`` ->
    ``(stack([x0, x1]), array([y0, y1]))``); single arrays give one stacked array.
    Python ints become ``int64``, floats ``float64`` (NumPy's defaults).
    """
    if len(samples) == 0:
        raise ValueError("collate: cannot build a batch from zero samples")
    first = samples[0]
    if isinstance(first, (tuple, list)):
        width = len(first)
        if any(len(s) != width for s in samples):
            raise ValueError("collate: samples have different numbers of fields")
        return tuple(_stack_field([s[k] for s in samples]) for k in range(width))
    return _stack_field(list(samples))


class Dataset(ABC):
    """Abstract dataset: subclasses define ``__getitem__(index)`` and ``__len__()``.

    ``get_batch(indices)`` has a generic implementation (``collate`` of the items);
    array-backed subclasses override it with array indexing and set
    ``fast_batch = True``.  The flag is informational (for the user, e.g. to decide
    whether prefetch threads are worth it): the loader calls ``get_batch`` either way.
    """

    #: True when ``get_batch`` is a vectorized array gather rather than a loop over items.
    fast_batch: bool = False

    @abstractmethod
    def __getitem__(self, index: int) -> Any: ...

    @abstractmethod
    def __len__(self) -> int: ...

    def get_batch(self, indices: Any) -> Any:
        """The samples at ``indices`` stacked into a batch (fallback: one ``__getitem__`` per sample)."""
        idx = as_index_array(indices, len(self), f"{type(self).__name__}.get_batch")
        return collate([self[int(i)] for i in idx])

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])

    def __iter__(self) -> Any:
        for i in range(len(self)):
            yield self[i]


class TensorDataset(Dataset):
    """Samples are the rows of equally long arrays: ``ds[i] == (a[i], b[i], ...)``.

    Accepts NumPy arrays, minitorch Tensors (their ``.data`` is used, no copy), or
    anything ``np.asarray`` understands.  ``get_batch`` is one fancy-index per array.

    >>> ds = TensorDataset(np.zeros((5, 3)), np.arange(5))
    >>> [a.shape for a in ds.get_batch([0, 2])]
    [(2, 3), (2,)]
    """

    fast_batch = True

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        converted = []
        for a in arrays:
            if hasattr(a, "requires_grad") and hasattr(a, "data"):  # Tensor
                a = a.data
            elif not backend.is_cuda_array(a):
                a = np.asarray(a)
            if a.ndim == 0:
                raise ValueError("TensorDataset: arrays must have a leading sample axis, got a 0-d array")
            converted.append(a)
        lengths = {a.shape[0] for a in converted}
        if len(lengths) != 1:
            shapes = [tuple(a.shape) for a in converted]
            raise ValueError(f"TensorDataset: arrays have different lengths along axis 0: shapes {shapes}")
        self.arrays: tuple[Any, ...] = tuple(converted)

    def __len__(self) -> int:
        return int(self.arrays[0].shape[0])

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"{type(self).__name__}: index {index} out of range for length {n}")
        return tuple(a[index] for a in self.arrays)

    def get_batch(self, indices: Any) -> tuple[Any, ...]:
        idx = as_index_array(indices, len(self), f"{type(self).__name__}.get_batch")
        out = []
        for a in self.arrays:
            if backend.is_cuda_array(a):
                out.append(a[backend.xp_of(a).asarray(idx)])
            else:
                out.append(a[idx])
        return tuple(out)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order (``Subset(ds, [3, 1])[0] == ds[3]``)."""

    def __init__(self, dataset: Any, indices: Any) -> None:
        self.dataset = dataset
        self.indices = as_index_array(indices, len(dataset), "Subset")
        self.fast_batch = bool(getattr(dataset, "fast_batch", False))

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[index])]

    def get_batch(self, indices: Any) -> Any:
        idx = as_index_array(indices, len(self), "Subset.get_batch")
        inner = self.indices[idx]
        getter = getattr(self.dataset, "get_batch", None)
        if getter is None:
            return collate([self.dataset[int(i)] for i in inner])
        return getter(inner)


class ConcatDataset(Dataset):
    """Several datasets one after the other; ``get_batch`` gathers from each part with one call per part."""

    def __init__(self, datasets: Sequence[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).astype(np.intp)
        self.fast_batch = all(getattr(d, "fast_batch", False) for d in self.datasets)

    def __len__(self) -> int:
        return int(self.cumulative_sizes[-1])

    def _locate(self, index: int) -> tuple[int, int]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"ConcatDataset: index {index} out of range for length {n}")
        if index < 0:
            index += n
        part = bisect.bisect_right(self.cumulative_sizes.tolist(), index)
        start = 0 if part == 0 else int(self.cumulative_sizes[part - 1])
        return part, index - start

    def __getitem__(self, index: int) -> Any:
        part, local = self._locate(int(index))
        return self.datasets[part][local]

    def get_batch(self, indices: Any) -> Any:
        idx = as_index_array(indices, len(self), "ConcatDataset.get_batch")
        parts = np.searchsorted(self.cumulative_sizes, idx, side="right")
        starts = np.concatenate([[0], self.cumulative_sizes[:-1]])
        # Group the requested indices by part (stable, so the order inside a part is kept),
        # gather each group with one call, then undo the grouping.
        order = np.argsort(parts, kind="stable")
        pieces = []
        for p in np.unique(parts):  # a loop over datasets, not over samples
            local = idx[order][parts[order] == p] - starts[p]
            getter = getattr(self.datasets[p], "get_batch", None)
            ds = self.datasets[p]
            pieces.append(getter(local) if getter is not None else collate([ds[int(i)] for i in local]))
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.size)
        if isinstance(pieces[0], tuple):
            return tuple(
                _concat([piece[k] for piece in pieces])[_match(inverse, pieces[0][k])] for k in range(len(pieces[0]))
            )
        return _concat(pieces)[_match(inverse, pieces[0])]


def _concat(arrays: list[Any]) -> Any:
    return backend.xp_of(arrays[0]).concatenate(arrays)


def _match(index: np.ndarray, like: Any) -> Any:
    """``index`` on the same device as ``like`` (CuPy arrays need CuPy indices)."""
    return backend.xp_of(like).asarray(index) if backend.is_cuda_array(like) else index


def _split_lengths(total: int, lengths: Sequence[float]) -> list[int]:
    if len(lengths) == 0:
        raise ValueError("random_split: lengths is empty")
    if all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in lengths):
        ints = [int(x) for x in lengths]
        if any(x < 0 for x in ints) or sum(ints) != total:
            raise ValueError(f"random_split: lengths {ints} must be non-negative and sum to the dataset length {total}")
        return ints
    fractions = [float(x) for x in lengths]
    if any(f < 0 or f > 1 for f in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ValueError(f"random_split: fractions {fractions} must lie in [0, 1] and sum to 1")
    ints = [math.floor(total * f) for f in fractions]
    for i in range(total - sum(ints)):  # hand out the remainder round-robin, as PyTorch does
        ints[i % len(ints)] += 1
    return ints


def random_split(dataset: Any, lengths: Sequence[float], seed: int = 0) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random :class:`Subset` s.

    ``lengths`` are sample counts summing to ``len(dataset)``, or fractions summing to 1
    (``[0.9, 0.1]``; the samples left over by rounding down go one each to the first
    parts).  The permutation comes from ``np.random.default_rng(seed)``, so the same seed
    always gives the same split.
    """
    sizes = _split_lengths(len(dataset), lengths)
    perm = np.random.default_rng(seed).permutation(len(dataset))
    bounds = np.cumsum([0, *sizes])
    return [Subset(dataset, perm[bounds[i] : bounds[i + 1]]) for i in range(len(sizes))]


def random_subset(dataset: Any, n: int | None, seed: int = 0) -> Any:
    """``n`` random samples of ``dataset``, kept in their original order, as a :class:`Subset`.

    ``dataset`` itself when ``n`` is None or at least ``len(dataset)``.  The draw is the first
    ``n`` of ``np.random.default_rng(seed).permutation(len(dataset))``, so a seed always picks
    the same samples (a quick run evaluated twice sees the same images).
    """
    if n is None or n >= len(dataset):
        return dataset
    return Subset(dataset, np.sort(np.random.default_rng(seed).permutation(len(dataset))[:n]))
