"""Pooling: max / average / adaptive average against loop references, float64 gradchecks,
max-pool tie routing, dtypes and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitorch_nndl as mt
from minitorch_nndl.ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d


def naive_pool(x, kernel, stride, padding, reduce, fill):
    """Loop over output positions: reduce(window) over the padded input."""
    N, C, H, W = x.shape
    (KH, KW), (sh, sw), (ph, pw) = kernel, stride, padding
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    OH, OW = (H + 2 * ph - KH) // sh + 1, (W + 2 * pw - KW) // sw + 1
    out = np.empty((N, C, OH, OW))
    for i in range(OH):
        for j in range(OW):
            out[:, :, i, j] = reduce(xpad[:, :, i * sh : i * sh + KH, j * sw : j * sw + KW], axis=(2, 3))
    return out


def naive_adaptive(x, out_hw):
    N, C, H, W = x.shape
    OH, OW = out_hw
    out = np.empty((N, C, OH, OW))
    for i in range(OH):
        h0, h1 = math.floor(i * H / OH), math.ceil((i + 1) * H / OH)
        for j in range(OW):
            w0, w1 = math.floor(j * W / OW), math.ceil((j + 1) * W / OW)
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


@st.composite
def pool_cases(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    H = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), 6))
    W = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), 6))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), H, W)
    return shape, kernel, stride, padding


def distinct_values(shape, seed=0):
    """A random permutation of well-separated values: no ties, so max pooling is differentiable."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return (rng.permutation(n) / n - 0.5).reshape(shape) * 4.0


@given(case=pool_cases())
def test_max_pool_matches_reference_and_gradchecks(case, device):
    shape, kernel, stride, padding = case
    x = distinct_values(shape)
    xt = mt.tensor(x, dtype=mt.float64, device=device)
    out = max_pool2d(xt, kernel, stride, padding)
    np.testing.assert_array_equal(out.numpy(), naive_pool(x, kernel, stride, padding, np.max, -np.inf))
    # eps smaller than half the gap between values (1/n * 4) keeps the argmax fixed
    assert mt.gradcheck(lambda t: max_pool2d(t, kernel, stride, padding), [xt], eps=1e-6)


@given(case=pool_cases())
def test_avg_pool_matches_reference_and_gradchecks(case, device):
    shape, kernel, stride, padding = case
    x = np.random.default_rng(0).standard_normal(shape)
    xt = mt.tensor(x, dtype=mt.float64, device=device)
    out = avg_pool2d(xt, kernel, stride, padding)
    np.testing.assert_allclose(out.numpy(), naive_pool(x, kernel, stride, padding, np.mean, 0.0), rtol=1e-12)
    assert mt.gradcheck(lambda t: avg_pool2d(t, kernel, stride, padding), [xt])


@given(
    H=st.integers(1, 7),
    W=st.integers(1, 7),
    OH=st.integers(1, 5),
    OW=st.integers(1, 5),
)
def test_adaptive_avg_pool_matches_reference_and_gradchecks(H, W, OH, OW, device):
    x = np.random.default_rng(0).standard_normal((2, 2, H, W))
    xt = mt.tensor(x, dtype=mt.float64, device=device)
    out = adaptive_avg_pool2d(xt, (OH, OW))
    np.testing.assert_allclose(out.numpy(), naive_adaptive(x, (OH, OW)), rtol=1e-12, atol=1e-14)
    assert mt.gradcheck(lambda t: adaptive_avg_pool2d(t, (OH, OW)), [xt])


def test_adaptive_avg_pool_global_fast_path_is_mean(device):
    x = mt.randn(3, 4, 5, 6, dtype=mt.float64, device=device, requires_grad=True)
    out = adaptive_avg_pool2d(x, 1)
    assert out.shape == (3, 4, 1, 1)
    np.testing.assert_allclose(out.numpy(), x.numpy().mean(axis=(2, 3), keepdims=True), rtol=1e-12)
    assert mt.gradcheck(lambda t: adaptive_avg_pool2d(t, (1, 1)), [x])


def test_max_pool_ties_route_gradient_to_first_max_once():
    # one 2x2 window of equal values: all the gradient goes to the first (top-left) element
    x = mt.tensor(np.ones((1, 1, 2, 2)), dtype=mt.float64, requires_grad=True)
    max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [[[[1.0, 0.0], [0.0, 0.0]]]])
    # overlapping windows (stride 1) sharing one maximum: each window routes its gradient there once
    data = np.zeros((1, 1, 3, 3))
    data[0, 0, 1, 1] = 5.0
    x = mt.tensor(data, dtype=mt.float64, requires_grad=True)
    y = max_pool2d(x, 2, stride=1)
    g = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    y.backward(mt.tensor(g, dtype=mt.float64))
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 1, 1] = g.sum()
    np.testing.assert_array_equal(x.grad, expected)
    # ties along a row: first in row-major window order wins
    data = np.array([[[[0.0, 3.0, 3.0], [3.0, 3.0, 0.0]]]])
    x = mt.tensor(data, dtype=mt.float64, requires_grad=True)
    max_pool2d(x, (2, 3)).sum().backward()
    np.testing.assert_array_equal(x.grad, [[[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]])


def test_max_pool_padding_is_negative_infinity():
    x = mt.tensor(-np.ones((1, 1, 2, 2)) * 7.0, dtype=mt.float64)
    out = max_pool2d(x, 3, stride=1, padding=1)
    np.testing.assert_array_equal(out.numpy(), -7.0 * np.ones((1, 1, 2, 2)))


def test_avg_pool_counts_padding():
    x = mt.ones(1, 1, 2, 2, dtype=mt.float64)
    out = avg_pool2d(x, 2, stride=1, padding=1)
    np.testing.assert_allclose(out.numpy()[0, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])


@pytest.mark.parametrize(
    "pool", [lambda t: max_pool2d(t, 3, 2, 1), lambda t: avg_pool2d(t, 2), lambda t: adaptive_avg_pool2d(t, (2, 3))]
)
def test_pools_keep_float32(pool, device):
    x = mt.randn(2, 3, 7, 6, device=device, requires_grad=True)
    y = pool(x)
    assert y.dtype == mt.float32
    (y * y).sum().backward()
    assert x.grad.dtype == mt.float32 and x.grad.shape == x.shape


def test_max_pool_default_stride_is_kernel():
    x = mt.randn(1, 1, 6, 6, dtype=mt.float64)
    assert max_pool2d(x, 2).shape == (1, 1, 3, 3)
    assert avg_pool2d(x, (3, 2)).shape == (1, 1, 2, 3)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: max_pool2d(mt.randn(3, 4, 4), 2), ValueError, r"4-D input.*\(3, 4, 4\)"),
        (lambda: avg_pool2d(mt.randn(1, 1, 4, 4), 2, padding=2), ValueError, r"padding .* at most half"),
        (lambda: max_pool2d(mt.randn(1, 1, 2, 2), 3), ValueError, r"output size .* not positive"),
        (lambda: max_pool2d(mt.randn(1, 1, 4, 4), 0), ValueError, r"kernel_size must be >= 1"),
        (lambda: max_pool2d(mt.zeros(1, 1, 4, 4, dtype=mt.int64), 2), TypeError, r"floating-point"),
        (lambda: adaptive_avg_pool2d(mt.randn(1, 1, 4, 4), 0), ValueError, r"output_size must be >= 1"),
        (lambda: adaptive_avg_pool2d(mt.randn(4, 4), 2), ValueError, r"4-D input"),
    ],
)
def test_pool_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
