"""conv2d and the im2col/col2im kernels: values against a nested-loop reference, float64
gradchecks over drawn geometries, adjoint identities, shapes, dtypes and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from winograd_kernels import KERNELS, use_winograd_kernel

import minitorch_nndl as mt
from minitorch_nndl import kernels
from minitorch_nndl.kernels import generic
from minitorch_nndl.ops import conv as conv_module
from minitorch_nndl.ops.conv import conv2d


def out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def naive_conv2d(x, w, b, stride, padding, dilation, groups):
    """The definition, loop by loop:
    y[n,o,i,j] = b[o] + sum_{c,kh,kw} w[o,c,kh,kw] x_pad[n, g*Cg + c, i*sh + kh*dh, j*sw + kw*dw]."""
    N, C, H, W = x.shape
    Co, Cg, KH, KW = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    OH, OW = out_size(H, KH, sh, ph, dh), out_size(W, KW, sw, pw, dw)
    out = np.zeros((N, Co, OH, OW), dtype=np.float64)
    per_group = Co // groups
    for n in range(N):
        for o in range(Co):
            first = (o // per_group) * Cg
            for i in range(OH):
                for j in range(OW):
                    total = 0.0 if b is None else b[o]
                    for c in range(Cg):
                        for kh in range(KH):
                            for kw in range(KW):
                                total += w[o, c, kh, kw] * xpad[n, first + c, i * sh + kh * dh, j * sw + kw * dw]
                    out[n, o, i, j] = total
    return out


@st.composite
def conv_cases(draw, max_extra: int = 3):
    """A small conv geometry with a positive output size: non-square inputs and kernels,
    stride 1/2, padding 0..2, dilation 1/2, groups 1/2, bias on/off."""
    groups = draw(st.sampled_from([1, 2]))
    cin = groups * draw(st.integers(1, 2))
    cout = groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 2])))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 2])))
    hw = []
    for k, p, d in zip(kernel, padding, dilation):
        smallest = max(1, d * (k - 1) + 1 - 2 * p)
        hw.append(draw(st.integers(smallest, smallest + max_extra)))
    return {
        "x_shape": (draw(st.integers(1, 2)), cin, hw[0], hw[1]),
        "w_shape": (cout, cin // groups, *kernel),
        "bias": draw(st.booleans()),
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
    }


def make_inputs(case, dtype=np.float64, device="cpu", seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["x_shape"])
    w = rng.standard_normal(case["w_shape"])
    b = rng.standard_normal(case["w_shape"][0]) if case["bias"] else None
    as_t = lambda a: None if a is None else mt.tensor(a, dtype=dtype, device=device)  # noqa: E731
    return (x, w, b), (as_t(x), as_t(w), as_t(b))


def geometry(case):
    return {k: case[k] for k in ("stride", "padding", "dilation", "groups")}


@given(case=conv_cases())
def test_conv2d_matches_nested_loop_reference(case, device):
    (x, w, b), (xt, wt, bt) = make_inputs(case, device=device)
    out = conv2d(xt, wt, bt, **geometry(case))
    ref = naive_conv2d(x, w, b, case["stride"], case["padding"], case["dilation"], case["groups"])
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-10)


@given(case=conv_cases(max_extra=2))
def test_conv2d_gradcheck(case, device):
    _, (xt, wt, bt) = make_inputs(case, device=device)
    inputs = [xt, wt] + ([bt] if bt is not None else [])
    assert mt.gradcheck(lambda x, w, *b: conv2d(x, w, b[0] if b else None, **geometry(case)), inputs)


@given(case=conv_cases(max_extra=2), channels_last=st.booleans())
def test_conv2d_through_im2row_for_every_input_matches_the_reference_and_gradchecks(case, channels_last):
    """The cases above have at most 2 input channels per group, so without groups they read their
    input through im2col's columns (MAX_COLUMN_CHANNELS): here the same cases through im2row."""
    (x, w, b), (xt, wt, bt) = make_inputs(case)
    if channels_last:  # as a conv output is laid out
        xt = mt.tensor(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), dtype=mt.float64).permute(0, 3, 1, 2)
    inputs = [xt, wt] + ([bt] if bt is not None else [])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv_module, "MAX_COLUMN_CHANNELS", 0)
        ref = naive_conv2d(x, w, b, case["stride"], case["padding"], case["dilation"], case["groups"])
        np.testing.assert_allclose(conv2d(xt, wt, bt, **geometry(case)).numpy(), ref, rtol=1e-10, atol=1e-10)
        assert mt.gradcheck(lambda x, w, *b: conv2d(x, w, b[0] if b else None, **geometry(case)), inputs)


def test_the_rgb_stem_reads_columns_and_agrees_with_im2row(monkeypatch):
    """3 input channels (the stem) read im2col's columns; 4 read im2row; both routes give the same
    values and gradients (float64), with channels-last or NCHW inputs."""
    geometry_of = lambda c: conv_module.ConvGeometry((2, c, 8, 8), (3, 3), (1, 1), (1, 1), (1, 1), 1)  # noqa: E731
    assert conv_module._reads_columns(np.zeros(1), geometry_of(3))
    assert not conv_module._reads_columns(np.zeros(1), geometry_of(4))
    rng = np.random.default_rng(3)
    x_np, w_np, g_np = rng.standard_normal((2, 3, 9, 7)), rng.standard_normal((5, 3, 3, 3)), None
    results = []
    for max_channels in (3, 0):
        monkeypatch.setattr(conv_module, "MAX_COLUMN_CHANNELS", max_channels)
        for memory in ("nchw", "nhwc"):
            x = mt.tensor(x_np, dtype=mt.float64)
            if memory == "nhwc":
                x = mt.tensor(np.ascontiguousarray(x_np.transpose(0, 2, 3, 1)), dtype=mt.float64).permute(0, 3, 1, 2)
            x.requires_grad_()
            w = mt.tensor(w_np, dtype=mt.float64, requires_grad=True)
            y = conv2d(x, w, None, stride=(2, 1), padding=(1, 2), dilation=(1, 2))
            g_np = rng.standard_normal(y.shape) if g_np is None else g_np
            y.backward(mt.tensor(g_np, dtype=mt.float64))
            results.append((y.numpy(), x.grad, w.grad))
    for route in results[1:]:
        for got, expected in zip(route, results[0]):
            np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_conv2d_gradcheck_non_square_fixed_case(device):
    """One explicit case with everything non-square at once."""
    case = {
        "x_shape": (2, 4, 5, 7),
        "w_shape": (6, 2, 3, 2),
        "bias": True,
        "stride": (2, 1),
        "padding": (1, 2),
        "dilation": (1, 2),
        "groups": 2,
    }
    _, (xt, wt, bt) = make_inputs(case, device=device)
    assert conv2d(xt, wt, bt, **geometry(case)).shape == (2, 6, 3, 9)
    assert mt.gradcheck(lambda x, w, b: conv2d(x, w, b, **geometry(case)), [xt, wt, bt])


@st.composite
def winograd_cases(draw):
    """A stride-1 3x3 convolution Winograd computes: padding 0..2 per axis,
    odd and even output sizes (a half tile at the edge), which gradients are wanted."""
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    hw = [draw(st.integers(max(1, 3 - 2 * p), 6 - p)) for p in padding]
    wants = draw(st.sampled_from([(True, True), (True, False), (False, True)]))
    return {
        "x_shape": (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *hw),
        "w_shape": (draw(st.integers(1, 3)), 0, 3, 3),
        "padding": padding,
        "bias": draw(st.booleans()),
        "wants": wants,
    }


@pytest.mark.parametrize("kernel", KERNELS)
@given(case=winograd_cases())
def test_winograd_conv2d_gradcheck(case, device, kernel):
    """Backpropagation through F(2x2, 3x3) and F(4x4, 3x3) themselves (dM = A dY A^T, dU = V^T dM,
    dV = dM U^T, the overlap-adding input transform) against float64 finite differences."""
    rng = np.random.default_rng(0)
    x_shape, (c_out, _, kh, kw) = case["x_shape"], case["w_shape"]
    x = mt.tensor(rng.standard_normal(x_shape), dtype=mt.float64, device=device, requires_grad=case["wants"][0])
    w = mt.tensor(rng.standard_normal((c_out, x_shape[1], kh, kw)), dtype=mt.float64, device=device)
    w.requires_grad_(case["wants"][1])
    b = mt.tensor(rng.standard_normal(c_out), dtype=mt.float64, device=device) if case["bias"] else None
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        winograd = use_winograd_kernel(patch, kernel, device)  # tiny test images take it too
        real_backward = winograd.conv3x3_backward
        patch.setattr(winograd, "conv3x3_backward", lambda *a, **k: calls.append(1) or real_backward(*a, **k))
        inputs = [t for t in (x, w) if t.requires_grad] + ([b] if b is not None else [])

        def convolve(*args):
            given_inputs = iter(args)
            xi = next(given_inputs) if x.requires_grad else x
            wi = next(given_inputs) if w.requires_grad else w
            return conv2d(xi, wi, next(given_inputs, None), padding=case["padding"])

        assert mt.gradcheck(convolve, inputs)
    assert calls  # the backward really went through Winograd


@given(case=conv_cases())
def test_conv2d_adjoint_identities(case):
    """conv2d is bilinear in (x, w): <conv(x, w), g> = <x, dx(g)> = <w, dw(g)> (no bias)."""
    case = {**case, "bias": False}
    _, (xt, wt, _) = make_inputs(case)
    xt.requires_grad_()
    wt.requires_grad_()
    y = conv2d(xt, wt, None, **geometry(case))
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(mt.tensor(g, dtype=mt.float64))
    inner = float((y.numpy() * g).sum())
    np.testing.assert_allclose(float((xt.numpy() * xt.grad).sum()), inner, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(float((wt.numpy() * wt.grad).sum()), inner, rtol=1e-10, atol=1e-10)


def test_conv2d_1x1_is_matmul_over_channels(device):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 4, 6))
    w = rng.standard_normal((7, 5, 1, 1))
    b = rng.standard_normal(7)
    out = conv2d(*(mt.tensor(a, dtype=mt.float64, device=device) for a in (x, w, b)))
    expected = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x) + b[None, :, None, None]
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


@given(case=conv_cases(max_extra=6))
def test_conv2d_output_shape_formula(case):
    _, (xt, wt, bt) = make_inputs(case)
    out = conv2d(xt, wt, bt, **geometry(case))
    N, _, H, W = case["x_shape"]
    Co, _, KH, KW = case["w_shape"]
    (sh, sw), (ph, pw), (dh, dw) = case["stride"], case["padding"], case["dilation"]
    assert out.shape == (N, Co, out_size(H, KH, sh, ph, dh), out_size(W, KW, sw, pw, dw))


def test_conv2d_float32_stays_float32(device):
    x = mt.randn(2, 3, 6, 5, device=device, requires_grad=True)
    w = mt.randn(4, 3, 3, 3, device=device, requires_grad=True)
    b = mt.randn(4, device=device, requires_grad=True)
    y = conv2d(x, w, b, stride=2, padding=1)
    assert y.dtype == mt.float32
    (y * y).sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == mt.float32


def test_conv2d_skips_gradients_that_are_not_needed():
    x = mt.randn(1, 2, 5, 5, dtype=mt.float64)
    w = mt.randn(3, 2, 3, 3, dtype=mt.float64, requires_grad=True)
    conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad is not None
    x.requires_grad_()
    w2 = mt.randn(3, 2, 3, 3, dtype=mt.float64)
    conv2d(x, w2).sum().backward()
    assert x.grad is not None and w2.grad is None


def test_conv2d_int_and_pair_arguments_agree():
    x, w = mt.randn(1, 2, 7, 7, dtype=mt.float64), mt.randn(3, 2, 3, 3, dtype=mt.float64)
    a = conv2d(x, w, stride=2, padding=1, dilation=2)
    b = conv2d(x, w, stride=(2, 2), padding=(1, 1), dilation=(2, 2))
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "kwargs", "error", "match"),
    [
        ((3, 5, 5), (2, 3, 3, 3), {}, ValueError, r"4-D input.*\(3, 5, 5\)"),
        ((1, 3, 5, 5), (2, 3, 3), {}, ValueError, r"4-D weight"),
        ((1, 3, 5, 5), (2, 4, 3, 3), {}, ValueError, r"\(1, 3, 5, 5\).*3 channels.*\(2, 4, 3, 3\)"),
        ((1, 3, 5, 5), (4, 1, 3, 3), {"groups": 2}, ValueError, r"groups=2 must divide"),
        ((1, 4, 5, 5), (3, 2, 3, 3), {"groups": 2}, ValueError, r"groups=2 must divide"),
        ((1, 3, 2, 5), (2, 3, 3, 3), {}, ValueError, r"output size 0x3 is not positive"),
        ((1, 3, 5, 5), (2, 3, 3, 3), {"stride": 0}, ValueError, r"stride must be >= 1"),
        ((1, 3, 5, 5), (2, 3, 3, 3), {"padding": (1, 2, 3)}, ValueError, r"padding must be an int or a pair"),
        ((1, 3, 5, 5), (2, 3, 3, 3), {"groups": 0}, ValueError, r"groups must be a positive int"),
    ],
)
def test_conv2d_errors(x_shape, w_shape, kwargs, error, match):
    with pytest.raises(error, match=match):
        conv2d(mt.randn(*x_shape), mt.randn(*w_shape), **kwargs)


def test_conv2d_dtype_and_bias_errors():
    x, w = mt.randn(1, 3, 5, 5), mt.randn(2, 3, 3, 3)
    with pytest.raises(TypeError, match="same floating dtype"):
        conv2d(x, w.double())
    with pytest.raises(ValueError, match=r"bias must be a Tensor of shape \(2,\)"):
        conv2d(x, w, mt.randn(3))


# ---------------------------------------------------------------------- kernels


@given(case=conv_cases())
def test_im2col_entries_and_col2im_adjoint(case):
    """cols[(c,kh,kw), (n,oh,ow)] = x_pad[n, c, oh*sh + kh*dh, ow*sw + kw*dw], and
    <im2col(x), c> = <x, col2im(c)>."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(case["x_shape"])
    N, C, H, W = x.shape
    KH, KW = case["w_shape"][2:]
    (sh, sw), (ph, pw), (dh, dw) = case["stride"], case["padding"], case["dilation"]
    args = ((KH, KW), case["stride"], case["padding"], case["dilation"])
    cols = kernels.im2col(x, *args)
    OH, OW = out_size(H, KH, sh, ph, dh), out_size(W, KW, sw, pw, dw)
    assert cols.shape == (C * KH * KW, N * OH * OW) and cols.flags.c_contiguous
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    expected = np.empty((C, KH, KW, N, OH, OW))
    for kh in range(KH):
        for kw in range(KW):
            block = xpad[:, :, kh * dh : kh * dh + sh * (OH - 1) + 1 : sh, kw * dw : kw * dw + sw * (OW - 1) + 1 : sw]
            expected[:, kh, kw] = block.transpose(1, 0, 2, 3)
    np.testing.assert_array_equal(cols, expected.reshape(cols.shape))
    c = rng.standard_normal(cols.shape)
    back = kernels.col2im(c, x.shape, *args)
    assert back.shape == x.shape
    np.testing.assert_allclose((cols * c).sum(), (x * back).sum(), rtol=1e-12)


def test_kernel_dispatch_uses_array_expressions_on_cpu():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(kernels.im2col(x, (2, 3)), generic.im2col(x, (2, 3)))
    assert kernels.im2col(x, (2, 3)).dtype == np.float32


@pytest.mark.cuda
def test_cuda_rawkernels_match_array_expressions(device):
    if device == "cpu":
        pytest.skip("CUDA only")
    from minitorch_nndl.kernels import cuda

    assert cuda.available_for(np.float32)
    x = mt.randn(2, 3, 9, 8, device=device).data
    for args in (((3, 3), (1, 1), (1, 1), (1, 1)), ((3, 2), (2, 1), (0, 2), (2, 1))):
        cols = cuda.im2col(x, *args)
        np.testing.assert_allclose(mt.Tensor(cols).numpy(), mt.Tensor(generic.im2col(x, *args)).numpy())
        back = cuda.col2im(cols, x.shape, *args)
        ref = generic.col2im(cols, x.shape, *args)
        np.testing.assert_allclose(mt.Tensor(back).numpy(), mt.Tensor(ref).numpy(), rtol=1e-5, atol=1e-5)


def test_conv2d_accepts_non_contiguous_inputs_and_gradients():
    rng = np.random.default_rng(5)
    x_nhwc = rng.standard_normal((2, 6, 5, 3))
    w = rng.standard_normal((4, 3, 3, 3))
    x = mt.tensor(x_nhwc, dtype=mt.float64, requires_grad=True)
    x_view = x.permute(0, 3, 1, 2)  # NCHW view of an NHWC array
    y = conv2d(x_view, mt.tensor(w, dtype=mt.float64), padding=1)
    expected = naive_conv2d(x_nhwc.transpose(0, 3, 1, 2), w, None, (1, 1), (1, 1), (1, 1), 1)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)
    y.sum().backward()  # the incoming gradient is a broadcast (zero-stride) array
    assert x.grad.shape == x.shape
    assert mt.gradcheck(lambda t: conv2d(t.permute(0, 3, 1, 2), mt.tensor(w, dtype=mt.float64)), [x])


def test_the_f4x4_kernel_gives_the_numpy_results_on_the_device_too(device):
    """F(4x4, 3x3) is array expressions and BLAS calls that CuPy runs as they are (``Conv2d``
    takes it on the CPU only, where it was measured): forward, dx and dw on the device's arrays
    equal NumPy's, for an odd size (a tile partly outside) with a bias."""
    from minitorch_nndl.kernels import winograd4  # noqa: PLC0415

    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 9, 10, 3)), rng.standard_normal((4, 3, 3, 3))
    g, bias = rng.standard_normal((2, 9, 10, 4)), rng.standard_normal(4)
    results = []
    for where in ("cpu", device):
        xs, ws, gs, bs = (mt.backend.asarray(a, device=where) for a in (x, w, g, bias))
        xp = mt.backend.xp_of(xs)
        out, dx = xp.empty((2, 9, 10, 4)), xp.empty_like(xs)
        U = winograd4.transform_filter(ws)
        winograd4.conv3x3(xs, U, (1, 1), out, bs)
        dw = winograd4.filter_gradient(winograd4.conv3x3_backward(gs, (1, 1), U, dx, xs))
        results.append([mt.backend.to_numpy(a) for a in (out, dx, dw)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
