"""Learning-rate schedules against their closed forms, chaining, state dicts and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl.optim import SGD, Adam
from minitorch_nndl.optim.lr_scheduler import (
    CosineAnnealingLR,
    LambdaLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    SequentialLR,
    StepLR,
    lr_sequence,
)

STEPS = 30


def make_opt(lrs=(0.1,), cls=SGD):
    groups = [{"params": [mt.tensor([float(i)], requires_grad=True)], "lr": lr} for i, lr in enumerate(lrs)]
    return cls(groups, lr=lrs[0])


def sequence(sched, steps=STEPS):
    """Rates after 0, 1, ..., steps-1 calls of step(); checks that the optimizer holds the same values."""
    rows = []
    for e in range(steps):
        if e > 0:
            sched.step()
        assert sched.last_epoch == e
        lrs = sched.get_last_lr()
        assert lrs == [g["lr"] for g in sched.optimizer.param_groups]
        rows.append(lrs)
    return np.array(rows)


def cos_anneal(start, end, pct):
    return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)


def test_step_lr() -> None:
    sched = StepLR(make_opt((0.1, 0.02)), step_size=7, gamma=0.5)
    want = [[lr * 0.5 ** (e // 7) for lr in (0.1, 0.02)] for e in range(STEPS)]
    np.testing.assert_allclose(sequence(sched), want, rtol=1e-12)


def test_multistep_lr_unsorted_and_repeated_milestones() -> None:
    sched = MultiStepLR(make_opt(), milestones=[20, 5, 12, 12], gamma=0.3)
    counts = [sum(m <= e for m in (5, 12, 12, 20)) for e in range(STEPS)]
    np.testing.assert_allclose(sequence(sched)[:, 0], [0.1 * 0.3**c for c in counts], rtol=1e-12)


def test_cosine_annealing_including_past_t_max() -> None:
    base, eta_min, T = 0.2, 0.01, 12
    sched = CosineAnnealingLR(make_opt((base,)), T_max=T, eta_min=eta_min)
    want = [eta_min + (base - eta_min) * (1 + math.cos(math.pi * e / T)) / 2 for e in range(STEPS)]
    got = sequence(sched)[:, 0]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[0] == pytest.approx(base) and got[T] == pytest.approx(eta_min)


def test_linear_lr() -> None:
    sched = LinearLR(make_opt((0.1, 1.0)), start_factor=0.25, end_factor=0.9, total_iters=8)
    factors = [0.25 + (0.9 - 0.25) * min(e, 8) / 8 for e in range(STEPS)]
    np.testing.assert_allclose(sequence(sched), [[0.1 * f, 1.0 * f] for f in factors], rtol=1e-12)
    default = LinearLR(make_opt())
    assert default.get_last_lr()[0] == pytest.approx(0.1 / 3)


def test_lambda_lr_one_function_per_group() -> None:
    sched = LambdaLR(make_opt((0.1, 0.5)), lr_lambda=[lambda e: 0.9**e, lambda e: 1.0 / (1 + e)])
    want = [[0.1 * 0.9**e, 0.5 / (1 + e)] for e in range(STEPS)]
    np.testing.assert_allclose(sequence(sched), want, rtol=1e-12)
    with pytest.raises(ValueError, match="lr_lambdas"):
        LambdaLR(make_opt((0.1, 0.5)), lr_lambda=[lambda e: 1.0])


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_one_cycle_two_phases(strategy) -> None:
    max_lr, total, pct, div, final_div = 0.4, STEPS, 0.3, 25.0, 1e4
    sched = OneCycleLR(make_opt(), max_lr=max_lr, total_steps=total, pct_start=pct, anneal_strategy=strategy)
    initial = max_lr / div
    low = initial / final_div
    peak_step = pct * total - 1  # the step where lr == max_lr

    def anneal(a, b, x):
        return cos_anneal(a, b, x) if strategy == "cos" else a + (b - a) * x

    want = []
    for e in range(total):
        if e <= peak_step:
            want.append(anneal(initial, max_lr, e / peak_step))
        else:
            want.append(anneal(max_lr, low, (e - peak_step) / (total - 1 - peak_step)))
    got = sequence(sched, total)[:, 0]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[0] == pytest.approx(initial) and got.max() == pytest.approx(max_lr) and got[-1] == pytest.approx(low)
    sched.step()  # step number total_steps is still allowed (as in PyTorch)
    with pytest.raises(ValueError, match="total_steps"):
        sched.step()


def test_one_cycle_three_phases_and_per_group_max_lr() -> None:
    total, pct = 40, 0.25
    opt = make_opt((1.0, 1.0))
    sched = OneCycleLR(opt, max_lr=[1.0, 0.1], epochs=4, steps_per_epoch=10, pct_start=pct, three_phase=True)
    assert opt.param_groups[1]["max_lr"] == 0.1 and opt.param_groups[1]["initial_lr"] == pytest.approx(0.1 / 25)
    got = sequence(sched, total)
    e1, e2, e3 = pct * total - 1, 2 * pct * total - 2, total - 1
    for g, max_lr in enumerate((1.0, 0.1)):
        initial, low = max_lr / 25, max_lr / 25 / 1e4
        want = []
        for e in range(total):
            if e <= e1:
                want.append(cos_anneal(initial, max_lr, e / e1))
            elif e <= e2:
                want.append(cos_anneal(max_lr, initial, (e - e1) / (e2 - e1)))
            else:
                want.append(cos_anneal(initial, low, (e - e2) / (e3 - e2)))
        np.testing.assert_allclose(got[:, g], want, rtol=1e-12)


def test_sequential_warmup_then_cosine() -> None:
    base, warm, T = 0.1, 5, 20
    opt = make_opt((base,))
    warmup = LinearLR(opt, start_factor=0.1, total_iters=warm)
    cosine = CosineAnnealingLR(opt, T_max=T, eta_min=1e-4)
    sched = SequentialLR(opt, [warmup, cosine], milestones=[warm])
    want = []
    for e in range(STEPS):
        if e < warm:
            want.append(base * (0.1 + 0.9 * e / warm))
        else:
            want.append(1e-4 + (base - 1e-4) * (1 + math.cos(math.pi * (e - warm) / T)) / 2)
    np.testing.assert_allclose(sequence(sched)[:, 0], want, rtol=1e-12)
    assert cosine.last_epoch == STEPS - 1 - warm


def test_sequential_three_schedulers() -> None:
    opt = make_opt((0.2,))
    a = LinearLR(opt, start_factor=0.5, total_iters=4)
    b = StepLR(opt, step_size=3, gamma=0.5)
    c = LambdaLR(opt, lambda e: 0.01 * (e + 1))
    sched = SequentialLR(opt, [a, b, c], milestones=[4, 16])
    want = []
    for e in range(STEPS):
        if e < 4:
            want.append(0.2 * (0.5 + 0.5 * e / 4))
        elif e < 16:
            want.append(0.2 * 0.5 ** ((e - 4) // 3))
        else:
            want.append(0.2 * 0.01 * (e - 16 + 1))
    np.testing.assert_allclose(sequence(sched)[:, 0], want, rtol=1e-12)


def test_sequential_errors() -> None:
    opt, other = make_opt(), make_opt()
    s1, s2 = LinearLR(opt), StepLR(opt, 3)
    with pytest.raises(ValueError, match="milestone"):
        SequentialLR(opt, [s1, s2], milestones=[])
    with pytest.raises(ValueError, match="different optimizer"):
        SequentialLR(opt, [s1, StepLR(other, 3)], milestones=[3])
    with pytest.raises(ValueError, match="at least one"):
        SequentialLR(opt, [], milestones=[])


def test_scheduler_sets_the_lr_the_optimizer_uses() -> None:
    w = mt.tensor([0.0], dtype=mt.float64, requires_grad=True)
    opt = SGD([w], lr=1.0)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    positions = []
    for _ in range(4):
        w.grad = np.array([-1.0])
        opt.step()
        sched.step()
        positions.append(w.item())
    np.testing.assert_allclose(positions, np.cumsum([1.0, 0.5, 0.25, 0.125]))
    assert opt.param_groups[0]["initial_lr"] == 1.0


SCHEDULERS = {
    "step": lambda o: StepLR(o, step_size=4, gamma=0.5),
    "multistep": lambda o: MultiStepLR(o, milestones=[3, 8], gamma=0.2),
    "cosine": lambda o: CosineAnnealingLR(o, T_max=10, eta_min=1e-3),
    "linear": lambda o: LinearLR(o, start_factor=0.2, total_iters=6),
    "lambda": lambda o: LambdaLR(o, lambda e: 1.0 / (1.0 + e)),
    "onecycle": lambda o: OneCycleLR(o, max_lr=[0.5, 0.05], total_steps=STEPS, three_phase=True),
    "sequential": lambda o: SequentialLR(
        o, [LinearLR(o, start_factor=0.1, total_iters=3), CosineAnnealingLR(o, T_max=20)], milestones=[3]
    ),
}


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_scheduler_state_dict_round_trip(name) -> None:
    make = SCHEDULERS[name]
    straight = sequence(make(make_opt((0.1, 0.01))))

    opt = make_opt((0.1, 0.01), cls=Adam)
    sched = make(opt)
    for _ in range(11):
        sched.step()
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    assert "optimizer" not in sched_state and sched_state["last_epoch"] == 11

    opt2 = make_opt((0.1, 0.01), cls=Adam)
    sched2 = make(opt2)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    assert sched2.get_last_lr() == [g["lr"] for g in opt2.param_groups]
    rows = [sched2.get_last_lr()]
    for _ in range(STEPS - 12):
        sched2.step()
        rows.append(sched2.get_last_lr())
    np.testing.assert_allclose(np.array(rows), straight[11:], rtol=1e-12)


def test_scheduler_load_state_sets_optimizer_lr() -> None:
    opt = make_opt()
    sched = CosineAnnealingLR(opt, T_max=10)
    for _ in range(4):
        sched.step()
    state = sched.state_dict()
    opt2 = make_opt()
    sched2 = CosineAnnealingLR(opt2, T_max=10)
    sched2.load_state_dict(state)  # without loading the optimizer's state
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
    sched2.step()
    sched.step()
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_resume_with_last_epoch_needs_initial_lr() -> None:
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(make_opt(), step_size=2, last_epoch=3)
    opt = make_opt()
    opt.param_groups[0]["initial_lr"] = 0.1
    sched = StepLR(opt, step_size=2, gamma=0.5, last_epoch=3)
    assert sched.last_epoch == 4 and sched.get_last_lr() == [pytest.approx(0.1 * 0.25)]


def test_scheduler_argument_errors() -> None:
    with pytest.raises(TypeError, match="not an Optimizer"):
        StepLR(object(), step_size=3)
    with pytest.raises(ValueError, match="step_size"):
        StepLR(make_opt(), step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        CosineAnnealingLR(make_opt(), T_max=0)
    with pytest.raises(ValueError, match="start_factor"):
        LinearLR(make_opt(), start_factor=0.0)
    with pytest.raises(ValueError, match="anneal_strategy"):
        OneCycleLR(make_opt(), max_lr=0.1, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="total_steps"):
        OneCycleLR(make_opt(), max_lr=0.1)


def test_lr_sequence_helper() -> None:
    rows = lr_sequence(lambda o: CosineAnnealingLR(o, T_max=8), steps=9, lr=0.5, groups=2)
    assert len(rows) == 9 and all(len(r) == 2 for r in rows)
    np.testing.assert_allclose([r[0] for r in rows], [0.25 * (1 + math.cos(math.pi * e / 8)) for e in range(9)])
