"""Datasets: TensorDataset, Subset, ConcatDataset, random_split and the generic batch fallback."""

from __future__ import annotations

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl.data import ConcatDataset, Dataset, Subset, TensorDataset, collate, random_split


class ItemDataset(Dataset):
    """A dataset with only per-item access (the slow path): sample i is (i * ones(2), i % 3)."""

    def __init__(self, n: int, offset: int = 0) -> None:
        self.n, self.offset = n, offset

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        if not 0 <= index < self.n:
            raise IndexError(index)
        v = index + self.offset
        return np.full(2, v, dtype=np.float32), v % 3


def _arrays(n: int = 12):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3, 4)).astype(np.float32), np.arange(n) % 5


def test_dataset_is_abstract():
    with pytest.raises(TypeError):
        Dataset()  # type: ignore[abstract]


def test_tensor_dataset_items_and_batches():
    x, y = _arrays()
    ds = TensorDataset(x, y)
    assert len(ds) == 12 and ds.fast_batch
    xi, yi = ds[5]
    np.testing.assert_array_equal(xi, x[5])
    assert yi == y[5]
    idx = np.array([7, 0, 7, 11, -1])
    xb, yb = ds.get_batch(idx)
    np.testing.assert_array_equal(xb, x[[7, 0, 7, 11, 11]])
    np.testing.assert_array_equal(yb, y[[7, 0, 7, 11, 11]])
    with pytest.raises(IndexError):
        ds.get_batch([12])
    with pytest.raises(IndexError):
        ds[12]


def test_tensor_dataset_accepts_tensors_and_checks_lengths():
    x, y = _arrays()
    ds = TensorDataset(mt.tensor(x), mt.tensor(y))
    xb, yb = ds.get_batch([1, 2])
    np.testing.assert_array_equal(xb, x[1:3])
    assert yb.dtype == np.int64
    with pytest.raises(ValueError, match="different lengths"):
        TensorDataset(x, y[:-1])
    with pytest.raises(ValueError):
        TensorDataset()


def test_generic_get_batch_stacks_items():
    ds = ItemDataset(6)
    assert not ds.fast_batch
    xb, yb = ds.get_batch([4, 1])
    np.testing.assert_array_equal(xb, np.array([[4, 4], [1, 1]], dtype=np.float32))
    np.testing.assert_array_equal(yb, [1, 1])
    assert xb.dtype == np.float32 and yb.dtype == np.int64


def test_collate_shapes_and_errors():
    xb, yb = collate([(np.zeros((2, 2)), 1), (np.ones((2, 2)), 2)])
    assert xb.shape == (2, 2, 2) and yb.tolist() == [1, 2]
    with pytest.raises(ValueError):
        collate([])


def test_subset_maps_indices_and_keeps_fast_batch():
    x, y = _arrays()
    sub = Subset(TensorDataset(x, y), [9, 3, 3, 0])
    assert len(sub) == 4 and sub.fast_batch
    np.testing.assert_array_equal(sub[1][0], x[3])
    xb, yb = sub.get_batch([0, 3, 1])
    np.testing.assert_array_equal(xb, x[[9, 0, 3]])
    np.testing.assert_array_equal(yb, y[[9, 0, 3]])
    slow = Subset(ItemDataset(5), [4, 2])
    assert not slow.fast_batch
    np.testing.assert_array_equal(slow.get_batch([1, 0])[0][:, 0], [2, 4])


def test_concat_dataset_items_and_batches_match():
    x, y = _arrays(7)
    a = TensorDataset(x[:3], y[:3])
    b = TensorDataset(x[3:], y[3:])
    cat = ConcatDataset([a, b])
    assert len(cat) == 7 and cat.fast_batch
    for i in range(7):
        np.testing.assert_array_equal(cat[i][0], x[i])
    np.testing.assert_array_equal(cat[-1][0], x[6])
    idx = [6, 0, 3, 2, 5, 3]
    xb, yb = cat.get_batch(idx)
    np.testing.assert_array_equal(xb, x[idx])
    np.testing.assert_array_equal(yb, y[idx])
    assert (a + b).get_batch([4])[0].shape == (1, 3, 4)


def test_concat_mixed_fast_and_slow():
    cat = ConcatDataset([ItemDataset(3), ItemDataset(4, offset=3)])
    assert not cat.fast_batch
    xb, yb = cat.get_batch([5, 0, 3])
    np.testing.assert_array_equal(xb[:, 0], [5, 0, 3])
    np.testing.assert_array_equal(yb, [5 % 3, 0, 0])


def test_random_split_counts_partition_and_seed():
    ds = TensorDataset(np.arange(100))
    parts = random_split(ds, [70, 20, 10], seed=1)
    assert [len(p) for p in parts] == [70, 20, 10]
    everything = np.concatenate([p.indices for p in parts])
    assert sorted(everything.tolist()) == list(range(100))
    again = random_split(ds, [70, 20, 10], seed=1)
    for p, q in zip(parts, again):
        np.testing.assert_array_equal(p.indices, q.indices)
    other = random_split(ds, [70, 20, 10], seed=2)
    assert not np.array_equal(parts[0].indices, other[0].indices)
    np.testing.assert_array_equal(parts[1].get_batch([0, 1])[0], parts[1].indices[:2])


def test_random_split_fractions_round_like_pytorch():
    ds = TensorDataset(np.arange(11))
    sizes = [len(p) for p in random_split(ds, [0.5, 0.3, 0.2])]
    # floor: 5, 3, 2 -> the one left over goes to the first part
    assert sizes == [6, 3, 2]
    with pytest.raises(ValueError):
        random_split(ds, [5, 5])
    with pytest.raises(ValueError):
        random_split(ds, [0.5, 0.6])
