"""The stand-in itself: each thing it must enforce, it does (a stand-in that lets a GPU bug
through proves nothing).  These run in every suite run, with the stand-in in place of CuPy."""

from __future__ import annotations

import fakecuda
import numpy as np
import pytest
from conftest import forget_cupy

from minitorch_nndl.kernels import generic


@pytest.fixture
def cp():
    with fakecuda.activated():
        forget_cupy()
        import cupy

        yield cupy
    forget_cupy()


def test_arrays_are_their_own_type_and_refuse_implicit_conversion(cp) -> None:
    a = cp.arange(6, dtype=cp.float32).reshape(2, 3)
    assert type(a).__module__ == "cupy" and a.device.id == 0
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    with pytest.raises(TypeError):
        float(a)  # not 0-d
    with pytest.raises(TypeError):
        a + np.ones(3)  # a host array into a device ufunc
    with pytest.raises(TypeError):
        np.ones(3) * a
    with pytest.raises(TypeError):
        cp.maximum(a, np.zeros(3))
    assert isinstance(np.float32(2) * a, cp.ndarray)  # NumPy scalars are fine, as in CuPy
    np.testing.assert_array_equal(a.get(), np.arange(6).reshape(2, 3))


def test_only_the_names_real_cupy_has(cp) -> None:
    assert fakecuda.core.VERSION.startswith("14.")
    with pytest.raises(AttributeError, match="not in CuPy"):
        cp.lookfor  # noqa: B018  (NumPy has it, CuPy does not)
    rng = cp.random.default_rng(0)
    with pytest.raises(AttributeError):
        rng.permutation(3)  # CuPy's Generator has no permutation
    with pytest.raises(AttributeError):
        cp.zeros(2).newbyteorder  # noqa: B018
    assert rng.standard_normal((2,), dtype=cp.float32).dtype == np.float32


def test_cupy_semantics_where_they_differ_from_numpy(cp) -> None:
    a = cp.arange(4.0)
    assert isinstance(a.sum(), cp.ndarray) and a.sum().ndim == 0  # reductions stay on the device
    assert isinstance(a[1], cp.ndarray) and a[1].ndim == 0
    assert a[cp.asarray(np.array([5, -1]))].get().tolist() == [1.0, 3.0]  # out-of-bounds indices wrap
    with pytest.raises(TypeError):
        a[:2] = np.ones(2)  # basic-index assignment of host data
    assert np.isnan(cp.empty(3).get()).all()  # uninitialised memory is garbage
    assert isinstance(cp.allclose(a, a), cp.ndarray)


def test_a_second_device_and_the_current_one(cp) -> None:
    a = cp.ones(3)
    with cp.cuda.Device(1):
        b = cp.ones(3)
        assert b.device.id == 1
        with pytest.raises(ValueError, match="current device"):
            a * 2  # a kernel on device 1 reading device 0's memory
        assert a.copy().device.id == 1  # copy() copies onto the current device
        assert cp.asarray(a) is a  # asarray keeps an array where it is
    with pytest.raises(ValueError, match="current device"):
        a + b


def test_host_syncs_and_copies_are_counted(cp) -> None:
    a = cp.arange(4.0)
    with fakecuda.counting() as seen:
        b = (a * 2).sum()  # stays on the device
    assert not seen.syncs and not seen.h2d
    with fakecuda.counting() as seen:
        float(b)
        a.get()
        bool(a[0] > 1)
        a[a > 1]  # boolean masks need the count of True values first
        cp.asarray(np.ones(2))
    assert len(seen.syncs) == 4 and len(seen.h2d) == 1, seen.report()
    assert "test_fakecuda.py" in seen.syncs[0]  # it names the line that asked


@pytest.mark.skipif(fakecuda.compiler() is None, reason="no C++ compiler to run CUDA C on the CPU")
def test_raw_kernels_run_their_cuda_c(cp) -> None:
    from minitorch_nndl.kernels import cuda

    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        host = rng.standard_normal((2, 3, 7, 6)).astype(dtype)
        x = cp.asarray(host)
        args = ((3, 2), (2, 1), (1, 2), (2, 1))
        cols = cuda.im2col(x, *args)
        np.testing.assert_array_equal(cols.get(), generic.im2col(host, *args))
        g = rng.standard_normal(cols.shape).astype(dtype)
        np.testing.assert_allclose(
            cuda.col2im(cp.asarray(g), x.shape, *args).get(), generic.col2im(g, host.shape, *args)
        )
        assert cuda.available_for(dtype)


@pytest.mark.skipif(fakecuda.compiler() is None, reason="no C++ compiler to run CUDA C on the CPU")
def test_raw_kernel_launches_are_checked(cp) -> None:
    source = r"""typedef float T;
    extern "C" __global__ void twice(const T* x, T* y, const int n) {
        int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n) y[i] = 2 * x[i];
    }"""
    kernel = cp.RawModule(code=source).get_function("twice")
    x = cp.arange(10, dtype=cp.float32)
    y = cp.empty(10, dtype=cp.float32)
    kernel((3,), (4,), (x, y, np.int32(10)))
    assert y.get().tolist() == [2.0 * i for i in range(10)]
    with pytest.raises(TypeError, match="numpy.int32"):
        kernel((3,), (4,), (x, y, 10))  # CuPy would pass a Python int as 64 bits
    with pytest.raises(ValueError, match="C-contiguous"):
        kernel((3,), (4,), (cp.arange(20, dtype=cp.float32)[::2], y, np.int32(10)))
    with pytest.raises(TypeError, match="float64"):
        kernel((3,), (4,), (cp.arange(10.0), y, np.int32(10)))
    with pytest.raises(TypeError, match="device array"):
        kernel((3,), (4,), (np.arange(10, dtype=np.float32), y, np.int32(10)))
