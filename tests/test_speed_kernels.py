"""The machinery behind the fast CPU convolution: channels-last im2row/row2im against
im2col/col2im, the batch-range thread pool, the reused workspace, and the invariants
the network relies on (conv outputs are channels-last; chunking and threads do not
change the result)."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from hypothesis import given
from test_conv import conv_cases
from test_fused import CountCalls
from winograd_kernels import KERNELS, use_winograd_kernel

import minitorch_nndl as mt
from minitorch_nndl import kernels
from minitorch_nndl.kernels import parallel, winograd, workspace
from minitorch_nndl.ops import conv as conv_module
from minitorch_nndl.ops.activation import relu
from minitorch_nndl.ops.conv import conv2d
from minitorch_nndl.ops.norm import batch_norm


@given(case=conv_cases())
def test_im2row_is_im2col_transposed_and_row2im_its_adjoint(case):
    """rows[(n,oh,ow), (kh,kw,c)] = cols[(c,kh,kw), (n,oh,ow)], and <im2row(x), r> = <x, row2im(r)>."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(case["x_shape"])
    N, C, H, W = x.shape
    KH, KW = case["w_shape"][2:]
    args = ((KH, KW), case["stride"], case["padding"], case["dilation"])
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    rows = kernels.im2row(x_nhwc, *args)
    cols = kernels.im2col(x, *args)
    OHOW = cols.shape[1] // N
    expected = cols.reshape(C, KH, KW, N * OHOW).transpose(3, 1, 2, 0).reshape(rows.shape)
    np.testing.assert_array_equal(rows, expected)
    r = rng.standard_normal(rows.shape)
    back = kernels.row2im(r, x_nhwc.shape, *args)
    np.testing.assert_allclose((rows * r).sum(), (x_nhwc * back).sum(), rtol=1e-12)


@given(case=conv_cases())
def test_im2row_into_a_kept_zeroed_buffer_only_copies_and_matches(case):
    """With padding_is_zero, im2row writes only what it copies: filled twice with different inputs,
    a buffer that started as zeros holds exactly what a fresh im2row gives (the padding entries
    stay zero)."""
    rng = np.random.default_rng(2)
    KH, KW = case["w_shape"][2:]
    args = ((KH, KW), case["stride"], case["padding"], case["dilation"])
    N, C, H, W = case["x_shape"]
    kept = None
    for _ in range(2):
        x_nhwc = rng.standard_normal((N, H, W, C))
        fresh = kernels.im2row(x_nhwc, *args)
        kept = np.zeros_like(fresh) if kept is None else kept
        assert kernels.im2row(x_nhwc, *args, out=kept, padding_is_zero=True) is kept
        np.testing.assert_array_equal(kept, fresh)


def test_valid_span_lists_the_inputs_inside_the_image():
    # H=5, 3 outputs of stride 2, padding 1, offset 0: inputs -1 (padding), 1, 3
    out, inp = kernels.valid_span(5, 3, 0, 2, 1, 1)
    assert (out, inp) == (slice(1, 3), slice(1, 4, 2))
    assert kernels.valid_span(2, 4, 3, 1, 3, 1) == (slice(0, 2), slice(0, 2, 1))
    assert kernels.valid_span(2, 1, 0, 1, 5, 1) == (slice(0, 0), slice(0, 0))


def test_for_batch_ranges_covers_the_batch_once_and_reraises():
    seen = []
    lock = threading.Lock()

    def record(start, stop):
        with lock:
            seen.extend(range(start, stop))

    for n in (0, 1, 2, 7):
        seen.clear()
        parallel.for_batch_ranges(record, n)
        assert sorted(seen) == list(range(n))
    assert parallel.split(7, 2) == [(0, 3), (3, 7)]

    def fail(start, stop):
        raise ValueError(f"range {start}:{stop}")

    with pytest.raises(ValueError, match="range"):
        parallel.for_batch_ranges(fail, 4)
    with pytest.raises(ValueError, match="positive int"):
        parallel.set_num_threads(0)


def test_workspace_reuses_one_buffer_and_grows():
    workspace.release()
    a = workspace.scratch("test", (4, 5), np.float32)
    b = workspace.scratch("test", (2, 3), np.float32)
    assert np.shares_memory(a, b) and b.shape == (2, 3) and b.dtype == np.float32
    c = workspace.scratch("test", (100,), np.float32)
    assert c.shape == (100,) and workspace.nbytes() >= 400
    other = workspace.scratch("other", (2, 3), np.float32)
    assert not np.shares_memory(other, c)
    workspace.release()
    assert workspace.nbytes() == 0


def test_workspace_zeroed_keeps_one_zeroed_array_per_name_shape_and_thread():
    workspace.release()
    a = workspace.zeroed("pad", (2, 3), np.float32)
    assert a.shape == (2, 3) and a.dtype == np.float32 and not a.any()
    a[0, 1] = 5.0  # a caller writes its part ...
    assert workspace.zeroed("pad", (2, 3), np.float32) is a  # ... and gets the same array back
    assert not workspace.zeroed("pad", (3, 2), np.float32).any()  # another shape: its own zeros
    assert workspace.zeroed("pad", (2, 3), np.float64) is not a
    seen = []
    worker = threading.Thread(target=lambda: seen.append(workspace.zeroed("pad", (2, 3), np.float32)))
    worker.start()
    worker.join()
    assert seen[0] is not a and not seen[0].any()  # each thread its own
    assert workspace.nbytes() >= a.nbytes
    workspace.release()
    assert workspace.nbytes() == 0 and not workspace.zeroed("pad", (2, 3), np.float32).any()


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_winograd_products_in_small_blocks_equal_one_matmul(monkeypatch, dtype, tolerance):
    """The 16 GEMMs split into blocks of rows for OpenBLAS's small-matrix kernels, with the right
    operand a transposed view (training's U) or contiguous: the same products as one matmul."""
    rng = np.random.default_rng(11)
    a = rng.standard_normal((3, 50, 6)).astype(dtype)
    u = rng.standard_normal((3, 5, 6)).astype(dtype).transpose(0, 2, 1)  # (3, 6, 5), a transposed view
    monkeypatch.setattr(winograd, "SMALL_GEMM_MNK", 6 * 5 * 12)  # at most 12 rows a block: 5 blocks of 10
    calls = []
    real_matmul = np.matmul
    monkeypatch.setattr(np, "matmul", lambda x, y, out: calls.append(x.shape) or real_matmul(x, y, out=out))
    monkeypatch.setattr(winograd, "MIN_SMALL_GEMM_ROWS", 4)
    out = winograd._products(a, u, np.empty((3, 50, 5), dtype))
    assert calls == [(3, 10, 6)] * 5
    np.testing.assert_allclose(out, real_matmul(a, u), rtol=tolerance, atol=tolerance)
    calls.clear()
    monkeypatch.setattr(winograd, "MIN_SMALL_GEMM_ROWS", 13)  # blocks would be too small: one call
    winograd._products(a, u, out)
    assert calls == [(3, 50, 6)]
    np.testing.assert_allclose(out, real_matmul(a, u), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("add", [False, True])
def test_winograd_summed_products_over_blocks_of_the_inner_dimension(monkeypatch, add):
    """The weight gradient's dM^T @ V summed over blocks of tiles (for the small-matrix kernels):
    the same as one matmul, added to what ``out`` held when ``add``, and an empty K gives zeros."""
    rng = np.random.default_rng(12)
    a = rng.standard_normal((2, 40, 4)).transpose(0, 2, 1)  # (2, 4, 40), a transposed view like dM^T
    b = rng.standard_normal((2, 40, 3))
    monkeypatch.setattr(winograd, "SMALL_GEMM_MNK", 4 * 3 * 15)  # at most 15 tiles a block: 3 blocks
    monkeypatch.setattr(winograd, "MIN_SMALL_GEMM_ROWS", 4)
    before = rng.standard_normal((2, 4, 3))
    calls = []
    real_matmul = np.matmul
    monkeypatch.setattr(np, "matmul", lambda x, y, out: calls.append(x.shape) or real_matmul(x, y, out=out))
    out = winograd._summed_products(a, b, before.copy(), add=add)
    monkeypatch.setattr(np, "matmul", real_matmul)
    assert calls == [(2, 4, 14), (2, 4, 14), (2, 4, 12)]  # 40 tiles, at most 15 a block: 3 blocks of 14
    np.testing.assert_allclose(out, np.matmul(a, b) + (before if add else 0), rtol=1e-12, atol=1e-12)
    empty = winograd._summed_products(a[:, :, :0], b[:, :0], np.full((2, 4, 3), 7.0), add=False)
    assert not empty.any()


def test_winograd_padded_input_stays_zero_around_the_copy_between_calls():
    """The padded input is kept between calls (its zeros written once): a second input of the
    same geometry, and one of another geometry in between, still convolve as im2row does."""
    rng = np.random.default_rng(7)
    w = rng.standard_normal((3, 2, 3, 3))
    U = winograd.transform_filter(w)
    for padding, size in (((1, 1), 6), ((0, 0), 7), ((1, 1), 6), ((2, 1), 5), ((1, 1), 6)):
        x = rng.standard_normal((2, size, size, 2)) * 10  # channels-last
        OH, OW = size + 2 * padding[0] - 2, size + 2 * padding[1] - 2
        out = winograd.conv3x3(x, U, padding, np.empty((2, OH, OW, 3)))
        expected = conv2d(mt.tensor(x.transpose(0, 3, 1, 2)), mt.tensor(w), padding=padding).numpy()
        np.testing.assert_allclose(out.transpose(0, 3, 1, 2), expected, rtol=1e-12, atol=1e-12)


def test_conv_output_is_channels_last_and_feeds_the_next_conv_without_a_copy():
    x = mt.randn(2, 3, 6, 6)
    w = mt.randn(4, 3, 3, 3)
    y = conv2d(x, w, padding=1)
    assert y.shape == (2, 4, 6, 6)
    assert y.data.transpose(0, 2, 3, 1).flags.c_contiguous  # NHWC strides underneath
    assert conv_module._channels_last(y.data).base is y.data.base  # a view: nothing copied


@pytest.mark.parametrize("kernel", KERNELS)
def test_two_threads_repeat_a_winograd_step_bit_for_bit(monkeypatch, kernel):
    """With the threads taking the forward's chunks in turn and the GEMMs in small blocks, the same
    inputs still give the same output and gradients to the bit (float32, Winograd, 2 threads)."""
    chosen = use_winograd_kernel(monkeypatch, kernel)
    monkeypatch.setattr(conv_module, "MIN_WINOGRAD_TILES_PER_THREAD", 1)  # chunks by images, not by positions
    for prefix in ("WINOGRAD", "WINOGRAD4"):  # one image a chunk: 6 chunks for 2 threads
        monkeypatch.setattr(conv_module, f"{prefix}_CHUNK_TILES", 1)
        monkeypatch.setattr(conv_module, f"{prefix}_CHUNK_BYTES", 1)
    monkeypatch.setattr(winograd, "SMALL_GEMM_MNK", 16 * 16 * 8)  # blocks of 8 rows of the 16-tile GEMMs
    monkeypatch.setattr(winograd, "MIN_SMALL_GEMM_ROWS", 4)
    calls = CountCalls(monkeypatch, chosen, "conv3x3_backward")
    rng = np.random.default_rng(13)
    x_np = rng.standard_normal((6, 16, 8, 8)).astype(np.float32)
    w_np = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    before = parallel.num_threads()

    def step():
        x = mt.tensor(x_np, requires_grad=True)
        w = mt.tensor(w_np, requires_grad=True)
        y = conv2d(x, w, padding=1)
        (y * y).sum().backward()
        return y.numpy(), x.grad, w.grad

    try:
        parallel.set_num_threads(2)
        first, second = step(), step()
        parallel.set_num_threads(1)
        alone = step()
    finally:
        parallel.set_num_threads(before)
    assert calls.calls >= 6  # every image's chunk went through the chosen kernel
    for a, b, c in zip(first, second, alone):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("threads", [1, 2])
def test_chunks_and_threads_do_not_change_the_result(monkeypatch, threads):
    rng = np.random.default_rng(2)
    x_np = rng.standard_normal((5, 3, 7, 6))
    w_np = rng.standard_normal((4, 3, 3, 2))

    def run():
        x = mt.tensor(x_np, dtype=mt.float64, requires_grad=True)
        w = mt.tensor(w_np, dtype=mt.float64, requires_grad=True)
        y = conv2d(x, w, stride=(2, 1), padding=1)
        (y * y).sum().backward()
        return y.numpy(), x.grad, w.grad

    whole = run()
    before = parallel.num_threads()
    monkeypatch.setattr(conv_module, "CHUNK_BYTES", 1)  # one image per chunk
    monkeypatch.setattr(conv_module, "MIN_CHUNK_ROWS", 1)
    parallel.set_num_threads(threads)
    try:
        chunked = run()
    finally:
        parallel.set_num_threads(before)
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding", [(1, 1), (0, 0)])
def test_winograd_split_by_positions_gives_what_the_batch_split_gives(monkeypatch, padding):
    """Two threads each running 8 of the 16 GEMMs over the whole batch (few tiles a thread)
    give the output, input gradient and weight gradient of the batch split and of im2row,
    and the epilogue (residual + ReLU in evaluation) still runs on every image."""
    rng = np.random.default_rng(5)
    x_np = rng.standard_normal((3, 4, 5, 6))  # odd sizes: the cropped last tile row too
    w_np = rng.standard_normal((4, 4, 3, 3))
    monkeypatch.setattr(conv_module, "MIN_WINOGRAD_TILES", 1)
    monkeypatch.setattr(conv_module, "MIN_WINOGRAD_CHANNELS", 1)
    calls = []
    real = winograd.conv3x3_backward
    monkeypatch.setattr(winograd, "conv3x3_backward", lambda *a, **k: calls.append(a[0].shape[0]) or real(*a, **k))

    def run(positions, use_winograd=True):
        monkeypatch.setattr(conv_module, "USE_WINOGRAD", use_winograd)
        monkeypatch.setattr(conv_module, "MIN_WINOGRAD_TILES_PER_THREAD", 10**6 if positions else 0)
        x = mt.tensor(x_np, dtype=mt.float64, requires_grad=True)
        w = mt.tensor(w_np, dtype=mt.float64, requires_grad=True)
        y = conv2d(x, w, padding=padding)
        (y * y).sum().backward()
        return y.numpy(), x.grad, w.grad

    before = parallel.num_threads()
    parallel.set_num_threads(2)
    try:
        by_positions = run(True)
        assert calls == [3]  # the backward: the whole batch in one call
        calls.clear()
        by_images = run(False)
        assert calls and max(calls) < 3  # each thread its share
        by_rows = run(False, use_winograd=False)
        conv = mt.nn.Conv2d(4, 4, 3, padding=padding, bias=True).double()
        bn = mt.nn.BatchNorm2d(4).double().eval()
        x = mt.tensor(x_np, dtype=mt.float64)
        residual = mt.relu(conv(x)) if padding == (1, 1) else None
        with mt.no_grad():
            expected = mt.nn.conv_bn(conv, bn, x, residual=residual, relu=mt.nn.ReLU()).numpy()
        monkeypatch.setattr(conv_module, "USE_WINOGRAD", True)
        monkeypatch.setattr(conv_module, "MIN_WINOGRAD_TILES_PER_THREAD", 10**6)
        forwards = []
        real_forward = winograd.conv3x3
        monkeypatch.setattr(winograd, "conv3x3", lambda *a: forwards.append(a[0].shape[0]) or real_forward(*a))
        with mt.inference_mode():
            fused = mt.nn.conv_bn(conv, bn, x, residual=residual, relu=mt.nn.ReLU()).numpy()
        assert forwards == [3]  # folded, and by positions
    finally:
        parallel.set_num_threads(before)
    for a, b, c in zip(by_positions, by_images, by_rows):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(a, c, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(fused, expected, rtol=1e-11, atol=1e-11)


def test_batch_norm_and_relu_keep_no_full_size_copy_for_backward():
    """BatchNorm saves its input (which the graph holds anyway) and ReLU its output,
    so neither keeps an extra activation-sized array alive until backward."""
    x = mt.randn(4, 3, 5, 5, requires_grad=True)
    h = batch_norm(x, None, None, training=True)
    saved = h._node.ctx.saved_tensors
    assert saved[0] is x.data and all(a is None or a.size <= 3 for a in saved[1:])
    y = relu(h)
    assert y._node.ctx.saved_tensors[0] is y.data


def test_reuse_freed_memory_is_opt_in_and_reversible():
    applied = mt.backend.reuse_freed_memory()
    assert isinstance(applied, bool)
    assert mt.backend.reuse_freed_memory(False) == applied  # glibc's defaults back


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("x_shape", [(3, 4, 7, 6), (2, 4, 6, 8), (2, 4, 9, 10)])
@pytest.mark.parametrize("padding", [(0, 0), (1, 1), (2, 1)])
def test_winograd_matches_im2row_forward_and_backward(monkeypatch, padding, x_shape, kernel):
    """F(2x2, 3x3) and F(4x4, 3x3) give the same convolution and gradients as im2row + GEMM (odd
    sizes, and even ones, where padding 1 crops inside F(2x2)'s overlap-add; one and several tiles
    along each axis), and the transformed filter is G g G^T."""
    rng = np.random.default_rng(3)
    x_np = rng.standard_normal(x_shape)
    w_np = rng.standard_normal((5, 4, 3, 3))

    winograd = use_winograd_kernel(monkeypatch, kernel)  # small test images use it too
    calls = []
    real_conv3x3 = winograd.conv3x3
    monkeypatch.setattr(winograd, "conv3x3", lambda *args: calls.append(1) or real_conv3x3(*args))
    real_backward = winograd.conv3x3_backward
    monkeypatch.setattr(winograd, "conv3x3_backward", lambda *a, **k: calls.append(2) or real_backward(*a, **k))

    def run(use_winograd):
        monkeypatch.setattr(conv_module, "USE_WINOGRAD", use_winograd)
        x = mt.tensor(x_np, dtype=mt.float64, requires_grad=True)
        w = mt.tensor(w_np, dtype=mt.float64, requires_grad=True)
        y = conv2d(x, w, padding=padding)
        (y * y).sum().backward()
        return y.numpy(), x.grad, w.grad

    with_winograd = run(True)
    assert 1 in calls and 2 in calls  # the forward and the backward both went through it
    calls.clear()
    for a, b in zip(with_winograd, run(False)):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)
    assert not calls
    G = np.array(winograd.FILTER_TRANSFORM)
    U = winograd.transform_filter(w_np)
    wide = G.shape[0]  # 4 or 6: the input tile's side
    np.testing.assert_allclose(U[wide * 1 + 2], (G @ w_np @ G.T)[:, :, 1, 2].T, rtol=1e-14)
    if kernel == "winograd":  # and the output tiles are A^T M A
        AT = np.array(winograd.OUTPUT_TRANSFORM)
        M = rng.standard_normal((4, 4, 1, 2, 3, 5))
        Y = np.empty((1, 4, 6, 5))
        winograd._output_tiles(M, Y)
        np.testing.assert_allclose(Y[0, 2:4, 4:6, 1], AT @ M[:, :, 0, 1, 2, 1] @ AT.T, rtol=1e-14)
    assert winograd.applies((3, 3), (1, 1), (1, 1)) and not winograd.applies((3, 3), (2, 2), (1, 1))
    monkeypatch.setattr(conv_module, "USE_WINOGRAD", True)
    x = mt.tensor(x_np[:1, :2, :5, :4], dtype=mt.float64, requires_grad=True)
    w = mt.tensor(w_np[:2, :2], dtype=mt.float64, requires_grad=True)
    assert mt.gradcheck(lambda a, b: conv2d(a, b, padding=padding), [x, w])


def test_winograd_is_chosen_where_it_was_measured_to_win():
    """The stem (3 input channels), strided layers and 4x4 layers at 8 images a thread keep
    im2row; the 3x3 stride-1 layers with enough tiles and channels use F(2x2, 3x3)."""

    def chosen(c_in, c_out, hw, images, stride=(1, 1)):
        geometry = conv_module.ConvGeometry((images, c_in, hw, hw), (3, 3), stride, (1, 1), (1, 1), 1)
        return conv_module._winograd_applies(geometry, (1, 1), images, (hw, hw), (c_out, c_in))

    assert not chosen(3, 64, 32, 16)  # the stem: transforms cost more than its GEMM saves
    assert chosen(64, 64, 32, 16)
    assert chosen(256, 256, 8, 16)  # 16 images * 16 tiles = 256
    assert chosen(512, 512, 4, 16)  # 64 tiles per GEMM
    assert not chosen(512, 512, 4, 8)  # 32 tiles: measured slower than im2row
    assert not chosen(64, 64, 32, 16, stride=(2, 2))


def test_the_winograd_kernel_is_chosen_per_layer_as_measured(monkeypatch):
    """On 2 threads, ResNet18-CIFAR's stride-1 3x3 layers take F(4x4, 3x3) where the batch is split
    by images (batch 32: the 32x32, 16x16 and 8x8 layers; batch 128 all four), F(2x2, 3x3) where its
    GEMMs go by position (the 4x4 layers at batch 32), for float16 and for a lone image, and never
    F(4x4) on CuPy arrays."""
    monkeypatch.setattr(parallel, "num_threads", lambda: 2)

    def kernel(channels, hw, batch, like=np.float32):
        geometry = conv_module.ConvGeometry((batch, channels, hw, hw), (3, 3), (1, 1), (1, 1), (1, 1), 1)
        weight = np.zeros((channels, channels, 3, 3), np.float32)
        plan = conv_module._plan(np.zeros(1, like), weight, geometry)
        return plan.winograd.__name__.rsplit(".", 1)[-1], plan.by_positions

    assert kernel(64, 32, 32) == kernel(128, 16, 32) == kernel(256, 8, 32) == ("winograd4", False)
    assert kernel(512, 4, 32) == ("winograd", True)
    assert kernel(512, 4, 128) == ("winograd4", False)
    monkeypatch.setattr(conv_module, "USE_WINOGRAD4", False)
    assert kernel(64, 32, 32) == ("winograd", False)
    monkeypatch.setattr(conv_module, "USE_WINOGRAD4", True)
    assert kernel(64, 32, 32, like=np.float16) == ("winograd", False)  # 12x F(2x2)'s error in float16
    assert kernel(64, 32, 1) == ("winograd", False)  # one image, two threads: F(2x2) splits its GEMMs
    monkeypatch.setattr(conv_module.backend, "is_cuda_array", lambda array: True)
    assert conv_module._winograd4_applies(np.zeros(1), 64, 32, (32, 32), by_positions=False) is False


@pytest.mark.parametrize(("kernel", "bound"), [("winograd", 1e-6), ("winograd4", 1e-5)])
def test_float32_winograd_stays_close_to_the_exact_convolution(kernel, bound):
    """F(4x4, 3x3)'s larger constants (1/6, 1/24, 8) cost precision: in float32 its outputs are
    within 1e-5 of the output's scale from the exact (float64) convolution, F(2x2)'s within 1e-6."""
    module = getattr(kernels, kernel)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 16, 16, 64))
    w = rng.standard_normal((64, 64, 3, 3)) / np.sqrt(9 * 64)
    exact = module.conv3x3(x, module.transform_filter(w), (1, 1), np.empty((2, 16, 16, 64)))
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    single = module.conv3x3(x32, module.transform_filter(w32), (1, 1), np.empty((2, 16, 16, 64), np.float32))
    assert single.dtype == np.float32
    error = float(np.abs(single - exact).max() / np.abs(exact).max())
    assert error < bound
    assert error > 1e-9  # it really computed in float32


@pytest.mark.parametrize(
    ("forced", "kernels", "avx512", "expected"),
    [
        ("Haswell", "Haswell", True, True),  # this project's machines: forced below what the CPU has
        ("Haswell", "Haswell", False, False),  # an AVX2 CPU: Haswell is its best family anyway
        ("", "Haswell", True, False),  # OpenBLAS chose by itself
        ("SkylakeX", "SkylakeX", True, False),
        ("Haswell", None, True, False),  # not an OpenBLAS that says
    ],
)
def test_a_forced_older_openblas_kernel_family_is_pointed_out(monkeypatch, forced, kernels, avx512, expected):
    monkeypatch.setenv("OPENBLAS_CORETYPE", forced)
    monkeypatch.setattr(parallel, "blas_kernels", lambda: kernels)
    monkeypatch.setattr(parallel, "cpu_has_avx512", lambda: avx512)
    note = parallel.forced_kernels_note()
    assert (note is not None) == expected
    if expected:
        assert f"OPENBLAS_CORETYPE={forced}" in note and "env -u OPENBLAS_CORETYPE" in note


def test_blas_kernels_names_openblas_choice_when_numpy_uses_openblas():
    kernels = parallel.blas_kernels()
    if parallel.openblas() is None:
        assert kernels is None
    else:  # NumPy's wheels bring an OpenBLAS that names its kernels
        assert isinstance(kernels, str) and kernels.isidentifier()


def test_the_pool_is_off_by_default_when_blas_is_threaded():
    assert parallel.blas_threads() >= 1
    assert parallel.openblas_call("no_such_function_anywhere") is None
    if "MINITORCH_NUM_THREADS" not in os.environ and parallel.blas_threads() > 1:
        assert parallel._default_threads() == 1


def test_small_elementwise_passes_are_not_split(monkeypatch):
    """Handing a range to a thread costs more than a pass over a few thousand values: under
    min_elements the whole range runs as one call in this thread; above it, one per thread."""
    threshold = parallel.MIN_SPLIT_ELEMENTS
    before = parallel.num_threads()
    parallel.set_num_threads(2)
    try:
        for size, expected in ((threshold - 1, [(0, 8)]), (threshold, [(0, 4), (4, 8)])):
            calls = []
            parallel.for_batch_ranges(lambda i, j, calls=calls: calls.append((i, j)), 8, np.zeros(size), threshold)
            assert sorted(calls) == expected
    finally:
        parallel.set_num_threads(before)
    asked = []
    real = parallel.for_batch_ranges
    monkeypatch.setattr(
        parallel,
        "for_batch_ranges",
        lambda fn, n, array=None, min_elements=0: asked.append(min_elements) or real(fn, n, array, min_elements),
    )
    mt.nn.functional.relu(mt.randn(4, 3))
    assert asked == [threshold]  # ReLU asks for the threshold


def test_nested_batch_ranges_run_in_the_calling_thread():
    """A chunk running in a pool thread that splits again (im2row inside a conv range) must
    not wait for the pool it is part of."""
    before = parallel.num_threads()
    parallel.set_num_threads(2)
    inner_threads = []

    def inner(start, stop):
        inner_threads.append(threading.get_ident())

    def outer(start, stop):
        parallel.for_batch_ranges(inner, 4)
        assert inner_threads[-1] == threading.get_ident()

    try:
        parallel.for_batch_ranges(outer, 4)
    finally:
        parallel.set_num_threads(before)
    assert len(inner_threads) == 2  # one unsplit inner call per outer range


@pytest.mark.parametrize("threads", [1, 2])
def test_batch_norm_and_relu_split_over_threads_give_the_same_result(threads):
    rng = np.random.default_rng(4)
    x_np = rng.standard_normal((5, 3, 4, 4))
    before = parallel.num_threads()

    def run(n):
        parallel.set_num_threads(n)
        x = mt.tensor(x_np, dtype=mt.float64, requires_grad=True)
        w = mt.tensor(np.array([0.5, -1.0, 2.0]), dtype=mt.float64, requires_grad=True)
        y = relu(batch_norm(x, None, None, w, None, training=True))
        (y * y).sum().backward()
        return y.numpy(), x.grad

    try:
        one, split = run(1), run(threads)
    finally:
        parallel.set_num_threads(before)
    for a, b in zip(one, split):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_for_each_chunk_hands_out_every_chunk_once_and_the_idle_thread_takes_more():
    before = parallel.num_threads()
    taken: dict[tuple[int, int], str] = {}
    lock = threading.Lock()

    def work(start, stop):
        me = threading.current_thread().name
        with lock:
            assert (start, stop) not in taken
            taken[start, stop] = me
        if threading.current_thread() is threading.main_thread():
            time.sleep(0.03)  # this thread's core is busy: the other one should take the rest

    try:
        parallel.set_num_threads(1)
        order = []
        parallel.for_each_chunk(lambda i, j: order.append((i, j)), 7, 3)
        assert order == [(0, 3), (3, 6), (6, 7)]  # one thread: in order, in the caller
        parallel.set_num_threads(2)
        parallel.for_each_chunk(work, 20, 2)
    finally:
        parallel.set_num_threads(before)
    assert sorted(taken) == [(i, i + 2) for i in range(0, 20, 2)]
    by_main = sum(name == threading.main_thread().name for name in taken.values())
    assert by_main < 5  # the slow thread ran fewer than its fixed half (10 chunks, 2 threads)


def test_a_workers_error_is_raised_and_the_pool_still_works():
    before = parallel.num_threads()
    parallel.set_num_threads(2)
    done = []

    def fail_in_the_worker(start, stop):
        if threading.current_thread() is not threading.main_thread():
            raise ValueError(f"worker range {start}:{stop}")
        time.sleep(0.02)  # the worker fails first; the caller still waits for its own range
        done.append((start, stop))

    try:
        with pytest.raises(ValueError, match="worker range 0:2"):
            parallel.for_batch_ranges(fail_in_the_worker, 4)
        assert done == [(2, 4)]
        seen = []
        parallel.for_batch_ranges(lambda i, j: seen.extend(range(i, j)), 6)
        assert sorted(seen) == list(range(6))
    finally:
        parallel.set_num_threads(before)


def test_a_late_answer_of_an_interrupted_call_does_not_end_the_next_one():
    """Ctrl-C in the caller while it waits leaves its worker's answer behind; the next call
    must wait for its own worker, not take that answer and reuse buffers still being written."""
    before = parallel.num_threads()
    parallel.set_num_threads(2)
    finished = []

    def slow_worker(start, stop):
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.05)
            finished.append((start, stop))

    try:
        parallel.for_batch_ranges(lambda i, j: None, 2)  # starts the workers
        pool = parallel._pool()
        pool.finished.put((pool.call, None))  # what an interrupted call's worker answers late
        parallel.for_batch_ranges(slow_worker, 4)
        assert finished == [(0, 2)]
    finally:
        parallel.set_num_threads(before)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_workers():
    before = parallel.num_threads()
    parallel.set_num_threads(2)
    try:
        parallel.for_batch_ranges(lambda i, j: None, 2)  # the parent's workers exist
        pid = os.fork()
        if pid == 0:  # the child: its copy of the pool has no threads behind it
            seen = []
            parallel.for_batch_ranges(lambda i, j: seen.extend(range(i, j)), 4)
            os._exit(0 if sorted(seen) == [0, 1, 2, 3] else 1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.01)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung in for_batch_ranges")
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        parallel.set_num_threads(before)


def test_calls_from_two_threads_at_once_each_cover_their_batch():
    before = parallel.num_threads()
    parallel.set_num_threads(2)
    seen: dict[str, list] = {"a": [], "b": []}
    lock = threading.Lock()

    def record(name, start, stop):
        time.sleep(0.01)
        with lock:
            seen[name].extend(range(start, stop))

    def caller(name, n):
        for _ in range(5):
            parallel.for_batch_ranges(lambda i, j: record(name, i, j), n)

    try:
        threads = [threading.Thread(target=caller, args=(name, n)) for name, n in (("a", 6), ("b", 9))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        parallel.set_num_threads(before)
    assert sorted(seen["a"]) == sorted(list(range(6)) * 5)
    assert sorted(seen["b"]) == sorted(list(range(9)) * 5)


def test_pool_threads_run_under_the_callers_numpy_error_state():
    before = parallel.num_threads()
    parallel.set_num_threads(2)
    states = []
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            parallel.for_batch_ranges(lambda i, j: states.append(np.geterr()["invalid"]), 4)
    finally:
        parallel.set_num_threads(before)
    assert states == ["ignore", "ignore"]


@pytest.mark.parametrize("layout", ["channels_last", "contiguous", "short_inner_axis"])
def test_relu_against_a_row_of_zeros_equals_the_plain_maximum(layout):
    """ReLU runs maximum(x, zeros along x's innermost memory axis) where NumPy's fast loop
    needs that; the values, NaN and -inf included, and the gradient are maximum(x, 0)'s."""
    from minitorch_nndl.kernels.arrays import MIN_ZEROS_RUN, _zeros_along_memory

    rng = np.random.default_rng(7)
    C = MIN_ZEROS_RUN
    shapes = {"channels_last": (3, 5, 4, C), "contiguous": (3, 4, 5, C), "short_inner_axis": (3, C, 5, 2)}
    memory = rng.standard_normal(shapes[layout]).astype(np.float32)
    memory.flat[:3] = [np.nan, -np.inf, np.inf]
    array = memory.transpose(0, 3, 1, 2) if layout == "channels_last" else memory
    zero = _zeros_along_memory(array)
    if layout == "short_inner_axis":
        assert np.ndim(zero) == 0  # a 2-long innermost axis: the scalar is faster
    else:
        assert np.ndim(zero) == array.ndim and np.size(zero) == C and not np.any(zero)
    x = mt.Tensor(array, requires_grad=True)
    y = relu(x)
    np.testing.assert_array_equal(y.numpy(), np.maximum(array, np.float32(0)))
    assert y.dtype == np.float32 and y.data.strides == array.strides  # x's memory order is kept
    g = rng.standard_normal(array.shape).astype(np.float32)
    y.backward(mt.Tensor(g))
    np.testing.assert_array_equal(x.grad, g * (np.maximum(array, 0) > 0))


@pytest.mark.parametrize("layout", ["channels_last", "contiguous", "a_slice_of_a_wider_array", "size_not_a_multiple"])
def test_relu_over_memory_rows_equals_the_plain_maximum(layout):
    """One block of memory goes through maximum as rows of ZEROS_ROW values against one row of
    zeros; anything else (a strided slice, a size the row does not divide) takes the broadcast
    path.  Either way: maximum(x, 0), NaN and -inf included, in x's memory order."""
    from minitorch_nndl.kernels.arrays import ZEROS_ROW, _memory_rows, relu_into

    rng = np.random.default_rng(8)
    memory = rng.standard_normal((2, 8, 8, ZEROS_ROW // 32)).astype(np.float32)  # 2 * ZEROS_ROW values
    memory.flat[:3] = [np.nan, -np.inf, np.inf]
    array = {
        "channels_last": memory.transpose(0, 3, 1, 2),
        "contiguous": memory,
        "a_slice_of_a_wider_array": memory[:, :, :, ::2],
        "size_not_a_multiple": memory[:, :7],
    }[layout]
    takes_rows = layout in ("channels_last", "contiguous")
    assert (_memory_rows(array) is not None) == takes_rows
    out = np.empty_like(array)
    assert relu_into(array, out) is out
    np.testing.assert_array_equal(out, np.maximum(array, np.float32(0)))
    assert out.strides == np.empty_like(array).strides
    in_place = array.copy(order="K")
    relu_into(in_place, in_place)
    np.testing.assert_array_equal(in_place, np.maximum(array, np.float32(0)))
