"""ResNet18 (CIFAR stem) against PyTorch: same weights -> same logits, same gradients of every parameter,
same running statistics, in float64, in training and evaluation mode.

torchvision is not needed: the reference network is written out below with torchvision's
attribute names, so the two state dicts map key for key.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tnn = torch.nn

import minitorch_nndl as mt  # noqa: E402
from minitorch_nndl import models, nn  # noqa: E402

TOL = 1e-8


class TorchBasicBlock(tnn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None) -> None:
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU(inplace=True)
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class TorchResNet(tnn.Module):
    """torchvision's ResNet with the CIFAR stem and a configurable first-stage width, torchvision's names."""

    def __init__(self, layers: list[int], width: int = 64, num_classes: int = 10) -> None:
        super().__init__()
        self.inplanes = width
        self.conv1 = tnn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(width)
        self.relu = tnn.ReLU(inplace=True)
        self.maxpool = tnn.Identity()
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(2 * width, layers[1], 2)
        self.layer3 = self._make_layer(4 * width, layers[2], 2)
        self.layer4 = self._make_layer(8 * width, layers[3], 2)
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(8 * width, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> tnn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = tnn.Sequential(
                tnn.Conv2d(self.inplanes, planes, 1, stride, bias=False), tnn.BatchNorm2d(planes)
            )
        layers = [TorchBasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [TorchBasicBlock(planes, planes) for _ in range(1, blocks)]
        return tnn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def TorchResNet18Cifar(num_classes: int = 10) -> TorchResNet:
    return TorchResNet([2, 2, 2, 2], 64, num_classes)


def _randomize_batchnorms(model: nn.Module, rng: np.random.Generator) -> None:
    """Non-trivial BN affine parameters and running statistics, so every term of the backward is exercised."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data[...] = rng.uniform(0.5, 1.5, c)
            m.bias.data[...] = rng.uniform(-0.2, 0.2, c)
            m.running_mean.data[...] = rng.uniform(-0.1, 0.1, c)
            m.running_var.data[...] = rng.uniform(0.5, 2.0, c)


@pytest.fixture(scope="module")
def pair():
    mt.manual_seed(0)
    ours = models.resnet18(dtype=mt.float64)
    _randomize_batchnorms(ours, np.random.default_rng(0))
    ref = TorchResNet18Cifar().double()
    state = {k: torch.from_numpy(np.array(mt.backend.to_numpy(v))) for k, v in ours.state_dict().items()}
    ref.load_state_dict(state, strict=True)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 32, 32))
    y = np.array([3, 8])
    return ours, ref, x, y


def test_state_dict_keys_match_torch(pair) -> None:
    ours, ref, _, _ = pair
    ref_sd = ref.state_dict()
    assert list(ours.state_dict()) == list(ref_sd)
    for k, v in ours.state_dict().items():
        assert tuple(v.shape) == tuple(ref_sd[k].shape), k


def _step(ours, ref, x, y, training: bool):
    ours.train(training)
    ref.train(training)
    ours.zero_grad()
    ref.zero_grad()
    logits = ours(mt.tensor(x, dtype=mt.float64))
    loss = nn.CrossEntropyLoss()(logits, mt.tensor(y))
    loss.backward()
    t_logits = ref(torch.from_numpy(x))
    t_loss = tnn.functional.cross_entropy(t_logits, torch.from_numpy(y))
    t_loss.backward()
    return logits, loss, t_logits, t_loss


@pytest.mark.parametrize("training", [True, False])
def test_logits_and_every_gradient_match_torch(pair, training: bool) -> None:
    ours, ref, x, y = pair
    logits, loss, t_logits, t_loss = _step(ours, ref, x, y, training)
    np.testing.assert_allclose(logits.numpy(), t_logits.detach().numpy(), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=TOL, atol=TOL)
    ref_params = dict(ref.named_parameters())
    names = [n for n, _ in ours.named_parameters()]
    assert names == list(ref_params)
    for name, p in ours.named_parameters():
        assert p.grad is not None, name
        expected = ref_params[name].grad.numpy()
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(mt.backend.to_numpy(p.grad), expected, rtol=TOL, atol=TOL * scale, err_msg=name)
    # running statistics (moved in training mode, untouched in eval mode) stay in lock-step
    ref_sd = ref.state_dict()
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(mt.backend.to_numpy(value), ref_sd[name].numpy(), rtol=TOL, atol=TOL, err_msg=name)


def test_torch_weights_load_into_ours() -> None:
    torch.manual_seed(0)
    ref = TorchResNet18Cifar(num_classes=7).double()
    x = np.random.default_rng(2).standard_normal((2, 3, 32, 32))
    with torch.no_grad():
        ref.train()
        ref(torch.from_numpy(x))  # move the running statistics
        ref.eval()
        expected = ref(torch.from_numpy(x)).numpy()
    ours = models.resnet18(num_classes=7, dtype=mt.float64)
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    ours.eval()
    with mt.no_grad():
        got = ours(mt.tensor(x, dtype=mt.float64)).numpy()
    np.testing.assert_allclose(got, expected, rtol=TOL, atol=TOL)
    assert int(ours.bn1.num_batches_tracked.item()) == 1
