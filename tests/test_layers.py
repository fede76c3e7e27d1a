"""Layers: shapes and dtypes, Linear's gradients, Dropout and BatchNorm modes, initialisation statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitorch_nndl as mt
from minitorch_nndl import nn
from minitorch_nndl.nn import functional as F  # noqa: N812
from minitorch_nndl.nn import init

# ------------------------------------------------------------------ Linear


@given(
    lead=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    n_in=st.integers(1, 5),
    n_out=st.integers(1, 4),
    bias=st.booleans(),
)
def test_linear_gradcheck_float64(lead: list[int], n_in: int, n_out: int, bias: bool) -> None:
    mt.manual_seed(1)
    x = mt.randn(*lead, n_in, dtype=mt.float64)
    w = mt.randn(n_out, n_in, dtype=mt.float64)
    if bias:
        b = mt.randn(n_out, dtype=mt.float64)
        assert mt.gradcheck(F.linear, [x, w, b])
    else:
        assert mt.gradcheck(F.linear, [x, w])


def test_linear_matches_numpy(device: str) -> None:
    layer = nn.Linear(6, 4, device=device)
    x = mt.randn(2, 3, 6, device=device)
    y = layer(x)
    expected = x.numpy() @ layer.weight.numpy().T + layer.bias.numpy()
    assert y.shape == (2, 3, 4) and y.dtype == mt.float32 and y.device == device
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-6)
    y.sum().backward()
    assert layer.weight.grad.dtype == mt.float32 and layer.bias.grad.dtype == mt.float32
    np.testing.assert_allclose(mt.backend.to_numpy(layer.bias.grad), np.full(4, 6.0))


def test_linear_errors() -> None:
    layer = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(2, 3\)"):
        layer(mt.randn(4, 5))
    with pytest.raises(TypeError, match="float64.*float32"):
        layer(mt.randn(4, 3, dtype=mt.float64))
    assert nn.Linear(3, 2, bias=False).bias is None


# ------------------------------------------------------------------ shapes and dtypes of every layer


@pytest.mark.parametrize("dtype", [mt.float32, mt.float64])
def test_layer_shapes_and_dtypes(device: str, dtype) -> None:
    x = mt.randn(2, 3, 8, 8, dtype=dtype, device=device)
    cases = [
        (nn.Conv2d(3, 5, 3, device=device, dtype=dtype), (2, 5, 6, 6)),
        (nn.Conv2d(3, 6, (3, 1), stride=2, padding=1, groups=3, bias=False, device=device, dtype=dtype), (2, 6, 4, 5)),
        (nn.BatchNorm2d(3, device=device, dtype=dtype), (2, 3, 8, 8)),
        (nn.ReLU(), (2, 3, 8, 8)),
        (nn.LeakyReLU(0.2), (2, 3, 8, 8)),
        (nn.MaxPool2d(2), (2, 3, 4, 4)),
        (nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 4, 4)),
        (nn.AvgPool2d(2, stride=1), (2, 3, 7, 7)),
        (nn.AdaptiveAvgPool2d((1, 1)), (2, 3, 1, 1)),
        (nn.AdaptiveAvgPool2d(3), (2, 3, 3, 3)),
        (nn.Flatten(), (2, 192)),
        (nn.Dropout(0.3), (2, 3, 8, 8)),
        (nn.Identity(), (2, 3, 8, 8)),
    ]
    for layer, shape in cases:
        y = layer(x)
        assert y.shape == shape, layer
        assert y.dtype == dtype, layer
        assert y.device == device, layer
    v = mt.randn(4, 3, dtype=dtype, device=device)
    assert nn.BatchNorm1d(3, device=device, dtype=dtype)(v).dtype == dtype
    assert nn.BatchNorm1d(3, device=device, dtype=dtype)(mt.randn(4, 3, 5, dtype=dtype, device=device)).shape == (
        4,
        3,
        5,
    )
    assert nn.Linear(3, 7, device=device, dtype=dtype)(v).dtype == dtype


def test_leaky_relu_slope() -> None:
    x = mt.tensor([-2.0, 3.0])
    np.testing.assert_allclose(nn.LeakyReLU(0.1)(x).numpy(), [-0.2, 3.0], rtol=1e-6)
    assert "negative_slope=0.1" in repr(nn.LeakyReLU(0.1))


def test_conv2d_parameters_and_errors() -> None:
    conv = nn.Conv2d(4, 8, 3, groups=2)
    assert conv.weight.shape == (8, 2, 3, 3) and conv.bias.shape == (8,)
    assert repr(conv) == "Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), groups=2)"
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="kernel_size"):
        nn.Conv2d(4, 6, (3, 3, 3))
    with pytest.raises(TypeError, match="floating"):
        nn.Conv2d(4, 6, 3, dtype=mt.int64)


def test_losses(device: str) -> None:
    logits = mt.randn(5, 4, device=device, requires_grad=True)
    target = mt.tensor([0, 3, 1, 1, 2], device=device)
    loss = nn.CrossEntropyLoss()(logits, target)
    lp = logits.numpy() - np.log(np.exp(logits.numpy()).sum(1, keepdims=True))
    np.testing.assert_allclose(loss.item(), -lp[np.arange(5), target.numpy()].mean(), rtol=1e-5)
    loss.backward()
    assert logits.grad.dtype == mt.float32
    assert nn.CrossEntropyLoss(reduction="none")(logits, target).shape == (5,)
    smooth = nn.CrossEntropyLoss(label_smoothing=0.1)(logits, target).item()
    expected = (0.9 * -lp[np.arange(5), target.numpy()] + 0.1 * -lp.mean(1)).mean()
    np.testing.assert_allclose(smooth, expected, rtol=1e-5)
    nll = nn.NLLLoss(reduction="sum")(logits.log_softmax(axis=1), target).item()
    np.testing.assert_allclose(nll, -lp[np.arange(5), target.numpy()].sum(), rtol=1e-5)
    a, b = mt.randn(3, 2, device=device), mt.randn(3, 2, device=device)
    np.testing.assert_allclose(nn.MSELoss()(a, b).item(), ((a.numpy() - b.numpy()) ** 2).mean(), rtol=1e-5)
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


# ------------------------------------------------------------------ Dropout


def test_dropout_inverted_scaling_and_eval_identity() -> None:
    layer = nn.Dropout(0.25)
    x = mt.ones(200, 500)
    y = layer(x).numpy()
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)  # survivors are scaled by 1/(1-p)
    assert abs(kept.mean() - 0.75) < 0.01
    assert abs(y.mean() - 1.0) < 0.02  # E[y] = x
    layer.eval()
    assert np.array_equal(layer(x).numpy(), x.numpy())
    assert np.array_equal(nn.Dropout(0.0)(x).numpy(), x.numpy())
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(1.5)


# ------------------------------------------------------------------ BatchNorm


def test_batchnorm_training_updates_running_stats() -> None:
    bn = nn.BatchNorm2d(3)
    x = mt.randn(4, 3, 5, 5) * 2.0 + 1.0
    y = bn(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1.0, rtol=1e-3)
    xs = x.numpy()
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * xs.mean(axis=(0, 2, 3)), rtol=1e-5)
    unbiased = xs.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * unbiased, rtol=1e-5)
    assert int(bn.num_batches_tracked.item()) == 1
    bn.eval()
    bn(x)
    assert int(bn.num_batches_tracked.item()) == 1


def test_batchnorm_cumulative_average_with_momentum_none() -> None:
    bn = nn.BatchNorm1d(2, momentum=None)
    batches = [mt.randn(6, 2) + i for i in range(3)]
    for b in batches:
        bn(b)
    np.testing.assert_allclose(
        bn.running_mean.numpy(), np.mean([b.numpy().mean(0) for b in batches], axis=0), rtol=1e-5, atol=1e-6
    )


def test_batchnorm_eval_independent_of_batch_composition() -> None:
    bn = nn.BatchNorm2d(4)
    for _ in range(5):
        bn(mt.randn(8, 4, 3, 3) * 3.0 + 2.0)
    bn.eval()
    a = mt.randn(6, 4, 3, 3)
    b = mt.randn(6, 4, 3, 3) * 10.0
    first = bn(a).numpy()[0]
    b_with_a0 = mt.concatenate([a[0:1], b[1:]], axis=0)
    np.testing.assert_allclose(bn(b_with_a0).numpy()[0], first, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(bn(a[0:1]).numpy()[0], first, rtol=1e-6, atol=1e-6)
    # and in training mode it does depend on the rest of the batch
    bn.train()
    assert not np.allclose(bn(b_with_a0).numpy()[0], bn(a).numpy()[0])


def test_batchnorm_without_running_stats_and_affine() -> None:
    bn = nn.BatchNorm2d(3, affine=False, track_running_stats=False)
    assert list(bn.parameters()) == [] and list(bn.buffers()) == []
    bn.eval()  # no running statistics: batch statistics even in eval mode
    y = bn(mt.randn(4, 3, 2, 2) + 5.0).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="4-D"):
        bn(mt.randn(4, 3))
    with pytest.raises(ValueError, match="channels"):
        nn.BatchNorm1d(5)(mt.randn(4, 3))


# ------------------------------------------------------------------ initialisation


def test_default_init_bounds_and_reproducibility() -> None:
    mt.manual_seed(7)
    a = nn.Linear(400, 300)
    mt.manual_seed(7)
    b = nn.Linear(400, 300)
    assert np.array_equal(a.weight.numpy(), b.weight.numpy())
    assert not np.array_equal(a.weight.numpy(), nn.Linear(400, 300).weight.numpy())
    bound = 1 / math.sqrt(400)
    w = a.weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(a.bias.numpy()).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound / math.sqrt(3)
    conv = nn.Conv2d(16, 32, 3)
    conv_bound = 1 / math.sqrt(16 * 9)
    assert np.abs(conv.weight.numpy()).max() <= conv_bound
    assert abs(conv.weight.numpy().std() - conv_bound / math.sqrt(3)) < 0.1 * conv_bound / math.sqrt(3)


@pytest.mark.parametrize(
    ("fn", "kwargs", "expected_std"),
    [
        (init.kaiming_normal_, {"mode": "fan_in", "nonlinearity": "relu"}, math.sqrt(2 / (64 * 9))),
        (init.kaiming_normal_, {"mode": "fan_out", "nonlinearity": "relu"}, math.sqrt(2 / (128 * 9))),
        (init.kaiming_uniform_, {"mode": "fan_in"}, math.sqrt(2 / (64 * 9))),
        (init.kaiming_uniform_, {"a": math.sqrt(5)}, math.sqrt(1 / 3) / math.sqrt(64 * 9)),
        (init.xavier_normal_, {}, math.sqrt(2 / (64 * 9 + 128 * 9))),
        (init.xavier_uniform_, {"gain": 2.0}, 2.0 * math.sqrt(2 / (64 * 9 + 128 * 9))),
        (init.normal_, {"std": 0.02}, 0.02),
        (init.uniform_, {"a": -1.0, "b": 1.0}, 1 / math.sqrt(3)),
    ],
)
def test_init_statistics(fn, kwargs, expected_std: float) -> None:
    w = nn.Parameter(mt.empty(128, 64, 3, 3))
    out = fn(w, **kwargs)
    assert out is w and w.dtype == mt.float32 and w.requires_grad and w.grad is None
    values = w.numpy()
    assert abs(values.std() - expected_std) < 0.1 * expected_std
    assert abs(values.mean()) < 0.05 * expected_std + 1e-12


def test_init_keeps_dtype_and_constants() -> None:
    w = mt.empty(10, 10, dtype=mt.float64)
    init.kaiming_uniform_(w)
    assert w.dtype == mt.float64
    init.constant_(w, 0.5)
    assert np.all(w.numpy() == 0.5)
    init.zeros_(w)
    assert not w.numpy().any()
    init.ones_(w)
    assert np.all(w.numpy() == 1.0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(mt.empty(5))
    with pytest.raises(TypeError, match="floating"):
        init.normal_(mt.zeros(3, dtype=mt.int64))


def test_calculate_gain() -> None:
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("conv2d") == 1.0
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="unsupported"):
        init.calculate_gain("swishy")
