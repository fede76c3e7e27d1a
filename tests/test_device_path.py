"""The CUDA path end to end, on every device the suite runs on (the stand-in "fakecuda" in a
default run without a GPU): tensors and host data, a second GPU, the Trainer (fit, evaluate,
checkpoints, exact resume, NaN stop, Ctrl-C), the DataLoader's device path, and training steps
that never wait for the device."""

from __future__ import annotations

import contextlib
import os
import signal

import fakecuda
import numpy as np
import pytest
from test_trainer import BS, _data, _weights
from test_trainer import _setup as trainer_setup

import minitorch_nndl as mt
from minitorch_nndl import backend, nn, optim
from minitorch_nndl.data import DataLoader, TensorDataset
from minitorch_nndl.train import Trainer, load_checkpoint


def _on_stand_in(device: str) -> bool:
    return device != "cpu" and fakecuda.installed()


@contextlib.contextmanager
def _no_transfers(device: str):
    """Inside the block, no device->host sync and no host->device copy may happen (checked on
    the stand-in, which counts them; a no-op on the CPU and on a real GPU)."""
    if not _on_stand_in(device):
        yield None
        return
    with fakecuda.counting() as seen:
        yield seen
    assert not seen.syncs and not seen.h2d, seen.report()


def test_device_fixture_names_devices_as_tensors_do(device) -> None:
    assert backend.normalize_device(device) == device
    assert mt.zeros(2, device=device).device == device


def test_setitem_takes_host_values_on_any_device(device) -> None:
    t = mt.zeros(4, device=device)
    t[:] = np.arange(4)
    assert t.numpy().tolist() == [0, 1, 2, 3]
    t[1:3] = [7, 8]
    t[0] = np.float32(5)
    t[np.array([3])] = 9.0
    assert t.numpy().tolist() == [5, 7, 8, 9]
    assert t.dtype == np.float32 and t.device == device


def test_tensor_from_device_scalars(device) -> None:
    x = mt.arange(4.0, device=device)
    t = mt.tensor([x.data.sum(), x.data.max()])
    assert t.device == device and t.dtype == np.float32
    assert t.numpy().tolist() == [6.0, 3.0]
    assert mt.tensor([x.data[0], 2.0], device=device).numpy().tolist() == [0.0, 2.0]


def test_non_contiguous_device_inputs(device) -> None:
    base = mt.randn(4, 6, device=device)
    x = mt.Tensor._wrap(base.data.T)  # a transposed view, as ops produce them
    x.requires_grad_(True)
    assert not x.data.flags.c_contiguous
    image = mt.Tensor._wrap(mt.randn(2, 3, 6, 5, device=device).data.transpose(0, 1, 3, 2)).requires_grad_(True)
    conv = nn.Conv2d(3, 4, 3, padding=1).to(device)
    out = conv(image).sum() + (x @ mt.randn(4, 2, device=device)).relu().sum()
    out.backward()
    ref_image = mt.tensor(image.numpy(), requires_grad=True)
    ref_conv = nn.Conv2d(3, 4, 3, padding=1)
    ref_conv.load_state_dict({k: backend.to_numpy(v) for k, v in conv.state_dict().items()})
    ref_conv(ref_image).sum().backward()
    np.testing.assert_allclose(
        image.grad.get() if device != "cpu" else image.grad, ref_image.grad, rtol=1e-4, atol=1e-4
    )
    assert x.grad.shape == (6, 4)


# ----------------------------------------------------------------------------- a second GPU
@pytest.fixture
def second_gpu(device) -> str:
    if device == "cpu" or mt.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices (the stand-in has two)")
    return "cuda:1"


def test_ops_on_a_second_gpu_stay_there(second_gpu) -> None:
    x = mt.randn(4, 3, device=second_gpu, requires_grad=True)
    w = mt.randn(3, 2, device=second_gpu, requires_grad=True)
    y = (x * 2) + x
    assert y.device == second_gpu
    loss = ((y @ w).relu().sum() + y.max() + y.mean(axis=0).sum()) / 3
    loss.backward()
    assert x.grad is not None and backend.device_of(x.grad) == second_gpu
    assert backend.device_of(w.grad) == second_gpu


def test_a_cnn_trains_on_a_second_gpu(second_gpu) -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 3)
    ).to(second_gpu)
    x = mt.randn(2, 3, 4, 4, device=second_gpu)
    y = mt.tensor([0, 2], device=second_gpu)
    for opt in (optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4), optim.Adam(model.parameters())):
        loss = nn.CrossEntropyLoss(label_smoothing=0.1)(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(p.device == second_gpu for p in model.parameters())
    assert all(backend.device_of(b.data) == second_gpu for b in model.buffers())
    x.to("cuda:0")  # a copy across GPUs
    assert x.to("cuda:0").to(second_gpu).device == second_gpu


def test_a_model_built_on_a_second_gpu_round_trips_a_checkpoint(second_gpu, tmp_path) -> None:
    """Initialisation, state_dict, load_state_dict and the optimizer's state all work on cuda:1."""
    from minitorch_nndl.train import restore_model, restore_optimizer, save_checkpoint

    model = mt.models.resnet10(num_classes=3, width=4, device=second_gpu)  # init_.* on cuda:1
    opt = optim.AdamW(model.parameters())
    loss = model(mt.randn(2, 3, 8, 8, device=second_gpu)).sum()
    loss.backward()
    opt.step()
    model.load_state_dict(model.state_dict())
    opt.load_state_dict(opt.state_dict())
    save_checkpoint(tmp_path / "ck.npz", model=model, optimizer=opt)
    ck = load_checkpoint(tmp_path / "ck.npz")
    restore_model(model, ck["model"])
    restore_optimizer(opt, ck["optimizer"])
    first = next(model.parameters())
    assert first.device == second_gpu and backend.device_of(opt.state[first]["exp_avg"]) == second_gpu


# ----------------------------------------------------------------------------- the Trainer
def _setup(device: str, out_dir=None, loss_fn=None):
    """test_trainer's model, optimizer, schedule and loaders, on ``device``, without dropout:
    a checkpoint holds the CPU generator's state only, so on a GPU a resumed run draws other
    dropout masks (the GPU generators are not checkpointed yet)."""
    return trainer_setup(out_dir, loss_fn=loss_fn, device=device, dropout=0.0)


def _interrupt_at(step: int):
    """A callback that presses Ctrl-C after optimizer step ``step``."""

    def interrupt(trainer: Trainer) -> None:
        if trainer.global_step == step:
            os.kill(os.getpid(), signal.SIGINT)

    return interrupt


def test_trainer_fit_evaluate_checkpoint_and_exact_resume(device, tmp_path) -> None:
    straight, loader, dev = _setup(device, tmp_path / "a")
    result = straight.fit(loader, dev, epochs=3)
    assert result.status == "completed"
    assert all(p.device == device for p in straight.model.parameters())
    scores = straight.evaluate(dev)
    assert 0.0 <= scores["acc"] <= 1.0 and np.isfinite(scores["loss"])

    first, loader1, dev1 = _setup(device, tmp_path / "b")
    first.fit(loader1, dev1, epochs=2)
    ck = load_checkpoint(tmp_path / "b" / "last.npz")
    assert all(isinstance(v, np.ndarray) for v in ck["model"].values())  # saved on the host
    second, loader2, dev2 = _setup(device, tmp_path / "b")
    second.fit(loader2, dev2, epochs=3, resume=tmp_path / "b" / "last.npz")
    a, b = _weights(straight), _weights(second)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert all(p.device == device for p in second.model.parameters())


def test_nan_loss_stops_with_the_last_good_weights_in_memory(device, tmp_path) -> None:
    """On a GPU the loss is only read at log points; the steps between a NaN and that point
    must not touch the weights (a device-side flag gates them), so the model in memory is the
    one from before the bad step, as on the CPU."""
    calls = {"n": 0}
    ce = nn.CrossEntropyLoss()

    def loss_fn(logits, y):
        calls["n"] += logits.requires_grad
        loss = ce(logits, y)
        return loss * float("nan") if calls["n"] == 8 and logits.requires_grad else loss

    stopped_at_7, loader, _ = _setup(device, loss_fn=ce)  # the weights after step 7 are the ones wanted
    stopped_at_7.callbacks.append(_interrupt_at(7))
    assert stopped_at_7.fit(loader, None, epochs=2).status == "interrupted"
    trainer, loader, dev = _setup(device, tmp_path, loss_fn=loss_fn)
    result = trainer.fit(loader, dev, epochs=4, log_every=5)  # the NaN (step 8) is read at step 10
    assert result.status == "nan"
    assert "step 8" in result.message
    good = _weights(stopped_at_7)
    now = _weights(trainer)
    for k in good:
        np.testing.assert_array_equal(now[k], good[k], err_msg=k)
    assert np.isfinite(load_checkpoint(tmp_path / "last.npz")["model"]["0.weight"]).all()


def test_ctrl_c_saves_a_checkpoint_that_resumes_on_the_device(device, tmp_path) -> None:
    trainer, loader, dev = _setup(device, tmp_path)
    trainer.callbacks.append(_interrupt_at(7))
    result = trainer.fit(loader, dev, epochs=3)
    assert result.status == "interrupted"
    assert load_checkpoint(tmp_path / "last.npz")["trainer"]["global_step"] == 7
    again, loader2, dev2 = _setup(device, tmp_path)
    assert again.fit(loader2, dev2, epochs=3, resume=tmp_path / "last.npz").status == "completed"
    assert again.global_step == 15


def test_a_training_step_never_waits_for_the_device(device) -> None:
    trainer, loader, dev = _setup(device)
    batches = list(loader)
    trainer.model.train()
    trainer._train_step(*batches[0])  # lazily created state (momentum buffers) on the first step
    with _no_transfers(device):
        for x, y in batches[1:4]:
            trainer._train_step(x, y)
    assert trainer.global_step == 4


def test_resnet_training_step_never_waits_for_the_device(device) -> None:
    model = mt.models.resnet10(num_classes=4, width=4, stem="cifar").to(device)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    x = mt.randn(2, 3, 8, 8, device=device)
    y = mt.tensor([1, 3], device=device)
    for step in range(2):
        with _no_transfers(device) if step else contextlib.nullcontext():
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert np.isfinite(loss.item())


@pytest.mark.parametrize("prefetch", [0, 2])
def test_dataloader_delivers_batches_on_the_device(device, prefetch) -> None:
    x, y = _data()
    loader = DataLoader(TensorDataset(x, y), batch_size=BS, shuffle=True, seed=5, device=device, prefetch=prefetch)
    host = DataLoader(TensorDataset(x, y), batch_size=BS, shuffle=True, seed=5)
    for (xb, yb), (xh, yh) in zip(loader, host):
        assert xb.device == device and yb.device == device
        np.testing.assert_array_equal(xb.numpy(), xh.numpy())
        np.testing.assert_array_equal(yb.numpy(), yh.numpy())


# ----------------------------------------------------------------------------- the example
def _run_example(device: str, tmp_path) -> None:
    import importlib.util
    import sys
    from pathlib import Path

    from minitorch_nndl.data.synthetic import write_fake_cifar10

    path = Path(__file__).resolve().parent.parent / "examples" / "resnet18_cifar10.py"
    spec = importlib.util.spec_from_file_location("resnet18_cifar10_on_device", path)
    example = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(example)
    finally:
        sys.path.remove(str(path.parent))
    data = tmp_path / "data"
    write_fake_cifar10(data, n_per_batch=20, archive=False, extracted=True, seed=0)
    out = tmp_path / "run"
    argv = ["--data-dir", str(data), "--device", device, "--arch", "resnet10", "--width", "4"]
    argv += ["--batch-size", "16", "--epochs", "1", "--quiet", "--out", str(out)]
    assert example.main(argv) == 0
    ck = load_checkpoint(out / "last.npz")
    assert ck["trainer"]["global_step"] == 5  # data_batch_1..4: 80 training images at batch 16
    assert all(np.isfinite(w).all() for w in ck["model"].values())
    assert (out / "test_summary.json").exists() and (out / "curves.png").exists()


def test_the_example_trains_one_epoch_on_the_device(device, tmp_path) -> None:
    """What a GPU user runs first: one epoch of the example, then evaluation and plots."""
    _run_example(device, tmp_path)


def test_the_example_trains_on_a_second_gpu(second_gpu, tmp_path) -> None:
    """--device cuda:1 while cuda:0 is the current GPU: every step stays on cuda:1."""
    _run_example(second_gpu, tmp_path)


def test_the_example_names_a_device_it_cannot_use(tmp_path, capsys) -> None:
    from minitorch_nndl import cli

    assert cli.device_name("CUDA:1") == "cuda:1" and cli.device_name("cpu") == "cpu"
    with pytest.raises(Exception, match="cpu, cuda or cuda:N"):
        cli.device_name("gpu")
    with pytest.raises(cli.DataError, match="cuda:7"):
        cli.check_cuda("cuda:7", "instead: --device cpu")
