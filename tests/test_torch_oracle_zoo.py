"""AlexNet (with and without LRN) and GoogLeNet (with its auxiliary heads) against PyTorch twins:
same weights -> same logits and the same gradient of every parameter and of the input, in float64,
in training and evaluation mode, for both stems; plus the full-size state dict names and shapes.

torchvision is not needed: the twins below are torchvision's definitions written out with
``width``/``hidden`` knobs (at 64/4096 they are torchvision's networks), so small twins keep
the test fast while exercising every layer.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tnn = torch.nn
TF = torch.nn.functional

from test_torch_oracle_resnet import _randomize_batchnorms  # noqa: E402  (the same BN randomisation)

import minitorch_nndl as mt  # noqa: E402
from minitorch_nndl import models, nn  # noqa: E402

TOL = 1e-8


# ----------------------------------------------------------------------------- the twins
class TorchAlexNet(tnn.Module):
    """torchvision.models.AlexNet, plus the ``stem``/``lrn``/``width``/``hidden`` options of ours."""

    def __init__(self, num_classes=1000, dropout=0.5, stem="imagenet", lrn=False, width=64, hidden=4096):
        super().__init__()
        c1, c2, c3, c4, c5 = (width * m for m in (1, 3, 6, 4, 4))
        conv1 = tnn.Conv2d(3, c1, 11, 4, 2) if stem == "imagenet" else tnn.Conv2d(3, c1, 3, 1, 1)

        def relu():
            return tnn.Sequential(tnn.ReLU(), tnn.LocalResponseNorm(5, 5e-4, 0.75, 2.0)) if lrn else tnn.ReLU()

        self.features = tnn.Sequential(
            conv1, relu(), tnn.MaxPool2d(3, 2),
            tnn.Conv2d(c1, c2, 5, padding=2), relu(), tnn.MaxPool2d(3, 2),
            tnn.Conv2d(c2, c3, 3, padding=1), tnn.ReLU(),
            tnn.Conv2d(c3, c4, 3, padding=1), tnn.ReLU(),
            tnn.Conv2d(c4, c5, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(3, 2),
        )  # fmt: skip
        side = 6 if stem == "imagenet" else 3
        self.avgpool = tnn.AdaptiveAvgPool2d((side, side))
        self.classifier = tnn.Sequential(
            tnn.Dropout(dropout), tnn.Linear(c5 * side * side, hidden), tnn.ReLU(),
            tnn.Dropout(dropout), tnn.Linear(hidden, hidden), tnn.ReLU(),
            tnn.Linear(hidden, num_classes),
        )  # fmt: skip

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class TorchBasicConv2d(tnn.Module):
    def __init__(self, cin, cout, **kw):
        super().__init__()
        self.conv = tnn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = tnn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return TF.relu(self.bn(self.conv(x)))


class TorchInception(tnn.Module):
    def __init__(self, cin, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = TorchBasicConv2d(cin, ch1x1, kernel_size=1)
        self.branch2 = tnn.Sequential(
            TorchBasicConv2d(cin, ch3x3red, kernel_size=1), TorchBasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1)
        )
        self.branch3 = tnn.Sequential(
            TorchBasicConv2d(cin, ch5x5red, kernel_size=1), TorchBasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1)
        )
        self.branch4 = tnn.Sequential(
            tnn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), TorchBasicConv2d(cin, pool_proj, kernel_size=1)
        )

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class TorchInceptionAux(tnn.Module):
    def __init__(self, cin, num_classes, dropout=0.7):
        super().__init__()
        self.conv = TorchBasicConv2d(cin, 128, kernel_size=1)
        self.fc1 = tnn.Linear(2048, 1024)
        self.fc2 = tnn.Linear(1024, num_classes)
        self.dropout = tnn.Dropout(dropout)

    def forward(self, x):
        x = torch.flatten(self.conv(TF.adaptive_avg_pool2d(x, (4, 4))), 1)
        return self.fc2(self.dropout(TF.relu(self.fc1(x))))


class TorchGoogLeNet(tnn.Module):
    """torchvision.models.GoogLeNet (transform_input=False), plus our ``stem`` and ``width`` options."""

    CFG = [
        ("inception3a", (192, 64, 96, 128, 16, 32, 32)),
        ("inception3b", (256, 128, 128, 192, 32, 96, 64)),
        ("inception4a", (480, 192, 96, 208, 16, 48, 64)),
        ("inception4b", (512, 160, 112, 224, 24, 64, 64)),
        ("inception4c", (512, 128, 128, 256, 24, 64, 64)),
        ("inception4d", (512, 112, 144, 288, 32, 64, 64)),
        ("inception4e", (528, 256, 160, 320, 32, 128, 128)),
        ("inception5a", (832, 256, 160, 320, 32, 128, 128)),
        ("inception5b", (832, 384, 192, 384, 48, 128, 128)),
    ]

    def __init__(self, num_classes=1000, aux_logits=False, stem="imagenet", dropout=0.2, dropout_aux=0.7, width=64):
        super().__init__()

        def ch(n):
            return max(1, n * width // 64)

        self.aux_logits = aux_logits
        if stem == "imagenet":
            self.conv1 = TorchBasicConv2d(3, ch(64), kernel_size=7, stride=2, padding=3)
            self.maxpool1 = tnn.MaxPool2d(3, stride=2, ceil_mode=True)
        else:
            self.conv1 = TorchBasicConv2d(3, ch(64), kernel_size=3, stride=1, padding=1)
            self.maxpool1 = tnn.Identity()
        self.conv2 = TorchBasicConv2d(ch(64), ch(64), kernel_size=1)
        self.conv3 = TorchBasicConv2d(ch(64), ch(192), kernel_size=3, padding=1)
        self.maxpool2 = tnn.MaxPool2d(3, stride=2, ceil_mode=True)
        blocks = {name: TorchInception(*(ch(c) for c in cfg)) for name, cfg in self.CFG}
        for name in ("inception3a", "inception3b"):
            setattr(self, name, blocks[name])
        self.maxpool3 = tnn.MaxPool2d(3, stride=2, ceil_mode=True)
        for name in ("inception4a", "inception4b", "inception4c", "inception4d", "inception4e"):
            setattr(self, name, blocks[name])
        self.maxpool4 = tnn.MaxPool2d(2, stride=2, ceil_mode=True)
        for name in ("inception5a", "inception5b"):
            setattr(self, name, blocks[name])
        if aux_logits:
            self.aux1 = TorchInceptionAux(ch(512), num_classes, dropout_aux)
            self.aux2 = TorchInceptionAux(ch(528), num_classes, dropout_aux)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.dropout = tnn.Dropout(dropout)
        self.fc = tnn.Linear(ch(1024), num_classes)

    def forward(self, x):
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        return (x, aux2, aux1) if aux1 is not None else x


# ----------------------------------------------------------------------------- helpers
def _scale_up_weights(model: nn.Module, factor: float) -> None:
    """GoogLeNet's N(0, 0.01^2) start makes every activation tiny; larger weights exercise every path."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.weight.data[...] *= factor


def _twin(ours: nn.Module, ref: tnn.Module) -> tnn.Module:
    ref = ref.double()
    state = {k: torch.from_numpy(np.array(mt.backend.to_numpy(v))) for k, v in ours.state_dict().items()}
    ref.load_state_dict(state, strict=True)
    return ref


def _compare(ours: nn.Module, ref: tnn.Module, x: np.ndarray, training: bool) -> None:
    ours.train(training)
    ref.train(training)
    xt = mt.tensor(x, dtype=mt.float64, requires_grad=True)
    xr = torch.from_numpy(x.copy()).requires_grad_(True)
    out, out_ref = ours(xt), ref(xr)
    outs = tuple(out) if isinstance(out, tuple) else (out,)
    outs_ref = tuple(out_ref) if isinstance(out_ref, tuple) else (out_ref,)
    assert len(outs) == len(outs_ref)
    y = np.arange(x.shape[0]) % outs[0].shape[1]
    loss = sum((nn.CrossEntropyLoss()(o, mt.tensor(y)) for o in outs), start=mt.tensor(0.0, dtype=mt.float64))
    loss_ref = sum(TF.cross_entropy(o, torch.from_numpy(y)) for o in outs_ref)
    loss.backward()
    loss_ref.backward()
    for o, o_ref in zip(outs, outs_ref):
        np.testing.assert_allclose(o.numpy(), o_ref.detach().numpy(), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(xt.grad, xr.grad.numpy(), rtol=1e-7, atol=TOL * max(1.0, float(xr.grad.abs().max())))
    ref_params = dict(ref.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(ref_params)
    for name, p in ours.named_parameters():
        if ref_params[name].grad is None:  # the auxiliary heads in eval mode
            assert p.grad is None, name
            continue
        expected = ref_params[name].grad.numpy()
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(p.grad, expected, rtol=1e-7, atol=TOL * scale, err_msg=name)
    ref_sd = ref.state_dict()
    for name, value in ours.state_dict().items():  # running statistics move in lock-step
        np.testing.assert_allclose(mt.backend.to_numpy(value), ref_sd[name].numpy(), rtol=TOL, atol=TOL, err_msg=name)


# ----------------------------------------------------------------------------- tests
def test_full_size_state_dicts_have_torchvisions_names_and_shapes() -> None:
    for ours, ref in (
        (models.alexnet(), TorchAlexNet()),
        (models.googlenet(aux_logits=True), TorchGoogLeNet(aux_logits=True)),
    ):
        ref_sd = ref.state_dict()
        assert list(ours.state_dict()) == list(ref_sd)
        for k, v in ours.state_dict().items():
            assert tuple(v.shape) == tuple(ref_sd[k].shape), k
        assert ours.num_parameters() == sum(p.numel() for p in ref.parameters())


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(
    ("stem", "lrn", "side"), [("imagenet", False, 67), ("imagenet", True, 67), ("cifar", True, 32)], ids=str
)
def test_alexnet_matches_torch(stem: str, lrn: bool, side: int, training: bool) -> None:
    kw = {"num_classes": 7, "dropout": 0.0, "stem": stem, "lrn": lrn, "width": 4, "hidden": 32}
    mt.manual_seed(0)
    ours = models.alexnet(dtype=mt.float64, **kw)
    ref = _twin(ours, TorchAlexNet(**kw))
    x = np.random.default_rng(1).standard_normal((2, 3, side, side)) * 3.0
    _compare(ours, ref, x, training)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("stem", "side"), [("imagenet", 75), ("cifar", 32)], ids=str)
def test_googlenet_with_aux_heads_matches_torch(stem: str, side: int, training: bool) -> None:
    """75 = an odd size, so every ceil-mode max-pool rounds up."""
    kw = {"num_classes": 5, "aux_logits": True, "dropout": 0.0, "dropout_aux": 0.0, "stem": stem, "width": 8}
    mt.manual_seed(0)
    ours = models.googlenet(dtype=mt.float64, **kw)
    _scale_up_weights(ours, 30.0)
    _randomize_batchnorms(ours, np.random.default_rng(0))
    ref = _twin(ours, TorchGoogLeNet(**kw))
    x = np.random.default_rng(2).standard_normal((2, 3, side, side))
    _compare(ours, ref, x, training)


def test_torch_weights_load_into_our_googlenet() -> None:
    torch.manual_seed(0)
    ref = TorchGoogLeNet(num_classes=3, width=8, stem="cifar").double().eval()
    x = np.random.default_rng(3).standard_normal((2, 3, 32, 32))
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    ours = models.googlenet(num_classes=3, width=8, stem="cifar", dtype=mt.float64)
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    ours.eval()
    with mt.no_grad():
        np.testing.assert_allclose(ours(mt.tensor(x, dtype=mt.float64)).numpy(), expected, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
def test_lrn_matches_torch(size: int) -> None:
    x = np.random.default_rng(size).standard_normal((2, 7, 3, 4)) * 2
    g = np.random.default_rng(9).standard_normal(x.shape)
    ours = mt.tensor(x, dtype=mt.float64, requires_grad=True)
    y = nn.LocalResponseNorm(size, alpha=0.4, beta=0.75, k=1.5)(ours)
    y.backward(mt.tensor(g, dtype=mt.float64))
    ref = torch.from_numpy(x.copy()).requires_grad_(True)
    y_ref = tnn.LocalResponseNorm(size, alpha=0.4, beta=0.75, k=1.5)(ref)
    y_ref.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y.numpy(), y_ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.grad, ref.grad.numpy(), rtol=1e-12, atol=1e-12)
