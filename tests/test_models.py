"""Models: exact parameter counts (torchvision's published numbers), forward/backward, initialisation."""

from __future__ import annotations

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl import models, nn
from minitorch_nndl.models import count_macs, count_parameters


@pytest.mark.parametrize(
    ("factory", "kwargs", "expected"),
    [
        (models.resnet18, {}, 11_173_962),
        (models.resnet18, {"stem": "imagenet"}, 11_181_642),
        (models.resnet18, {"stem": "imagenet", "num_classes": 1000}, 11_689_512),  # torchvision resnet18
        (models.resnet34, {"stem": "imagenet", "num_classes": 1000}, 21_797_672),  # torchvision resnet34
        (models.resnet50, {"stem": "imagenet", "num_classes": 1000}, 25_557_032),  # torchvision resnet50
    ],
)
def test_resnet_parameter_counts(factory, kwargs, expected: int) -> None:
    model = factory(**kwargs)
    assert count_parameters(model) == expected
    assert model.num_parameters(trainable_only=True) == expected


@pytest.fixture(scope="module")
def resnet50_zero_init() -> models.ResNet:
    return models.resnet50(zero_init_residual=True)


def test_resnet_structure_matches_torchvision_names(resnet50_zero_init: models.ResNet) -> None:
    model = models.resnet18()
    names = list(model.state_dict())
    assert names[:6] == [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
    ]
    assert "layer2.0.downsample.0.weight" in names and "layer2.0.downsample.1.running_var" in names
    assert "layer1.0.downsample.0.weight" not in names  # same width and stride: identity shortcut
    assert names[-2:] == ["fc.weight", "fc.bias"]
    assert isinstance(model.maxpool, nn.Identity) and model.conv1.kernel_size == (3, 3)
    imagenet = models.resnet18(stem="imagenet")
    assert imagenet.conv1.kernel_size == (7, 7) and imagenet.conv1.stride == (2, 2)
    assert isinstance(imagenet.maxpool, nn.MaxPool2d)
    bottleneck = resnet50_zero_init.layer2[0]
    assert bottleneck.conv1.stride == (1, 1) and bottleneck.conv2.stride == (2, 2)  # v1.5: stride on the 3x3
    assert bottleneck.conv3.out_channels == 512


def test_resnet18_cifar_forward_backward() -> None:
    model = models.resnet18()
    x = mt.randn(2, 3, 32, 32)
    target = mt.tensor([3, 7])
    logits = model(x)
    assert logits.shape == (2, 10) and logits.dtype == mt.float32
    loss = nn.CrossEntropyLoss()(logits, target)
    assert np.isfinite(loss.item())
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.dtype == mt.float32, name
        assert p.grad.shape == p.shape, name
        assert np.isfinite(mt.backend.to_numpy(p.grad)).all(), name
    # every stage contributes: no parameter has an identically zero gradient
    assert all(np.abs(mt.backend.to_numpy(p.grad)).sum() > 0 for p in model.parameters())
    assert int(model.bn1.num_batches_tracked.item()) == 1


def test_resnet_init() -> None:
    model = models.resnet18()
    w = model.layer3[0].conv1.weight.numpy()  # (256, 128, 3, 3), fan_out = 256 * 9
    expected = np.sqrt(2 / (256 * 9))
    assert abs(w.std() - expected) < 0.05 * expected
    assert np.all(model.layer1[0].bn1.weight.numpy() == 1.0) and not model.layer1[0].bn1.bias.numpy().any()


def test_zero_init_residual(resnet50_zero_init: models.ResNet) -> None:
    basic = models.resnet18(zero_init_residual=True)
    for block in [*basic.layer1, *basic.layer2, *basic.layer3, *basic.layer4]:
        assert not block.bn2.weight.numpy().any()
        assert np.all(block.bn1.weight.numpy() == 1.0)
    bottle = resnet50_zero_init
    blocks = [*bottle.layer1, *bottle.layer2, *bottle.layer3, *bottle.layer4]
    assert all(not b.bn3.weight.numpy().any() and np.all(b.bn2.weight.numpy() == 1.0) for b in blocks)
    assert np.all(models.resnet18().layer1[0].bn2.weight.numpy() == 1.0)


def test_resnet_errors() -> None:
    with pytest.raises(ValueError, match="stem"):
        models.resnet18(stem="mnist")


def test_resnet_float64_and_in_channels() -> None:
    model = models.resnet18(num_classes=3, in_channels=1, dtype=mt.float64).eval()
    out = model(mt.randn(1, 1, 16, 16, dtype=mt.float64))
    assert out.shape == (1, 3) and out.dtype == mt.float64


@pytest.mark.parametrize("size", [28, 32])
def test_lenet5_forward(size: int) -> None:
    model = models.LeNet5()
    assert count_parameters(model) == 61_706
    out = model(mt.randn(3, 1, size, size))
    assert out.shape == (3, 10) and out.dtype == mt.float32
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="28, 28"):
        model(mt.randn(3, 1, 30, 30))


def test_lenet5_padding_equals_conv_padding() -> None:
    model = models.LeNet5(num_classes=4, in_channels=3)
    x = mt.randn(2, 3, 28, 28)
    direct = nn.functional.conv2d(x, model.conv1.weight, model.conv1.bias, padding=2)
    assert direct.shape == (2, 6, 28, 28)
    assert model(x).shape == (2, 4)


def test_vgg_forward_shapes() -> None:
    model = models.vgg11()
    assert isinstance(model.classifier, nn.Linear) and model.classifier.in_features == 512
    out = model(mt.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert count_parameters(models.vgg16(num_classes=100)) > count_parameters(models.vgg11(num_classes=100))
    with pytest.raises(ValueError, match="32x32"):
        model(mt.randn(2, 3, 64, 64))


def test_count_macs_by_hand() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 10 * 10, 5))
    total, per_layer = count_macs(model, (3, 10, 10), by_layer=True)
    conv = 8 * 10 * 10 * 3 * 3 * 3
    linear = 800 * 5
    assert per_layer == {"0": conv, "3": linear}
    assert total == conv + linear
    assert count_macs(model, (4, 3, 10, 10)) == 4 * total
    assert model.training  # mode restored


def test_count_macs_resnet18_cifar_matches_formula() -> None:
    model = models.resnet18()
    total, per_layer = count_macs(model, (3, 32, 32), by_layer=True)
    # stem: 64 x 32 x 32 outputs, each 3*3*3 MACs
    assert per_layer["conv1"] == 64 * 32 * 32 * 27
    # layer4.0.conv2: 512 x 4 x 4 outputs, each 512*3*3 MACs
    assert per_layer["layer4.0.conv2"] == 512 * 4 * 4 * 512 * 9
    assert per_layer["fc"] == 512 * 10
    assert total == sum(per_layer.values())
    assert 0.55e9 < total < 0.56e9  # the well-known ~0.56 GMACs of CIFAR ResNet18


@pytest.mark.slow
def test_count_macs_resnet_imagenet_matches_torchvision() -> None:
    # torchvision's model table: ResNet18 1.81 GFLOPS (MACs), ResNet50 4.09
    assert abs(count_macs(models.resnet18(num_classes=1000, stem="imagenet"), (3, 224, 224)) / 1e9 - 1.81) < 0.01
    assert abs(count_macs(models.resnet50(num_classes=1000, stem="imagenet"), (3, 224, 224)) / 1e9 - 4.09) < 0.01
