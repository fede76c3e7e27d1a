"""Tests of ``minitorch_nndl.testing``: the strategies draw only valid inputs, and ``check_op``
passes correct ops and fails broken ones with a message that says where."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import find as hypothesis_find
from hypothesis import strategies as st

import minitorch_nndl as mt
from minitorch_nndl import backend
from minitorch_nndl.autograd import Context, Function
from minitorch_nndl.ops._util import unbroadcast
from minitorch_nndl.testing import OpCheckError, assert_grad_close, check_op
from minitorch_nndl.testing.strategies import (
    broadcastable_shapes,
    conv_params,
    distinct_tensors,
    reals_away_from,
    shapes,
    tensors,
)

ROOT = Path(__file__).resolve().parents[1]


def find(strategy: st.SearchStrategy, condition: Any) -> Any:
    """The first drawn example satisfying ``condition`` (no shrinking, deterministic); fails if none in 300 draws."""
    quick = settings(max_examples=300, phases=[Phase.generate], database=None, derandomize=True)
    return hypothesis_find(strategy, condition, settings=quick)


def is_contiguous(t: mt.Tensor) -> bool:
    return bool(t.data.flags.c_contiguous)


# ------------------------------------------------------------------ strategies


@given(shape=shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
def test_shapes_respect_their_bounds(shape: tuple) -> None:
    assert 1 <= len(shape) <= 3
    assert all(2 <= n <= 4 for n in shape)


@given(data=st.data())
def test_broadcastable_shapes_really_broadcast(data: st.DataObject) -> None:
    shape = data.draw(shapes(max_dims=4))
    other = data.draw(broadcastable_shapes(shape, max_dims=len(shape) + 1))
    result = np.broadcast_shapes(shape, other)  # raises if the rule is broken
    assert len(other) <= len(shape) + 1
    assert result == np.broadcast_shapes(other, shape)
    for k in range(1, min(len(shape), len(other)) + 1):
        assert other[-k] in (shape[-k], 1) or shape[-k] == 1


def test_broadcastable_shapes_include_fewer_dims_and_size_one_axes() -> None:
    assert len(find(broadcastable_shapes((3, 4)), lambda s: len(s) < 2)) < 2
    assert 1 in find(broadcastable_shapes((3, 4)), lambda s: len(s) == 2 and 1 in s)
    assert find(broadcastable_shapes((1, 4)), lambda s: len(s) == 2 and s[0] > 1)[0] > 1
    assert len(find(broadcastable_shapes((3,), max_dims=3), lambda s: len(s) == 3)) == 3


@given(p=conv_params())
def test_conv_params_are_valid(p: Any) -> None:
    assert p.C % p.groups == 0 and p.out_channels % p.groups == 0
    assert 1 <= p.N <= 2 and 1 <= p.C <= 4 and 1 <= p.out_channels <= 4 and p.H <= 7 and p.W <= 7
    oh, ow = p.out_size
    assert oh >= 1 and ow >= 1
    for size, k, o in ((p.H, p.kernel[0], oh), (p.W, p.kernel[1], ow)):
        # count window positions directly: start s*i, last tap at s*i + d*(k-1) inside the padded input
        positions = [i for i in range(size + 2 * p.padding) if i % p.stride == 0]
        assert o == sum(1 for s in positions if s + p.dilation * (k - 1) < size + 2 * p.padding)
    assert p.weight_shape == (p.out_channels, p.C // p.groups, *p.kernel)
    assert p.output_shape == (p.N, p.out_channels, oh, ow)


def test_conv_params_cover_groups_strides_and_dilation() -> None:
    assert find(conv_params(), lambda p: p.groups > 1).groups > 1
    assert find(conv_params(), lambda p: p.stride == 2 and p.dilation == 2 and p.padding == 1).stride == 2


@given(x=reals_away_from([0.0, 1.0], margin=0.25, min_value=-2.0, max_value=2.0))
def test_reals_away_from_keeps_the_margin(x: float) -> None:
    assert -2.0 <= x <= 2.0
    assert abs(x - 0.0) >= 0.25 and abs(x - 1.0) >= 0.25
    assert math.isfinite(x)


def test_reals_away_from_rejects_an_empty_range() -> None:
    with pytest.raises(ValueError, match="no value"):
        reals_away_from([0.0], margin=2.0, min_value=-1.0, max_value=1.0)


@given(x=tensors(shapes(max_dims=3, max_side=4), dtype=mt.float32, requires_grad=True))
def test_tensors_have_the_requested_dtype_and_no_hidden_gaps(x: mt.Tensor) -> None:
    assert x.dtype == mt.float32 and x.requires_grad and x.device == "cpu"
    assert np.isfinite(x.numpy()).all()  # the NaN gaps of strided layouts are never visible
    assert (np.abs(x.numpy()) <= 3).all()


def test_tensors_are_sometimes_non_contiguous_and_sometimes_contiguous() -> None:
    strategy = tensors(shape=(3, 4))
    transposed = find(strategy, lambda t: not is_contiguous(t) and t.data.strides[0] < t.data.strides[1])
    strided = find(strategy, lambda t: not is_contiguous(t) and t.data.strides[1] == 2 * t.data.itemsize)
    contiguous = find(strategy, is_contiguous)
    assert not is_contiguous(transposed) and not is_contiguous(strided) and is_contiguous(contiguous)
    assert transposed.shape == strided.shape == contiguous.shape == (3, 4)
    assert is_contiguous(find(tensors(shape=(3, 4), non_contiguous=False), lambda t: True))


@given(ts=distinct_tensors((2, 3), (3,), min_gap=0.05))
def test_distinct_tensors_keep_the_gap_across_tensors(ts: tuple) -> None:
    values = np.sort(np.concatenate([t.numpy().reshape(-1) for t in ts]))
    assert values.size == 9
    assert np.diff(values).min() >= 0.05 - 1e-12


# ------------------------------------------------------------------ check_op on correct ops


def test_check_op_passes_builtin_ops() -> None:
    rng = np.random.default_rng(0)
    x = mt.Tensor._wrap(rng.standard_normal((4, 3)).T)  # non-contiguous float64
    y = mt.tensor(rng.standard_normal(4))
    check_op(mt.add, x, y, reference=np.add)
    check_op(mt.matmul, x, mt.tensor(rng.standard_normal(4)), reference=np.matmul)
    check_op(lambda a, b: mt.concatenate([a, b], axis=0), x, x, reference=lambda a, b: np.concatenate([a, b]))
    check_op(lambda a, i: a[i], x, np.array([0, 0, 2]), reference=lambda a, i: a[i])
    check_op(mt.softmax, x.float(), 0, reference=lambda a, k: np.exp(a) / np.exp(a).sum(k, keepdims=True))
    check_op(mt.where, x > 0, x, y, reference=np.where)


def test_check_op_grad_subset_and_allowed_mutation() -> None:
    """An op that updates a running statistic in place (like batch norm) passes when that is declared."""

    class ScaleAndTrack(Function):
        """y = 2 x (running is updated in place, not differentiated);  dy/dx = 2."""

        @staticmethod
        def forward(ctx: Context, x: Any, running: Any) -> Any:
            running += x.mean()
            return x * x.dtype.type(2)

        @staticmethod
        def backward(ctx: Context, grad: Any) -> Any:
            return grad * grad.dtype.type(2), None

    x, running = mt.randn(3, dtype=mt.float64), mt.zeros(1, dtype=mt.float64)
    check_op(ScaleAndTrack.apply, x, running, reference=lambda a, r: 2 * a, grad=[0], allow_mutation=[1])
    with pytest.raises(OpCheckError, match=r"input 1 was modified in place by forward at index \(0,\)"):
        check_op(ScaleAndTrack.apply, x, mt.zeros(1, dtype=mt.float64), grad=[0])


# ------------------------------------------------------------------ check_op on broken ops


class WrongSignSub(Function):
    """a - b with a wrong sign in backward: dL/db returned as +g instead of -g."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.shapes = a.shape, b.shape
        return a - b

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        return unbroadcast(grad, ctx.shapes[0]), unbroadcast(grad, ctx.shapes[1])


class WrongAxisAdd(Function):
    """a (n, n) + b (n,) whose backward sums over the wrong axis (1 instead of 0): right shape, wrong values."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        return a + b

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        return grad, grad.sum(axis=1)


class NoUnbroadcastAdd(Function):
    """a + b whose backward forgets to sum the gradient back to b's shape."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        return a + b

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        return grad, grad


class ForgottenAccumulationSquare(Function):
    """x * x uses x twice, but backward counts it once: g x instead of 2 g x."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (x,) = ctx.saved_tensors
        return (grad * x,)


class MutatingDouble(Function):
    """2 x, computed by doubling the input array in place."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        x *= 2
        return x.copy()

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        return (grad * 2,)


class Float64LeakDouble(Function):
    """2 x, computed in float64 whatever x's dtype."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        return x.astype(np.float64) * 2

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        return (grad * 2,)


class StrideBlindCopy(Function):
    """A copy that reads the input in memory order (wrong for a transposed view)."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        return backend.xp_of(x).ravel(x, order="K").reshape(x.shape)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        return (grad,)


def element_message(input_index: int) -> str:
    return rf"input {input_index} .*at index \(\d+(, \d+)*,?\)"


def test_wrong_sign_is_reported_with_input_and_element() -> None:
    a, b = mt.randn(2, 3, dtype=mt.float64), mt.randn(3, dtype=mt.float64)
    with pytest.raises(OpCheckError, match=r"check_op\(WrongSignSub\) failed check 'float64 gradcheck'") as info:
        check_op(WrongSignSub.apply, a, b, reference=np.subtract)
    assert re.search(element_message(1), str(info.value))
    assert "analytic" in str(info.value) and "numerical" in str(info.value)


def test_wrong_unbroadcast_axis_is_reported() -> None:
    a, b = mt.randn(3, 3, dtype=mt.float64), mt.randn(3, dtype=mt.float64)
    with pytest.raises(OpCheckError, match=element_message(1)):
        check_op(WrongAxisAdd.apply, a, b, reference=np.add, name="wrong_axis_add")


def test_missing_unbroadcast_is_reported_with_both_shapes() -> None:
    a, b = mt.randn(2, 3, dtype=mt.float64), mt.randn(3, dtype=mt.float64)
    with pytest.raises(OpCheckError, match=r"failed check 'backward'.*shape \(2, 3\) for an input of shape \(3,\)"):
        check_op(NoUnbroadcastAdd.apply, a, b, reference=np.add)


def test_forgotten_accumulation_is_reported() -> None:
    x = mt.randn(4, dtype=mt.float64)
    with pytest.raises(OpCheckError, match=element_message(0)):
        check_op(ForgottenAccumulationSquare.apply, x, reference=np.square)


def test_assert_grad_close_reports_the_same() -> None:
    with pytest.raises(OpCheckError, match=r"assert_grad_close\(square\).*" + element_message(0)):
        assert_grad_close(ForgottenAccumulationSquare.apply, [mt.randn(4, dtype=mt.float64)], name="square")
    assert_grad_close(mt.tanh, [mt.randn(2, 2, dtype=mt.float64)])
    assert issubclass(OpCheckError, AssertionError)


def test_mutated_input_is_reported_with_both_values() -> None:
    x = mt.tensor([1.0, -2.0, 3.0], dtype=mt.float64)
    with pytest.raises(
        OpCheckError,
        match=r"'no input mutation'.*input 0 was modified in place by forward at index \(0,\): before 1, after 2",
    ):
        check_op(MutatingDouble.apply, x, reference=lambda a: 2 * a)


@pytest.mark.parametrize("dtype", [mt.float32, mt.float64])
def test_float64_leak_from_float32_is_reported(dtype: Any) -> None:
    x = mt.randn(2, 3, dtype=dtype)
    with pytest.raises(
        OpCheckError, match=r"'output dtype'.*output 0 has dtype float64 but the floating inputs are float32"
    ):
        check_op(Float64LeakDouble.apply, x, reference=lambda a: 2 * a)


def test_wrong_values_on_non_contiguous_input_are_reported() -> None:
    x = mt.Tensor._wrap(np.arange(6.0).reshape(3, 2).T)  # non-contiguous (2, 3)
    check_op(StrideBlindCopy.apply, mt.tensor(x.numpy()), reference=np.copy)  # fine on contiguous input
    with pytest.raises(OpCheckError, match=r"'value vs reference'.*output 0 at index \(1, 0\): got 3, expected 1"):
        check_op(StrideBlindCopy.apply, x, reference=np.copy)


def test_failing_op_inside_given_shows_hypothesis_example() -> None:
    @given(tensors(shapes(1, 2, max_side=3)))
    def inner(x: mt.Tensor) -> None:
        check_op(ForgottenAccumulationSquare.apply, x, reference=np.square)

    with pytest.raises(OpCheckError, match=element_message(0)):
        inner()


# ------------------------------------------------------------------ imports and the example


def test_check_op_imports_without_hypothesis() -> None:
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "import minitorch_nndl as mt\n"
        "from minitorch_nndl.testing import check_op\n"
        "check_op(mt.exp, mt.randn(3, dtype=mt.float64))\n"
        "try:\n"
        "    from minitorch_nndl.testing import tensors\n"
        "except ImportError as e:\n"
        "    print('ImportError:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "ImportError:" in out.stdout and "pip install hypothesis" in out.stdout


def test_custom_op_example_runs_and_reports_the_broken_backward() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "custom_op.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
        env=env,
    )
    assert "Softplus passed check_op" in out.stdout
    assert "check_op(broken_softplus) failed check 'float64 gradcheck'" in out.stdout
    assert re.search(r"input 0 \(shape \(1, 3\)\) at index \(0, \d\): analytic", out.stdout)


def test_check_op_refuses_to_check_nothing() -> None:
    """A list of tensors in place of separate arguments used to pass without checking anything."""
    x = mt.randn(3, dtype=mt.float64)
    with pytest.raises(TypeError, match="separate arguments"):
        check_op(lambda t: t * 2, [x])
