"""Losses (cross_entropy, nll_loss, mse_loss) against NumPy references with gradchecks,
reductions, dtype rules and errors; and inverted dropout (in this file: the other op of the
"CNN building blocks" issue that is not a layer of its own)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitorch_nndl as mt
from minitorch_nndl.ops.dropout import dropout
from minitorch_nndl.ops.loss import cross_entropy, mse_loss, nll_loss

REDUCTIONS = ["mean", "sum", "none"]


def reduce_np(losses, reduction):
    return {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]


def cross_entropy_np(z, y, reduction, smoothing):
    """-sum_c q_c log softmax(z)_c with q = (1 - eps) onehot(y) + eps / C."""
    N, C = z.shape
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    q = np.full((N, C), smoothing / C)
    q[np.arange(N), y] += 1 - smoothing
    return reduce_np(-(q * log_p).sum(axis=1), reduction)


cases = st.tuples(st.integers(1, 5), st.integers(2, 5), st.integers(0, 1000))


@given(case=cases, reduction=st.sampled_from(REDUCTIONS), smoothing=st.sampled_from([0.0, 0.1, 0.35]))
def test_cross_entropy_matches_numpy_and_gradchecks(case, reduction, smoothing, device):
    N, C, seed = case
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((N, C)) * 3
    y = rng.integers(0, C, N)
    zt = mt.tensor(z, dtype=mt.float64, device=device)
    yt = mt.tensor(y, device=device)
    loss = cross_entropy(zt, yt, reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_allclose(loss.numpy(), cross_entropy_np(z, y, reduction, smoothing), rtol=1e-12, atol=1e-12)
    assert mt.gradcheck(lambda t: cross_entropy(t, yt, reduction=reduction, label_smoothing=smoothing), [zt])


def test_cross_entropy_gradient_is_softmax_minus_target():
    """d(mean loss)/dz = (softmax(z) - q) / N."""
    rng = np.random.default_rng(0)
    z, y = rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])
    zt = mt.tensor(z, dtype=mt.float64, requires_grad=True)
    cross_entropy(zt, mt.tensor(y), label_smoothing=0.2).backward()
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    q = np.full((4, 3), 0.2 / 3)
    q[np.arange(4), y] += 0.8
    np.testing.assert_allclose(zt.grad, (p - q) / 4, rtol=1e-12)


def test_cross_entropy_is_stable_for_huge_logits():
    z = mt.tensor([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]], dtype=mt.float32, requires_grad=True)
    loss = cross_entropy(z, mt.tensor([1, 0]), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [1e4, 1e4 + np.log(2)], rtol=1e-6)
    loss.sum().backward()
    assert np.isfinite(z.grad).all()


@given(case=cases, reduction=st.sampled_from(REDUCTIONS))
def test_nll_loss_matches_numpy_and_gradchecks(case, reduction, device):
    N, C, seed = case
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((N, C))
    y = rng.integers(0, C, N)
    at, yt = mt.tensor(a, dtype=mt.float64, device=device), mt.tensor(y, device=device)
    np.testing.assert_allclose(nll_loss(at, yt, reduction).numpy(), reduce_np(-a[np.arange(N), y], reduction))
    assert mt.gradcheck(lambda t: nll_loss(t, yt, reduction), [at])


def test_nll_of_log_softmax_equals_cross_entropy():
    z, y = mt.randn(6, 4, dtype=mt.float64), mt.randint(0, 4, (6,))
    np.testing.assert_allclose(nll_loss(z.log_softmax(1), y).item(), cross_entropy(z, y).item(), rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_matches_numpy_and_gradchecks(reduction, device):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    at, bt = (mt.tensor(v, dtype=mt.float64, device=device) for v in (a, b))
    np.testing.assert_allclose(mse_loss(at, bt, reduction).numpy(), reduce_np((a - b) ** 2, reduction), rtol=1e-12)
    assert mt.gradcheck(lambda u, v: mse_loss(u, v, reduction), [at, bt])


@pytest.mark.parametrize("loss_fn", [cross_entropy, nll_loss])
def test_float32_logits_with_int64_targets_stay_float32(loss_fn, device):
    z = mt.randn(8, 5, device=device, requires_grad=True)
    y = mt.randint(0, 5, (8,), device=device)
    assert y.dtype == mt.int64
    loss = loss_fn(z, y) if loss_fn is nll_loss else loss_fn(z, y, label_smoothing=0.1)
    assert loss.dtype == mt.float32
    loss.backward()
    assert z.grad.dtype == mt.float32


def test_mse_loss_float32_stays_float32():
    a, b = mt.randn(3, 2, requires_grad=True), mt.randn(3, 2)
    loss = mse_loss(a, b)
    loss.backward()
    assert loss.dtype == a.grad.dtype == mt.float32


def test_targets_may_be_arrays_or_lists():
    z = mt.randn(3, 4, dtype=mt.float64)
    expected = cross_entropy(z, mt.tensor([0, 3, 1])).item()
    assert cross_entropy(z, np.array([0, 3, 1])).item() == expected
    assert cross_entropy(z, [0, 3, 1]).item() == expected


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: cross_entropy(mt.randn(3, 4), mt.tensor([0.0, 1.0, 2.0])), TypeError, r"integer tensor.*float32"),
        (lambda: cross_entropy(mt.randn(3, 4), mt.tensor([0, 1])), ValueError, r"shape \(3,\).*got \(2,\)"),
        (lambda: cross_entropy(mt.randn(3, 4), mt.tensor([[0, 1, 2]])), ValueError, r"shape \(3,\)"),
        (lambda: cross_entropy(mt.randn(3, 4), mt.tensor([0, 4, 1])), ValueError, r"target value 4 .* 4 classes"),
        (lambda: cross_entropy(mt.randn(3, 4), mt.tensor([0, -1, 1])), ValueError, r"target value -1"),
        (lambda: cross_entropy(mt.randn(3), mt.tensor([0, 1, 2])), ValueError, r"shape \(N, C\)"),
        (lambda: cross_entropy(mt.randn(3, 4), mt.tensor([0, 1, 2]), "avg"), ValueError, r"reduction"),
        (lambda: cross_entropy(mt.randn(3, 4), mt.tensor([0, 1, 2]), label_smoothing=1.5), ValueError, "smoothing"),
        (lambda: nll_loss(mt.randn(3, 4), mt.tensor([0, 9, 1])), ValueError, r"target value 9"),
        (lambda: mse_loss(mt.randn(3, 4), mt.randn(4, 3)), ValueError, r"\(3, 4\) and target shape \(4, 3\)"),
    ],
)
def test_loss_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------------- dropout


def test_dropout_is_identity_when_not_training_or_p_zero():
    x = mt.randn(4, 5, requires_grad=True)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0, training=True) is x


def test_dropout_masks_and_rescales(device):
    x = mt.ones(200, 100, device=device, requires_grad=True)
    p = 0.3
    y = dropout(x, p, training=True)
    values = y.numpy()
    dropped = values == 0
    assert abs(dropped.mean() - p) < 0.02
    np.testing.assert_allclose(values[~dropped], 1 / (1 - p), rtol=1e-6)
    assert y.dtype == mt.float32
    g = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
    y.backward(mt.tensor(g, device=device))
    grad = mt.Tensor(x.grad).numpy()
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, g * values, rtol=1e-6)  # the same mask and scale as the forward


def test_dropout_is_reproducible_under_manual_seed():
    x = mt.ones(10, 10)
    mt.manual_seed(7)
    a = dropout(x, 0.5).numpy()
    mt.manual_seed(7)
    b = dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, dropout(x, 0.5).numpy())


def test_dropout_p_one_drops_everything_and_rejects_bad_p():
    x = mt.randn(3, 3, requires_grad=True)
    np.testing.assert_array_equal(dropout(x, 1.0).numpy(), 0.0)
    with pytest.raises(ValueError, match="dropout: probability"):
        dropout(x, 1.5)


def test_out_of_range_targets_become_nan_rows_on_the_gpu_path():
    """The GPU path skips the host-side range check (a sync per call) and marks bad rows NaN
    instead; the marking itself is array code, checked here on NumPy arrays."""
    from minitorch_nndl.ops.loss import _nan_where_out_of_range

    values = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = _nan_where_out_of_range(values, np.array([0, -1, 2, 3]), 3)
    assert out.dtype == np.float32
    assert np.isnan(out[[1, 3]]).all()
    np.testing.assert_array_equal(out[[0, 2]], values[[0, 2]])
    per_row = _nan_where_out_of_range(values[:, 0], np.array([0, 1, 5, 2]), 3)
    np.testing.assert_array_equal(np.isnan(per_row), [False, False, True, False])


@pytest.mark.parametrize("loss_fn", [cross_entropy, nll_loss])
def test_out_of_range_target_is_an_error_on_cpu_and_a_nan_row_on_gpu(loss_fn, device):
    logits = mt.randn(3, 4, device=device, requires_grad=True)
    target = mt.tensor([0, -1, 2], device=device)
    if device == "cpu":
        with pytest.raises(ValueError, match="target value -1"):
            loss_fn(logits, target)
        return
    losses = loss_fn(logits, target, reduction="none")
    np.testing.assert_array_equal(np.isnan(losses.numpy()), [False, True, False])
    losses.backward(mt.ones(3, device=device))
    np.testing.assert_array_equal(np.isnan(mt.backend.to_numpy(logits.grad)).any(axis=1), [False, True, False])
