"""The CNN ops against PyTorch as an oracle: values and gradients of conv2d (groups, dilation,
stride, padding), batch norm (train/eval, running statistics), max/avg/adaptive pooling and
cross-entropy with label smoothing, in float64 (to 1e-8) and float32 (to 1e-4, relative)."""

from __future__ import annotations

import numpy as np
import pytest
from winograd_kernels import KERNELS, use_winograd_kernel

torch = pytest.importorskip("torch")
F = torch.nn.functional

import minitorch_nndl as mt  # noqa: E402
from minitorch_nndl.ops.conv import conv2d  # noqa: E402
from minitorch_nndl.ops.loss import cross_entropy, mse_loss, nll_loss  # noqa: E402
from minitorch_nndl.ops.norm import batch_norm  # noqa: E402
from minitorch_nndl.ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d  # noqa: E402

DTYPES = {"float64": (mt.float64, torch.float64, 1e-8), "float32": (mt.float32, torch.float32, 1e-4)}


def close(ours, theirs, tol):
    """Relative agreement: |a - b| <= tol * (|b| + max|b|)."""
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.dtype == theirs.dtype
    scale = float(np.abs(theirs).max()) if theirs.size else 0.0
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol * max(scale, 1e-30))


def run_both(our_fn, torch_fn, arrays, dtype_name, grad_mask=None, seed=0):
    """Forward both with the same inputs, backward the same random cotangent, compare everything."""
    ours_dtype, torch_dtype, tol = DTYPES[dtype_name]
    grad_mask = grad_mask or [True] * len(arrays)
    ours = [None if a is None else mt.tensor(a, dtype=ours_dtype, requires_grad=m) for a, m in zip(arrays, grad_mask)]
    theirs = [
        None if a is None else torch.tensor(a, dtype=torch_dtype, requires_grad=m) for a, m in zip(arrays, grad_mask)
    ]
    y, yt = our_fn(*ours), torch_fn(*theirs)
    close(y.numpy(), yt, tol)
    g = np.random.default_rng(seed).standard_normal(y.shape)
    y.backward(mt.tensor(g, dtype=ours_dtype))
    yt.backward(torch.tensor(g, dtype=torch_dtype))
    for a, at in zip(ours, theirs):
        if a is not None and a.requires_grad:
            close(a.grad, at.grad, tol)


CONV_CASES = [
    {"x": (2, 3, 8, 7), "w": (4, 3, 3, 3), "bias": True, "stride": 1, "padding": 1, "dilation": 1, "groups": 1},
    {
        "x": (2, 4, 9, 8),
        "w": (6, 2, 3, 2),
        "bias": True,
        "stride": (2, 1),
        "padding": (1, 2),
        "dilation": 1,
        "groups": 2,
    },
    {"x": (1, 4, 10, 9), "w": (4, 1, 3, 3), "bias": False, "stride": 2, "padding": 2, "dilation": 2, "groups": 4},
    {"x": (3, 2, 6, 6), "w": (5, 2, 1, 1), "bias": True, "stride": 2, "padding": 0, "dilation": 1, "groups": 1},
    {
        "x": (2, 6, 7, 11),
        "w": (3, 2, 2, 4),
        "bias": True,
        "stride": (1, 3),
        "padding": 0,
        "dilation": (2, 1),
        "groups": 3,
    },
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=range(len(CONV_CASES)))
def test_conv2d_agrees_with_torch(case, dtype):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(case["x"]), rng.standard_normal(case["w"])
    b = rng.standard_normal(case["w"][0]) if case["bias"] else None
    kw = {k: case[k] for k in ("stride", "padding", "dilation", "groups")}
    run_both(lambda *a: conv2d(*a, **kw), lambda *a: F.conv2d(*a, **kw), [x, w, b], dtype)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_winograd_conv2d_agrees_with_torch(monkeypatch, padding, dtype, kernel):
    """The F(2x2, 3x3) and F(4x4, 3x3) paths (forward and both gradients) in float32 as well as
    float64: their transforms round differently from im2row, within the same tolerance."""
    winograd = use_winograd_kernel(monkeypatch, kernel)  # small test images take it too
    calls = []
    real_conv3x3 = winograd.conv3x3
    monkeypatch.setattr(winograd, "conv3x3", lambda *args: calls.append(1) or real_conv3x3(*args))
    real_backward = winograd.conv3x3_backward
    monkeypatch.setattr(winograd, "conv3x3_backward", lambda *a, **k: calls.append(2) or real_backward(*a, **k))
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 16, 11, 10)), rng.standard_normal((16, 16, 3, 3))
    run_both(lambda *a: conv2d(*a, padding=padding), lambda *a: F.conv2d(*a, padding=padding), [x, w], dtype)
    assert 1 in calls and 2 in calls  # the forward and the backward went through Winograd


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 6)])
def test_batch_norm_agrees_with_torch(shape, training, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape) * 2 + 1
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    ours_dtype, torch_dtype, tol = DTYPES[dtype]
    ours_stats = [mt.tensor(rm, dtype=ours_dtype), mt.tensor(rv, dtype=ours_dtype)]
    torch_stats = [torch.tensor(rm, dtype=torch_dtype), torch.tensor(rv, dtype=torch_dtype)]
    for _ in range(2):  # two steps: the second normalizes with / updates from the first's statistics
        run_both(
            lambda x, w, b: batch_norm(x, *ours_stats, w, b, training=training, momentum=0.2, eps=1e-4),
            lambda x, w, b: F.batch_norm(x, *torch_stats, w, b, training=training, momentum=0.2, eps=1e-4),
            [x, w, b],
            dtype,
        )
        for ours, theirs in zip(ours_stats, torch_stats):
            close(ours.numpy(), theirs, tol)


POOLS = [
    ("max", (3, 3), (2, 2), (1, 1)),
    ("max", (2, 3), (1, 2), (1, 0)),
    ("max", (2, 2), None, 0),
    ("avg", (3, 3), (2, 2), (1, 1)),
    ("avg", (2, 3), (1, 2), (1, 1)),
    ("avg", (2, 2), None, 0),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("kind", "kernel", "stride", "padding"), POOLS)
def test_pools_agree_with_torch(kind, kernel, stride, padding, dtype):
    x = np.random.default_rng(2).permutation(2 * 3 * 9 * 8).reshape(2, 3, 9, 8) / 100.0  # distinct values
    ours, theirs = (max_pool2d, F.max_pool2d) if kind == "max" else (avg_pool2d, F.avg_pool2d)
    run_both(lambda t: ours(t, kernel, stride, padding), lambda t: theirs(t, kernel, stride, padding), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("in_hw", "out_hw"), [((7, 9), (3, 4)), ((8, 8), (1, 1)), ((5, 6), (5, 6)), ((4, 5), (6, 7))])
def test_adaptive_avg_pool_agrees_with_torch(in_hw, out_hw, dtype):
    x = np.random.default_rng(3).standard_normal((2, 3, *in_hw))
    run_both(lambda t: adaptive_avg_pool2d(t, out_hw), lambda t: F.adaptive_avg_pool2d(t, out_hw), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_agrees_with_torch(smoothing, reduction, dtype):
    rng = np.random.default_rng(4)
    z, y = rng.standard_normal((16, 10)) * 3, rng.integers(0, 10, 16)
    run_both(
        lambda t: cross_entropy(t, mt.tensor(y), reduction=reduction, label_smoothing=smoothing),
        lambda t: F.cross_entropy(t, torch.tensor(y), reduction=reduction, label_smoothing=smoothing),
        [z],
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_and_mse_agree_with_torch(reduction, dtype):
    rng = np.random.default_rng(5)
    a, y = rng.standard_normal((7, 4)), rng.integers(0, 4, 7)
    run_both(
        lambda t: nll_loss(t, mt.tensor(y), reduction=reduction),
        lambda t: F.nll_loss(t, torch.tensor(y), reduction=reduction),
        [a],
        dtype,
    )
    b = rng.standard_normal((7, 4))
    run_both(
        lambda u, v: mse_loss(u, v, reduction=reduction),
        lambda u, v: F.mse_loss(u, v, reduction=reduction),
        [a, b],
        dtype,
    )
