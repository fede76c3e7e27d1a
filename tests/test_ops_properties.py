"""Properties every op must have, checked on Hypothesis-drawn inputs (beyond value/gradient spot checks)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from op_table import MAX_SIDE, OPS, OpSpec, small_shapes

import minitorch_nndl as mt
from minitorch_nndl.testing.strategies import broadcastable_pairs, distinct_tensors, tensors

BINARY_OPS = [spec for spec in OPS if "binary" in spec.tags]


def on(device: str, *xs: mt.Tensor) -> list[mt.Tensor]:
    """Leaf copies of ``xs`` on ``device`` that require grad (floating ones)."""
    out = []
    for x in xs:
        data = mt.tensor(x.numpy(), device=device).data
        out.append(mt.Tensor._wrap(data, requires_grad=mt.backend.is_floating(x.dtype)))
    return out


# ------------------------------------------------------------------ broadcasting


@pytest.mark.parametrize("spec", BINARY_OPS, ids=[s.name for s in BINARY_OPS])
@given(data=st.data())
def test_binary_broadcasting_agrees_with_numpy(spec: OpSpec, data: st.DataObject, device: str) -> None:
    a, b = data.draw(spec.inputs)
    ta, tb = on(device, a, b)
    out = spec.fn(ta, tb)
    expected = spec.reference(a.numpy(), b.numpy())
    assert out.shape == np.broadcast_shapes(a.shape, b.shape) == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    out.sum().backward()
    assert ta.grad.shape == a.shape and tb.grad.shape == b.shape


@given(pair=broadcastable_pairs(max_dims=3, max_side=MAX_SIDE))
def test_add_gradient_counts_broadcast_copies(pair: tuple, device: str) -> None:
    """Each input element of a + b is used (numel(out) / numel(input)) times, so that is its gradient."""
    sa, sb = pair
    a = mt.zeros(sa, dtype=mt.float64, device=device, requires_grad=True)
    b = mt.zeros(sb, dtype=mt.float64, device=device, requires_grad=True)
    out = a + b
    out.sum().backward()
    n = out.numel()
    np.testing.assert_array_equal(mt.Tensor._wrap(a.grad).numpy(), np.full(sa, n / a.numel()))
    np.testing.assert_array_equal(mt.Tensor._wrap(b.grad).numpy(), np.full(sb, n / b.numel()))


# ------------------------------------------------------------------ sums and shapes


@given(x=tensors(small_shapes(), dtype=mt.float32))
def test_grad_of_sum_is_ones(x: mt.Tensor, device: str) -> None:
    (t,) = on(device, x)
    t.sum().backward()
    grad = mt.Tensor._wrap(t.grad).numpy()
    assert grad.dtype == np.float32
    np.testing.assert_array_equal(grad, np.ones(x.shape, dtype=np.float32))
    assert grad.sum() == x.numel()


@given(data=st.data())
def test_transpose_twice_is_identity(data: st.DataObject, device: str) -> None:
    x = data.draw(tensors(small_shapes()))
    perm = data.draw(st.permutations(range(x.ndim)))
    inverse = tuple(int(i) for i in np.argsort(perm))
    (t,) = on(device, x)
    np.testing.assert_array_equal(t.T.T.numpy(), x.numpy())
    y = t.permute(*perm).permute(*inverse)
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    w = np.random.default_rng(0).standard_normal(x.shape)
    (y * mt.tensor(w, dtype=mt.float64, device=device)).sum().backward()
    np.testing.assert_array_equal(mt.Tensor._wrap(t.grad).numpy(), w)  # the identity's gradient passes w through


# ------------------------------------------------------------------ softmax family


@given(data=st.data())
def test_softmax_sums_to_one_and_ignores_shifts(data: st.DataObject, device: str) -> None:
    x = data.draw(tensors(small_shapes(min_dims=1), elements=st.floats(-20, 20)))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    shift = data.draw(st.floats(-100, 100))
    (t,) = on(device, x)
    p = mt.softmax(t, axis)
    np.testing.assert_allclose(p.sum(axis=axis).numpy(), 1.0, rtol=1e-12)
    assert (p.numpy() >= 0).all()
    np.testing.assert_allclose(mt.softmax(t + shift, axis).numpy(), p.numpy(), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("dtype", [mt.float32, mt.float64])
def test_log_softmax_and_logsumexp_are_stable_for_huge_logits(dtype: object, device: str) -> None:
    logits = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4], [-1e4, -1e4, -1e4 + 1.0]])
    x = mt.tensor(logits, dtype=dtype, device=device, requires_grad=True)
    y = mt.log_softmax(x, axis=1)
    lse = mt.logsumexp(x, axis=1)
    expected_lse = np.array([1e4, 1e4 + np.log(3.0), -1e4 + 1.0 + np.log(1.0 + 2.0 * np.exp(-1.0))])
    expected = logits - expected_lse[:, None]
    assert y.dtype == dtype and lse.dtype == dtype
    assert np.isfinite(y.numpy()).all() and np.isfinite(lse.numpy()).all()
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6, atol=1e-3 if dtype == mt.float32 else 1e-9)
    np.testing.assert_allclose(lse.numpy(), expected_lse, rtol=1e-6)
    (y.sum() + lse.sum()).backward()
    grad = mt.Tensor._wrap(x.grad).numpy()
    assert np.isfinite(grad).all()
    # d/dx [sum_j log_softmax_j + logsumexp] = 1 - 3 softmax + softmax = 1 - 2 softmax
    softmax = np.exp(expected)
    np.testing.assert_allclose(grad, 1 - 2 * softmax, atol=1e-6)


# ------------------------------------------------------------------ gradient routing


@given(data=st.data())
def test_getitem_backward_counts_repeated_indices(data: st.DataObject, device: str) -> None:
    x = data.draw(tensors(small_shapes(min_dims=1)))
    n = x.shape[0]
    picks = data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=8))
    (t,) = on(device, x)
    t[mt.tensor(np.asarray(picks, dtype=np.int64), device=device)].sum().backward()
    counts = np.bincount(np.asarray(picks) % n, minlength=n).astype(np.float64)
    expected = np.broadcast_to(counts.reshape((n,) + (1,) * (x.ndim - 1)), x.shape)
    np.testing.assert_array_equal(mt.Tensor._wrap(t.grad).numpy(), expected)


@given(data=st.data())
def test_where_routes_gradient_by_condition(data: st.DataObject, device: str) -> None:
    shape = data.draw(small_shapes())
    cond = data.draw(tensors(shape, dtype=mt.bool_))
    a, b = data.draw(tensors(shape)), data.draw(tensors(shape))
    ta, tb = on(device, a, b)
    mt.where(mt.tensor(cond.numpy(), device=device), ta, tb).sum().backward()
    c = cond.numpy()
    np.testing.assert_array_equal(mt.Tensor._wrap(ta.grad).numpy(), c.astype(np.float64))
    np.testing.assert_array_equal(mt.Tensor._wrap(tb.grad).numpy(), (~c).astype(np.float64))


@pytest.mark.parametrize("op", ["maximum", "minimum"])
@given(data=st.data())
def test_maximum_minimum_route_gradient_to_the_winner(op: str, data: st.DataObject, device: str) -> None:
    shape = data.draw(small_shapes())
    a, b = data.draw(distinct_tensors(shape, shape))
    ta, tb = on(device, a, b)
    getattr(mt, op)(ta, tb).sum().backward()
    a_wins = a.numpy() > b.numpy() if op == "maximum" else a.numpy() < b.numpy()
    np.testing.assert_array_equal(mt.Tensor._wrap(ta.grad).numpy(), a_wins.astype(np.float64))
    np.testing.assert_array_equal(mt.Tensor._wrap(tb.grad).numpy(), (~a_wins).astype(np.float64))


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_ties_split_the_gradient_in_half(op: str, device: str) -> None:
    a = mt.tensor([1.0, 2.0], device=device, requires_grad=True)
    b = mt.tensor([1.0, 2.0], device=device, requires_grad=True)
    getattr(mt, op)(a, b).sum().backward()
    for grad in (a.grad, b.grad):  # as PyTorch: half to each side, never doubled or lost
        np.testing.assert_array_equal(mt.Tensor._wrap(grad).numpy(), [0.5, 0.5])
