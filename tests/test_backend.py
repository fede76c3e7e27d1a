"""The NumPy/CuPy switchboard: device names, array modules, scatter-add, RNG state."""

from __future__ import annotations

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl import backend


def test_normalize_device() -> None:
    assert backend.normalize_device(None) == "cpu"
    assert backend.normalize_device("cpu") == "cpu"
    assert backend.normalize_device(" CPU ") == "cpu"
    for bad in ("gpu", "cuda:", "cuda:a", "mps", "cpu:1"):
        with pytest.raises(ValueError, match="unknown device"):
            backend.normalize_device(bad)


def test_normalize_cuda_device(monkeypatch: pytest.MonkeyPatch) -> None:
    if backend.cuda_is_available():
        assert backend.normalize_device("cuda") == "cuda:0"
        assert backend.normalize_device("CUDA:0") == "cuda:0"
        n = backend.cuda_device_count()
        with pytest.raises(RuntimeError, match="does not exist"):
            backend.normalize_device(f"cuda:{n}")
    monkeypatch.setattr(backend, "_import_cupy", lambda: None)
    with pytest.raises(RuntimeError, match="CuPy"):
        backend.normalize_device("cuda")


def test_xp_and_device_of_numpy_arrays() -> None:
    a = np.zeros(3)
    assert backend.xp_of(a) is np
    assert backend.device_of(a) == "cpu"
    assert backend.is_cuda_array(a) is False
    assert backend.xp_for("cpu") is np
    assert backend.device_of(np.float32(1.0)) == "cpu"
    assert backend.to_numpy(a) is a
    assert backend.to_device(a, "cpu") is a
    t = mt.randn(2)
    assert t.xp is np and t.device == "cpu"


def test_asarray_dtype_and_device() -> None:
    a = backend.asarray([1, 2], dtype=mt.float32)
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    assert backend.asarray(np.ones(2)).dtype == np.float64  # None keeps the data's dtype


def test_scatter_add_accumulates_repeats() -> None:
    target = np.zeros(4, dtype=np.float32)
    backend.scatter_add(target, np.array([1, 3, 1, 1]), np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32))
    np.testing.assert_array_equal(target, [0.0, 8.0, 0.0, 2.0])
    assert target.dtype == np.float32
    rows = np.zeros((3, 2))
    backend.scatter_add(rows, (np.array([2, 2, 0]),), np.ones((3, 2)))
    np.testing.assert_array_equal(rows, [[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scatter_add_on_device(device: str, dtype: type) -> None:
    xp = backend.xp_for(backend.normalize_device(device))
    target = xp.zeros(5, dtype=dtype)
    index = xp.asarray([0, 4, 4, 0, 0])
    backend.scatter_add(target, index, xp.ones(5, dtype=dtype))
    np.testing.assert_array_equal(backend.to_numpy(target), [3.0, 0.0, 0.0, 0.0, 2.0])
    assert target.dtype == dtype
    # the op that relies on it: indexing with repeated integer indices
    x = mt.ones(3, dtype=dtype, device=device, requires_grad=True)
    x[mt.tensor([2, 0, 2, 2], device=device)].sum().backward()
    np.testing.assert_array_equal(backend.to_numpy(x.grad), [1.0, 0.0, 3.0])


def test_rng_state_round_trip() -> None:
    state = backend.get_rng_state()
    a = mt.randn(5).numpy().copy()
    r = mt.rand(3).numpy().copy()
    backend.set_rng_state(state)
    np.testing.assert_array_equal(mt.randn(5).numpy(), a)
    np.testing.assert_array_equal(mt.rand(3).numpy(), r)
    # a state is plain data (it can go into a checkpoint)
    assert isinstance(state, dict) and "bit_generator" in state


def test_manual_seed_resets_rng_for() -> None:
    mt.manual_seed(3)
    g1 = backend.rng_for("cpu").standard_normal(4)
    mt.manual_seed(3)
    g2 = backend.rng_for("cpu").standard_normal(4)
    np.testing.assert_array_equal(g1, g2)


def test_cuda_is_available_returns_a_bool() -> None:
    available = mt.cuda.is_available()
    assert isinstance(available, bool)
    assert isinstance(mt.cuda.device_count(), int)
    assert (mt.cuda.device_count() > 0) == available


def test_synchronize_and_device_context_on_cpu_are_no_ops() -> None:
    backend.synchronize("cpu")
    with backend.device_context("cpu"):
        assert mt.zeros(1).device == "cpu"


def test_dtype_helpers() -> None:
    assert backend.as_dtype("float32") == mt.float32
    assert backend.as_dtype(np.float64) == mt.float64
    assert backend.is_floating(mt.float32) and backend.is_floating("float16")
    assert not backend.is_floating(mt.int64) and not backend.is_floating(mt.bool_)


@pytest.mark.skipif(not mt.cuda.is_available(), reason="needs a CUDA GPU with CuPy")
def test_cuda_round_trip_and_device_of() -> None:
    x = mt.randn(3, 2, requires_grad=True)
    g = x.to("cuda")
    assert g.device == "cuda:0" and backend.is_cuda_array(g.data)
    assert backend.device_of(g.data) == "cuda:0"
    assert backend.xp_of(g.data) is not np
    back = (g * 2.0).cpu()
    assert back.device == "cpu"
    back.sum().backward()
    assert x.grad.dtype == np.float32 and isinstance(x.grad, np.ndarray)
    np.testing.assert_allclose(x.grad, np.full((3, 2), 2.0))
