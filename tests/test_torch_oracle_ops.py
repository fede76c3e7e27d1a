"""A sample of core ops against PyTorch (the oracle) in float64: values and gradients.

Each case builds the same inputs for both libraries, applies the op, contracts
the output with a fixed random weight (so every output element matters) and
compares the result and the gradient of every input.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import minitorch_nndl as mt

torch = pytest.importorskip("torch")


@dataclass
class Case:
    name: str
    inputs: Callable[[np.random.Generator], list[np.ndarray]]
    ours: Callable[..., mt.Tensor]
    theirs: Callable[..., object]


def _normal(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.standard_normal(shape)


def _positive(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def _distinct(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    """Values with no ties anywhere (a shuffled, scaled arange), for max/min."""

    def make(rng: np.random.Generator) -> np.ndarray:
        n = int(np.prod(shape))
        return (rng.permutation(n).reshape(shape) - n / 2) * 0.37

    return make


def _few_values(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    """Whole numbers -1, 0 or 1, so two such inputs tie in many places: maximum/minimum at ties."""
    return lambda rng: rng.integers(-1, 2, shape).astype(np.float64)


def _ins(*makers: Callable[[np.random.Generator], np.ndarray]) -> Callable[[np.random.Generator], list[np.ndarray]]:
    return lambda rng: [m(rng) for m in makers]


IDX = np.array([0, 2, 2, 1, 0, 2])  # repeated indices: gradients must accumulate
MASK = np.array([True, False, True, True])

CASES = [
    Case("add_broadcast", _ins(_normal(3, 1, 4), _normal(5, 1)), lambda a, b: a + b, lambda a, b: a + b),
    Case("sub_broadcast", _ins(_normal(2, 3), _normal(3)), lambda a, b: a - b, lambda a, b: a - b),
    Case("mul_broadcast", _ins(_normal(4, 1), _normal(1, 3)), lambda a, b: a * b, lambda a, b: a * b),
    Case("div_broadcast", _ins(_normal(2, 3), _positive(2, 1)), lambda a, b: a / b, lambda a, b: a / b),
    Case("pow_tensor", _ins(_positive(3, 4), _normal(4)), lambda a, b: a**b, lambda a, b: a**b),
    Case("pow_scalar", _ins(_positive(3, 2)), lambda a: a**2.5, lambda a: a**2.5),
    Case("matmul_batched_broadcast", _ins(_normal(2, 1, 3, 4), _normal(5, 4, 2)), mt.matmul, torch.matmul),
    Case("matmul_vec_mat", _ins(_normal(4), _normal(3, 4, 2)), mt.matmul, torch.matmul),
    Case("matmul_mat_vec", _ins(_normal(2, 3, 4), _normal(4)), mt.matmul, torch.matmul),
    Case("sum_axes_keepdims", _ins(_normal(2, 3, 4)), lambda a: a.sum((0, 2), True), lambda a: a.sum((0, 2), True)),
    Case("mean_neg_axis", _ins(_normal(2, 3, 4)), lambda a: a.mean(-1), lambda a: a.mean(-1)),
    Case(
        "var_unbiased",
        _ins(_normal(3, 5)),
        lambda a: a.var(1, correction=1),
        lambda a: a.var(1, correction=1),
    ),
    Case("max_axis_no_ties", _ins(_distinct(3, 4, 2)), lambda a: a.max(1), lambda a: a.amax(1)),
    Case("min_keepdims_no_ties", _ins(_distinct(3, 4)), lambda a: a.min(0, True), lambda a: a.amin(0, True)),
    Case("max_all_with_ties", _ins(lambda rng: np.array([[1.0, 3.0], [3.0, -2.0]])), lambda a: a.max(), torch.amax),
    Case("softmax", _ins(_normal(3, 5)), lambda a: a.softmax(-1), lambda a: torch.softmax(a, -1)),
    Case("log_softmax_axis0", _ins(_normal(4, 3)), lambda a: a.log_softmax(0), lambda a: torch.log_softmax(a, 0)),
    Case("logsumexp", _ins(_normal(2, 6)), lambda a: a.logsumexp(1), lambda a: torch.logsumexp(a, 1)),
    Case(
        "logsumexp_large",
        _ins(lambda rng: rng.standard_normal((2, 3)) * 1e3),
        lambda a: a.logsumexp(1, keepdims=True),
        lambda a: torch.logsumexp(a, 1, keepdim=True),
    ),
    Case("getitem_repeated_ints", _ins(_normal(3, 2)), lambda a: a[IDX], lambda a: a[torch.from_numpy(IDX)]),
    Case(
        "getitem_mixed",
        _ins(_normal(4, 5)),
        lambda a: a[1:, IDX[:3]],
        lambda a: a[1:, torch.from_numpy(IDX[:3])],
    ),
    Case("getitem_mask", _ins(_normal(4, 2)), lambda a: a[MASK], lambda a: a[torch.from_numpy(MASK)]),
    Case(
        "pad",
        _ins(_normal(2, 3, 4)),
        lambda a: mt.pad(a, ((0, 0), (1, 2), (2, 1)), value=0.5),
        lambda a: torch.nn.functional.pad(a, (2, 1, 1, 2), value=0.5),
    ),
    Case(
        "where",
        _ins(_normal(3, 4), _normal(4)),
        lambda a, b: mt.where(a > 0.1, a, b),
        lambda a, b: torch.where(a > 0.1, a, b),
    ),
    Case("tanh_sigmoid", _ins(_normal(5)), lambda a: a.tanh() * a.sigmoid(), lambda a: a.tanh() * a.sigmoid()),
    Case(
        "exp_log_sqrt",
        _ins(_positive(4)),
        lambda a: a.exp() + a.log() * a.sqrt(),
        lambda a: a.exp() + a.log() * a.sqrt(),
    ),
    Case(
        "concat_stack",
        _ins(_normal(2, 3), _normal(1, 3)),
        lambda a, b: mt.stack([mt.concatenate([a, b]), mt.concatenate([b, a])], axis=-1),
        lambda a, b: torch.stack([torch.cat([a, b]), torch.cat([b, a])], dim=-1),
    ),
    Case(
        "transpose_reshape",
        _ins(_normal(2, 3, 4)),
        lambda a: a.permute(2, 0, 1).reshape(4, -1).transpose(),
        lambda a: a.permute(2, 0, 1).reshape(4, -1).T,
    ),
    Case(
        "leaky_relu_clamp",
        _ins(_normal(6)),
        lambda a: mt.leaky_relu(a, 0.2) + a.clamp(-0.5, 0.5),
        lambda a: torch.nn.functional.leaky_relu(a, 0.2) + a.clamp(-0.5, 0.5),
    ),
    # ties split the gradient in half, a broadcast input gets the halves summed
    Case("maximum_ties", _ins(_few_values(3, 4), _few_values(4)), mt.maximum, torch.maximum),
    Case("minimum_ties", _ins(_few_values(3, 1), _few_values(3, 4)), mt.minimum, torch.minimum),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matches_torch_in_float64(case: Case) -> None:
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))  # stable across runs
    arrays = [np.asarray(a, dtype=np.float64) for a in case.inputs(rng)]

    ours = [mt.tensor(a, dtype=mt.float64, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = case.ours(*ours)
    ref = case.theirs(*theirs)

    assert out.dtype == mt.float64
    assert out.shape == tuple(ref.shape), f"shape {out.shape} vs torch {tuple(ref.shape)}"
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-12)

    weight = rng.standard_normal(out.shape)
    (out * mt.tensor(weight, dtype=mt.float64)).sum().backward()
    (ref * torch.from_numpy(weight)).sum().backward()
    for i, (o, t) in enumerate(zip(ours, theirs)):
        assert o.grad is not None, f"input {i} got no gradient"
        assert o.grad.dtype == np.float64
        np.testing.assert_allclose(o.grad, t.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"gradient of input {i}")


def test_sample_is_big_enough() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("name", ["maximum_ties", "minimum_ties"])
def test_the_tie_cases_have_ties(name: str) -> None:
    case = next(c for c in CASES if c.name == name)
    a, b = case.inputs(np.random.default_rng(zlib.crc32(name.encode())))
    ties = int((np.broadcast_to(a, np.broadcast_shapes(a.shape, b.shape)) == b).sum())
    assert ties >= 2, f"{name}: only {ties} ties drawn"
