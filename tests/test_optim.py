"""Optimizers: update rules against hand-written NumPy formulas, groups, state dicts, dtypes, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl import backend
from minitorch_nndl.optim import SGD, Adam, AdamW, Optimizer, split_weight_decay

# A small least-squares problem: L(w) = 0.5 * ||A w - b||^2,  dL/dw = A^T (A w - b).
_rng = np.random.default_rng(1234)
A = _rng.standard_normal((6, 4))
B = _rng.standard_normal(6)
W0 = _rng.standard_normal(4)


def grad_of(w: np.ndarray) -> np.ndarray:
    return A.T @ (A @ w - B)


def run(make_opt, steps: int, w0: np.ndarray = W0, dtype=np.float64) -> list[np.ndarray]:
    """Trajectory of the library optimizer with gradients computed in NumPy (float64 problem)."""
    w = mt.tensor(w0.astype(dtype), requires_grad=True)
    opt = make_opt([w])
    out = []
    for _ in range(steps):
        w.grad = grad_of(w.numpy().astype(np.float64)).astype(dtype)
        opt.step()
        out.append(w.numpy().copy())
    return out


# ------------------------------------------------------------------------ SGD
def test_sgd_plain_three_steps() -> None:
    lr = 0.05
    got = run(lambda p: SGD(p, lr=lr), 3)
    w = W0.copy()
    for k in range(3):
        w = w - lr * grad_of(w)
        np.testing.assert_allclose(got[k], w, rtol=0, atol=1e-12)


def test_sgd_momentum_dampening_first_buffer_is_grad() -> None:
    lr, mu, tau = 0.05, 0.9, 0.3
    got = run(lambda p: SGD(p, lr=lr, momentum=mu, dampening=tau), 3)
    w, buf = W0.copy(), None
    for k in range(3):
        g = grad_of(w)
        buf = g.copy() if buf is None else mu * buf + (1 - tau) * g  # first step: buffer = grad, no dampening
        w = w - lr * buf
        np.testing.assert_allclose(got[k], w, rtol=0, atol=1e-12)


def test_sgd_nesterov_weight_decay_three_steps() -> None:
    lr, mu, wd = 0.03, 0.8, 0.1
    got = run(lambda p: SGD(p, lr=lr, momentum=mu, nesterov=True, weight_decay=wd), 3)
    w, buf = W0.copy(), None
    for k in range(3):
        g = grad_of(w) + wd * w
        buf = g.copy() if buf is None else mu * buf + g
        w = w - lr * (g + mu * buf)
        np.testing.assert_allclose(got[k], w, rtol=0, atol=1e-12)
    plain = run(lambda p: SGD(p, lr=lr, momentum=mu, weight_decay=wd), 3)
    assert not np.allclose(plain[2], got[2])  # nesterov really changes the trajectory


def test_sgd_maximize_ascends() -> None:
    lr = 0.01
    got = run(lambda p: SGD(p, lr=lr, maximize=True), 2)
    w = W0.copy()
    for k in range(2):
        w = w + lr * grad_of(w)
        np.testing.assert_allclose(got[k], w, rtol=0, atol=1e-12)


def test_sgd_does_not_modify_grad_and_updates_in_place() -> None:
    w = mt.tensor(W0.copy(), requires_grad=True)
    data_before = w.data
    g = grad_of(W0)
    w.grad = g.copy()
    opt = SGD([w], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    opt.step()
    opt.step()
    assert w.data is data_before  # in place: the same array object
    np.testing.assert_array_equal(w.grad, g)  # the gradient is read, never written
    assert w.is_leaf and w.grad_fn is None
    assert opt.state[w]["momentum_buffer"] is not w.grad


# ------------------------------------------------------------------------ Adam / AdamW
def adam_reference(steps, lr, betas, eps, wd=0.0, decoupled=False, amsgrad=False, grads=None):
    """Adam/AdamW written straight from the update formulas; grads=None uses the least-squares gradient."""
    b1, b2 = betas
    w = W0.copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    vmax = np.zeros_like(w)
    out = []
    for t in range(1, steps + 1):
        g = grad_of(w) if grads is None else grads[t - 1]
        if wd and decoupled:
            w = w * (1 - lr * wd)
        elif wd:
            g = g + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        m_hat = m / (1 - b1**t)
        v_hat = (vmax if amsgrad else v) / (1 - b2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(w.copy())
    return out


def test_adam_three_steps() -> None:
    lr, betas, eps = 0.01, (0.8, 0.95), 1e-6
    got = run(lambda p: Adam(p, lr=lr, betas=betas, eps=eps), 3)
    want = adam_reference(3, lr, betas, eps)
    for k in range(3):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-12)


def test_adam_bias_correction_first_step_is_lr_sign_grad() -> None:
    lr = 0.01
    w = mt.tensor([0.5, -1.0, 2.0, 0.0], dtype=mt.float64, requires_grad=True)
    g = np.array([1e-3, -5.0, 200.0, -0.02])  # four orders of magnitude apart
    w.grad = g.copy()
    Adam([w], lr=lr).step()
    moved = w.numpy() - np.array([0.5, -1.0, 2.0, 0.0])
    np.testing.assert_allclose(moved, -lr * np.sign(g), rtol=1e-4)


def test_adam_l2_and_adamw_decoupled_are_formula_exact_and_different() -> None:
    lr, betas, eps, wd = 0.02, (0.9, 0.999), 1e-8, 0.3
    adam = run(lambda p: Adam(p, lr=lr, betas=betas, eps=eps, weight_decay=wd), 3)
    adamw = run(lambda p: AdamW(p, lr=lr, betas=betas, eps=eps, weight_decay=wd), 3)
    want_adam = adam_reference(3, lr, betas, eps, wd=wd)
    want_adamw = adam_reference(3, lr, betas, eps, wd=wd, decoupled=True)
    for k in range(3):
        np.testing.assert_allclose(adam[k], want_adam[k], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(adamw[k], want_adamw[k], rtol=1e-12, atol=1e-12)
    assert np.abs(adam[2] - adamw[2]).max() > 1e-4


def test_adamw_default_weight_decay() -> None:
    w = mt.tensor([1.0], requires_grad=True)
    assert AdamW([w]).param_groups[0]["weight_decay"] == 1e-2
    assert Adam([w]).param_groups[0]["weight_decay"] == 0.0


def test_amsgrad_uses_running_max() -> None:
    grads = [np.array([3.0, -2.0, 1.0, 0.5]), np.array([0.1, 0.1, -0.1, 0.5]), np.array([0.01, 0.2, 0.0, -0.5])]
    lr, betas, eps = 0.1, (0.5, 0.6), 1e-8
    outs = {}
    for amsgrad in (False, True):
        w = mt.tensor(W0.copy(), requires_grad=True)
        opt = Adam([w], lr=lr, betas=betas, eps=eps, amsgrad=amsgrad)
        traj = []
        for g in grads:
            w.grad = g.copy()
            opt.step()
            traj.append(w.numpy().copy())
        want = adam_reference(3, lr, betas, eps, amsgrad=amsgrad, grads=grads)
        for k in range(3):
            np.testing.assert_allclose(traj[k], want[k], rtol=1e-12, atol=1e-12)
        outs[amsgrad] = traj
        if amsgrad:
            v = opt.state[w]["exp_avg_sq"]
            assert np.all(opt.state[w]["max_exp_avg_sq"] >= v)
    assert not np.allclose(outs[False][2], outs[True][2])  # the gradients shrink, so the max matters


def test_adam_maximize() -> None:
    got = run(lambda p: Adam(p, lr=0.01, maximize=True), 1)
    np.testing.assert_allclose(got[0], W0 + 0.01 * np.sign(grad_of(W0)), rtol=1e-5)


# ------------------------------------------------------------------------ groups, skipping, zero_grad
def test_param_groups_with_different_lr_and_weight_decay() -> None:
    a = mt.tensor([1.0, 2.0], dtype=mt.float64, requires_grad=True)
    b = mt.tensor([[3.0, -1.0]], dtype=mt.float64, requires_grad=True)
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "weight_decay": 0.1}], lr=0.1, weight_decay=0.0)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["weight_decay"] == 0.0
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["weight_decay"] == 0.1
    assert opt.param_groups[1]["momentum"] == 0.0  # filled from defaults
    ga, gb = np.array([0.5, -1.0]), np.array([[2.0, 4.0]])
    a.grad, b.grad = ga.copy(), gb.copy()
    opt.step()
    np.testing.assert_allclose(a.numpy(), np.array([1.0, 2.0]) - 0.1 * ga, atol=1e-15)
    b0 = np.array([[3.0, -1.0]])
    np.testing.assert_allclose(b.numpy(), b0 - 0.5 * (gb + 0.1 * b0), atol=1e-15)


def test_add_param_group_and_duplicate_errors() -> None:
    a = mt.tensor([1.0], requires_grad=True)
    b = mt.tensor([2.0], requires_grad=True)
    opt = Adam([a], lr=0.1)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="more than one parameter group"):
        SGD([{"params": [a]}, {"params": [a, b]}], lr=0.1)
    with pytest.raises(ValueError, match="twice"):
        SGD([a, a], lr=0.1)


def test_constructor_errors() -> None:
    a = mt.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        SGD([a], lr=-0.1)
    with pytest.raises(ValueError, match="learning rate"):
        Adam([{"params": [a], "lr": -1e-3}])
    with pytest.raises(TypeError, match="single Tensor"):
        SGD(a, lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([a], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta"):
        Adam([a], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="weight_decay"):
        AdamW([a], weight_decay=-1.0)
    with pytest.raises(ValueError, match="momentum"):
        SGD([a], lr=0.1, momentum=-0.5)
    with pytest.raises(TypeError, match="Tensors"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        SGD([a * 2], lr=0.1)


def test_bad_gradient_shape_raises() -> None:
    a = mt.tensor([1.0, 2.0], requires_grad=True)
    a.grad = np.zeros(3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"SGD.step.*\(3,\).*\(2,\)"):
        SGD([a], lr=0.1).step()


def test_params_without_grad_are_skipped() -> None:
    a = mt.tensor([1.0, 2.0], requires_grad=True)
    b = mt.tensor([3.0], requires_grad=True)
    for opt in (SGD([a, b], lr=0.1, momentum=0.9), Adam([a, b], lr=0.1)):
        a.grad, b.grad = np.ones(2, dtype=np.float32), None
        before = b.numpy().copy()
        opt.step()
        np.testing.assert_array_equal(b.numpy(), before)
        assert b not in opt.state and a in opt.state
        assert list(opt.state_dict()["state"]) == [0]


def test_zero_grad() -> None:
    a = mt.tensor([1.0, 2.0], requires_grad=True)
    (a * a).sum().backward()
    opt = SGD([a], lr=0.1)
    grad = a.grad
    opt.zero_grad(set_to_none=False)
    assert a.grad is grad and np.all(a.grad == 0)
    opt.zero_grad()
    assert a.grad is None


def test_closure_and_backward_integration() -> None:
    x = mt.tensor(A, dtype=mt.float32)
    y = mt.tensor(B, dtype=mt.float32)
    w = mt.tensor(W0, dtype=mt.float32, requires_grad=True)
    opt = SGD([w], lr=0.02, momentum=0.9)

    def closure():
        opt.zero_grad()
        loss = ((x @ w - y) ** 2).sum() * 0.5
        loss.backward()
        return loss.item()

    losses = [opt.step(closure) for _ in range(60)]
    assert losses[-1] < 0.5 * losses[0]
    assert w.dtype == np.float32


# ------------------------------------------------------------------------ dtypes and devices
@pytest.mark.parametrize(
    "make",
    [
        lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda p: SGD(p, lr=np.float64(0.1), momentum=np.float64(0.9), dampening=0.1),
        lambda p: Adam(p, lr=1e-2, weight_decay=1e-3, amsgrad=True),
        lambda p: AdamW(p, lr=np.float64(1e-2), betas=(np.float64(0.9), 0.99)),
    ],
    ids=["sgd", "sgd-np64-hparams", "adam-amsgrad", "adamw-np64-hparams"],
)
def test_float32_params_and_state_stay_float32(make, device) -> None:
    w = mt.randn(3, 4, device=device, requires_grad=True)
    v = mt.randn(5, device=device, requires_grad=True)
    opt = make([w, v])
    xp = backend.xp_for(device)
    for _ in range(3):
        w.grad = xp.ones((3, 4), dtype=xp.float32)
        v.grad = xp.full((5,), -0.5, dtype=xp.float32)
        opt.step()
    for p in (w, v):
        assert p.dtype == np.float32 and p.device == device
        for name, buf in opt.state[p].items():
            if name == "step":
                assert isinstance(buf, int)
            else:
                assert buf.dtype == np.float32, name
                assert backend.device_of(buf) == device


def test_float64_grad_on_float32_param_keeps_float32() -> None:
    w = mt.tensor([1.0, 2.0], requires_grad=True)
    w.grad = np.array([0.5, 0.5])  # float64
    opt = Adam([w], lr=0.1)
    opt.step()
    assert w.dtype == np.float32 and opt.state[w]["exp_avg"].dtype == np.float32


# ------------------------------------------------------------------------ state dicts
def _fresh_params(dtype=np.float64):
    rng = np.random.default_rng(7)
    return [
        mt.tensor(rng.standard_normal((3, 2)).astype(dtype), requires_grad=True),
        mt.tensor(rng.standard_normal(2).astype(dtype), requires_grad=True),
        mt.tensor(rng.standard_normal(4).astype(dtype), requires_grad=True),
    ]


def _set_grads(params, step: int) -> None:
    """Deterministic gradients that depend on the current values (so trajectories diverge if state is lost)."""
    for i, p in enumerate(params):
        value = p.numpy()
        p.grad = (np.sin(value * (i + 1) + step) + 0.3 * value).astype(p.dtype)


def _groups(params):
    return [{"params": params[:2]}, {"params": params[2:], "lr": 0.03, "weight_decay": 0.05}]


OPTIMIZERS = {
    "sgd-nesterov": lambda g: SGD(g, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "sgd-dampening": lambda g: SGD(g, lr=0.1, momentum=0.5, dampening=0.2),
    "adam-amsgrad": lambda g: Adam(g, lr=0.05, amsgrad=True, weight_decay=0.01),
    "adamw": lambda g: AdamW(g, lr=0.05, betas=(0.8, 0.9)),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_state_dict_round_trip_resumes_exactly(name, dtype) -> None:
    make = OPTIMIZERS[name]
    straight = _fresh_params(dtype)
    opt = make(_groups(straight))
    for k in range(10):
        _set_grads(straight, k)
        opt.step()

    resumed = _fresh_params(dtype)
    opt1 = make(_groups(resumed))
    for k in range(5):
        _set_grads(resumed, k)
        opt1.step()
    params_at_5 = [p.numpy().copy() for p in resumed]
    saved = opt1.state_dict()
    snapshot = [np.array(v) for s in saved["state"].values() for v in s.values() if hasattr(v, "shape")]
    opt1.step()  # stepping after saving must not change the saved state (it is a snapshot)
    after = [np.array(v) for s in saved["state"].values() for v in s.values() if hasattr(v, "shape")]
    for x, y in zip(snapshot, after):
        np.testing.assert_array_equal(x, y)

    fresh = [mt.tensor(v, requires_grad=True) for v in params_at_5]
    opt2 = make(_groups(fresh))
    opt2.load_state_dict(saved)
    for k in range(5, 10):
        _set_grads(fresh, k)
        opt2.step()
    for p, q in zip(straight, fresh):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    for p, q in zip(straight, fresh):
        assert set(opt.state[p]) == set(opt2.state[q])
        for key in opt.state[p]:
            np.testing.assert_array_equal(np.asarray(opt.state[p][key]), np.asarray(opt2.state[q][key]))


def test_state_dict_layout_and_json_like_round_trip() -> None:
    params = _fresh_params()
    opt = Adam(_groups(params), lr=0.01)
    _set_grads(params, 0)
    opt.step()
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2]
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.03 and sd["param_groups"][1]["betas"] == (0.9, 0.999)
    assert sd["state"][0]["step"] == 1 and sd["state"][0]["exp_avg"].shape == (3, 2)

    # what a JSON / npz-flattening checkpoint gives back: string keys, lists instead of tuples and arrays
    text = json.dumps(
        {
            "state": {
                str(k): {n: (v.tolist() if hasattr(v, "tolist") else v) for n, v in s.items()}
                for k, s in sd["state"].items()
            },
            "param_groups": sd["param_groups"],
        }
    )
    loaded = json.loads(text)
    params2 = [mt.tensor(p.numpy().copy(), requires_grad=True) for p in params]
    opt2 = Adam(_groups(params2), lr=0.5)
    opt2.load_state_dict(loaded)
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.param_groups[0]["betas"] == (0.9, 0.999)
    assert isinstance(opt2.state[params2[0]]["exp_avg"], np.ndarray)
    assert opt2.state[params2[0]]["exp_avg"].dtype == np.float64
    _set_grads(params, 1)
    _set_grads(params2, 1)
    opt.step()
    opt2.step()
    for p, q in zip(params, params2):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_load_state_dict_mismatch_errors() -> None:
    params = _fresh_params()
    opt = SGD(_groups(params), lr=0.1, momentum=0.9)
    _set_grads(params, 0)
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="parameter groups"):
        SGD(params, lr=0.1, momentum=0.9).load_state_dict(sd)
    other = [{"params": params[:1]}, {"params": params[1:]}]
    with pytest.raises(ValueError, match="group 0"):
        SGD(other, lr=0.1).load_state_dict(sd)


def test_optimizer_base_step_is_abstract() -> None:
    a = mt.tensor([1.0], requires_grad=True)
    with pytest.raises(NotImplementedError):
        Optimizer([a], {"lr": 0.1}).step()
    assert "Parameter Group 0" in repr(SGD([a], lr=0.1))


# ------------------------------------------------------------------------ weight-decay groups
def test_split_weight_decay() -> None:
    named = [
        ("conv1.weight", mt.zeros((4, 3, 3, 3), requires_grad=True)),
        ("bn1.weight", mt.ones(4, requires_grad=True)),
        ("bn1.bias", mt.zeros(4, requires_grad=True)),
        ("layer1.0.norm.scale2d", mt.zeros((2, 2), requires_grad=True)),
        ("fc.weight", mt.zeros((10, 4), requires_grad=True)),
        ("fc.bias", mt.zeros(10, requires_grad=True)),
    ]
    groups = split_weight_decay(named, 5e-4)
    assert [g["weight_decay"] for g in groups] == [5e-4, 0.0]
    decayed = {id(p) for p in groups[0]["params"]}
    assert decayed == {id(named[0][1]), id(named[4][1])}
    assert len(groups[1]["params"]) == 4
    opt = SGD(groups, lr=0.1, momentum=0.9, weight_decay=1.0)  # group values override the default
    assert [g["weight_decay"] for g in opt.param_groups] == [5e-4, 0.0]

    class Tiny:
        def named_parameters(self):
            return iter(named[:1])

    assert len(split_weight_decay(Tiny(), 0.1)) == 1  # the empty exempt group is left out
    with pytest.raises(TypeError, match="pairs"):
        split_weight_decay([named[0][1]], 0.1)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: SGD(p, lr=0.1, momentum=0.5, weight_decay=0.05),
        lambda p: SGD(p, lr=0.1, momentum=0.5, nesterov=True),
        lambda p: Adam(p, lr=0.1, weight_decay=0.05, amsgrad=True),
        lambda p: AdamW(p, lr=0.1),
    ],
    ids=["sgd-momentum-wd", "sgd-nesterov", "adam-amsgrad-l2", "adamw"],
)
def test_a_0d_parameter_steps_as_its_1_element_twin(make, device) -> None:
    """A scalar parameter (shape ``()``) follows the same trajectory as shape ``(1,)``: its momentum
    and moment buffers stay arrays updated in place, not NumPy scalars that drop the state."""
    trajectories = []
    for shape in ((), (1,)):
        p = mt.full(shape, 1.0, device=device, requires_grad=True)
        opt = make([p])
        for _ in range(3):
            opt.zero_grad()
            (p * p).sum().backward()
            opt.step()
        assert p.shape == shape and p.dtype == np.float32
        assert all(getattr(b, "shape", None) == shape for k, b in opt.state[p].items() if k != "step")
        trajectories.append(float(p.numpy().reshape(-1)[0]))
    assert trajectories[0] == trajectories[1]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_blockwise_updates_equal_whole_array_updates_bit_for_bit(name, monkeypatch) -> None:
    """A large parameter stored channels-last (as nn.Conv2d stores its weight) is updated in
    cache-sized blocks split over two threads: exactly the whole-array result, its state
    buffers keep the parameter's memory layout, also when restored from a state dict."""
    from minitorch_nndl.kernels import parallel  # noqa: PLC0415
    from minitorch_nndl.optim import optimizer as optimizer_module  # noqa: PLC0415

    shape_ohwi = (8, 3, 3, 300)  # 21600 elements; blocks of 1000 below
    rng = np.random.default_rng(7)
    start = rng.standard_normal(shape_ohwi).astype(np.float32)
    grads = [rng.standard_normal(shape_ohwi).astype(np.float32) for _ in range(3)]

    def trajectory(block: int, threads: int) -> tuple[np.ndarray, Optimizer]:
        monkeypatch.setattr(optimizer_module, "UPDATE_BLOCK", block)
        monkeypatch.setattr(parallel, "_num_threads", threads)
        w = mt.tensor(start.copy()).permute(0, 3, 1, 2).detach().requires_grad_()  # OHWI underneath
        opt = OPTIMIZERS[name]([w])
        for g in grads:
            w.grad = np.ascontiguousarray(g).transpose(0, 3, 1, 2)  # the same layout as w
            opt.step()
        return w.numpy(), opt

    whole, _ = trajectory(10**9, 1)
    flat_calls = []
    real_flat_views = optimizer_module._flat_views
    monkeypatch.setattr(
        optimizer_module, "_flat_views", lambda a: flat_calls.append(real_flat_views(a)) or flat_calls[-1]
    )
    blocks, opt = trajectory(1000, 2)
    assert flat_calls and all(views is not None for views in flat_calls)  # it really went in blocks
    np.testing.assert_array_equal(blocks, whole)
    (param,) = opt.param_groups[0]["params"]
    for buffer in opt.state[param].values():
        if hasattr(buffer, "strides"):
            assert buffer.strides == param.data.strides
    restored = OPTIMIZERS[name]([param])
    restored.load_state_dict(opt.state_dict())
    assert all(b.strides == param.data.strides for b in restored.state[param].values() if hasattr(b, "strides"))
