"""Tensor construction, conversion, printing, dtype rules and device handling."""

from __future__ import annotations

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl import backend


def _np(t: mt.Tensor | np.ndarray) -> np.ndarray:
    return backend.to_numpy(t.data if isinstance(t, mt.Tensor) else t)


# ----------------------------------------------------------------------------- factories


@pytest.mark.parametrize("factory", [mt.zeros, mt.ones, mt.empty, mt.randn, mt.rand])
def test_shape_factories_default_float32(factory, device: str) -> None:  # noqa: ANN001
    for args in [(2, 3), ((2, 3),), ([2, 3],)]:
        t = factory(*args, device=device)
        assert t.shape == (2, 3)
        assert t.dtype == mt.float32
        assert t.device == backend.normalize_device(device)
        assert t.is_leaf and not t.requires_grad
    assert factory(4, dtype=mt.float64, device=device).dtype == mt.float64
    assert factory(device=device).shape == ()  # no sizes: a 0-d tensor
    assert factory(2, 0, device=device).shape == (2, 0)
    assert factory(3, requires_grad=True).requires_grad


def test_filled_factories_values(device: str) -> None:
    np.testing.assert_array_equal(_np(mt.zeros(2, 2, device=device)), np.zeros((2, 2)))
    np.testing.assert_array_equal(_np(mt.ones(3, device=device)), np.ones(3))
    t = mt.full((2, 3), 7.5, device=device)
    assert t.dtype == mt.float32 and t.shape == (2, 3)
    np.testing.assert_array_equal(_np(t), np.full((2, 3), 7.5))
    assert mt.full(4, 2, dtype=mt.int64).dtype == mt.int64
    e = mt.eye(3, device=device)
    np.testing.assert_array_equal(_np(e), np.eye(3))
    assert e.dtype == mt.float32


def test_arange_dtypes() -> None:
    assert mt.arange(5).dtype == mt.int64
    np.testing.assert_array_equal(_np(mt.arange(5)), np.arange(5))
    np.testing.assert_array_equal(_np(mt.arange(2, 8, 2)), [2, 4, 6])
    f = mt.arange(0.0, 1.0, 0.25)
    assert f.dtype == mt.float32
    np.testing.assert_allclose(_np(f), [0.0, 0.25, 0.5, 0.75])
    assert mt.arange(3, dtype=mt.float64).dtype == mt.float64


def test_randint_range_shape_and_dtype(device: str) -> None:
    t = mt.randint(2, 5, (1000,), device=device)
    assert t.dtype == mt.int64 and t.shape == (1000,)
    values = _np(t)
    assert values.min() >= 2 and values.max() <= 4
    assert set(np.unique(values)) == {2, 3, 4}
    assert mt.randint(0, 3, 4).shape == (4,)
    assert mt.randint(0, 3, (2, 2), dtype=mt.int32).dtype == mt.int32


def test_random_factories_look_random() -> None:
    n = mt.randn(20000)
    assert abs(float(n.mean().item())) < 0.05
    assert abs(float(n.var().item()) - 1.0) < 0.05
    u = _np(mt.rand(20000))
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.02


def test_like_factories(device: str) -> None:
    base = mt.randn(2, 3, dtype=mt.float64, device=device)
    for like in (mt.zeros_like, mt.ones_like, mt.randn_like, mt.rand_like):
        t = like(base)
        assert t.shape == base.shape and t.dtype == mt.float64 and t.device == base.device
        assert like(base, dtype=mt.float32).dtype == mt.float32
    f = mt.full_like(base, 3.0)
    np.testing.assert_array_equal(_np(f), np.full((2, 3), 3.0))
    assert mt.zeros_like(base, requires_grad=True).requires_grad
    np.testing.assert_array_equal(_np(mt.ones_like(base)), np.ones((2, 3)))


def test_negative_size_is_an_error() -> None:
    with pytest.raises(ValueError, match="negative"):
        mt.zeros(2, -1)


def test_tensor_from_data_dtypes() -> None:
    assert mt.tensor(1.5).dtype == mt.float32
    assert mt.tensor([1.0, 2.0]).dtype == mt.float32
    assert mt.tensor(3).dtype == mt.int64
    assert mt.tensor([1, 2]).dtype == mt.int64
    assert mt.tensor(True).dtype == mt.bool_
    assert mt.tensor([True, False]).dtype == mt.bool_
    assert mt.tensor(np.zeros(2, dtype=np.float64)).dtype == mt.float64  # arrays keep their dtype
    assert mt.tensor(np.zeros(2, dtype=np.uint8)).dtype == mt.uint8
    assert mt.tensor([1, 2], dtype=mt.float64).dtype == mt.float64
    assert mt.tensor([[1.0, 2.0], [3.0, 4.0]]).shape == (2, 2)


def test_tensor_factory_copies_but_constructor_may_share() -> None:
    a = np.arange(3, dtype=np.float32)
    t = mt.tensor(a)
    a[0] = 100.0
    assert float(t[0].item()) == 0.0
    u = mt.tensor(t)
    u.data[1] = -1.0
    assert float(t[1].item()) == 1.0
    shared = mt.Tensor(a)
    assert shared.data is a


# ----------------------------------------------------------------------------- seeding


def test_manual_seed_reproducibility(device: str) -> None:
    mt.manual_seed(123)
    a = _np(mt.randn(5, 4, device=device))
    r1 = _np(mt.rand(3, device=device))
    i1 = _np(mt.randint(0, 100, (6,), device=device))
    mt.manual_seed(123)
    b = _np(mt.randn(5, 4, device=device))
    r2 = _np(mt.rand(3, device=device))
    i2 = _np(mt.randint(0, 100, (6,), device=device))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(i1, i2)
    mt.manual_seed(124)
    c = _np(mt.randn(5, 4, device=device))
    assert not np.array_equal(a, c)
    # consecutive draws differ
    assert not np.array_equal(_np(mt.randn(5, 4, device=device)), c)


def test_float64_and_float32_draws_are_both_seeded() -> None:
    mt.manual_seed(7)
    a = _np(mt.randn(3, dtype=mt.float64))
    mt.manual_seed(7)
    b = _np(mt.randn(3, dtype=mt.float64))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float64


# ----------------------------------------------------------------------------- conversions and printing


def test_item_numpy_tolist() -> None:
    t = mt.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t[1, 0].item() == 3.0
    assert isinstance(t[1, 0].item(), float)
    assert isinstance(mt.tensor(3).item(), int)
    assert mt.tensor([[5.0]]).item() == 5.0
    with pytest.raises(ValueError, match=r"one-element.*\(2, 2\)"):
        t.item()
    n = t.numpy()
    assert isinstance(n, np.ndarray) and n.dtype == np.float32
    np.testing.assert_array_equal(n, [[1.0, 2.0], [3.0, 4.0]])
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert np.asarray(t).shape == (2, 2)
    assert float(mt.tensor(2.5)) == 2.5  # __array__ / item
    assert len(t) == 2 and t.numel() == 4 and t.size() == (2, 2) and t.size(1) == 2 and t.dim() == 2
    rows = list(t)
    assert len(rows) == 2 and rows[1].tolist() == [3.0, 4.0]
    with pytest.raises(TypeError):
        len(mt.tensor(1.0))


def test_repr() -> None:
    t = mt.tensor([1.0, 2.0])
    assert repr(t) == "tensor([1., 2.], dtype=float32)"
    w = mt.tensor([1.0, 2.0], requires_grad=True)
    assert "requires_grad=True" in repr(w)
    y = w * 2.0
    assert repr(y).endswith("grad_fn=Mul)")
    assert repr(mt.tensor(3)) == "tensor(3)"


def test_bool_of_tensors() -> None:
    assert bool(mt.tensor(1.0))
    assert not bool(mt.tensor([0.0]))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(mt.ones(2))


def test_setitem() -> None:
    t = mt.zeros(2, 3)
    t[0, 1] = 5.0
    t[1] = mt.tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(_np(t), [[0.0, 5.0, 0.0], [1.0, 2.0, 3.0]])
    w = mt.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        w[0] = 1.0
    with mt.no_grad():
        w[0] = 1.0
    assert float(w[0].item()) == 1.0
    with pytest.raises(RuntimeError, match="Mul"):
        (w * 2.0)[0] = 3.0


def test_to_dtype_is_differentiable() -> None:
    x = mt.randn(3, requires_grad=True)
    y = x.double()
    assert y.dtype == mt.float64
    (y * y).sum().backward()
    assert x.grad.dtype == mt.float32
    np.testing.assert_allclose(x.grad, 2 * _np(x), rtol=1e-6)
    assert x.to(dtype=mt.float32) is x
    assert mt.arange(3).float().dtype == mt.float32
    assert mt.randn(2).long().dtype == mt.int64


# ----------------------------------------------------------------------------- dtype discipline


@pytest.mark.parametrize(
    "other",
    [0.5, np.float64(0.5), np.array([0.5, 2.0, -1.0]), "int64_tensor", np.int64(3), 2],
    ids=["py_float", "np_float64_scalar", "np_float64_array", "int64_tensor", "np_int64", "py_int"],
)
@pytest.mark.parametrize("op", ["add", "sub", "rsub", "mul", "div", "rdiv", "pow", "maximum"])
def test_float32_stays_float32_forward_and_backward(other, op: str) -> None:  # noqa: ANN001
    x = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    if isinstance(other, str):
        other = mt.tensor([1, 2, 3])
    fns = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "rsub": lambda a, b: b - a,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "rdiv": lambda a, b: b / a,
        "pow": lambda a, b: a ** (b if not isinstance(b, mt.Tensor) else b.float()),
        "maximum": mt.maximum,
    }
    y = fns[op](x, other)
    assert isinstance(y, mt.Tensor)
    assert y.dtype == mt.float32, f"{op} with {type(other).__name__} gave {y.dtype}"
    y.sum().backward()
    assert x.grad.dtype == mt.float32


def test_float32_reductions_and_unary_ops_stay_float32() -> None:
    x = mt.rand(3, 4, requires_grad=True)
    outs = [
        x.mean(),
        x.var(axis=0),
        x.sum(axis=1, keepdims=True),
        x.softmax(1),
        x.log_softmax(0),
        x.logsumexp(1),
        (x + 1.0).log(),
        x.sqrt(),
        x.sigmoid(),
        x.tanh(),
        mt.leaky_relu(x - 0.5, 0.1),
        x.clamp(0.2, 0.8),
        x * np.float64(2.0) / 3 + 1,
        x**0.5,
        x @ np.ones((4, 2)),
    ]
    for out in outs:
        assert out.dtype == mt.float32, out.grad_fn
    total = outs[0]
    for o in outs[1:]:
        total = total + o.sum()
    total.backward()
    assert x.grad.dtype == mt.float32


def test_integer_tensors_meeting_float32() -> None:
    labels = mt.tensor([0, 1, 2])
    assert (labels * 0.5).dtype == mt.float32  # int * python float -> default float, not float64
    assert mt.arange(4).mean().dtype == mt.float32
    assert (labels + 1).dtype == mt.int64
    assert (labels**2).dtype == mt.int64


def test_float32_plus_float64_promotes_with_grads_in_each_dtype(device: str) -> None:
    a = mt.tensor([1.0, 2.0], dtype=mt.float32, device=device, requires_grad=True)
    b = mt.tensor([3.0, 4.0], dtype=mt.float64, device=device, requires_grad=True)
    for fn in (lambda p, q: p + q, lambda p, q: p * q, lambda p, q: q - p, lambda p, q: p @ q):
        a.grad = b.grad = None
        y = fn(a, b)
        assert y.dtype == mt.float64
        y.sum().backward()
        assert a.grad.dtype == mt.float32
        assert b.grad.dtype == mt.float64
    np.testing.assert_allclose(_np(a.grad), [3.0, 4.0])  # last fn: a @ b
    np.testing.assert_allclose(_np(b.grad), [1.0, 2.0])


def test_concatenate_and_stack_unify_dtypes() -> None:
    a = mt.ones(2, requires_grad=True)
    i = mt.arange(2)
    c = mt.concatenate([a, i])
    assert c.dtype == mt.float32
    d = mt.stack([a, mt.ones(2, dtype=mt.float64)])
    assert d.dtype == mt.float64
    d.sum().backward()
    assert a.grad.dtype == mt.float32


def test_comparisons_give_bool_tensors_without_grad(device: str) -> None:
    x = mt.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    y = mt.tensor([3.0, 2.0, 1.0], device=device)
    cases = {
        "lt": (x < y, [True, False, False]),
        "le": (x <= y, [True, True, False]),
        "gt": (x > 2.0, [False, False, True]),
        "ge": (x >= 2, [False, True, True]),
        "eq": (x == y, [False, True, False]),
        "ne": (x != y, [True, False, True]),
    }
    for name, (result, expected) in cases.items():
        assert result.dtype == mt.bool_, name
        assert not result.requires_grad and result.grad_fn is None, name
        np.testing.assert_array_equal(_np(result), expected)
    # a comparison can select values, and a mask from a comparison indexes
    sel = mt.where(x > 1.5, x, 0.0)
    sel.sum().backward()
    np.testing.assert_array_equal(_np(x.grad), [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(_np(x[x > 1.5]), [2.0, 3.0])


# ----------------------------------------------------------------------------- devices


def test_to_cpu_is_a_no_op() -> None:
    x = mt.randn(3, requires_grad=True)
    assert x.to("cpu") is x
    assert x.cpu() is x
    assert x.to("CPU") is x
    assert x.device == "cpu"
    assert mt.Tensor(np.ones(2)).device == "cpu"


def _no_cupy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "_import_cupy", lambda: None)


def test_cuda_without_cupy_explains_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_cupy(monkeypatch)
    assert mt.cuda.is_available() is False
    assert mt.cuda.device_count() == 0
    x = mt.randn(2)
    for make in (
        lambda: x.to("cuda"),
        x.cuda,
        lambda: mt.zeros(2, device="cuda"),
        lambda: mt.randn(2, device="cuda:0"),
        lambda: mt.tensor([1.0], device="cuda"),
        lambda: backend.xp_for("cuda:0"),
    ):
        with pytest.raises(RuntimeError) as info:
            make()
        message = str(info.value)
        assert "pip install" in message and "cupy" in message.lower(), message


def test_unknown_device_strings_error() -> None:
    for bad in ("gpu", "cuda:x", "tpu:0", "cuda:-1", "cpu:0", ""):
        with pytest.raises(ValueError, match="unknown device"):
            mt.zeros(2, device=bad)
    with pytest.raises(ValueError, match="unknown device"):
        mt.randn(2).to("metal")


class _FakeCudaTensor(mt.Tensor):
    """A CPU tensor that claims to live on a GPU: drives the device-mismatch checks without one."""

    @property
    def device(self) -> str:  # type: ignore[override]
        return "cuda:0"


def test_device_mismatch_errors_name_both_devices() -> None:
    cpu = mt.randn(2, 3)
    fake = _FakeCudaTensor._wrap(np.ones((2, 3), dtype=np.float32))
    fake_t = _FakeCudaTensor._wrap(np.ones((3, 2), dtype=np.float32))
    assert fake.device == "cuda:0"
    calls = {
        "add": lambda: cpu + fake,
        "mul": lambda: fake * cpu,
        "matmul": lambda: cpu @ fake_t,
        "Concatenate": lambda: mt.concatenate([cpu, fake]),  # Function.apply's own check
        "Stack": lambda: mt.stack([cpu, fake]),
        "where": lambda: mt.where(cpu > 0, fake, cpu),
        "getitem": lambda: cpu[_FakeCudaTensor._wrap(np.array([0, 1]))],
        "backward": lambda: (cpu.requires_grad_() * 2.0).backward(fake),
    }
    for name, call in calls.items():
        with pytest.raises(RuntimeError) as info:
            call()
        message = str(info.value)
        assert name in message and "cpu" in message and "cuda:0" in message, (name, message)


def test_data_is_always_an_array_never_a_numpy_scalar() -> None:
    x = mt.randn(3, requires_grad=True)
    for t in (x.sum(), x[0], x.max(), x.argmax(), mt.tensor(2.0) * mt.tensor(3.0), x.mean().exp()):
        assert isinstance(t.data, np.ndarray), type(t.data)
        assert t.shape == ()
    s = x.sum().detach()
    s.data[...] = 1.0  # in-place updates of a 0-d result work
    assert s.item() == 1.0


def test_integer_inputs_to_fractional_ops_give_float32() -> None:
    i = mt.arange(1, 5)
    for out in (i / 2, 2 / i, i.exp(), i.log(), i.sqrt(), i.tanh(), i.sigmoid(), i.softmax(), i.logsumexp(), i.var()):
        assert out.dtype == mt.float32, out.grad_fn
    np.testing.assert_allclose(_np(i / 2), [0.5, 1.0, 1.5, 2.0])
    assert (i * 2).dtype == mt.int64 and (-i).dtype == mt.int64 and abs(i).dtype == mt.int64


# ----------------------------------------------------------------------------- PyTorch habits

X = np.arange(24, dtype=np.float32).reshape(2, 3, 4) % 7  # ties on purpose: argmax picks the first


def _same(a: mt.Tensor, b: mt.Tensor) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(_np(a), _np(b))


TORCH_STYLE = [  # (name, how PyTorch users write it, the same call with our names)
    ("sum", lambda m, x: m.sum(x, dim=1, keepdim=True), lambda m, x: m.sum(x, axis=1, keepdims=True)),
    ("mean", lambda m, x: m.mean(x, dim=(0, 2)), lambda m, x: m.mean(x, axis=(0, 2))),
    ("var", lambda m, x: m.var(x, dim=-1, keepdim=True, correction=1), lambda m, x: m.var(x, -1, True, 1)),
    ("max", lambda m, x: m.max(x, dim=2), lambda m, x: m.max(x, axis=2)),
    ("min", lambda m, x: m.min(x, dim=0, keepdim=True), lambda m, x: m.min(x, axis=0, keepdims=True)),
    ("argmax", lambda m, x: m.argmax(x, dim=1), lambda m, x: m.argmax(x, axis=1)),
    ("argmin", lambda m, x: m.argmin(x, dim=2, keepdim=True), lambda m, x: m.argmin(x, axis=2, keepdims=True)),
    ("logsumexp", lambda m, x: m.logsumexp(x, dim=1), lambda m, x: m.logsumexp(x, axis=1)),
    ("softmax", lambda m, x: m.softmax(x, dim=1), lambda m, x: m.softmax(x, axis=1)),
    ("log_softmax", lambda m, x: m.log_softmax(x, dim=0), lambda m, x: m.log_softmax(x, axis=0)),
    ("squeeze", lambda m, x: m.squeeze(m.unsqueeze(x, dim=1), dim=1), lambda m, x: x),
    ("concatenate", lambda m, x: m.concatenate([x, x], dim=2), lambda m, x: m.concatenate([x, x], axis=2)),
    ("cat", lambda m, x: m.cat([x, x], dim=1), lambda m, x: m.concatenate([x, x], axis=1)),
    ("stack", lambda m, x: m.stack([x, x], dim=3), lambda m, x: m.stack([x, x], axis=3)),
]


@pytest.mark.parametrize(("name", "torch_style", "ours"), TORCH_STYLE, ids=[t[0] for t in TORCH_STYLE])
def test_functions_accept_dim_and_keepdim(name, torch_style, ours, device: str) -> None:  # noqa: ANN001
    x = mt.tensor(X, device=device)
    _same(torch_style(mt, x), ours(mt, x))


METHODS = ["sum", "mean", "var", "max", "min", "argmax", "argmin", "logsumexp", "softmax", "log_softmax"]


@pytest.mark.parametrize("name", METHODS)
def test_tensor_methods_accept_dim_and_keepdim(name: str, device: str) -> None:
    x = mt.tensor(X, device=device)
    method = getattr(x, name)
    if name in ("softmax", "log_softmax"):  # one axis, no keepdims
        _same(method(dim=1), method(axis=1))
    else:
        _same(method(dim=1, keepdim=True), method(axis=1, keepdims=True))
        _same(method(dim=1), method(1))
    assert x.unsqueeze(dim=0).squeeze(dim=0).shape == x.shape
    assert x.argmax(dim=1).tolist() == np.argmax(X, axis=1).tolist()  # the habit that was a TypeError


@pytest.mark.parametrize(
    "call",
    [
        lambda x: x.sum(axis=0, dim=0),
        lambda x: mt.mean(x, keepdims=True, keepdim=True),
        lambda x: x.argmax(axis=1, dim=1),
        lambda x: mt.cat([x, x], axis=0, dim=0),
    ],
)
def test_both_spellings_at_once_is_an_error(call) -> None:  # noqa: ANN001
    with pytest.raises(TypeError, match=r"got both (axis|keepdims)= and (dim|keepdim)="):
        call(mt.tensor(X))


def test_from_numpy_shares_memory_and_keeps_the_dtype() -> None:
    a = np.zeros((2, 3), dtype=np.float64)
    t = mt.from_numpy(a)
    assert t.dtype == mt.float64 and t.device == "cpu" and t.shape == (2, 3) and not t.requires_grad
    a[0, 1] = 5.0
    assert t[0, 1].item() == 5.0  # one memory, like torch.from_numpy
    assert mt.from_numpy(np.arange(3)).dtype == mt.int64
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        mt.from_numpy([1.0, 2.0])
    with pytest.raises(TypeError, match="dtype object"):
        mt.from_numpy(np.array([None]))


def test_clone_is_a_differentiable_copy(device: str) -> None:
    x = mt.tensor([[1.0, -2.0], [3.0, 0.5]], device=device, requires_grad=True)
    y = x.clone()
    assert y.grad_fn == "Clone" and y.dtype == x.dtype and y.device == x.device
    assert y.data is not x.data
    (y * y).sum().backward()
    np.testing.assert_array_equal(_np(x.grad), 2 * _np(x))
    with mt.no_grad():
        y2 = mt.clone(x)
    y2.data[0, 0] = 100.0
    assert x[0, 0].item() == 1.0  # the copy has its own memory
    assert mt.gradcheck(lambda t: (t.clone() ** 2).sum(), [x.detach().double().requires_grad_()])
