"""DataLoader: coverage, len, seeded shuffling per epoch, resuming, prefetch threads, dtypes, devices."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitorch_nndl as mt
from minitorch_nndl.data import (
    Compose,
    DataLoader,
    Dataset,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    TensorDataset,
    ToTensor,
)


def _image_dataset(n: int = 37, seed: int = 0) -> TensorDataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)
    labels = np.arange(n, dtype=np.int32)  # label = sample id, to track coverage (int32 on purpose)
    return TensorDataset(images, labels)


class ItemImages(Dataset):
    """Same samples as a TensorDataset, but only per-item access."""

    def __init__(self, base: TensorDataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        x, y = self.base[i]
        return x, int(y)


def _augment() -> Compose:
    return Compose([RandomCrop(8, padding=2), RandomHorizontalFlip(), ToTensor(), Normalize((0.5,) * 3, (0.2,) * 3)])


def _epoch_labels(loader) -> list[int]:
    return [int(v) for _, y in loader for v in y.numpy()]


def _data_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("minitorch-data")]


@pytest.mark.parametrize("shuffle", [False, True])
def test_every_sample_exactly_once_per_epoch(shuffle):
    loader = DataLoader(_image_dataset(), batch_size=8, shuffle=shuffle, seed=5)
    for _ in range(3):
        seen = _epoch_labels(loader)
        assert sorted(seen) == list(range(37))
        if not shuffle:
            assert seen == list(range(37))


@pytest.mark.parametrize(("n", "bs"), [(37, 8), (40, 8), (5, 8), (1, 1), (9, 4)])
def test_len_for_both_drop_last(n, bs):
    ds = _image_dataset(n)
    keep = DataLoader(ds, batch_size=bs)
    drop = DataLoader(ds, batch_size=bs, drop_last=True, shuffle=True, seed=0)
    assert len(keep) == -(-n // bs) == sum(1 for _ in keep)
    assert len(drop) == n // bs == sum(1 for _ in drop)
    labels = _epoch_labels(drop)
    assert len(labels) == (n // bs) * bs and len(set(labels)) == len(labels)
    assert all(x.shape[0] == bs for x, _ in drop)


def test_shuffle_differs_across_epochs_and_repeats_for_seed():
    ds = _image_dataset(64)
    a = DataLoader(ds, batch_size=16, shuffle=True, seed=11)
    b = DataLoader(ds, batch_size=16, shuffle=True, seed=11)
    c = DataLoader(ds, batch_size=16, shuffle=True, seed=12)
    a0, a1 = _epoch_labels(a), _epoch_labels(a)
    assert a0 != a1  # a new order every epoch
    assert _epoch_labels(b) == a0 and _epoch_labels(b) == a1  # same seed, same sequence of orders
    assert _epoch_labels(c) != a0
    b.set_epoch(1)
    assert _epoch_labels(b) == a1


def test_seed_none_follows_manual_seed():
    ds = _image_dataset(30)
    mt.manual_seed(3)
    first = _epoch_labels(DataLoader(ds, batch_size=7, shuffle=True))
    mt.manual_seed(3)
    assert _epoch_labels(DataLoader(ds, batch_size=7, shuffle=True)) == first


def test_batches_dtype_layout_and_device(device):
    loader = DataLoader(_image_dataset(10), batch_size=4, device=device)
    x, y = next(iter(loader))
    assert x.shape == (4, 3, 8, 8) and x.dtype == np.float32
    assert y.shape == (4,) and y.dtype == np.int64
    assert x.device == mt.backend.normalize_device(device) == y.device
    images = _image_dataset(10).arrays[0]
    np.testing.assert_allclose(x.numpy(), images[:4].transpose(0, 3, 1, 2) / np.float32(255), rtol=1e-6)


def test_augmented_batches_are_reproducible_and_float32():
    ds = _image_dataset(40)
    a = DataLoader(ds, batch_size=16, shuffle=True, seed=1, transform=_augment())
    b = DataLoader(ds, batch_size=16, shuffle=True, seed=1, transform=_augment())
    for (xa, ya), (xb, yb) in zip(a, b):
        assert xa.dtype == np.float32 and xa.shape[1:] == (3, 8, 8)
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    # the next epoch uses different augmentation draws
    xa2 = next(iter(a))[0].numpy()
    xa1 = next(iter(DataLoader(ds, batch_size=16, shuffle=True, seed=1, transform=_augment())))[0].numpy()
    assert not np.array_equal(xa1, xa2)


def test_item_dataset_gives_same_batches_as_array_dataset():
    base = _image_dataset(21)
    fast = DataLoader(base, batch_size=5, shuffle=True, seed=4, transform=_augment())
    slow = DataLoader(ItemImages(base), batch_size=5, shuffle=True, seed=4, transform=_augment())
    for (xf, yf), (xs, ys) in zip(fast, slow):
        np.testing.assert_array_equal(xf.numpy(), xs.numpy())
        np.testing.assert_array_equal(yf.numpy(), ys.numpy())
        assert ys.dtype == np.int64


@pytest.mark.parametrize(("prefetch", "workers"), [(1, 0), (3, 0), (0, 3), (4, 2)])
def test_prefetch_matches_synchronous(prefetch, workers):
    ds = _image_dataset(50)
    ref = DataLoader(ds, batch_size=8, shuffle=True, seed=9, transform=_augment())
    pre = DataLoader(
        ds, batch_size=8, shuffle=True, seed=9, transform=_augment(), prefetch=prefetch, num_workers=workers
    )
    for _ in range(2):
        got = list(pre)
        want = list(ref)
        assert len(got) == len(want) == len(pre)
        for (xg, yg), (xw, yw) in zip(got, want):
            np.testing.assert_array_equal(xg.numpy(), xw.numpy())
            np.testing.assert_array_equal(yg.numpy(), yw.numpy())
    assert not _data_threads()


def test_prefetch_threads_stop_when_iterator_is_dropped():
    loader = DataLoader(_image_dataset(64), batch_size=4, prefetch=3, num_workers=2)
    for i, _ in enumerate(loader):
        assert _data_threads()
        if i == 2:
            break
    gc.collect()
    assert not _data_threads()
    assert loader.state_dict()["epoch"] == 1  # the abandoned epoch counts as done


def test_prefetch_propagates_errors_and_shuts_down():
    calls = {"n": 0}

    def broken(x, rng=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("bad batch")
        return x

    loader = DataLoader(_image_dataset(64), batch_size=4, prefetch=2, transform=broken)
    with pytest.raises(RuntimeError, match="bad batch"):
        for _ in loader:
            pass
    gc.collect()
    assert not _data_threads()


def test_state_dict_resumes_mid_epoch_with_same_batches():
    ds = _image_dataset(45)
    run = DataLoader(ds, batch_size=6, shuffle=True, seed=21, transform=_augment())
    list(run)  # epoch 0
    it = iter(run)  # epoch 1
    for _ in range(3):
        next(it)
    state = run.state_dict()
    assert state == {"seed": 21, "epoch": 1, "batch_index": 3}
    rest = list(it)
    nxt = list(run)  # epoch 2

    resumed = DataLoader(ds, batch_size=6, shuffle=True, seed=0, transform=_augment())
    resumed.load_state_dict(state)
    got_rest = list(resumed)
    got_next = list(resumed)
    assert len(got_rest) == len(rest) == len(run) - 3
    for (xa, ya), (xb, yb) in zip(rest + nxt, got_rest + got_next):
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    assert run.state_dict() == resumed.state_dict() == {"seed": 21, "epoch": 3, "batch_index": 0}


def test_bad_arguments():
    ds = _image_dataset(4)
    with pytest.raises(ValueError):
        DataLoader(ds, batch_size=0)
    with pytest.raises(ValueError):
        DataLoader(ds, seed=-1)
    with pytest.raises(TypeError):
        DataLoader(object())
    with pytest.raises(ValueError):
        DataLoader(ds).set_epoch(-2)


def test_float_features_and_single_field_dataset():
    feats = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    x, y = next(iter(DataLoader(TensorDataset(feats, np.arange(10)), batch_size=4)))
    assert x.dtype == np.float32 and x.shape == (4, 3)
    np.testing.assert_array_equal(x.numpy(), feats[:4])
    (only,) = next(iter(DataLoader(TensorDataset(feats), batch_size=3)))  # a 1-tuple, as in PyTorch
    assert isinstance(only, mt.Tensor) and only.shape == (3, 3)


def test_transform_without_rng_parameter():
    calls = []

    def plain(x):
        calls.append(x.shape)
        return x[:, ::2, ::2]

    x, _ = next(iter(DataLoader(_image_dataset(10), batch_size=4, transform=plain)))
    assert calls == [(4, 8, 8, 3)] and x.shape == (4, 3, 4, 4) and x.dtype == np.float32


@given(
    n=st.integers(1, 60),
    bs=st.integers(1, 17),
    drop_last=st.booleans(),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**20),
)
def test_coverage_and_len_property(n, bs, drop_last, shuffle, seed):
    ds = TensorDataset(np.zeros((n, 2), np.float32), np.arange(n))
    loader = DataLoader(ds, batch_size=bs, shuffle=shuffle, drop_last=drop_last, seed=seed)
    labels = _epoch_labels(loader)
    assert sum(1 for _ in loader) == len(loader)
    assert len(labels) == (n // bs * bs if drop_last else n)
    assert len(set(labels)) == len(labels) and set(labels) <= set(range(n))


def test_prefetch_on_device_matches_cpu(device):
    """On CUDA this runs the worker-thread pinned-memory copy path."""
    ds = _image_dataset(33)
    ref = DataLoader(ds, batch_size=8, shuffle=True, seed=2, transform=_augment())
    dev = DataLoader(ds, batch_size=8, shuffle=True, seed=2, transform=_augment(), device=device, prefetch=2)
    for _ in range(2):
        for (xr, yr), (xd, yd) in zip(ref, dev):
            assert xd.device == yd.device == mt.backend.normalize_device(device)
            assert xd.dtype == np.float32 and yd.dtype == np.int64
            np.testing.assert_array_equal(xd.numpy(), xr.numpy())
            np.testing.assert_array_equal(yd.numpy(), yr.numpy())
    assert not _data_threads()


class _FakeStream:
    def __init__(self, ptr: int = 0) -> None:
        self.ptr, self.synced = ptr, 0

    def synchronize(self) -> None:
        self.synced += 1


class _FakeDeviceArray(np.ndarray):
    """Stands in for a CuPy array: ``set(host, stream)`` copies host data in."""

    def set(self, host, stream=None):  # noqa: A003 - CuPy's name
        assert stream is not None and isinstance(host, np.ndarray)
        self[...] = host


class _FakeCuPy:
    """The few CuPy calls the prefetch copy path makes, on NumPy (checks the call sequence, not a GPU)."""

    def __init__(self, current_ptr: int) -> None:
        self.current = _FakeStream(current_ptr)
        self.streams: list[_FakeStream] = []
        self.pinned = 0
        outer = self

        class cuda:  # noqa: N801
            @staticmethod
            def Stream(non_blocking=False):
                assert non_blocking is False
                outer.streams.append(_FakeStream(1))
                return outer.streams[-1]

            @staticmethod
            def alloc_pinned_memory(nbytes):
                outer.pinned += 1
                return bytearray(nbytes)

            @staticmethod
            def get_current_stream():
                return outer.current

        self.cuda = cuda

    @staticmethod
    def empty(shape, dtype):
        return np.empty(shape, dtype).view(_FakeDeviceArray)


@pytest.mark.parametrize("legacy_stream", [True, False])
def test_cuda_prefetch_copy_path_with_fake_cupy(monkeypatch, legacy_stream):
    from contextlib import nullcontext

    from minitorch_nndl.data import dataloader as dl_module

    fake = _FakeCuPy(current_ptr=0 if legacy_stream else 2)
    plain_copies = []

    def fake_to_device(a, device):
        plain_copies.append(device)
        return np.asarray(a).view(_FakeDeviceArray)

    monkeypatch.setattr(dl_module.backend, "xp_for", lambda device: fake)
    monkeypatch.setattr(dl_module.backend, "device_context", lambda device: nullcontext())
    monkeypatch.setattr(dl_module.backend, "to_device", fake_to_device)
    ds = _image_dataset(20)
    ref = list(DataLoader(ds, batch_size=8, seed=1, transform=_augment()))
    loader = DataLoader(ds, batch_size=8, seed=1, transform=_augment(), prefetch=2)
    loader.device = "cuda:0"  # pretend; construction on a machine without CUDA needs "cpu"
    got = list(loader)
    for (xr, yr), (xg, yg) in zip(ref, got):
        assert isinstance(xg.data, _FakeDeviceArray) and isinstance(yg.data, _FakeDeviceArray)
        np.testing.assert_array_equal(np.asarray(xg.data), xr.numpy())
        np.testing.assert_array_equal(np.asarray(yg.data), yr.numpy())
    if legacy_stream:  # the worker copies from pinned memory on its own stream and waits for it
        assert len(fake.streams) == 1 and fake.streams[0].synced == len(loader)
        assert fake.pinned == 2 * len(loader) and plain_copies == []
    else:  # the consumer thread copies
        assert fake.streams == [] and fake.pinned == 0 and len(plain_copies) == 2 * len(loader)
