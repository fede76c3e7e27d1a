"""The autograd engine: backward, accumulation, graph freeing, grad modes, memory."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl.autograd import Context, Function


def _np(t: mt.Tensor | np.ndarray) -> np.ndarray:
    """Host copy of a tensor or of a raw (NumPy/CuPy) gradient array."""
    return mt.backend.to_numpy(t.data if isinstance(t, mt.Tensor) else t)


# ----------------------------------------------------------------------------- backward basics


def test_backward_on_scalar(device: str) -> None:
    x = mt.tensor([1.0, -2.0, 3.0], device=device, requires_grad=True)
    y = (x * x * x).sum()  # dy/dx = 3 x^2
    y.backward()
    np.testing.assert_allclose(_np(x.grad), 3 * np.array([1.0, 4.0, 9.0]), rtol=1e-6)
    assert mt.backend.device_of(x.grad) == x.device


def test_backward_on_0d_and_one_element(device: str) -> None:
    x = mt.tensor(2.0, device=device, requires_grad=True)
    (x * x).backward()
    assert _np(x.grad).shape == ()
    assert float(_np(x.grad)) == pytest.approx(4.0)

    w = mt.tensor([[3.0]], device=device, requires_grad=True)
    (w * 2.0).backward()  # a (1, 1) output counts as a scalar
    np.testing.assert_allclose(_np(w.grad), [[2.0]])


def test_backward_with_explicit_grad_on_non_scalar(device: str) -> None:
    x = mt.tensor([[1.0, 2.0], [3.0, 4.0]], device=device, requires_grad=True)
    y = x * 3.0
    g = np.array([[1.0, -1.0], [0.5, 2.0]], dtype=np.float32)
    y.backward(mt.tensor(g, device=device))
    np.testing.assert_allclose(_np(x.grad), 3.0 * g)
    # a raw array works as well, and a float64 grad does not leak float64 into float32 leaves
    x.grad = None
    y2 = x * 3.0
    y2.backward(np.ones((2, 2), dtype=np.float64))
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(_np(x.grad), np.full((2, 2), 3.0))


def test_non_scalar_backward_without_grad_is_a_clear_error() -> None:
    x = mt.randn(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"scalar outputs.*\(2, 3\)"):
        (x * 2.0).backward()


def test_backward_grad_with_wrong_shape_is_an_error() -> None:
    x = mt.randn(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
        (x * 2.0).backward(mt.ones(3, 2))


def test_backward_on_tensor_without_grad_is_an_error() -> None:
    x = mt.randn(3)
    with pytest.raises(RuntimeError, match="does not require grad"):
        x.sum().backward()


def test_backward_on_a_leaf_itself() -> None:
    x = mt.tensor(5.0, requires_grad=True)
    x.backward()
    assert float(x.grad) == 1.0


# ----------------------------------------------------------------------------- accumulation


def test_grad_accumulates_across_two_backward_calls(device: str) -> None:
    x = mt.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x * 2.0).sum().backward()
    (x * x).sum().backward()  # + 2x
    np.testing.assert_allclose(_np(x.grad), [2.0 + 2.0, 2.0 + 4.0])
    x.zero_grad()
    assert x.grad is None


def test_value_used_twice_in_one_graph(device: str) -> None:
    x = mt.tensor([1.5, -2.0, 0.5], device=device, requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(_np(x.grad), 2 * np.array([1.5, -2.0, 0.5]), rtol=1e-6)

    x.grad = None
    (x + x + x).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [3.0, 3.0, 3.0])


def test_diamond_graph(device: str) -> None:
    # x -> a = 2x, b = x^2 -> c = a * b = 2 x^3  => dc/dx = 6 x^2
    x = mt.tensor([1.0, 2.0, -1.0], device=device, requires_grad=True)
    a = x * 2.0
    b = x * x
    c = (a * b).sum()
    c.backward()
    np.testing.assert_allclose(_np(x.grad), 6 * np.array([1.0, 4.0, 1.0]), rtol=1e-6)


def test_deep_diamond_shares_intermediate() -> None:
    # h is consumed by two branches; its gradient must be complete before it is pushed on
    x = mt.tensor([0.3, -0.7], dtype=mt.float64, requires_grad=True)
    h = x.tanh()
    y = (h.exp() + h * h).sum()
    y.backward()
    xv = np.array([0.3, -0.7])
    hv = np.tanh(xv)
    expected = (np.exp(hv) + 2 * hv) * (1 - hv**2)
    np.testing.assert_allclose(x.grad, expected, rtol=1e-12)


def test_broadcast_operand_grad_is_reduced_to_its_shape(device: str) -> None:
    x = mt.randn(4, 3, device=device, requires_grad=True)
    b = mt.randn(3, device=device, requires_grad=True)
    (x + b).sum().backward()
    assert b.grad.shape == (3,)
    np.testing.assert_allclose(_np(b.grad), np.full(3, 4.0))


def test_leaf_grads_are_private_writable_copies() -> None:
    # Add hands the same array to both inputs and Sum a read-only broadcast view;
    # optimizers update .grad in place, so each leaf must own its gradient.
    a = mt.randn(3, requires_grad=True)
    b = mt.randn(3, requires_grad=True)
    (a + b).sum().backward()
    assert a.grad is not b.grad
    assert a.grad.flags.writeable and b.grad.flags.writeable
    a.grad *= 10.0
    np.testing.assert_allclose(b.grad, np.ones(3))


def test_leaf_grad_dtype_equals_param_dtype() -> None:
    for dtype in (mt.float32, mt.float64):
        w = mt.randn(3, 2, dtype=dtype, requires_grad=True)
        x = mt.randn(4, 3, dtype=dtype)
        ((x @ w).tanh().sum() * 0.5).backward()
        assert w.grad.dtype == dtype
        assert w.grad.shape == w.shape


# ----------------------------------------------------------------------------- retain_graph


def test_second_backward_without_retain_graph_raises() -> None:
    x = mt.randn(3, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward(device: str) -> None:
    x = mt.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = _np(x.grad).copy()
    y.backward()
    np.testing.assert_allclose(_np(x.grad), 2 * first, rtol=1e-6)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_backward_through_freed_shared_subgraph_raises() -> None:
    x = mt.randn(3, requires_grad=True)
    h = x.tanh()
    h.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        (h * 2.0).sum().backward()


# ----------------------------------------------------------------------------- grad modes


def test_no_grad_context_manager(device: str) -> None:
    x = mt.randn(3, device=device, requires_grad=True)
    with mt.no_grad():
        assert not mt.is_grad_enabled()
        y = x * 2.0 + 1.0
    assert mt.is_grad_enabled()
    assert not y.requires_grad
    assert y.grad_fn is None and y.is_leaf


def test_no_grad_as_decorator_with_and_without_parentheses() -> None:
    x = mt.randn(3, requires_grad=True)

    @mt.no_grad()
    def f(t: mt.Tensor) -> mt.Tensor:
        return t.exp()

    @mt.no_grad
    def g(t: mt.Tensor) -> mt.Tensor:
        return t * t

    assert not f(x).requires_grad
    assert not g(x).requires_grad
    assert mt.is_grad_enabled()
    assert (x * x).requires_grad


def test_no_grad_decorated_recursion_restores_the_mode() -> None:
    @mt.no_grad()
    def depth(n: int) -> int:
        assert not mt.is_grad_enabled()
        return 0 if n == 0 else 1 + depth(n - 1)

    assert depth(5) == 5
    assert mt.is_grad_enabled()


def test_no_grad_restores_mode_after_an_exception() -> None:
    with pytest.raises(ZeroDivisionError):
        with mt.no_grad():
            1 / 0  # noqa: B018
    assert mt.is_grad_enabled()


def test_enable_grad_inside_no_grad_and_set_grad_enabled() -> None:
    x = mt.randn(2, requires_grad=True)
    with mt.no_grad():
        with mt.enable_grad():
            assert (x * 2.0).requires_grad
        assert not (x * 2.0).requires_grad
    with mt.set_grad_enabled(False):
        assert not (x * 2.0).requires_grad
    assert mt.is_grad_enabled()
    mt.set_grad_enabled(False)
    try:
        assert not mt.is_grad_enabled()
    finally:
        mt.set_grad_enabled(True)
    assert mt.is_grad_enabled()


# ----------------------------------------------------------------------------- requires_grad


def test_requires_grad_rejects_integer_and_bool_tensors() -> None:
    with pytest.raises(TypeError, match="floating"):
        mt.arange(3).requires_grad_()
    with pytest.raises(TypeError, match="floating"):
        mt.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="floating"):
        mt.zeros(2, dtype=mt.bool_, requires_grad=True)


def test_requires_grad_false_on_non_leaf_is_an_error() -> None:
    y = mt.randn(2, requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="non-leaf"):
        y.requires_grad_(False)


def test_ops_on_constants_record_no_graph() -> None:
    a, b = mt.randn(3), mt.randn(3)
    c = a * b + 1.0
    assert not c.requires_grad and c.grad_fn is None
    w = mt.randn(3, requires_grad=True)
    d = c * w
    assert d.requires_grad and d.grad_fn == "Mul" and not d.is_leaf


def test_retain_grad_on_non_leaf(device: str) -> None:
    x = mt.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    h = x * 2.0
    h.retain_grad()
    other = x * 3.0  # not retained
    (h * h + other).sum().backward()
    np.testing.assert_allclose(_np(h.grad), 2 * np.array([2.0, 4.0, 6.0]))
    np.testing.assert_allclose(_np(x.grad), 2 * 2 * np.array([2.0, 4.0, 6.0]) + 3.0)
    assert other.grad is None


def test_detach_cuts_the_graph(device: str) -> None:
    x = mt.tensor([1.0, 2.0], device=device, requires_grad=True)
    d = (x * 3.0).detach()
    assert not d.requires_grad and d.is_leaf
    y = (x * d).sum()  # d acts as a constant
    y.backward()
    np.testing.assert_allclose(_np(x.grad), [3.0, 6.0])
    # detach shares the array (no copy)
    x2 = mt.randn(3)
    assert x2.detach().data is x2.data


def test_custom_function_and_needs_input_grad() -> None:
    seen: dict[str, tuple] = {}

    class Cube(Function):
        """y = a x^3;  dy/dx = 3 a x^2."""

        @staticmethod
        def forward(ctx: Context, x: np.ndarray, a: float) -> np.ndarray:
            ctx.save_for_backward(x)
            ctx.a = a
            return a * x**3

        @staticmethod
        def backward(ctx: Context, grad: np.ndarray) -> tuple:
            seen["needs"] = ctx.needs_input_grad
            (x,) = ctx.saved_tensors
            return (grad * 3 * ctx.a * x * x,)  # trailing non-tensor argument left out

    x = mt.tensor([1.0, 2.0], dtype=mt.float64, requires_grad=True)
    Cube.apply(x, 2.0).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0, 24.0])
    assert seen["needs"] == (True, False)
    assert mt.gradcheck(lambda t: Cube.apply(t, 0.5), [mt.randn(3, dtype=mt.float64)])


def test_function_backward_returning_wrong_shape_is_caught() -> None:
    class Bad(Function):
        @staticmethod
        def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
            return x * 2

        @staticmethod
        def backward(ctx: Context, grad: np.ndarray) -> tuple:
            return (grad.sum(keepdims=True),)

    x = mt.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Bad\.backward.*shape \(1,\).*\(3,\)"):
        Bad.apply(x).sum().backward()


# ----------------------------------------------------------------------------- scale and memory


def test_long_chain_backpropagates_without_recursion_error() -> None:
    x = mt.tensor([0.5, -0.25], dtype=mt.float64, requires_grad=True)
    y = x
    n = 10_000
    for _ in range(n):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(2, 1.0001**n), rtol=1e-9)
    del y  # tearing down a 20,000-node chain must not overflow the C stack either
    gc.collect()


def _live_tensors() -> int:
    gc.collect()
    # type(o), not isinstance: isinstance reads __class__, which some lazy modules (torch) warn on
    return sum(1 for o in gc.get_objects() if issubclass(type(o), mt.Tensor))


def test_repeated_forward_backward_does_not_grow_memory() -> None:
    import tracemalloc

    w = mt.randn(32, 16, requires_grad=True)
    b = mt.zeros(16, requires_grad=True)
    x = mt.randn(8, 32)

    def step() -> float:
        loss = ((x @ w + b).tanh() ** 2).mean()
        loss.backward()
        with mt.no_grad():
            w.data -= 0.01 * w.grad
            b.data -= 0.01 * b.grad
        w.grad = None
        b.grad = None
        return loss.item()

    for _ in range(20):  # warm up caches
        step()
    before = _live_tensors()
    tracemalloc.start()
    try:
        step()
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(1000):
            step()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    after = _live_tensors()
    assert after == before, f"{after - before} Tensor objects leaked over 1000 steps"
    # one step's arrays are ~10 KB; a leaked graph per step would add > 10 MB over 1000 steps
    assert end - start < 512 * 1024, f"traced memory grew by {end - start} bytes"


def test_graph_is_freed_when_the_output_is_dropped() -> None:
    w = mt.randn(4, requires_grad=True)
    before = _live_tensors()
    y = ((w * 2.0).exp() + w).sum()
    assert _live_tensors() > before
    y.backward()
    del y
    assert _live_tensors() == before


def test_backward_returning_float64_for_float32_input_is_an_error() -> None:
    """The engine refuses a silent float64 gradient instead of casting it away."""
    from minitorch_nndl.autograd import Function

    class LeakyDouble(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return (grad.astype("float64") * 2,)

    x = mt.ones(3, requires_grad=True)
    with pytest.raises(TypeError, match=r"LeakyDouble\.backward returned a float64 gradient for a float32 input"):
        LeakyDouble.apply(x).sum().backward()


def test_keeping_the_loss_after_backward_does_not_keep_activations_alive() -> None:
    """`losses.append(loss)` is common in student code: backward releases the links to inputs."""
    import weakref

    x = mt.randn(4, 3, requires_grad=True)
    hidden = (x * 2.0).relu()
    probe = weakref.ref(hidden)
    loss = hidden.sum()
    del hidden
    gc.collect()
    assert probe() is not None  # still needed by the graph before backward
    loss.backward()
    gc.collect()
    assert probe() is None
    assert loss.grad_fn == "Sum"  # the output still says where it came from


def test_the_walk_frees_activations_as_it_passes_them() -> None:
    """Once the walk has pushed a tensor's adjoint to its inputs, nothing of the engine holds
    that tensor any more: an activation the caller does not hold is freed before the walk ends."""
    import weakref

    from minitorch_nndl.autograd import Function

    seen: dict[str, bool] = {}
    refs: dict[str, weakref.ref] = {}

    class Probe(mt.autograd.Function):
        """Identity whose backward records whether the later activation is gone."""

        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, grad):
            seen["later activation freed"] = refs["h2"]() is None
            return grad

    assert issubclass(Probe, Function)
    x = mt.randn(3, 4, requires_grad=True)

    def build() -> mt.Tensor:
        h1 = Probe.apply(x)
        h2 = (h1 * 2.0).relu()
        refs["h2"] = weakref.ref(h2)
        return (h2 * 3.0).sum()

    loss = build()
    assert refs["h2"]() is not None  # alive before backward: the graph holds it
    loss.backward()
    assert seen == {"later activation freed": True}
    assert x.grad is not None
