"""Every op in ``tests/op_table.py``, checked by ``check_op``: values against NumPy, float64
gradcheck, no input mutation, float32 in -> float32 out (and float32 gradients), device kept.

Hypothesis draws the inputs (0-d, size-1 axes, broadcasting pairs, non-contiguous views);
the profile in ``conftest.py`` makes the draws the same on every run.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from op_table import OPS, OpSpec

import minitorch_nndl as mt
from minitorch_nndl.testing import check_op


def same_layout_on(array: np.ndarray, device: str) -> object:
    """``array`` copied to ``device`` with its strides: a transposed or sliced view stays one.

    The whole buffer under the view goes to the device and the view is rebuilt there with
    ``as_strided``, so ops see the same non-contiguous inputs as on the CPU.
    """
    root = array
    while isinstance(root.base, np.ndarray):
        root = root.base
    moved = mt.tensor(array, device=device).data  # contiguous: the fallback
    if array.flags.c_contiguous or root.dtype != array.dtype or not root.flags.c_contiguous:
        return moved
    offset = array.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    flat = mt.tensor(root.reshape(-1), device=device).data[offset // array.itemsize :]
    strided = importlib.import_module(f"{type(flat).__module__.split('.')[0]}.lib.stride_tricks").as_strided
    return strided(flat, shape=array.shape, strides=array.strides)


def to_device(value: object, device: str) -> object:
    """Tensors (also inside index tuples) moved to ``device``, each with its layout."""
    if device == "cpu":
        return value
    if isinstance(value, mt.Tensor):
        return mt.Tensor._wrap(same_layout_on(value.data, device))
    if isinstance(value, tuple):
        return tuple(to_device(v, device) for v in value)
    return value


@pytest.mark.parametrize("spec", OPS, ids=[spec.name for spec in OPS])
@given(data=st.data())
def test_op(spec: OpSpec, data: st.DataObject, device: str) -> None:
    inputs = to_device(data.draw(spec.inputs, label=f"{spec.name} inputs"), device)
    check_op(
        spec.fn,
        *inputs,
        reference=spec.reference,
        grad=True if spec.diff is None else spec.diff,
        atol=spec.atol,
        rtol=spec.rtol,
        name=spec.name,
        allow_mutation=spec.allow_mutation,
    )


def test_table_covers_every_public_differentiable_op() -> None:
    """Each differentiable function exported by ``minitorch_nndl`` appears in (the name of) a table entry."""
    differentiable = (
        "add sub mul div pow neg exp log sqrt abs tanh sigmoid relu leaky_relu clamp maximum minimum where "
        "sum mean var max min logsumexp softmax log_softmax matmul reshape flatten transpose permute squeeze "
        "unsqueeze expand broadcast_to concatenate stack pad getitem conv2d max_pool2d avg_pool2d "
        "adaptive_avg_pool2d batch_norm cross_entropy nll_loss mse_loss"
    ).split()
    names = [spec.name for spec in OPS]
    missing = [op for op in differentiable if not any(n == op or n.startswith(op + "_") for n in names)]
    assert missing == []


def test_pow_gradient_is_zero_where_the_exponent_is_zero(device: str) -> None:
    """d(a^b)/da = b a^(b-1) is 0 * inf = NaN at a = 0, b = 0 if computed literally; a^0 = 1 is
    constant in a, so the gradient is 0 (PyTorch's convention too). Other entries are unchanged."""
    a = mt.tensor([0.0, 0.0, 2.0, 3.0], device=device, requires_grad=True)
    b = mt.tensor([0.0, 2.0, 0.0, 2.0], device=device)
    mt.pow(a, b).sum().backward()
    np.testing.assert_array_equal(mt.backend.to_numpy(a.grad), [0.0, 0.0, 0.0, 6.0])


def test_inputs_keep_their_layout_on_the_device(device: str) -> None:
    """The op table's non-contiguous draws reach the device as non-contiguous arrays."""
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    for view in (base.T, base[:, ::2], base[1:3, 1:].T):
        moved = to_device(mt.Tensor(view), device)
        assert moved.numpy().tolist() == view.tolist()
        assert moved.data.strides == view.strides and not moved.data.flags.c_contiguous
