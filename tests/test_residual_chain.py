"""conv2d_affine_chain and nn.residual_block: a residual block run depth first in evaluation,
a chunk of images through all its convolutions at a time.  It must be exactly the block run
layer by layer (float64, and the same chunks give the same bits in float32), wherever it is
taken, and step aside wherever it cannot run in chunks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fused import CountCalls, make_pair

import minitorch_nndl as mt
from minitorch_nndl import models, nn
from minitorch_nndl.kernels import parallel
from minitorch_nndl.nn import residual
from minitorch_nndl.ops import conv as conv_module
from minitorch_nndl.ops.conv import AffineConv, conv2d_affine, conv2d_affine_chain


def affine(rng, c_in, c_out, kernel, stride=1, dtype=np.float64):
    padding = kernel // 2
    weight = mt.tensor(rng.standard_normal((c_out, c_in, kernel, kernel)).astype(dtype))
    scale = mt.tensor(rng.uniform(0.5, 1.5, c_out).astype(dtype))
    shift = mt.tensor(rng.standard_normal(c_out).astype(dtype))
    return AffineConv(weight, scale, shift, stride, padding)


def layer_by_layer(x, convs, shortcut):
    out = x
    for conv in convs[:-1]:
        out = conv2d_affine(out, *conv, relu=True)
    identity = x if shortcut is None else conv2d_affine(x, *shortcut)
    return conv2d_affine(out, *convs[-1], residual=identity, relu=True)


BLOCKS = {  # (input channels, [(out channels, kernel, stride)], shortcut?)
    "basic": (16, [(16, 3, 1), (16, 3, 1)], False),
    "basic, downsampling": (8, [(16, 3, 2), (16, 3, 1)], True),
    "bottleneck": (16, [(8, 1, 1), (8, 3, 1), (16, 1, 1)], False),
    "bottleneck, downsampling": (8, [(4, 1, 1), (4, 3, 2), (16, 1, 1)], True),
}


@settings(max_examples=12, deadline=None)
@given(
    block=st.sampled_from(sorted(BLOCKS)),
    images=st.integers(1, 5),
    hw=st.integers(5, 12),
    threads=st.sampled_from([1, 2]),
)
def test_the_chain_equals_the_block_layer_by_layer(block, images, hw, threads, monkeypatch):
    """Every kind of ResNet block (BasicBlock, Bottleneck, with and without a downsampling shortcut),
    any batch and image size, one or two threads: the chain gives the layer-by-layer result."""
    monkeypatch.setattr(conv_module, "MIN_WINOGRAD_TILES", 4)  # small images still take Winograd
    before = parallel.num_threads()
    parallel.set_num_threads(threads)
    try:
        rng = np.random.default_rng(images * 100 + hw)
        c_in, links, has_shortcut = BLOCKS[block]
        convs, channels = [], c_in
        for c_out, kernel, stride in links:
            convs.append(affine(rng, channels, c_out, kernel, stride))
            channels = c_out
        stride = max(s for _, _, s in links)
        shortcut = affine(rng, c_in, channels, 1, stride)._replace(padding=0) if has_shortcut else None
        x = mt.tensor(rng.standard_normal((images, c_in, hw, hw)))
        np.testing.assert_allclose(
            conv2d_affine_chain(x, convs, shortcut).numpy(),
            layer_by_layer(x, convs, shortcut).numpy(),
            rtol=1e-12,
            atol=1e-12,
        )
    finally:
        parallel.set_num_threads(before)


def test_the_chain_runs_in_chunks_on_the_cpu_and_repeats_bit_for_bit_on_two_threads(monkeypatch):
    """A float32 basic block of 8 images in chunks of 2: the chunked route is taken, its output
    equals the layer-by-layer one's to float32 rounding and is the same bits on 1 and 2 threads."""
    monkeypatch.setattr(conv_module, "WINOGRAD_CHUNK_BYTES", 1)  # the least chunk: WINOGRAD_CHUNK_TILES
    monkeypatch.setattr(conv_module, "WINOGRAD_CHUNK_TILES", 128)  # 2 images of 16x16 outputs (8x8 tiles)
    monkeypatch.setattr(conv_module, "MIN_WINOGRAD_TILES_PER_THREAD", 1)  # never by positions
    rng = np.random.default_rng(0)
    convs = [affine(rng, 16, 16, 3, dtype=np.float32), affine(rng, 16, 16, 3, dtype=np.float32)]
    x = mt.tensor(rng.standard_normal((8, 16, 16, 16)).astype(np.float32))
    chunks = CountCalls(monkeypatch, conv_module, "_convolve_chunk")
    results, before = [], parallel.num_threads()
    for threads in (1, 2):
        parallel.set_num_threads(threads)
        try:
            results.append(conv2d_affine_chain(x, convs).numpy())
        finally:
            parallel.set_num_threads(before)
    assert chunks.calls == 2 * 4 * 2  # two runs, four chunks, two convolutions each
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_allclose(results[0], layer_by_layer(x, convs, None).numpy(), rtol=1e-5, atol=1e-4)
    assert results[0].dtype == np.float32


def test_where_it_cannot_run_in_chunks_it_is_the_convolutions_one_after_the_other(monkeypatch, device):
    """On a GPU (the whole batch is one chunk there) and where Winograd's GEMMs would go by
    position, the chain calls conv2d_affine per convolution (and gives the same result)."""
    rng = np.random.default_rng(1)
    convs = [affine(rng, 16, 16, 3), affine(rng, 16, 16, 3)]
    convs = [AffineConv(*(t.to(device) if isinstance(t, mt.Tensor) else t for t in conv)) for conv in convs]
    x = mt.tensor(rng.standard_normal((2, 16, 8, 8)), device=device)
    if device == "cpu":  # on the CPU: two threads, few tiles each, so Winograd goes by position
        monkeypatch.setattr(parallel, "_num_threads", 2)
        monkeypatch.setattr(conv_module, "MIN_WINOGRAD_TILES", 4)
        assert conv_module._winograd_by_positions(x.data, 1, (8, 8))
    separate = CountCalls(monkeypatch, conv_module, "conv2d_affine")
    got = conv2d_affine_chain(x, convs)
    assert separate.calls == 2
    np.testing.assert_allclose(got.numpy(), layer_by_layer(x, convs, None).numpy(), rtol=1e-12, atol=1e-12)


def test_the_chain_names_the_link_and_the_shapes_that_do_not_fit():
    rng = np.random.default_rng(2)
    x = mt.tensor(rng.standard_normal((2, 8, 6, 6)))
    with pytest.raises(ValueError, match=r"conv2d_affine_chain convs\[1\]: input shape \(2, 16, 6, 6\) has 16"):
        conv2d_affine_chain(x, [affine(rng, 8, 16, 3), affine(rng, 8, 16, 3)], affine(rng, 8, 16, 1))
    with pytest.raises(
        ValueError, match=r"identity shortcut needs x \(2, 8, 6, 6\) of the output's shape \(2, 16, 6, 6\)"
    ):
        conv2d_affine_chain(x, [affine(rng, 8, 16, 3)])
    with pytest.raises(
        ValueError, match=r"shortcut's output \(2, 16, 6, 6\) differs from the output's shape \(2, 16, 3, 3\)"
    ):
        conv2d_affine_chain(x, [affine(rng, 8, 16, 3, 2)], affine(rng, 8, 16, 1))
    with pytest.raises(TypeError, match="conv2d_affine_chain convs\\[0\\]: expected an AffineConv, got tuple"):
        conv2d_affine_chain(x, [tuple(affine(rng, 8, 8, 3))])
    with pytest.raises(ValueError, match="needs at least one convolution"):
        conv2d_affine_chain(x, [])
    bad_scale = affine(rng, 8, 8, 3)._replace(scale=mt.tensor(np.ones(3)))
    with pytest.raises(ValueError, match=r"convs\[0\]: scale must be a Tensor like shift"):
        conv2d_affine_chain(x, [bad_scale])


def trained_looking(model, rng):
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.data[...] = rng.standard_normal(module.num_features) * 0.1
            module.running_var.data[...] = rng.uniform(0.5, 2, module.num_features)
    return model.eval()


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_resnets_in_inference_mode_run_their_blocks_depth_first_with_the_same_logits(arch, monkeypatch):
    """Inside inference_mode() every block of ResNet18 / ResNet50 (BasicBlock, Bottleneck, with the
    downsampling shortcuts) goes through the chain, and the logits equal those of no_grad(), where
    the blocks run conv_bn by conv_bn."""
    monkeypatch.setattr(conv_module, "MIN_WINOGRAD_TILES_PER_THREAD", 1)
    mt.manual_seed(0)
    model = trained_looking(getattr(models, arch)(dtype=mt.float64, width=8), np.random.default_rng(4))
    x = mt.tensor(np.random.default_rng(5).standard_normal((3, 3, 16, 16)), dtype=mt.float64)
    with mt.no_grad():
        separate = model(x).numpy()
    chains = CountCalls(monkeypatch, residual, "conv2d_affine_chain")
    with mt.inference_mode():
        chained = model(x).numpy()
    assert chains.calls == sum(
        isinstance(m, (models.resnet.BasicBlock, models.resnet.Bottleneck)) for m in model.modules()
    )
    np.testing.assert_allclose(chained, separate, rtol=1e-10, atol=1e-10)


def test_residual_block_steps_aside_for_hooks_training_and_other_shortcuts(monkeypatch):
    """A forward hook on a conv, a batch norm in training, a shortcut that is not
    Sequential(Conv2d, BatchNorm2d), or outside inference_mode(): the separate conv_bn ops
    (the hook runs), with the same result as the chain where both apply."""
    rng = np.random.default_rng(6)
    (c1, b1), (c2, b2) = make_pair(8, 8, 3, 1, 1, False, True, seed=1), make_pair(8, 8, 3, 1, 1, False, True, seed=2)
    relu = nn.ReLU()
    x = mt.tensor(rng.standard_normal((2, 8, 8, 8)), dtype=mt.float64)
    chains = CountCalls(monkeypatch, residual, "conv2d_affine_chain")
    with mt.inference_mode():
        chained = nn.residual_block(x, [(c1, b1), (c2, b2)], None, relu).numpy()
        assert chains.calls == 1
        seen = []
        handle = c2.register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
        hooked = nn.residual_block(x, [(c1, b1), (c2, b2)], None, relu).numpy()
        handle.remove()
        assert seen == [(2, 8, 8, 8)] and chains.calls == 1
        nn.residual_block(x, [(c1, b1), (c2, b2)], nn.Identity(), relu)  # not a (Conv2d, BatchNorm2d) shortcut
        assert chains.calls == 1
    with mt.no_grad():
        unchained = nn.residual_block(x, [(c1, b1), (c2, b2)], None, relu).numpy()
    assert chains.calls == 1
    np.testing.assert_allclose(chained, unchained, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hooked, unchained, rtol=1e-12, atol=1e-12)
    b2.train()
    with mt.inference_mode():
        nn.residual_block(x, [(c1, b1), (c2, b2)], None, relu)
    assert chains.calls == 1
