"""conv2d_affine_chain, nn.residual_block and Sequential stages of blocks: residual blocks run depth
first in evaluation, a chunk of images through all their convolutions at a time.  It must be
exactly the blocks run layer by layer (float64, and the same chunks give the same bits in float32),
wherever it is taken, and step aside wherever it cannot run in chunks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fused import CountCalls, make_pair
from winograd_kernels import KERNELS, use_winograd_kernel

import minitorch_nndl as mt
from minitorch_nndl import models, nn
from minitorch_nndl.kernels import parallel
from minitorch_nndl.nn import residual
from minitorch_nndl.ops import conv as conv_module
from minitorch_nndl.ops.conv import AffineBlock, AffineConv, conv2d_affine, conv2d_affine_chain


def affine(rng, c_in, c_out, kernel, stride=1, dtype=np.float64):
    padding = kernel // 2
    weight = mt.tensor(rng.standard_normal((c_out, c_in, kernel, kernel)).astype(dtype))
    scale = mt.tensor(rng.uniform(0.5, 1.5, c_out).astype(dtype))
    shift = mt.tensor(rng.standard_normal(c_out).astype(dtype))
    return AffineConv(weight, scale, shift, stride, padding)


def layer_by_layer(x, block):
    out = x
    for conv in block.convs[:-1]:
        out = conv2d_affine(out, *conv, relu=True)
    identity = x if block.shortcut is None else conv2d_affine(x, *block.shortcut)
    return conv2d_affine(out, *block.convs[-1], residual=identity, relu=True)


def blocks_layer_by_layer(x, blocks):
    for block in blocks:
        x = layer_by_layer(x, block)
    return x


BLOCKS = {  # [(out channels, kernel, stride)] of the main path, and whether a 1x1 shortcut projects
    "basic": ([(1, 3, 1), (1, 3, 1)], False),
    "basic, downsampling": ([(2, 3, 2), (2, 3, 1)], True),
    "bottleneck": ([(0.5, 1, 1), (0.5, 3, 1), (1, 1, 1)], False),
    "bottleneck, downsampling": ([(0.5, 1, 1), (0.5, 3, 2), (2, 1, 1)], True),
}


def make_block(rng, kind, c_in):
    """An AffineBlock of ``kind`` (its channels relative to ``c_in``), and its output channels."""
    links, projects = BLOCKS[kind]
    convs, channels = [], c_in
    for factor, kernel, stride in links:
        convs.append(affine(rng, channels, int(c_in * factor), kernel, stride))
        channels = int(c_in * factor)
    stride = max(s for _, _, s in links)
    shortcut = affine(rng, c_in, channels, 1, stride)._replace(padding=0) if projects else None
    return AffineBlock(convs, shortcut), channels


@settings(max_examples=16, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(sorted(BLOCKS)), min_size=1, max_size=3),
    images=st.integers(1, 5),
    hw=st.integers(5, 12),
    threads=st.sampled_from([1, 2]),
)
def test_the_chain_equals_the_blocks_layer_by_layer(kinds, images, hw, threads, monkeypatch):
    """Any sequence of ResNet blocks (BasicBlock, Bottleneck, with and without a downsampling
    shortcut), any batch and image size, one or two threads: the chain gives the layer-by-layer result."""
    monkeypatch.setattr(conv_module, "MIN_WINOGRAD_TILES", 4)  # small images still take Winograd
    before = parallel.num_threads()
    parallel.set_num_threads(threads)
    try:
        rng = np.random.default_rng(images * 100 + hw)
        blocks, channels = [], 8
        for kind in kinds:
            block, channels = make_block(rng, kind, channels)
            blocks.append(block)
        x = mt.tensor(rng.standard_normal((images, 8, hw, hw)))
        got = conv2d_affine_chain(x, blocks).numpy()
        np.testing.assert_allclose(got, blocks_layer_by_layer(x, blocks).numpy(), rtol=1e-12, atol=1e-12)
    finally:
        parallel.set_num_threads(before)


@pytest.mark.parametrize("kernel", KERNELS)
def test_the_chain_runs_in_chunks_on_the_cpu_and_repeats_bit_for_bit_on_two_threads(monkeypatch, kernel):
    """Two float32 basic blocks, 8 images in chunks of 2: the chunked route is taken (through either
    Winograd kernel), its output equals the layer-by-layer one's to float32 rounding and is the same
    bits on 1 and 2 threads."""
    winograd = use_winograd_kernel(monkeypatch, kernel)
    monkeypatch.setattr(conv_module, "WINOGRAD_CHUNK_BYTES", 1)  # the least chunk: WINOGRAD_CHUNK_TILES
    monkeypatch.setattr(conv_module, "WINOGRAD_CHUNK_TILES", 128)  # 2 images of 16x16 outputs (8x8 tiles)
    monkeypatch.setattr(conv_module, "WINOGRAD4_CHUNK_BYTES", 1)
    monkeypatch.setattr(conv_module, "WINOGRAD4_CHUNK_TILES", 32)  # 2 images of 4x4 tiles
    monkeypatch.setattr(conv_module, "MIN_WINOGRAD_TILES_PER_THREAD", 1)  # never by positions
    through = CountCalls(monkeypatch, winograd, "conv3x3")
    rng = np.random.default_rng(0)
    convs = [affine(rng, 16, 16, 3, dtype=np.float32), affine(rng, 16, 16, 3, dtype=np.float32)]
    blocks = [AffineBlock(convs), AffineBlock(convs[::-1])]
    x = mt.tensor(rng.standard_normal((8, 16, 16, 16)).astype(np.float32))
    chunks = CountCalls(monkeypatch, conv_module, "_convolve_chunk")
    results, before = [], parallel.num_threads()
    for threads in (1, 2):
        parallel.set_num_threads(threads)
        try:
            results.append(conv2d_affine_chain(x, blocks).numpy())
        finally:
            parallel.set_num_threads(before)
    assert chunks.calls == through.calls == 2 * 4 * 4  # two runs, four chunks, four convolutions each
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_allclose(results[0], blocks_layer_by_layer(x, blocks).numpy(), rtol=1e-5, atol=1e-4)
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
    blocks = [AffineBlock(convs), AffineBlock(convs[::-1])]
    got = conv2d_affine_chain(x, blocks)
    assert separate.calls == 4
    np.testing.assert_allclose(got.numpy(), blocks_layer_by_layer(x, blocks).numpy(), rtol=1e-12, atol=1e-12)


def test_the_chain_names_the_block_the_link_and_the_shapes_that_do_not_fit():
    rng = np.random.default_rng(2)
    x = mt.tensor(rng.standard_normal((2, 8, 6, 6)))
    first = AffineBlock([affine(rng, 8, 8, 3)])
    wrong = AffineBlock([affine(rng, 8, 16, 3), affine(rng, 8, 16, 3)], affine(rng, 8, 16, 1))
    with pytest.raises(ValueError, match=r"conv2d_affine_chain blocks\[1\]\.convs\[1\]: input shape \(2, 16, 6, 6\)"):
        conv2d_affine_chain(x, [first, wrong])
    with pytest.raises(ValueError, match=r"identity shortcut needs an input \(2, 8, 6, 6\) of the output's shape"):
        conv2d_affine_chain(x, [AffineBlock([affine(rng, 8, 16, 3)])])
    with pytest.raises(ValueError, match=r"shortcut's output \(2, 16, 6, 6\) differs from the output's shape"):
        conv2d_affine_chain(x, [AffineBlock([affine(rng, 8, 16, 3, 2)], affine(rng, 8, 16, 1))])
    with pytest.raises(TypeError, match=r"blocks\[0\]\.convs\[0\]: expected an AffineConv, got tuple"):
        conv2d_affine_chain(x, [AffineBlock([tuple(affine(rng, 8, 8, 3))])])
    with pytest.raises(TypeError, match=r"blocks\[0\]: expected an AffineBlock, got list"):
        conv2d_affine_chain(x, [[affine(rng, 8, 8, 3)]])
    with pytest.raises(ValueError, match="needs at least one block"):
        conv2d_affine_chain(x, [])
    with pytest.raises(ValueError, match=r"blocks\[0\]: needs at least one convolution"):
        conv2d_affine_chain(x, [AffineBlock([])])
    bad_scale = affine(rng, 8, 8, 3)._replace(scale=mt.tensor(np.ones(3)))
    with pytest.raises(ValueError, match=r"blocks\[0\]\.convs\[0\]: scale must be a Tensor like shift"):
        conv2d_affine_chain(x, [AffineBlock([bad_scale])])


def trained_looking(model, rng):
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.data[...] = rng.standard_normal(module.num_features) * 0.1
            module.running_var.data[...] = rng.uniform(0.5, 2, module.num_features)
    return model.eval()


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_resnets_in_inference_mode_run_each_stage_depth_first_with_the_same_logits(arch, monkeypatch):
    """Inside inference_mode() each stage of ResNet18 / ResNet50 (BasicBlocks, Bottlenecks, with the
    downsampling shortcuts) is one chain of its blocks, and the logits equal those of no_grad(),
    where the blocks run conv_bn by conv_bn."""
    monkeypatch.setattr(conv_module, "MIN_WINOGRAD_TILES_PER_THREAD", 1)
    mt.manual_seed(0)
    model = trained_looking(getattr(models, arch)(dtype=mt.float64, width=8), np.random.default_rng(4))
    x = mt.tensor(np.random.default_rng(5).standard_normal((3, 3, 16, 16)), dtype=mt.float64)
    with mt.no_grad():
        separate = model(x).numpy()
    chains = CountCalls(monkeypatch, residual, "conv2d_affine_chain")
    with mt.inference_mode():
        chained = model(x).numpy()
    assert chains.calls == 4  # layer1 ... layer4
    np.testing.assert_allclose(chained, separate, rtol=1e-10, atol=1e-10)


def test_a_stage_with_a_hooked_block_runs_block_by_block_and_the_hook_sees_its_output(monkeypatch):
    """A forward hook on one block of a stage: the stage runs block by block (each block still one
    chain), the hook sees that block's output, and the logits are unchanged."""
    monkeypatch.setattr(conv_module, "MIN_WINOGRAD_TILES_PER_THREAD", 1)
    mt.manual_seed(0)
    model = trained_looking(models.resnet18(dtype=mt.float64, width=8), np.random.default_rng(7))
    x = mt.tensor(np.random.default_rng(8).standard_normal((2, 3, 16, 16)), dtype=mt.float64)
    with mt.no_grad():
        expected = model(x).numpy()
    seen = []
    model.layer1[1].register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    chains = CountCalls(monkeypatch, residual, "conv2d_affine_chain")
    with mt.inference_mode():
        got = model(x).numpy()
    assert seen == [(2, 8, 16, 16)]
    assert chains.calls == 2 + 3  # layer1's two blocks one chain each, the other stages one chain each
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


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
