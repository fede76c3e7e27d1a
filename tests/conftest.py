"""Shared fixtures.  ``device`` runs a test on the CPU and on CUDA: on a real GPU when one is
usable, otherwise on the strict CuPy stand-in ``tests/fakecuda`` ("fakecuda"), so every run
of the suite exercises the CUDA path.  ``pytest --device cpu|cuda|fakecuda`` picks one."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import fakecuda
import pytest
from hypothesis import HealthCheck, settings

import minitorch_nndl as mt
from minitorch_nndl import backend, kernels

settings.register_profile(
    "default",
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "20")),
    deadline=None,
    derandomize=True,  # the same examples every run: CI never flakes on a new draw
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # `device` is the same for every example
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


DEVICE_CHOICES = ("auto", "cpu", "cuda", "fakecuda")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        action="store",
        default="auto",
        help="device(s) for the `device` fixture: cpu, cuda (a real GPU), fakecuda (the strict CuPy "
        "stand-in in tests/fakecuda, on cuda:0 of two fake GPUs), or auto (cpu, plus cuda when a GPU is usable)",
    )


def _choice(config: pytest.Config) -> str:
    return str(config.getoption("--device")).strip().lower()


def pytest_configure(config: pytest.Config) -> None:
    """Reject a bad ``--device`` once, before collection; install the stand-in for fakecuda."""
    choice = _choice(config)
    if choice not in DEVICE_CHOICES:
        raise pytest.UsageError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, got {choice!r}")
    if choice == "fakecuda":
        fakecuda.install()
        forget_cupy()
    if choice in ("fakecuda", "auto") and fakecuda.compiler() is None:
        kernels.USE_CUDA_RAWKERNELS = False  # the stand-in cannot run CUDA C: test the array-expression kernels
    if choice == "cuda" and not mt.cuda.is_available():
        raise pytest.UsageError(
            f"--device cuda was given but no CUDA GPU is usable: {backend.cuda_unavailable_reason()}"
        )


def pytest_report_header(config: pytest.Config) -> list[str]:
    if _choice(config) not in ("fakecuda", "auto") or (_choice(config) == "auto" and mt.cuda.is_available()):
        return []
    kernels_line = (
        f"RawKernels compiled for the CPU with {fakecuda.compiler()}"
        if kernels.USE_CUDA_RAWKERNELS
        else "no C++ compiler: RawKernels replaced by the array-expression kernels"
    )
    return [f"fakecuda: strict CuPy {fakecuda.core.VERSION} stand-in, {fakecuda.DEVICE_COUNT} devices; {kernels_line}"]


def _devices(config: pytest.Config) -> list[str]:
    """The ``device`` fixture's parameters.  Without a GPU the default run also covers the
    CUDA path on the stand-in ("fakecuda"), so every run of the suite exercises it."""
    choice = _choice(config)
    if choice == "auto":
        return ["cpu", "cuda:0"] if mt.cuda.is_available() else ["cpu", "fakecuda"]
    return {"cpu": ["cpu"], "cuda": ["cuda:0"], "fakecuda": ["fakecuda"]}[choice]


def forget_cupy() -> None:
    """Drop what minitorch_nndl learned about CuPy, so the next look finds the one now in sys.modules."""
    backend._cupy_status.cache_clear()
    backend._cuda_rngs.clear()
    cuda_kernels = sys.modules.get("minitorch_nndl.kernels.cuda")
    if cuda_kernels is not None:
        cuda_kernels._modules.clear()
        cuda_kernels._status.clear()


@pytest.fixture
def device(request: pytest.FixtureRequest) -> Iterator[str]:
    """A canonical device name (``"cpu"``, ``"cuda:0"``), as ``Tensor.device`` reports it.

    "fakecuda" hands the test ``"cuda:0"`` of the stand-in; in a default run the stand-in is
    put in place of ``cupy`` for this test only.
    """
    if request.param != "fakecuda":
        yield request.param
        return
    if fakecuda.installed():  # --device fakecuda: in place for the whole session
        yield "cuda:0"
        return
    with fakecuda.activated():
        forget_cupy()
        try:
            yield "cuda:0"
        finally:
            forget_cupy()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``@pytest.mark.cuda`` are skipped unless a GPU (or the stand-in) is there."""
    if mt.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU with CuPy (or --device fakecuda)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", _devices(metafunc.config), indirect=True)


@pytest.fixture(autouse=True)
def _seed() -> None:
    mt.manual_seed(0)
