"""The fused batch_norm op: gradchecks in training and eval mode, equality with the same
computation composed from primitive ops, normalization, running statistics, dtypes, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import minitorch_nndl as mt
from minitorch_nndl.ops.norm import _Layout, batch_norm

shapes = st.one_of(
    st.tuples(st.integers(2, 5), st.integers(1, 3)),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)).filter(
        lambda s: s[0] * s[2] * s[3] > 1
    ),
)


def params(C, device="cpu", dtype=mt.float64, seed=0):
    rng = np.random.default_rng(seed)
    w = mt.tensor(rng.standard_normal(C), dtype=dtype, device=device)
    b = mt.tensor(rng.standard_normal(C), dtype=dtype, device=device)
    rm = mt.tensor(rng.standard_normal(C), dtype=dtype, device=device)
    rv = mt.tensor(rng.uniform(0.5, 2.0, C), dtype=dtype, device=device)
    return w, b, rm, rv


def channel_axes(ndim):
    return (0,) if ndim == 2 else (0, 2, 3)


@given(shape=shapes, affine=st.booleans())
def test_batch_norm_train_gradcheck(shape, affine, device):
    x = mt.tensor(np.random.default_rng(1).standard_normal(shape) * 2 + 1, dtype=mt.float64, device=device)
    w, b, rm, rv = params(shape[1], device)
    if affine:
        assert mt.gradcheck(lambda x, w, b: batch_norm(x, rm, rv, w, b, training=True), [x, w, b])
    else:
        assert mt.gradcheck(lambda x: batch_norm(x, rm, rv, None, None, training=True), [x])


@given(shape=shapes, affine=st.booleans())
def test_batch_norm_eval_gradcheck(shape, affine, device):
    x = mt.tensor(np.random.default_rng(1).standard_normal(shape), dtype=mt.float64, device=device)
    w, b, rm, rv = params(shape[1], device)
    if affine:
        assert mt.gradcheck(lambda x, w, b: batch_norm(x, rm, rv, w, b, training=False), [x, w, b])
    else:
        assert mt.gradcheck(lambda x: batch_norm(x, rm, rv, None, None, training=False), [x])


def composed_batch_norm(x, w, b, eps, mean=None, var=None):
    """The same computation from primitive differentiable ops (the autograd of mean/var/sqrt)."""
    axes = channel_axes(x.ndim)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if mean is None:
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)  # biased
    else:
        mean, var = mean.reshape(shape), var.reshape(shape)
    xhat = (x - mean) / (var + eps).sqrt()
    return xhat * w.reshape(shape) + b.reshape(shape)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(6, 3), (3, 4, 5, 2)])
def test_fused_equals_composed_values_and_grads(shape, training):
    rng = np.random.default_rng(2)
    x_np = rng.standard_normal(shape) * 3 - 1
    g = rng.standard_normal(shape)
    w, b, rm, rv = params(shape[1])
    results = []
    for fused in (True, False):
        x = mt.tensor(x_np, dtype=mt.float64, requires_grad=True)
        wi = mt.tensor(w.numpy(), dtype=mt.float64, requires_grad=True)
        bi = mt.tensor(b.numpy(), dtype=mt.float64, requires_grad=True)
        if fused:
            y = batch_norm(x, mt.tensor(rm.numpy()), mt.tensor(rv.numpy()), wi, bi, training=training, eps=1e-3)
        else:
            stats = (None, None) if training else (rm, rv)
            y = composed_batch_norm(x, wi, bi, 1e-3, *stats)
        y.backward(mt.tensor(g, dtype=mt.float64))
        results.append((y.numpy(), x.grad, wi.grad, bi.grad))
    for fused_value, composed_value in zip(*results):
        np.testing.assert_allclose(fused_value, composed_value, rtol=1e-10, atol=1e-12)


def channels_last(array, device="cpu"):
    """A Tensor of ``array`` (N, C, H, W) whose memory is (N, H, W, C), as a convolution's output is."""
    return mt.tensor(np.ascontiguousarray(array.transpose(0, 2, 3, 1)), dtype=mt.float64, device=device).permute(
        0, 3, 1, 2
    )


four_d = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)).filter(
    lambda s: s[0] * s[2] * s[3] > 1
)


@given(shape=four_d, training=st.booleans())
def test_channels_last_memory_gives_the_same_values_gradients_and_statistics(shape, training, device):
    """Channels-last inputs and gradients take the row passes (a per-channel vector repeated
    along each image, sums as matrix-vector products): the results must not change."""
    rng = np.random.default_rng(5)
    x_np, g_np = rng.standard_normal(shape) * 2 + 1, rng.standard_normal(shape)
    results = []
    for layout in (channels_last, lambda a, device: mt.tensor(a, dtype=mt.float64, device=device)):
        x, g = layout(x_np, device), layout(g_np, device)
        x.requires_grad_()
        if layout is channels_last:  # the row passes are for NumPy arrays
            assert _Layout.of(x.data).rows == (device == "cpu")
        w, b, rm, rv = params(shape[1], device)
        w.requires_grad_()
        b.requires_grad_()
        y = batch_norm(x, rm, rv, w, b, training=training)
        y.backward(g)
        arrays = [t.data if isinstance(t, mt.Tensor) else t for t in (y, x.grad, w.grad, b.grad, rm, rv)]
        results.append([mt.backend.to_numpy(a) for a in arrays])
    for rows_value, plain_value in zip(*results):
        np.testing.assert_allclose(rows_value, plain_value, rtol=1e-10, atol=1e-12)


@given(shape=four_d, training=st.booleans())
def test_batch_norm_gradcheck_channels_last(shape, training, device):
    x = channels_last(np.random.default_rng(6).standard_normal(shape) * 2 + 1, device)
    w, b, rm, rv = params(shape[1], device)
    assert mt.gradcheck(lambda x, w, b: batch_norm(x, rm, rv, w, b, training=training), [x, w, b])


@pytest.mark.parametrize("shape", [(64, 3), (8, 3, 5, 4)])
def test_training_output_is_normalized_per_channel(shape, device):
    x = mt.tensor(np.random.default_rng(3).standard_normal(shape) * 5 + 3, dtype=mt.float64, device=device)
    y = batch_norm(x, None, None, None, None, training=True).numpy()
    axes = channel_axes(len(shape))
    np.testing.assert_allclose(y.mean(axis=axes), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=axes), 1.0, atol=1e-5)  # var/(var + eps)


@pytest.mark.parametrize("shape", [(10, 3), (4, 3, 3, 5)])
def test_running_stats_after_one_step(shape, device):
    x_np = np.random.default_rng(4).standard_normal(shape) * 2 + 0.5
    _, _, rm, rv = params(shape[1], device)
    rm0, rv0 = rm.numpy().copy(), rv.numpy().copy()
    momentum = 0.3
    batch_norm(mt.tensor(x_np, dtype=mt.float64, device=device), rm, rv, training=True, momentum=momentum)
    axes = channel_axes(len(shape))
    np.testing.assert_allclose(rm.numpy(), (1 - momentum) * rm0 + momentum * x_np.mean(axis=axes), rtol=1e-12)
    unbiased = x_np.var(axis=axes, ddof=1)
    np.testing.assert_allclose(rv.numpy(), (1 - momentum) * rv0 + momentum * unbiased, rtol=1e-12)


def test_eval_uses_running_stats_and_leaves_them_alone():
    x = mt.randn(5, 3, dtype=mt.float64)
    w, b, rm, rv = params(3)
    rm0, rv0 = rm.numpy().copy(), rv.numpy().copy()
    y = batch_norm(x, rm, rv, w, b, training=False, eps=1e-5)
    expected = (x.numpy() - rm0) / np.sqrt(rv0 + 1e-5) * w.numpy() + b.numpy()
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12)
    np.testing.assert_array_equal(rm.numpy(), rm0)
    np.testing.assert_array_equal(rv.numpy(), rv0)


def test_eval_without_running_stats_uses_batch_stats():
    x = mt.randn(6, 2, dtype=mt.float64)
    np.testing.assert_allclose(
        batch_norm(x, None, None, training=False).numpy(), batch_norm(x, None, None, training=True).numpy()
    )


@pytest.mark.parametrize("training", [True, False])
def test_float32_stays_float32(training, device):
    x = mt.randn(4, 3, 5, 5, device=device, requires_grad=True)
    w, b, rm, rv = (t.float() for t in params(3, device))
    w.requires_grad_()
    b.requires_grad_()
    y = batch_norm(x, rm, rv, w, b, training=training)
    assert y.dtype == mt.float32
    assert rm.dtype == rv.dtype == mt.float32
    (y * y).sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == mt.float32


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: batch_norm(mt.randn(2, 3, 4), None, None, training=True), ValueError, r"2-D .* or 4-D .*\(2, 3, 4\)"),
        (lambda: batch_norm(mt.randn(4, 3), None, None, mt.ones(2), None), ValueError, r"weight has shape \(2,\)"),
        (lambda: batch_norm(mt.randn(1, 3), None, None, training=True), ValueError, r"more than 1 value per channel"),
        (lambda: batch_norm(mt.randn(4, 3), mt.zeros(3), None, training=True), ValueError, r"both running_mean"),
        (lambda: batch_norm(mt.randn(4, 3), None, None, mt.ones(3).double()), TypeError, r"weight dtype"),
        (lambda: batch_norm(mt.randn(4, 3), None, None, training=True, momentum=2.0), ValueError, r"momentum"),
    ],
)
def test_batch_norm_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def composed_end_of_block(x, w, b, rm, rv, training, residual, relu):
    y = batch_norm(x, rm, rv, w, b, training=training)
    if residual is not None:
        y = y + residual
    return y.relu() if relu else y


@given(shape=four_d, training=st.booleans(), with_residual=st.booleans(), relu=st.booleans(), memory=st.booleans())
def test_residual_and_relu_inside_equal_the_separate_ops(shape, training, with_residual, relu, memory, device):
    """relu(batch_norm(x) + r) as one op: the same values, gradients (x, gamma, beta, r) and
    running statistics as the three ops, channels-last or NCHW memory."""
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal(shape) for _ in range(3)]  # x, r, the incoming gradient
    make = channels_last if memory else (lambda a, device: mt.tensor(a, dtype=mt.float64, device=device))
    results = []
    for fused in (True, False):
        x, r, g = (make(a, device) for a in arrays)
        x.requires_grad_()
        r.requires_grad_()
        w, b, rm, rv = params(shape[1], device)
        w.requires_grad_()
        b.requires_grad_()
        residual = r if with_residual else None
        if fused:
            y = batch_norm(x, rm, rv, w, b, training=training, residual=residual, relu=relu)
        else:
            y = composed_end_of_block(x, w, b, rm, rv, training, residual, relu)
        y.backward(g)
        tensors = (y, x.grad, w.grad, b.grad, rm, rv) + ((r.grad,) if with_residual else ())
        results.append([mt.backend.to_numpy(t.data if isinstance(t, mt.Tensor) else t) for t in tensors])
    for fused_value, separate_value in zip(*results):
        np.testing.assert_allclose(fused_value, separate_value, rtol=1e-10, atol=1e-12)


@given(shape=four_d, training=st.booleans())
def test_batch_norm_with_residual_and_relu_gradcheck(shape, training, device):
    rng = np.random.default_rng(9)
    x = mt.tensor(rng.standard_normal(shape) * 2 + 1, dtype=mt.float64, device=device)
    r = mt.tensor(rng.standard_normal(shape), dtype=mt.float64, device=device)
    w, b, rm, rv = params(shape[1], device)
    end = batch_norm(x, rm.detach().clone(), rv.detach().clone(), w, b, training=training, residual=r, relu=True)
    assume(np.abs(end.numpy()).min() > 1e-3)  # away from the ReLU's kink, where differences jump

    def fn(x, w, b, r):
        return batch_norm(x, rm.detach().clone(), rv.detach().clone(), w, b, training=training, residual=r, relu=True)

    assert mt.gradcheck(fn, [x, w, b, r])


def test_a_residual_unlike_the_input_is_refused():
    x = mt.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"batch_norm: residual must be a Tensor like the input \(\(2, 3, 4, 4\)"):
        batch_norm(x, None, None, training=True, residual=mt.randn(2, 3, 4, 1), relu=True)
    with pytest.raises(ValueError, match="residual must be a Tensor like the input"):
        batch_norm(x, None, None, training=True, residual=mt.randn(2, 3, 4, 4).double())
