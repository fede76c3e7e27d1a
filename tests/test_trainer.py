"""Trainer: outputs, exact resume (epoch boundary and mid-epoch), Ctrl-C, NaN stop, evaluate/predict."""

from __future__ import annotations

import json
import math
import os
import signal

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl import nn, optim
from minitorch_nndl.data import DataLoader, TensorDataset
from minitorch_nndl.train import Accuracy, ConfusionMatrix, TopKAccuracy, Trainer, load_checkpoint

N, D, C, BS = 70, 6, 3, 16  # 5 batches per epoch, the last one short (6 samples)


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D)).astype(np.float32)
    w = rng.standard_normal((D, C)).astype(np.float32)
    return x, (x @ w).argmax(1).astype(np.int64)


def _setup(
    out_dir=None, seed: int = 0, callbacks=(), loss_fn=None, loader_cls=DataLoader, device="cpu", dropout=0.3, **kw
):
    """A fresh model/optimizer/scheduler/loader: identical for identical seeds.  On another
    ``device`` (tests/test_device_path.py) the model and both loaders live there."""
    mt.manual_seed(seed)
    x, y = _data()
    on = {} if device == "cpu" else {"device": device}
    model = nn.Sequential(nn.Linear(D, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, C))
    opt = optim.SGD(optim.split_weight_decay(model, 1e-3), lr=0.1, momentum=0.9, nesterov=True)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=5 * 4)
    loader = loader_cls(TensorDataset(x, y), batch_size=BS, shuffle=True, seed=123, **on)
    dev = DataLoader(TensorDataset(x[:40], y[:40]), batch_size=32, **on)
    trainer = Trainer(
        model,
        opt,
        loss_fn or nn.CrossEntropyLoss(label_smoothing=0.1),
        metrics=[Accuracy(), TopKAccuracy(2), ConfusionMatrix(C)],
        scheduler=sched,
        out_dir=out_dir,
        quiet=True,
        callbacks=callbacks,
        device=device,
        **kw,
    )
    return trainer, loader, dev


def _weights(trainer: Trainer) -> dict[str, np.ndarray]:
    return {k: mt.backend.to_numpy(v).copy() for k, v in trainer.model.state_dict().items()}


def _assert_same(a: Trainer, b: Trainer) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert np.array_equal(wa[k], wb[k]), f"{k} differs"
    sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    assert sa.keys() == sb.keys() and sa
    for i in sa:
        for name in sa[i]:
            assert np.array_equal(np.asarray(sa[i][name]), np.asarray(sb[i][name])), f"optimizer state {i}/{name}"
    assert a.optimizer.param_groups[0]["lr"] == b.optimizer.param_groups[0]["lr"]
    assert a.global_step == b.global_step and a.epoch == b.epoch


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Trainer:
    """The reference: 4 epochs without interruption."""
    trainer, loader, dev = _setup(tmp_path_factory.mktemp("straight"))
    result = trainer.fit(loader, dev, epochs=4, log_every=2)
    assert result.status == "completed"
    return trainer


def test_fit_writes_checkpoints_and_history(straight: Trainer) -> None:
    out = straight.out_dir
    for name in ("last.npz", "best.npz", "history.json", "history.csv", "history_steps.csv"):
        assert (out / name).exists(), name
    hist = json.loads((out / "history.json").read_text())
    assert [r["step"] for r in hist["steps"]] == list(range(1, 21))
    assert len(hist["epochs"]) == 4
    row = hist["epochs"][-1]
    for key in ("train_loss", "train_acc", "dev_loss", "dev_acc", "dev_top2", "lr", "seconds", "images_per_sec"):
        assert key in row and row[key] is not None and math.isfinite(row[key]), key
    assert row["dev_acc"] > 0.6  # a linearly separable problem: it learns
    lines = (out / "history.csv").read_text().strip().splitlines()
    assert lines[0].startswith("epoch,") and len(lines) == 5
    # the epoch's train loss is the sample-weighted mean of the step losses
    steps_e0 = [r["loss"] for r in hist["steps"] if r["epoch"] == 1]
    weights = [16, 16, 16, 16, 6]
    assert hist["epochs"][0]["train_loss"] == pytest.approx(np.dot(steps_e0, weights) / N, rel=1e-6)
    ck = load_checkpoint(out / "last.npz")
    assert ck["trainer"]["epoch"] == 4 and ck["trainer"]["global_step"] == 20
    best = load_checkpoint(out / "best.npz")
    assert best["trainer"]["best_acc"] == pytest.approx(max(r["dev_acc"] for r in hist["epochs"]))


def test_history_numbers_epochs_from_1_like_the_console_and_ends_lines_with_lf(straight: Trainer, capsys) -> None:
    out = straight.out_dir
    hist = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in hist["epochs"]] == [1, 2, 3, 4]
    assert sorted({r["epoch"] for r in hist["steps"]}) == [1, 2, 3, 4]
    assert [r["epoch"] for r in hist["steps"]][:6] == [1, 1, 1, 1, 1, 2]  # 5 steps per epoch
    best = load_checkpoint(out / "best.npz")["trainer"]
    assert straight.best_epoch == best["best_epoch"] == best["epoch"]  # best.npz holds epoch number best_epoch
    for name in ("history.csv", "history_steps.csv"):
        data = (out / name).read_bytes()
        assert b"\r" not in data and data.endswith(b"\n"), name
    rows = (out / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in rows[1:]] == ["1", "2", "3", "4"]
    # the console line of an epoch carries the number the files carry
    trainer, loader, dev = _setup(None)
    trainer.fit(loader, dev, epochs=1)
    assert capsys.readouterr().out.startswith("epoch   1 |")
    assert trainer.history.epochs[0]["epoch"] == 1


def test_resume_at_epoch_boundary_is_exact(straight: Trainer, tmp_path) -> None:
    first, loader, dev = _setup(tmp_path)
    assert first.fit(loader, dev, epochs=2).status == "completed"
    # a new process: new objects, different initial weights and global RNG
    second, loader2, dev2 = _setup(tmp_path, seed=99)
    result = second.fit(loader2, dev2, epochs=4, resume=tmp_path / "last.npz")
    assert result.status == "completed"
    _assert_same(straight, second)
    hist = json.loads((tmp_path / "history.json").read_text())
    assert [r["step"] for r in hist["steps"]] == list(range(1, 21))
    ref = json.loads((straight.out_dir / "history.json").read_text())
    assert [r["loss"] for r in hist["steps"]] == [r["loss"] for r in ref["steps"]]


class _Interrupt:
    """A callback raising KeyboardInterrupt after the given step."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def __call__(self, trainer: Trainer) -> None:
        if trainer.global_step == self.at_step:
            raise KeyboardInterrupt


class _ReplayLoader(DataLoader):
    """A loader whose state has no batch index, so the Trainer must replay batches to resume."""

    def state_dict(self):
        state = super().state_dict()
        state.pop("batch_index")
        return state


@pytest.mark.parametrize("loader_cls", [DataLoader, _ReplayLoader])
def test_interrupt_mid_epoch_then_resume_is_exact(straight: Trainer, tmp_path, loader_cls) -> None:
    first, loader, dev = _setup(tmp_path, callbacks=[_Interrupt(7)], loader_cls=loader_cls)
    result = first.fit(loader, dev, epochs=4)
    assert result.status == "interrupted"
    assert "step 7" in result.message and "last.npz" in result.message
    assert "resume" not in result.message.lower()  # the program around the Trainer prints the one resume hint
    ck = load_checkpoint(tmp_path / "last.npz")
    assert ck["trainer"]["epoch"] == 1 and ck["trainer"]["batch_in_epoch"] == 2 and ck["trainer"]["global_step"] == 7
    second, loader2, dev2 = _setup(tmp_path, seed=5, loader_cls=loader_cls)
    assert second.fit(loader2, dev2, epochs=4, resume=tmp_path / "last.npz").status == "completed"
    _assert_same(straight, second)
    # the interrupted epoch's summary counts all of its samples
    hist = json.loads((tmp_path / "history.json").read_text())
    ref = json.loads((straight.out_dir / "history.json").read_text())
    assert hist["epochs"][1]["train_loss"] == pytest.approx(ref["epochs"][1]["train_loss"], rel=1e-12)
    assert hist["epochs"][1]["train_acc"] == ref["epochs"][1]["train_acc"]


def test_keyboard_interrupt_inside_the_loss_saves_last_completed_step(straight: Trainer, tmp_path) -> None:
    calls = {"n": 0}
    ce = nn.CrossEntropyLoss(label_smoothing=0.1)

    def loss_fn(logits, y):
        calls["n"] += logits.requires_grad  # count training steps, not dev evaluations
        if calls["n"] == 12 and logits.requires_grad:  # during the forward of step 12
            raise KeyboardInterrupt
        return ce(logits, y)

    first, loader, dev = _setup(tmp_path, loss_fn=loss_fn)
    assert first.fit(loader, dev, epochs=4).status == "interrupted"
    assert load_checkpoint(tmp_path / "last.npz")["trainer"]["global_step"] == 11
    second, loader2, dev2 = _setup(tmp_path, seed=3)
    second.fit(loader2, dev2, epochs=4, resume=tmp_path / "last.npz")
    _assert_same(straight, second)


def test_real_sigint_stops_after_the_step(straight: Trainer, tmp_path) -> None:
    def press_ctrl_c(trainer: Trainer) -> None:
        if trainer.global_step == 9:
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    first, loader, dev = _setup(tmp_path, callbacks=[press_ctrl_c])
    result = first.fit(loader, dev, epochs=4)
    assert signal.getsignal(signal.SIGINT) is before  # the handler is restored
    assert result.status == "interrupted"
    assert load_checkpoint(tmp_path / "last.npz")["trainer"]["global_step"] == 9
    second, loader2, dev2 = _setup(tmp_path, seed=1)
    second.fit(loader2, dev2, epochs=4, resume=tmp_path / "last.npz")
    _assert_same(straight, second)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, capsys) -> None:
    calls = {"n": 0}
    ce = nn.CrossEntropyLoss()

    def loss_fn(logits, y):
        calls["n"] += logits.requires_grad  # count training steps, not dev evaluations
        loss = ce(logits, y)
        return loss * float("nan") if calls["n"] == 8 and logits.requires_grad else loss

    trainer, loader, dev = _setup(tmp_path, loss_fn=loss_fn)
    result = trainer.fit(loader, dev, epochs=4, log_every=3)
    assert result.status == "nan"
    assert "step 8" in result.message and "epoch 2" in result.message
    assert "step 8" in capsys.readouterr().err
    ck = load_checkpoint(tmp_path / "last.npz")
    assert ck["trainer"]["epoch"] == 1 and ck["trainer"]["global_step"] == 5  # the end of epoch 1
    for name, w in ck["model"].items():
        assert np.isfinite(w).all(), name
    assert all(np.isfinite(p.numpy()).all() for p in trainer.model.parameters())  # step 8 was never applied
    hist = json.loads((tmp_path / "history.json").read_text())
    assert [r["step"] for r in hist["steps"]] == list(range(1, 8))


def test_diverging_run_stops_at_the_nan_check_without_numpy_warnings(tmp_path, recwarn) -> None:
    trainer, loader, dev = _setup(tmp_path)
    for group in trainer.optimizer.param_groups:
        group["lr"] = group["initial_lr"] = 1e8
    trainer.scheduler = None
    result = trainer.fit(loader, dev, epochs=2)
    assert result.status == "nan"
    assert "learning rate" in result.message and "1e+08" in result.message and "lower" in result.message
    assert [w for w in recwarn if issubclass(w.category, RuntimeWarning)] == []


def test_finite_training_losses_but_a_nan_dev_loss_stop_the_run(tmp_path, recwarn) -> None:
    """Huge but finite weights: the training loss was fine, evaluating them overflows.  Stop, do not select them."""

    def blow_up(trainer: Trainer) -> None:
        if trainer.global_step == 10:  # the last step of epoch 2
            trainer.model[-1].weight.data[...] = np.float32(3e38)

    trainer, loader, dev = _setup(tmp_path, callbacks=[blow_up])
    result = trainer.fit(loader, dev, epochs=4)
    assert result.status == "nan"
    assert "non-finite dev loss" in result.message and "after epoch 2" in result.message and "lower" in result.message
    assert load_checkpoint(tmp_path / "last.npz")["trainer"]["epoch"] == 1  # epoch 2's weights were not saved
    assert len(trainer.history.epochs) == 1 and result.best_epoch == 1
    assert [w for w in recwarn if issubclass(w.category, RuntimeWarning)] == []


def test_nan_weights_are_never_checkpointed(tmp_path) -> None:
    def poison(trainer: Trainer) -> None:
        if trainer.global_step == 3:
            p = next(trainer.model.parameters())
            p.data[...] = np.nan

    trainer, loader, dev = _setup(tmp_path, callbacks=[poison])
    result = trainer.fit(loader, dev, epochs=2)
    assert result.status == "nan"
    assert not (tmp_path / "last.npz").exists()
    assert "step 4" in result.message  # the first loss computed with the poisoned weights


def test_evaluate_and_predict_match_numpy(tmp_path) -> None:
    trainer, loader, dev = _setup(None)
    trainer.fit(loader, None, epochs=1)
    assert trainer.model.training
    x, y = _data()
    res = trainer.evaluate(DataLoader(TensorDataset(x, y), batch_size=32))  # 32, 32, 6
    assert trainer.model.training  # mode restored
    trainer.model.eval()
    with mt.no_grad():
        logits = trainer.model(mt.tensor(x)).numpy().astype(np.float64)
    trainer.model.train()
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    smoothed = 0.9 * -logp[np.arange(N), y] + 0.1 * -logp.mean(1)  # the training loss has label smoothing 0.1
    assert res["loss"] == pytest.approx(smoothed.mean(), rel=1e-5)
    assert res["acc"] == pytest.approx(float((logits.argmax(1) == y).mean()))
    assert res["confusion"].sum() == N
    probs = trainer.predict(x, probs=True, batch_size=32).numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probs.argmax(1), logits.argmax(1))


def test_no_dev_set_best_is_latest_and_epoch_scheduler(tmp_path) -> None:
    trainer, loader, _ = _setup(tmp_path, scheduler_step="epoch")
    trainer.scheduler = optim.lr_scheduler.StepLR(trainer.optimizer, step_size=1, gamma=0.5)
    lr0 = trainer.lr()
    result = trainer.fit(loader, None, epochs=2)
    assert result.status == "completed"
    assert trainer.lr() == pytest.approx(lr0 * 0.25)
    assert load_checkpoint(tmp_path / "best.npz")["trainer"]["epoch"] == 2


def test_grad_clip_bounds_the_global_norm() -> None:
    norms = []

    def record(trainer: Trainer) -> None:
        g = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        norms.append(float(np.sqrt(sum(float((a.astype(np.float64) ** 2).sum()) for a in g))))

    trainer, loader, _ = _setup(None, callbacks=[record], grad_clip=0.05)
    trainer.fit(loader, None, epochs=1)
    assert len(norms) == 5 and max(norms) <= 0.05 * (1 + 1e-4)


def test_bad_arguments() -> None:
    trainer, loader, _ = _setup(None)
    with pytest.raises(ValueError, match="log_every"):
        trainer.fit(loader, log_every=0)
    with pytest.raises(ValueError, match="scheduler_step"):
        Trainer(trainer.model, trainer.optimizer, trainer.loss_fn, scheduler_step="step")


def test_same_seed_same_run_different_seed_different_run(straight: Trainer, tmp_path) -> None:
    """Determinism on the CPU: a second run with the seed of `straight` reproduces it bit for bit."""
    again, loader, dev = _setup(tmp_path / "again")
    again.fit(loader, dev, epochs=4, log_every=2)
    _assert_same(straight, again)
    other, loader, dev = _setup(tmp_path / "other", seed=1)
    other.fit(loader, dev, epochs=4, log_every=2)
    assert not np.array_equal(_weights(other)["0.weight"], _weights(straight)["0.weight"])
