"""AlexNet, GoogLeNet and local response normalisation: sizes as torchvision's, forward and backward
at batch 2, the shapes of both stems, the auxiliary heads, ceil-mode pooling, and MAC counts.

PyTorch agreement (values and gradients in float64) is in ``test_torch_oracle_zoo.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl import models, nn
from minitorch_nndl.models.googlenet import GoogLeNetOutputs, MaxPool2dCeil
from minitorch_nndl.ops.lrn import local_response_norm


@pytest.fixture(scope="module")
def full_alexnet() -> models.AlexNet:
    return models.alexnet()


@pytest.fixture(scope="module")
def full_googlenet_aux() -> models.GoogLeNet:
    return models.googlenet(aux_logits=True)


def test_alexnet_has_torchvisions_parameter_count(full_alexnet) -> None:
    assert models.count_parameters(full_alexnet) == 61_100_840
    assert models.count_parameters(models.alexnet(lrn=True)) == 61_100_840  # LRN has no parameters


def test_googlenet_has_torchvisions_parameter_count(full_googlenet_aux) -> None:
    assert models.count_parameters(models.googlenet()) == 6_624_904
    assert models.count_parameters(full_googlenet_aux) == 13_004_888  # + the two auxiliary heads


def test_state_dict_names_follow_torchvision(full_alexnet, full_googlenet_aux) -> None:
    alex = list(full_alexnet.state_dict())
    assert alex[:2] == ["features.0.weight", "features.0.bias"]
    assert alex[-2:] == ["classifier.6.weight", "classifier.6.bias"]
    assert list(models.alexnet(lrn=True).state_dict()) == alex
    g = full_googlenet_aux.state_dict()
    for key in (
        "conv1.conv.weight",
        "conv1.bn.running_var",
        "inception3a.branch2.1.conv.weight",
        "inception3a.branch4.1.bn.num_batches_tracked",
        "aux1.conv.conv.weight",
        "aux2.fc2.bias",
        "fc.weight",
    ):
        assert key in g, key
    assert g["inception3a.branch3.1.conv.weight"].shape == (32, 16, 3, 3)  # torchvision's 3x3 "5x5" branch
    assert full_googlenet_aux.conv1.bn.eps == 0.001


def test_macs_match_torchvisions_table(full_alexnet) -> None:
    """torchvision lists 0.71 and 1.50 GFLOPS (multiply-accumulates, really) at 224x224."""
    assert models.count_macs(full_alexnet, (3, 224, 224)) == 714_188_480
    assert models.count_macs(models.googlenet(), (3, 224, 224)) == 1_498_376_192


@pytest.mark.parametrize(
    ("build", "shape"),
    [
        (lambda: models.alexnet(num_classes=5, width=8, hidden=32), (2, 3, 64, 64)),
        (lambda: models.alexnet(num_classes=5, width=8, hidden=32, lrn=True, stem="cifar"), (2, 3, 32, 32)),
        (lambda: models.googlenet(num_classes=5, width=8), (2, 3, 64, 64)),
        (lambda: models.googlenet(num_classes=5, width=8, stem="cifar", in_channels=1), (2, 1, 32, 32)),
    ],
    ids=["alexnet", "alexnet-cifar-lrn", "googlenet", "googlenet-cifar-gray"],
)
def test_forward_backward_at_batch_2(build, shape) -> None:
    model = build()
    x = mt.randn(*shape, requires_grad=True)
    logits = model(x)
    assert logits.shape == (2, 5) and logits.dtype == mt.float32
    loss = nn.CrossEntropyLoss()(logits, mt.tensor([1, 3]))
    loss.backward()
    assert x.grad is not None and x.grad.dtype == np.float32 and np.isfinite(x.grad).all()
    assert all(p.grad is not None and np.isfinite(p.grad).all() for p in model.parameters())


def test_googlenet_aux_heads_only_in_training_mode() -> None:
    model = models.googlenet(num_classes=4, aux_logits=True, width=8, stem="cifar")
    x = mt.randn(2, 3, 32, 32)
    out = model(x)
    assert isinstance(out, GoogLeNetOutputs)
    assert [o.shape for o in out] == [(2, 4)] * 3
    loss = sum(nn.CrossEntropyLoss()(o, mt.tensor([0, 1])) * w for o, w in zip(out, (1.0, 0.3, 0.3)))
    loss.backward()
    assert model.aux1.fc2.weight.grad is not None and model.aux2.fc2.weight.grad is not None
    model.eval()
    assert isinstance(model(x), mt.Tensor)


@pytest.mark.parametrize(("stem", "side", "expected"), [("imagenet", 224, (6, 6)), ("cifar", 32, (3, 3))])
def test_alexnet_feature_sizes(stem: str, side: int, expected: tuple[int, int]) -> None:
    model = models.alexnet(width=4, hidden=8, stem=stem)
    with mt.no_grad():
        assert model.features(mt.zeros(1, 3, side, side)).shape[-2:] == expected


def test_googlenet_cifar_stem_keeps_16x16_at_inception3() -> None:
    model = models.googlenet(num_classes=10, width=8, stem="cifar")
    seen: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(module, inputs, output) -> None:
            seen[name] = output.shape

        return hook

    model.inception3a.register_forward_hook(record("3a"))
    model.inception5b.register_forward_hook(record("5b"))
    model.eval()
    with mt.no_grad():
        model(mt.zeros(1, 3, 32, 32))
    assert seen["3a"][-2:] == (16, 16) and seen["5b"][-2:] == (4, 4)


@pytest.mark.parametrize(("size", "k", "s", "expected"), [(112, 3, 2, 56), (56, 3, 2, 28), (14, 2, 2, 7), (7, 3, 2, 3)])
def test_ceil_mode_pool_sizes(size: int, k: int, s: int, expected: int) -> None:
    """PyTorch: out = ceil((H - k) / s) + 1, less one if the last window would start outside the input."""
    x = mt.randn(1, 2, size, size, requires_grad=True)
    y = MaxPool2dCeil(k, stride=s)(x)
    assert y.shape == (1, 2, expected, expected)
    y.sum().backward()
    assert np.isfinite(x.grad).all() and x.grad.sum() == pytest.approx(y.numel())


def test_ceil_mode_pool_gradcheck() -> None:
    x = mt.tensor(np.random.default_rng(0).permutation(50).reshape(1, 2, 5, 5) / 10.0, requires_grad=True)
    assert mt.gradcheck(MaxPool2dCeil(2, stride=2), [x])


def test_lrn_layer_matches_the_formula_and_keeps_float32(device: str) -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 6, 3, 2)).astype(np.float32)
    layer = nn.LocalResponseNorm(3, alpha=0.3, beta=0.75, k=2.0)
    x = mt.tensor(a, device=device, requires_grad=True)
    y = layer(x)
    assert y.dtype == mt.float32 and y.device == x.device
    padded = np.pad(a**2, ((0, 0), (1, 1), (0, 0), (0, 0)))
    energy = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    np.testing.assert_allclose(mt.backend.to_numpy(y.data), a / (2.0 + 0.1 * energy) ** 0.75, rtol=1e-5)
    y.sum().backward()
    assert x.grad.dtype == np.float32
    assert "3, alpha=0.3, beta=0.75, k=2.0" in repr(layer)


def test_lrn_defaults_are_pytorchs() -> None:
    layer = nn.LocalResponseNorm(2)
    assert (layer.alpha, layer.beta, layer.k) == (1e-4, 0.75, 1.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: local_response_norm(mt.zeros(2, 3), 3), "3 or more dimensions"),
        (lambda: local_response_norm(mt.zeros(1, 2, 2, dtype=mt.int64), 3), "floating-point"),
        (lambda: local_response_norm(mt.zeros(1, 2, 2), 0), "size must be a positive int"),
        (lambda: nn.LocalResponseNorm(2.5), "size must be a positive int"),
        (lambda: models.alexnet(stem="tiny"), "stem must be 'cifar' or 'imagenet'"),
        (lambda: models.googlenet(stem="tiny"), "stem must be 'cifar' or 'imagenet'"),
    ],
)
def test_errors_name_the_op_and_the_problem(call, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        call()


@pytest.mark.parametrize("build", [models.alexnet, models.googlenet], ids=["alexnet", "googlenet"])
def test_a_training_step_stays_on_the_device(build, device: str) -> None:
    """CIFAR stems, 1/16 of the channels, with LRN and the auxiliary heads: every op on the device's arrays."""
    extra = {"lrn": True, "hidden": 16} if build is models.alexnet else {"aux_logits": True}
    model = build(num_classes=3, stem="cifar", width=4, device=device, **extra)
    x = mt.randn(2, 3, 32, 32, device=device)
    out = model(x)
    y = mt.tensor([0, 2], device=device)
    loss = sum(nn.CrossEntropyLoss()(o, y) for o in (out if isinstance(out, tuple) else (out,)))
    loss.backward()
    assert loss.device == device
    assert all(p.grad is not None and p.device == device for p in model.parameters())


def test_cifar_forms_have_the_documented_sizes() -> None:
    alex, goog = models.alexnet(10, stem="cifar"), models.googlenet(10, stem="cifar")
    assert models.count_parameters(alex) == 28_711_754 and models.count_macs(alex, (3, 32, 32)) == 201_912_320
    assert models.count_parameters(goog) == 5_602_474 and models.count_macs(goog, (3, 32, 32)) == 452_175_872
