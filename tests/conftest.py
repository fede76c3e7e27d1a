"""Shared fixtures.  ``device`` runs a test on the CPU, and on CUDA too when a GPU is present
(or only on the device named by ``pytest --device cuda``)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

import minitorch_nndl as mt

settings.register_profile(
    "default",
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "20")),
    deadline=None,
    derandomize=True,  # the same examples every run: CI never flakes on a new draw
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        action="store",
        default="auto",
        help="device(s) for the `device` fixture: cpu, cuda, or auto (cpu, plus cuda when available)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Reject a bad ``--device`` once, before collection, with a plain message."""
    choice = str(config.getoption("--device")).strip().lower()
    if choice not in ("auto", "cpu", "cuda"):
        raise pytest.UsageError(f"--device must be cpu, cuda or auto, got {choice!r}")
    if choice == "cuda" and not mt.cuda.is_available():
        raise pytest.UsageError("--device cuda was given but no CUDA GPU is usable (is CuPy installed?)")


def _devices(config: pytest.Config) -> list[str]:
    choice = str(config.getoption("--device")).strip().lower()
    if choice == "auto":
        return ["cpu", "cuda"] if mt.cuda.is_available() else ["cpu"]
    return [choice]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``@pytest.mark.cuda`` are skipped on machines without a GPU."""
    if mt.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU with CuPy")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", _devices(metafunc.config))


@pytest.fixture(autouse=True)
def _seed() -> None:
    mt.manual_seed(0)
