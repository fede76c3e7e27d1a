"""``fakecuda``: a strict NumPy-backed stand-in for CuPy, for testing the CUDA path without a GPU.

``python3 -m pytest --device fakecuda`` installs it in place of ``cupy`` (``install()``)
before minitorch_nndl first looks for CuPy, and runs every device test on ``cuda:0`` of
two fake GPUs.  See ``core.py`` for what it enforces and ``rawkernel.py`` for how the
CUDA C kernels run on the CPU.  It is test code only: the package never ships it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from .core import DEVICE_COUNT, Counter, counting, current_device
from .rawkernel import compiler


def install() -> None:
    """Put the stand-in into ``sys.modules`` as ``cupy`` (replacing a real one)."""
    from . import core

    for name in [m for m in sys.modules if m == "cupy" or m.startswith("cupy.") or m.startswith("cupyx")]:
        del sys.modules[name]
    sys.modules.update(core.build_modules())


@contextlib.contextmanager
def activated() -> Iterator[None]:
    """The stand-in in place of ``cupy`` inside the block only; the previous modules come back after."""
    saved = {m: sys.modules[m] for m in list(sys.modules) if m == "cupy" or m.startswith(("cupy.", "cupyx"))}
    install()
    try:
        yield
    finally:
        for name in [m for m in sys.modules if m == "cupy" or m.startswith(("cupy.", "cupyx"))]:
            del sys.modules[name]
        sys.modules.update(saved)


def installed() -> bool:
    module = sys.modules.get("cupy")
    return module is not None and getattr(module, "__file__", "") == sys.modules[__name__ + ".core"].__file__


__all__ = ["DEVICE_COUNT", "Counter", "compiler", "counting", "current_device", "activated", "install", "installed"]
