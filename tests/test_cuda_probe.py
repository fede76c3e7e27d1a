"""Is CUDA usable, and if not, why: the probe tells 'not installed', 'no driver/GPU' and
'CUDA libraries missing' apart, and the error says which one with the command that fixes it."""

from __future__ import annotations

import contextlib
import sys
import types
from pathlib import Path

import fakecuda
import pytest
from conftest import forget_cupy

import minitorch_nndl as mt
from minitorch_nndl import backend


@pytest.fixture
def cupy_module(monkeypatch: pytest.MonkeyPatch):
    """Put something in place of ``cupy`` (None: not installed) for one test."""

    def use(module: object) -> None:
        monkeypatch.setitem(sys.modules, "cupy", module)
        forget_cupy()

    yield use
    forget_cupy()


def _broken_cupy(device_count=None, compute_error: str | None = None) -> types.ModuleType:
    cupy = types.ModuleType("cupy")

    def count() -> int:
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    cupy.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=count), Device=lambda i: contextlib.nullcontext()
    )
    cupy.float32 = "float32"

    def ones(*args: object, **kwargs: object) -> object:
        raise RuntimeError(compute_error)

    cupy.ones = ones
    return cupy


def test_cupy_not_installed(cupy_module) -> None:
    cupy_module(None)  # `import cupy` raises ImportError
    assert mt.cuda.is_available() is False
    assert backend.cuda_unavailable_reason() == "CuPy is not installed"


def test_cupy_without_a_driver_or_gpu(cupy_module) -> None:
    cupy_module(_broken_cupy(device_count=RuntimeError("cudaErrorInsufficientDriver: CUDA driver is insufficient")))
    assert mt.cuda.is_available() is False
    reason = backend.cuda_unavailable_reason()
    assert "finds no NVIDIA driver or GPU" in reason and "cudaErrorInsufficientDriver" in reason


def test_cupy_with_no_gpu(cupy_module) -> None:
    cupy_module(_broken_cupy(device_count=0))
    assert backend.cuda_unavailable_reason() == "CuPy is installed but finds no GPU"


def test_cupy_without_its_cuda_libraries(cupy_module) -> None:
    """cupy-cuda12x without the ctk extra on a driver-only machine: the GPU is seen, nothing runs."""
    cupy_module(_broken_cupy(device_count=1, compute_error="libnvrtc.so.12: cannot open shared object file"))
    assert mt.cuda.is_available() is False
    reason = backend.cuda_unavailable_reason()
    assert "CUDA libraries missing" in reason and "libnvrtc" in reason
    with pytest.raises(RuntimeError) as error:
        mt.zeros(2, device="cuda")
    message = str(error.value)
    assert "CUDA libraries missing" in message and 'python3 -m pip install -e ".[cuda]"' in message
    assert "minitorch-nndl[cuda]" not in message  # not a package on any index


def test_a_usable_cupy(cupy_module) -> None:
    with fakecuda.activated():
        forget_cupy()
        assert mt.cuda.is_available() is True
        assert backend.cuda_unavailable_reason() == ""
        assert mt.cuda.device_count() == fakecuda.DEVICE_COUNT


def test_the_cuda_extra_brings_the_cuda_libraries() -> None:
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for name in ("cuda", "cuda13"):
        assert any(req.startswith("cupy-cuda") and "[ctk]" in req for req in extras[name]), extras[name]
