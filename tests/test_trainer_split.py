"""The Trainer's parts on their own: one path for a batch (device taken from the model, a batch
elsewhere is an error), the run's Position, the interrupt guard's update window, the epoch meter."""

from __future__ import annotations

import json

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl import nn, optim
from minitorch_nndl.data import DataLoader, TensorDataset
from minitorch_nndl.train import Trainer, load_checkpoint
from minitorch_nndl.train.interrupt import InterruptGuard
from minitorch_nndl.train.position import Position
from minitorch_nndl.train.reporting import EpochMeter, epoch_summary

N, D, C = 40, 5, 3


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D)).astype(np.float32)
    return x, (x @ rng.standard_normal((D, C))).argmax(1).astype(np.int64)


def _model() -> nn.Module:
    mt.manual_seed(0)
    return nn.Sequential(nn.Linear(D, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, C))


def _trainer(model: nn.Module, **kw) -> Trainer:
    return Trainer(model, optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), quiet=True, **kw)


# ----------------------------------------------------------------------------- one path for a batch
def test_the_trainer_runs_where_the_model_is(device) -> None:
    model = _model().to(device)
    trainer = _trainer(model)
    assert trainer.device == device
    x, y = _data()
    loader = DataLoader(TensorDataset(x, y), batch_size=16, device=device)
    assert trainer.fit(loader, epochs=1).status == "completed"
    assert all(p.device == device for p in model.parameters())


def test_device_argument_moves_the_model_once_as_before(device) -> None:
    model = _model()
    trainer = _trainer(model, device=device)
    assert trainer.device == device and all(p.device == device for p in model.parameters())
    assert _trainer(model, device=device).device == device  # agreeing with the model: nothing to do


def test_numpy_batches_from_a_plain_iterable_train_on_the_cpu() -> None:
    x, y = _data()
    trainer = _trainer(_model())
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, N, 16)]
    assert trainer.fit(batches, epochs=2).status == "completed"
    assert trainer.global_step == 6
    assert trainer.evaluate(batches)["acc"] >= 0.0
    assert trainer.predict(x).shape == (N, C)


def test_a_batch_on_another_device_is_an_error_naming_both(device) -> None:
    if device == "cpu":
        pytest.skip("needs a second device (a GPU or the stand-in)")
    x, y = _data()
    on_gpu = _trainer(_model().to(device))
    host_loader = DataLoader(TensorDataset(x, y), batch_size=16)  # the batches stay on the CPU
    with pytest.raises(ValueError, match=f"on cpu but the model is on {device}.*device='{device}'"):
        on_gpu.fit(host_loader, epochs=1)
    with pytest.raises(ValueError, match=f"on cpu but the model is on {device}"):
        on_gpu.evaluate([(x, y)])  # NumPy arrays are host data: not moved either
    with pytest.raises(ValueError, match=f"input is on cpu but the model is on {device}"):
        on_gpu.predict(x)
    assert on_gpu.predict(mt.tensor(x, device=device)).device == device
    on_cpu = _trainer(_model())
    device_loader = DataLoader(TensorDataset(x, y), batch_size=16, device=device)
    with pytest.raises(ValueError, match=f"on {device} but the model is on cpu"):
        on_cpu.fit(device_loader, epochs=1)


# ----------------------------------------------------------------------------- the parts
def test_position_round_trips_through_a_checkpoint_and_resumes_once(tmp_path) -> None:
    x, y = _data()
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, seed=4)
    trainer = _trainer(_model(), out_dir=tmp_path)
    trainer.fit(loader, epochs=1)
    ck = load_checkpoint(tmp_path / "last.npz")
    pos = Position.from_checkpoint({k: ck[k] for k in ("trainer", "loader")})
    assert (pos.epoch, pos.batch_in_epoch, pos.global_step, pos.resuming) == (1, 0, 3, True)
    assert pos.loader_epoch_start == {"seed": 4, "epoch": 1, "batch_index": 0}
    resumed = Position.from_checkpoint(ck)
    assert resumed.rng_after_step is ck["rng"]["now"] and resumed.rng_epoch_start is ck["rng"]["epoch_start"]
    batches = resumed.start_epoch(loader)
    assert not resumed.resuming and len(list(batches)) == 3  # the resume is spent: later epochs start afresh
    assert Position().state_dict({"now": 1})["trainer"] == {"epoch": 0, "batch_in_epoch": 0, "global_step": 0}


def test_an_interrupt_inside_the_update_saves_nothing(tmp_path) -> None:
    x, y = _data()
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    trainer = _trainer(_model(), out_dir=tmp_path)
    step = trainer.optimizer.step

    def step_then_interrupt() -> None:
        step()
        if trainer.global_step == 4:  # the 5th update has been applied, the position not advanced
            raise KeyboardInterrupt

    trainer.optimizer.step = step_then_interrupt
    result = trainer.fit(loader, epochs=3)
    assert result.status == "interrupted" and "NOT updated" in result.message
    assert load_checkpoint(tmp_path / "last.npz")["trainer"]["global_step"] == 3  # the end of epoch 1
    guard = InterruptGuard()
    with guard:
        with guard.updating():
            pass
        assert not guard.in_update and not guard.stop_requested


def test_epoch_meter_carries_an_interrupted_epoch_over() -> None:
    meter = EpochMeter()
    meter.start()
    meter.update(np.float32(2.0), np.array([[1.0, 0.0]]), np.array([0]), 1)
    meter.update(np.float32(1.0), np.array([[0.0, 1.0]]), np.array([0]), 3)
    state = json.loads(json.dumps(meter.state_dict()))
    again = EpochMeter()
    again.load_state_dict(state)
    again.start(carry_on=True)
    row = again.row(epoch=2, steps=7, lr=0.1)
    assert row["train_loss"] == pytest.approx(5.0 / 4) and row["train_acc"] == 0.5 and again.images == 4
    assert row["seconds"] >= state["epoch_seconds"]
    line = epoch_summary({**row, "dev_loss": 0.5, "dev_acc": 0.75}, improved=True)
    assert line.startswith("epoch   2 | train loss 1.2500 acc  50.00% | dev loss 0.5000 acc  75.00% *")


def test_the_progress_bar_shows_on_stderr_and_the_summary_on_stdout(capsys) -> None:
    x, y = _data()
    model = _model()
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), quiet=False)
    assert trainer.fit(DataLoader(TensorDataset(x, y), batch_size=16), epochs=2, log_every=1).ok
    out, err = capsys.readouterr()
    assert [line.split(" |")[0] for line in out.splitlines()] == ["epoch   1", "epoch   2"]
    assert "epoch 1/2" in err and "epoch 2/2" in err  # one bar per epoch, closed at its end
