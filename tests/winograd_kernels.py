"""Both Winograd kernels, for the tests that run a convolution through one of them:
F(2x2, 3x3) (``kernels.winograd``) and F(4x4, 3x3) (``kernels.winograd4``, NumPy only)."""

from __future__ import annotations

import pytest

from minitorch_nndl import kernels
from minitorch_nndl.ops import conv as conv_module

KERNELS = ("winograd", "winograd4")


def use_winograd_kernel(patch: pytest.MonkeyPatch, name: str, device: str = "cpu") -> object:
    """Make every stride-1 3x3 convolution of the test, however small, take the kernel ``name``;
    returns its module.  F(4x4, 3x3) runs on NumPy arrays only: on a GPU device the test skips."""
    if name == "winograd4" and device != "cpu":
        pytest.skip("F(4x4, 3x3) runs on the CPU only; a GPU takes F(2x2, 3x3)")
    patch.setattr(conv_module, "USE_WINOGRAD", True)
    patch.setattr(conv_module, "MIN_WINOGRAD_TILES", 1)
    patch.setattr(conv_module, "MIN_WINOGRAD_CHANNELS", 1)
    patch.setattr(conv_module, "USE_WINOGRAD4", name == "winograd4")
    patch.setattr(conv_module, "MIN_WINOGRAD4_TILES", 1)
    return getattr(kernels, name)
