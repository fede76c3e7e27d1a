"""Module: registration, traversal, modes, device/dtype moves, state_dict round-trips, repr."""

from __future__ import annotations

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl import nn


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.register_buffer("step", mt.zeros(()))

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        return self.bn(self.fc(x)).relu()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(mt.ones(3))
        self.block = Block()
        self.layers = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Dropout(0.5), nn.Linear(5, 2, bias=False))

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        return self.layers(self.block(x) * self.scale)


def test_registration_and_named_parameters_order() -> None:
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == [
        "scale",
        "block.fc.weight",
        "block.fc.bias",
        "block.bn.weight",
        "block.bn.bias",
        "layers.0.weight",
        "layers.0.bias",
        "layers.3.weight",
    ]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert [n for n, _ in net.named_children()] == ["block", "layers"]
    assert [n for n, _ in net.named_modules()][:4] == ["", "block", "block.fc", "block.bn"]
    assert len(list(net.modules())) == 9


def test_buffers_are_not_parameters() -> None:
    net = Net()
    buffer_names = [n for n, _ in net.named_buffers()]
    assert buffer_names == [
        "block.step",
        "block.bn.running_mean",
        "block.bn.running_var",
        "block.bn.num_batches_tracked",
    ]
    param_ids = {id(p) for p in net.parameters()}
    assert not any(id(b) for b in net.buffers() if id(b) in param_ids)
    assert not any(b.requires_grad for b in net.buffers())
    assert net.block.bn.num_batches_tracked.dtype == mt.int64


def test_reassignment_moves_between_registries() -> None:
    m = nn.Module()
    m.w = nn.Parameter(mt.zeros(2))
    m.w = nn.Linear(2, 2)  # now a child
    assert "w" not in m._parameters and "w" in m._modules
    with pytest.raises(TypeError, match="child module"):
        m.w = 3  # as in PyTorch: a registered child is replaced by a Module or None only
    del m.w
    m.w = 3  # now a plain attribute
    assert m.w == 3 and "w" not in m._modules
    with pytest.raises(TypeError, match="parameter"):
        lin = nn.Linear(2, 2)
        lin.weight = mt.zeros(2, 2)  # a plain Tensor may not replace a Parameter


def test_assign_before_init_is_a_clear_error() -> None:
    class Bad(nn.Module):
        def __init__(self) -> None:
            self.fc = nn.Linear(2, 2)
            super().__init__()

    with pytest.raises(AttributeError, match="super"):
        Bad()


def test_shared_parameter_counted_once() -> None:
    a = nn.Linear(3, 3)
    seq = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(seq.parameters())) == 2
    assert seq.num_parameters() == 12


def test_train_eval_propagates() -> None:
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.block.train(False)
    assert net.training and not net.block.bn.training and net.layers[2].training


def test_zero_grad_and_num_parameters() -> None:
    net = Net()
    x = mt.randn(6, 4)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    expected = 3 + (4 * 3 + 3) + (3 + 3) + (3 * 5 + 5) + 5 * 2
    assert net.num_parameters() == expected
    net.block.requires_grad_(False)
    assert net.num_parameters(trainable_only=True) == expected - (4 * 3 + 3) - 6


def test_state_dict_names_and_copies() -> None:
    net = Net()
    sd = net.state_dict()
    assert list(sd) == [
        "scale",
        "block.step",
        "block.fc.weight",
        "block.fc.bias",
        "block.bn.weight",
        "block.bn.bias",
        "block.bn.running_mean",
        "block.bn.running_var",
        "block.bn.num_batches_tracked",
        "layers.0.weight",
        "layers.0.bias",
        "layers.3.weight",
    ]
    sd["scale"][...] = 7.0  # a snapshot: changing it leaves the model alone
    assert np.all(net.scale.numpy() == 1.0)


def test_state_dict_round_trip_through_npz(tmp_path) -> None:
    net = Net()
    x = mt.randn(8, 4)
    for _ in range(3):  # move the running statistics away from their initial values
        net(x)
    net.eval()
    expected = net(x).numpy()
    path = tmp_path / "net.npz"
    np.savez(path, **{k: mt.backend.to_numpy(v) for k, v in net.state_dict().items()})

    mt.manual_seed(123)
    other = Net().eval()
    assert not np.allclose(other(x).numpy(), expected)
    with np.load(path) as archive:
        result = other.load_state_dict(archive)
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(other(x).numpy(), expected)
    assert int(other.block.bn.num_batches_tracked.item()) == 3
    assert other.block.fc.weight.dtype == mt.float32


def test_load_state_dict_keeps_parameter_objects_and_dtype() -> None:
    net = Net()
    params_before = list(net.parameters())
    sd = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in Net().state_dict().items()}
    net.load_state_dict(sd)
    assert all(a is b for a, b in zip(params_before, net.parameters()))
    assert all(p.dtype == mt.float32 for p in net.parameters())
    np.testing.assert_allclose(net.block.fc.weight.numpy(), sd["block.fc.weight"], rtol=1e-6)


def test_strict_load_lists_every_problem_by_name() -> None:
    net = Net()
    sd = net.state_dict()
    del sd["block.fc.bias"]
    del sd["block.bn.running_var"]
    sd["extra.weight"] = np.zeros(3, dtype=np.float32)
    sd["layers.0.weight"] = np.zeros((7, 3), dtype=np.float32)
    before = net.layers[0].weight.numpy().copy()
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(sd)
    message = str(info.value)
    for name in ("block.fc.bias", "block.bn.running_var", "extra.weight", "layers.0.weight", "(7, 3)", "(5, 3)"):
        assert name in message
    assert "missing" in message and "unexpected" in message and "shape" in message
    # nothing was changed by the failed load
    np.testing.assert_array_equal(net.layers[0].weight.numpy(), before)

    sd["layers.0.weight"] = np.zeros((5, 3), dtype=np.float32)
    result = net.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["block.fc.bias", "block.bn.running_var"]
    assert result.unexpected_keys == ["extra.weight"]
    assert not net.layers[0].weight.numpy().any()


def test_shape_mismatch_raises_even_when_not_strict() -> None:
    net = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match="weight"):
        net.load_state_dict({"weight": np.zeros((3, 3))}, strict=False)


def test_to_dtype_keeps_parameter_objects() -> None:
    net = Net()
    params = list(net.parameters())
    net(mt.randn(4, 4)).sum().backward()
    net.to(mt.float64)
    assert all(a is b for a, b in zip(params, net.parameters()))
    assert all(p.dtype == mt.float64 and p.grad.dtype == mt.float64 for p in net.parameters())
    assert net.block.bn.running_mean.dtype == mt.float64
    assert net.block.bn.num_batches_tracked.dtype == mt.int64  # integer buffers keep their dtype
    out = net(mt.randn(4, 4, dtype=mt.float64))
    assert out.dtype == mt.float64
    net.float()
    assert all(p.dtype == mt.float32 for p in net.parameters())
    with pytest.raises(TypeError, match="floating"):
        net.to(mt.int64)


def test_to_device(device: str) -> None:
    net = Net().to(device)
    assert all(p.device == device for p in net.parameters())
    assert all(b.device == device for b in net.buffers())
    out = net(mt.randn(4, 4, device=device))
    assert out.device == device
    sd = net.state_dict()
    assert all(mt.backend.device_of(v) == device for v in sd.values())
    net.cpu()
    assert all(t.device == "cpu" for t in [*net.parameters(), *net.buffers()])


def test_repr_tree() -> None:
    net = Net()
    text = repr(net)
    assert text.startswith("Net(\n  (block): Block(\n    (fc): Linear(in_features=4, out_features=3, bias=True)")
    assert "(bn): BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)" in text
    assert "(2): Dropout(p=0.5)" in text
    assert "(3): Linear(in_features=5, out_features=2, bias=False)" in text
    assert repr(nn.ReLU()) == "ReLU()"
    assert text.endswith(")\n)")


def test_containers() -> None:
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and seq[-1] is seq[2]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    x = mt.randn(5, 2)
    np.testing.assert_allclose(seq(x).numpy(), seq[2](seq[1](seq[0](x))).numpy())
    with pytest.raises(IndexError):
        seq[3]
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    ml.append(nn.Linear(2, 1))
    assert len(ml) == 4 and [n for n, _ in ml.named_parameters()][-1] == "3.bias"
    assert nn.Identity()(x) is x


def test_forward_hook_and_removal() -> None:
    lin = nn.Linear(2, 2)
    seen = []
    handle = lin.register_forward_hook(lambda m, inputs, out: seen.append(out.shape))
    lin(mt.randn(3, 2))
    handle.remove()
    lin(mt.randn(3, 2))
    assert seen == [(3, 2)]


def test_unknown_attribute_error() -> None:
    with pytest.raises(AttributeError, match="nope"):
        _ = nn.Linear(2, 2).nope


def test_deepcopy_is_an_independent_snapshot() -> None:
    import copy

    net = Net()
    snapshot = copy.deepcopy(net)
    assert isinstance(snapshot.block.fc.weight, nn.Parameter)
    assert list(snapshot.state_dict()) == list(net.state_dict())
    net.block.fc.weight.data += 1.0
    assert not np.array_equal(snapshot.block.fc.weight.numpy(), net.block.fc.weight.numpy())


def test_plain_attributes_named_like_tensor_properties() -> None:
    class WithDevice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.device = "cpu"  # a plain attribute; Module defines no conflicting property

    assert WithDevice().device == "cpu"
