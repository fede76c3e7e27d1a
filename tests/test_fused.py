"""conv_bn: a convolution and its batch norm folded into one convolution in evaluation.
The folded path must be exactly bn(conv(x)) (float64, to rounding) wherever it is taken,
and must step aside wherever it would not be the same function."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitorch_nndl as mt
from minitorch_nndl import models, nn
from minitorch_nndl.nn import fused
from minitorch_nndl.ops import conv as conv_module


def make_pair(c_in, c_out, kernel, stride, padding, conv_bias, affine, device="cpu", seed=0):
    """A float64 Conv2d and an evaluation-mode BatchNorm2d with non-trivial statistics."""
    mt.manual_seed(seed)
    conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=conv_bias, dtype=mt.float64, device=device)
    bn = nn.BatchNorm2d(c_out, affine=affine, dtype=mt.float64, device=device)
    rng = np.random.default_rng(seed)
    bn.running_mean.data[...] = mt.tensor(rng.standard_normal(c_out), device=device).data
    bn.running_var.data[...] = mt.tensor(rng.uniform(0.5, 2.0, c_out), device=device).data
    if affine:
        bn.weight.data[...] = mt.tensor(rng.standard_normal(c_out), device=device).data
        bn.bias.data[...] = mt.tensor(rng.standard_normal(c_out), device=device).data
    bn.eval()
    return conv, bn


class CountCalls:
    """Counts the calls of ``module.name`` while installed (through ``patch``)."""

    def __init__(self, patch: pytest.MonkeyPatch, module: object, name: str) -> None:
        self.calls = 0
        real = getattr(module, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        patch.setattr(module, name, counted)


def CountFolds(patch: pytest.MonkeyPatch) -> CountCalls:  # noqa: N802  (used like the class it was)
    """Counts the calls of conv2d_affine (the folded path)."""
    return CountCalls(patch, fused, "conv2d_affine")


@given(
    kernel=st.sampled_from([1, 3]),
    stride=st.sampled_from([1, 2]),
    padding=st.integers(0, 1),
    conv_bias=st.booleans(),
    affine=st.booleans(),
    winograd=st.booleans(),
    hw=st.integers(9, 12),  # with 4 images, enough outputs to fold 16 * 2 * 3 filters
)
def test_folded_conv_bn_equals_bn_of_conv(kernel, stride, padding, conv_bias, affine, winograd, hw, device):
    """Folded (im2row or Winograd, with and without the conv's bias and BN's affine) = unfolded."""
    conv, bn = make_pair(2, 3, kernel, stride, padding, conv_bias, affine, device)
    x = mt.tensor(np.random.default_rng(1).standard_normal((4, 2, hw, hw)), dtype=mt.float64, device=device)
    with pytest.MonkeyPatch.context() as patch:
        if winograd:  # tiny images take Winograd too
            patch.setattr(conv_module, "MIN_WINOGRAD_TILES", 1)
            patch.setattr(conv_module, "MIN_WINOGRAD_CHANNELS", 1)
        folds = CountFolds(patch)
        with mt.no_grad():
            folded = nn.conv_bn(conv, bn, x)
            unfolded = bn(conv(x))
    assert folds.calls == 1
    np.testing.assert_allclose(folded.numpy(), unfolded.numpy(), rtol=1e-12, atol=1e-12)


def test_it_steps_aside_where_folding_would_change_something(monkeypatch):
    """Training mode, wanted gradients, hooks, groups, and filters larger than the output
    all take the plain bn(conv(x)), with its own errors."""
    folds = CountFolds(monkeypatch)
    x = mt.tensor(np.random.default_rng(2).standard_normal((2, 4, 6, 6)), dtype=mt.float64)
    conv, bn = make_pair(4, 4, 3, 1, 1, False, True)
    assert nn.conv_bn(conv, bn, x).requires_grad  # evaluation, but the weights want gradients
    bn.train()
    with mt.no_grad():
        nn.conv_bn(conv, bn, x)  # training: the batch's statistics
    bn.eval()
    handle = bn.register_forward_hook(lambda module, inputs, output: None)
    with mt.no_grad():
        nn.conv_bn(conv, bn, x)  # the hook must run
    handle.remove()
    grouped = nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False, dtype=mt.float64)
    with mt.no_grad():
        nn.conv_bn(grouped, bn, x)
        big_filters, bn_small = make_pair(64, 4, 3, 1, 1, False, True)  # 16*64*4 filters > 2*4*6*6 outputs
        nn.conv_bn(big_filters, bn_small, mt.randn(2, 64, 6, 6, dtype=mt.float64))
        assert folds.calls == 0
        nn.conv_bn(conv, bn, x)
    assert folds.calls == 1
    with mt.no_grad(), pytest.raises(ValueError, match="channels"):
        nn.conv_bn(conv, nn.BatchNorm2d(5, dtype=mt.float64).eval(), x)  # the unfused path's own error


def test_conv2d_affine_checks_its_scale():
    x = mt.randn(1, 2, 4, 4)
    w = mt.randn(3, 2, 3, 3)
    shift = mt.zeros(3)
    with pytest.raises(ValueError, match=r"conv2d_affine: scale must be a Tensor like shift"):
        conv_module.conv2d_affine(x, w, mt.ones(4), shift, padding=1)
    y = conv_module.conv2d_affine(x, w, mt.ones(3) * 2, shift + 1, padding=1)
    np.testing.assert_allclose(y.numpy(), 2 * conv_module.conv2d(x, w, padding=1).numpy() + 1, rtol=1e-5, atol=1e-5)
    assert not y.requires_grad


def test_resnet_in_evaluation_folds_its_batch_norms_and_gives_the_same_logits(monkeypatch, device):
    """ResNet18-CIFAR's blocks, stem and downsample Sequentials fold in evaluation without
    gradients; the logits equal the unfolded model's (gradients enabled on the weights)."""
    mt.manual_seed(0)
    model = models.resnet18(dtype=mt.float64, device=device)
    rng = np.random.default_rng(3)
    for module in model.modules():  # statistics a trained net could have
        if isinstance(module, nn.BatchNorm2d):
            features = module.num_features
            module.running_mean.data[...] = mt.tensor(rng.standard_normal(features) * 0.1, device=device).data
            module.running_var.data[...] = mt.tensor(rng.uniform(0.5, 2, features), device=device).data
    model.eval()
    x = mt.tensor(rng.standard_normal((2, 3, 32, 32)), dtype=mt.float64, device=device)
    unfolded = model(x).numpy()  # the weights want gradients: nothing folds
    folds = CountFolds(monkeypatch)
    with mt.no_grad():
        folded = model(x).numpy()
    assert folds.calls >= 4  # the stem and the 64- and 128-channel layers (larger filters stay unfolded)
    np.testing.assert_allclose(folded, unfolded, rtol=1e-10, atol=1e-10)


@given(
    kernel=st.sampled_from([1, 3]),
    stride=st.sampled_from([1, 2]),
    winograd=st.booleans(),
    with_residual=st.booleans(),
    with_relu=st.booleans(),
    threads=st.sampled_from([1, 2]),
)
def test_folded_conv_bn_with_residual_and_relu_equals_the_separate_ops(
    kernel, stride, winograd, with_residual, with_relu, threads, device
):
    """relu(bn(conv(x)) + r) with the residual and the ReLU applied per chunk inside the folded
    convolution (im2row or Winograd, chunks of one image, one or two threads) = the separate ops."""
    conv, bn = make_pair(2, 3, kernel, stride, 1, True, True, device)
    rng = np.random.default_rng(5)
    x = mt.tensor(rng.standard_normal((4, 2, 10, 10)), dtype=mt.float64, device=device)
    out_hw = (10 + 2 - kernel) // stride + 1
    r_memory = rng.standard_normal((4, out_hw, out_hw, 3))  # channels-last, as conv outputs are
    residual = mt.tensor(r_memory, dtype=mt.float64, device=device).permute(0, 3, 1, 2) if with_residual else None
    relu = nn.ReLU() if with_relu else None
    before = mt.kernels.parallel.num_threads()
    with pytest.MonkeyPatch.context() as patch:
        if winograd:
            patch.setattr(conv_module, "MIN_WINOGRAD_TILES", 1)
            patch.setattr(conv_module, "MIN_WINOGRAD_CHANNELS", 1)
        patch.setattr(conv_module, "CHUNK_BYTES", 1)  # one image per chunk: the epilogue per chunk
        patch.setattr(conv_module, "MIN_CHUNK_ROWS", 1)
        patch.setattr(conv_module, "WINOGRAD_CHUNK_BYTES", 1)
        folds = CountFolds(patch)
        mt.kernels.parallel.set_num_threads(threads)
        try:
            with mt.no_grad():
                fused_out = nn.conv_bn(conv, bn, x, residual=residual, relu=relu)
                expected = bn(conv(x))
                if residual is not None:
                    expected = expected + residual
                if relu is not None:
                    expected = relu(expected)
        finally:
            mt.kernels.parallel.set_num_threads(before)
    assert folds.calls == 1
    np.testing.assert_allclose(fused_out.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)


def test_the_relu_and_the_residual_step_aside_where_fusing_would_change_something(monkeypatch):
    """A ReLU with a hook (the hook runs), a ReLU subclass, and a residual that wants a gradient
    take the separate ops; gradients then flow through the residual as usual."""
    folds = CountFolds(monkeypatch)
    conv, bn = make_pair(4, 4, 3, 1, 1, False, True)
    for p in [*conv.parameters(), *bn.parameters()]:
        p.requires_grad_(False)
    x = mt.tensor(np.random.default_rng(6).standard_normal((2, 4, 6, 6)), dtype=mt.float64)
    seen = []
    relu = nn.ReLU()
    handle = relu.register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    nn.conv_bn(conv, bn, x, relu=relu)
    assert seen == [(2, 4, 6, 6)] and folds.calls == 0
    handle.remove()

    class MyReLU(nn.ReLU):
        pass

    nn.conv_bn(conv, bn, x, relu=MyReLU())
    assert folds.calls == 0
    residual = mt.tensor(np.ones((2, 4, 6, 6)), dtype=mt.float64, requires_grad=True)
    out = nn.conv_bn(conv, bn, x, residual=residual, relu=nn.ReLU())
    assert folds.calls == 0
    out.sum().backward()
    np.testing.assert_array_equal(residual.grad, (out.numpy() > 0).astype(np.float64))
    nn.conv_bn(conv, bn, x, residual=residual.detach(), relu=nn.ReLU())
    assert folds.calls == 1


def test_conv2d_affine_checks_its_residual():
    x = mt.randn(1, 2, 4, 4)
    w = mt.randn(3, 2, 3, 3)
    scale, shift = mt.ones(3), mt.zeros(3)
    with pytest.raises(ValueError, match=r"conv2d_affine: residual must be a float32 Tensor of the output's shape"):
        conv_module.conv2d_affine(x, w, scale, shift, padding=1, residual=mt.randn(1, 3, 2, 2))
    with pytest.raises(ValueError, match=r"float32 Tensor of the output's shape \(1, 3, 4, 4\), got .* float64"):
        conv_module.conv2d_affine(x, w, scale, shift, padding=1, residual=mt.randn(1, 3, 4, 4, dtype=mt.float64))
    residual = mt.randn(1, 3, 4, 4)
    y = conv_module.conv2d_affine(x, w, scale, shift, padding=1, residual=residual, relu=True)
    expected = np.maximum(conv_module.conv2d(x, w, padding=1).numpy() + residual.numpy(), 0)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="Conv2d: channel_scale, residual and relu are for ungrouped convolutions"):
        conv_module.Conv2d.apply(x, w.detach().requires_grad_(), None, (1, 1), (1, 1), (1, 1), 1, None, None, True)


def test_sequential_conv_bn_relu_is_one_op_in_evaluation(monkeypatch):
    """Sequential(conv, bn, ReLU, ...) in evaluation folds each conv + bn + ReLU into one
    convolution and gives the module-by-module result."""
    mt.manual_seed(1)
    layers = [nn.Conv2d(3, 8, 3, padding=1, dtype=mt.float64), nn.BatchNorm2d(8, dtype=mt.float64), nn.ReLU()]
    layers += [nn.Conv2d(8, 8, 3, padding=1, dtype=mt.float64), nn.BatchNorm2d(8, dtype=mt.float64), nn.ReLU()]
    model = nn.Sequential(*layers).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = mt.tensor(np.random.default_rng(7).standard_normal((8, 3, 12, 12)), dtype=mt.float64)
    expected = x
    for layer in layers:
        expected = layer(expected)
    folds = CountFolds(monkeypatch)
    out = model(x)
    assert folds.calls == 2
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)


def test_a_residual_that_only_broadcasts_or_promotes_takes_the_separate_ops(monkeypatch):
    """The fused path wants a residual exactly like the output; a (1, C, 1, 1) residual or a
    float32 one meeting float64 works as ``bn(conv(x)) + residual`` does."""
    folds = CountFolds(monkeypatch)
    conv, bn = make_pair(4, 4, 3, 1, 1, False, True)
    for p in [*conv.parameters(), *bn.parameters()]:
        p.requires_grad_(False)
    x = mt.tensor(np.random.default_rng(9).standard_normal((2, 4, 6, 6)), dtype=mt.float64)
    relu = nn.ReLU()
    for residual in (mt.ones(1, 4, 1, 1, dtype=mt.float64), mt.ones(2, 4, 6, 6, dtype=mt.float32)):
        out = nn.conv_bn(conv, bn, x, residual=residual, relu=relu)
        expected = relu(bn(conv(x)) + residual)
        assert out.shape == expected.shape and out.dtype == expected.dtype
        np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)
    assert folds.calls == 0


@given(with_residual=st.booleans(), with_relu=st.booleans(), residual_grad=st.booleans())
def test_in_training_the_block_end_is_one_batch_norm_op_with_the_same_gradients(
    with_residual, with_relu, residual_grad, device
):
    """In training relu(bn(conv(x)) + r) is conv, then one BatchNorm op that adds r and applies
    the ReLU (no Add or ReLU node); values and every gradient equal the separate modules'."""
    rng = np.random.default_rng(11)
    x_np, r_np, g_np = (rng.standard_normal(shape) for shape in ((3, 2, 6, 6), (3, 4, 6, 6), (3, 4, 6, 6)))
    results = []
    for together in (True, False):
        conv, bn = make_pair(2, 4, 3, 1, 1, True, True, device=device, seed=2)
        bn.train()
        x = mt.tensor(x_np, dtype=mt.float64, device=device, requires_grad=True)
        r = mt.tensor(r_np, dtype=mt.float64, device=device, requires_grad=residual_grad)
        residual = r if with_residual else None
        relu = nn.ReLU() if with_relu else None
        if together:
            y = nn.conv_bn(conv, bn, x, residual=residual, relu=relu)
            if with_residual or with_relu:
                assert y._node.function.__name__ == "BatchNorm"
        else:
            y = bn(conv(x))
            y = y + residual if with_residual else y
            y = relu(y) if with_relu else y
        y.backward(mt.tensor(g_np, dtype=mt.float64, device=device))
        grads = [x.grad, conv.weight.grad, conv.bias.grad, bn.weight.grad, bn.bias.grad]
        grads += [r.grad] if with_residual and residual_grad else []
        stats = [bn.running_mean.data, bn.running_var.data]
        results.append([mt.backend.to_numpy(a) for a in [y.data, *grads, *stats]])
    for together_value, separate_value in zip(*results):
        np.testing.assert_allclose(together_value, separate_value, rtol=1e-10, atol=1e-12)


def test_in_training_hooks_and_subclasses_keep_the_separate_modules():
    conv, bn = make_pair(2, 4, 3, 1, 1, False, True, seed=3)
    bn.train()
    x = mt.randn(2, 2, 5, 5, dtype=mt.float64, requires_grad=True)
    seen = []
    handle = bn.register_forward_hook(lambda module, inputs, output: seen.append(module))
    y = nn.conv_bn(conv, bn, x, relu=nn.ReLU())
    assert seen == [bn] and y._node.function.__name__ == "ReLU"
    handle.remove()

    class MyReLU(nn.ReLU):
        pass

    assert nn.conv_bn(conv, bn, x, relu=MyReLU())._node.function.__name__ == "ReLU"
    broadcasting = mt.randn(1, 4, 1, 1, dtype=mt.float64)  # adds fine, but is not like the output
    assert nn.conv_bn(conv, bn, x, residual=broadcasting)._node.function.__name__ == "Add"
