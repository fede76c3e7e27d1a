"""nn.ProcessReplicas: evaluation split over forked copies of the model gives the model's outputs,
and refuses (or steps aside) wherever the copies could differ from the model."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl import models, nn
from minitorch_nndl.kernels import parallel
from minitorch_nndl.train.evaluation import evaluate, predict
from minitorch_nndl.train.metrics import Accuracy

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="ProcessReplicas forks (no os.fork here)")


def _small_resnet(dtype: str = "float64") -> nn.Module:
    mt.manual_seed(0)
    return models.resnet18(width=4, dtype=dtype).eval()


def _images(n: int, dtype: str = "float64") -> mt.Tensor:
    return mt.tensor(np.random.default_rng(n).standard_normal((n, 3, 8, 8)).astype(dtype))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("processes, n", [(2, 6), (2, 7), (3, 7), (3, 2), (2, 1)])
def test_outputs_are_the_models(processes: int, n: int) -> None:
    model, x = _small_resnet(), _images(n)
    with mt.inference_mode():
        expected = model(x).data
        with nn.ProcessReplicas(model, processes=processes) as replicas:
            assert replicas.processes == processes and not replicas._replicas  # forked by the first call
            first = replicas(x)  # the model itself, then the fork
            got = replicas(x)
            again = replicas(x[: max(1, n - 1)])  # the replicas serve more than one batch
            assert len(replicas._replicas) == (processes - 1 if n > 1 else 0)
        np.testing.assert_array_equal(first.data, expected)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_allclose(got.data, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(again.data, expected[: max(1, n - 1)], rtol=1e-12, atol=1e-12)


def test_float32_stays_float32_and_matches() -> None:
    model, x = _small_resnet("float32"), _images(6, "float32")
    with mt.inference_mode(), nn.ProcessReplicas(model, processes=2) as replicas:
        replicas(x)
        got, expected = replicas(x), model(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.data, expected.data, rtol=1e-5, atol=1e-5)


def test_close_ends_the_replicas() -> None:
    model = _small_resnet()
    with mt.inference_mode():
        replicas = nn.ProcessReplicas(model, processes=3)
        replicas(_images(4))
        pids = [pid for pid, _ in replicas._replicas]
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        replicas.close()
        assert not any(_alive(pid) for pid in pids)  # killed and reaped (no zombies)
        np.testing.assert_allclose(replicas(_images(4)).data, model(_images(4)).data)  # alone now
        replicas.close()  # twice is fine


def test_made_outside_inference_mode() -> None:
    with pytest.raises(RuntimeError, match=r"ProcessReplicas: make them inside .*inference_mode"):
        nn.ProcessReplicas(_small_resnet(), processes=2)


@pytest.mark.parametrize("processes", [0, -1, 1.5, "2"])
def test_bad_process_count(processes: object) -> None:
    with mt.inference_mode(), pytest.raises(ValueError, match="ProcessReplicas: processes must be a positive int"):
        nn.ProcessReplicas(_small_resnet(), processes=processes)


def test_training_mode_is_refused_or_skipped() -> None:
    model = _small_resnet().train()
    with mt.inference_mode():
        with pytest.raises(ValueError, match=r"in 2 processes: the model is in training mode"):
            nn.ProcessReplicas(model, processes=2)
        assert nn.ProcessReplicas(model).processes == 1  # automatic: one process, the model itself
        model.eval()
        model.layer1[0].bn1.train()
        with pytest.raises(ValueError, match=r"layer1\.0\.bn1 is in training mode"):
            nn.ProcessReplicas(model, processes=2)


def test_hooks_are_refused_and_checked_on_every_call() -> None:
    model, x = _small_resnet(), _images(4)
    with mt.inference_mode():
        handle = model.layer2.register_forward_hook(lambda module, inputs, output: None)
        with pytest.raises(ValueError, match="layer2 has forward hooks"):
            nn.ProcessReplicas(model, processes=2)
        handle.remove()
        with nn.ProcessReplicas(model, processes=2) as replicas:
            model.fc.register_forward_hook(lambda module, inputs, output: None)
            with pytest.raises(RuntimeError, match="the model changed since the replicas were made: fc has forward"):
                replicas(x)


def test_weights_are_fixed_while_they_live() -> None:
    model, x = _small_resnet(), _images(4)
    weight = model.fc.weight
    with mt.inference_mode():
        replicas = nn.ProcessReplicas(model, processes=2)
        with pytest.raises(ValueError, match="read-only"):
            weight.data[...] = 0.0  # the replicas would keep the old weights
        weight.data = weight.data.copy()  # replaced: the check on the next call sees it
        with pytest.raises(RuntimeError, match="parameters or buffers were replaced"):
            replicas(x)
        replicas.close()
    weight.data[...] = 0.0  # writable again once the block has ended
    assert not weight.data.any()


def test_one_process_is_the_model_itself_and_locks_nothing() -> None:
    model, x = _small_resnet(), _images(4)
    with mt.inference_mode(), nn.ProcessReplicas(model, processes=1) as replicas:
        np.testing.assert_array_equal(replicas(x).data, model(x).data)
        np.testing.assert_array_equal(replicas(x).data, model(x).data)
        assert not replicas._replicas and model.fc.weight.data.flags.writeable


def test_used_in_another_block() -> None:
    model, x = _small_resnet(), _images(4)
    with mt.inference_mode():
        replicas = nn.ProcessReplicas(model, processes=2)
    try:
        with (
            mt.inference_mode(),
            pytest.raises(RuntimeError, match=r"outside the inference_mode.. block \(or the thread\)"),
        ):
            replicas(x)
    finally:
        replicas.close()


class _FailsInReplicas(nn.Module):
    """Raises for batches of three images: the replicas' shares of eight images over three processes."""

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        if x.shape[0] == 3:
            raise ValueError("no three images here")
        return x.flatten(1)


def test_an_error_in_a_replica_is_raised_and_ends_them() -> None:
    with mt.inference_mode():
        replicas = nn.ProcessReplicas(_FailsInReplicas().eval(), processes=3)
        replicas(mt.tensor(np.zeros((8, 2))))  # the first call: the model itself, then the fork
        pids = [pid for pid, _ in replicas._replicas]
        with pytest.raises(RuntimeError, match=r"replica 1 \(pid \d+\), images 2\.\.4 failed: ValueError: no three"):
            replicas(mt.tensor(np.zeros((8, 2))))  # shares 0..1, 2..4, 5..7
        assert not any(_alive(pid) for pid in pids)


def test_a_replica_that_died_is_one_clear_error() -> None:
    model, x = _small_resnet(), _images(4)
    with mt.inference_mode():
        replicas = nn.ProcessReplicas(model, processes=3)
        replicas(x)
        (_, _), (pid, _) = replicas._replicas
        os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer would (close() reaps it)
        ended = r"ProcessReplicas: replica 2 \(pid \d+\)(, images 2\.\.3)? (has ended|ended before it answered)"
        with pytest.raises(RuntimeError, match=ended):
            for _ in range(3):  # the send may still fit in the socket's buffer: then the answer is missing
                replicas(x)
        assert not replicas._replicas
        np.testing.assert_allclose(replicas(x).data, model(x).data)  # the model alone from then on


class _Interrupted(nn.Module):
    """Ctrl-C in the caller's share only (of two images; the first call, of four, runs through)."""

    def __init__(self) -> None:
        super().__init__()
        self.caller = os.getpid()

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        if os.getpid() == self.caller and x.shape[0] == 2:
            raise KeyboardInterrupt
        return x


def test_ctrl_c_in_the_caller_ends_the_replicas() -> None:
    with mt.inference_mode():
        replicas = nn.ProcessReplicas(_Interrupted().eval(), processes=2)
        replicas(mt.tensor(np.zeros((4, 2))))
        (pid, _), *_ = replicas._replicas
        with pytest.raises(KeyboardInterrupt):
            replicas(mt.tensor(np.zeros((4, 2))))
        assert not _alive(pid)


def test_replicas_ignore_sigint() -> None:
    model = _small_resnet()
    with mt.inference_mode(), nn.ProcessReplicas(model, processes=2) as replicas:
        replicas(_images(4))
        (pid, _), *_ = replicas._replicas
        os.kill(pid, signal.SIGINT)  # as a terminal's Ctrl-C reaches the whole process group
        np.testing.assert_allclose(replicas(_images(4)).data, model(_images(4)).data, rtol=1e-12)


class _Scalar(nn.Module):
    def forward(self, x: mt.Tensor) -> mt.Tensor:
        return x.sum()


def test_an_output_that_is_not_per_image() -> None:
    with mt.inference_mode(), nn.ProcessReplicas(_Scalar().eval(), processes=2) as replicas:
        with pytest.raises(TypeError, match="ProcessReplicas: the model returned Tensor; expected a Tensor per image"):
            replicas(mt.tensor(np.zeros((4, 2))))


def test_automatic_count_follows_the_batch_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _small_resnet()
    threads = parallel.num_threads()
    try:
        parallel.set_num_threads(2)
        with mt.inference_mode():
            monkeypatch.setattr(parallel, "blas_threads", lambda: 2)  # a multi-threaded BLAS: no processes
            assert nn.ProcessReplicas(model).processes == 1
            monkeypatch.setattr(parallel, "blas_threads", lambda: 1)  # use_batch_threads(2)'s setting
            with nn.ProcessReplicas(model) as replicas:
                assert replicas.processes == 2
        parallel.set_num_threads(1)
        with mt.inference_mode():
            assert nn.ProcessReplicas(model).processes == 1
    finally:
        parallel.set_num_threads(threads)


def test_a_gpu_like_model_runs_itself() -> None:
    """Arrays that are not NumPy's (a GPU model): refused when asked for, one process when automatic."""
    model = _small_resnet()
    model.fc.bias.data = model.fc.bias.data.tolist()  # not a NumPy array (only the check reads it)
    with mt.inference_mode():
        with pytest.raises(ValueError, match="not NumPy arrays"):
            nn.ProcessReplicas(model, processes=2)
        assert nn.ProcessReplicas(model).processes == 1


def test_evaluate_and_predict_use_the_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Trainer's evaluation runs in replicas when the batch threads ask for them, with the same results."""
    model = _small_resnet()
    x = _images(10)
    y = mt.tensor(np.arange(10) % 10)
    loader = [(x[:6], y[:6]), (x[6:], y[6:])]
    loss = nn.CrossEntropyLoss()
    alone = evaluate(model, loader, loss, {"acc": Accuracy()}, "cpu")
    logits_alone = predict(model, x, "cpu", batch_size=4).data
    made: list[int] = []
    real = nn.ProcessReplicas.__init__

    def counting(self: nn.ProcessReplicas, *args: object, **kwargs: object) -> None:
        real(self, *args, **kwargs)
        made.append(self.processes)

    monkeypatch.setattr(nn.ProcessReplicas, "__init__", counting)
    monkeypatch.setattr(parallel, "blas_threads", lambda: 1)
    threads = parallel.num_threads()
    try:
        parallel.set_num_threads(2)
        split = evaluate(model, loader, loss, {"acc": Accuracy()}, "cpu")
        logits = predict(model, x, "cpu", batch_size=4).data
    finally:
        parallel.set_num_threads(threads)
    assert made == [2, 2]
    assert split["acc"] == alone["acc"]
    assert split["loss"] == pytest.approx(alone["loss"], rel=1e-12)
    np.testing.assert_allclose(logits, logits_alone, rtol=1e-12, atol=1e-12)


def test_a_replaced_module_or_parameter_is_seen() -> None:
    model, x = _small_resnet(), _images(4)
    with mt.inference_mode(), nn.ProcessReplicas(model, processes=2) as replicas:
        replicas(x)
        fc = model.fc
        model.fc = nn.Linear(fc.in_features, fc.out_features, dtype=mt.float64).eval()  # new tensors, new arrays
        with pytest.raises(RuntimeError, match="modules, parameters or buffers were replaced"):
            replicas(x)
    model = _small_resnet()
    with mt.inference_mode(), nn.ProcessReplicas(model, processes=2) as replicas:
        replicas(x)
        model.fc.bias = nn.Parameter(mt.tensor(np.zeros(10)))
        with pytest.raises(RuntimeError, match="modules, parameters or buffers were replaced"):
            replicas(x)


def test_ctrl_c_between_two_forks_ends_the_first_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    model, x = _small_resnet(), _images(6)
    real_fork = nn.ProcessReplicas._fork
    made: list[int] = []

    def fork_then_interrupt(self: nn.ProcessReplicas) -> None:
        if self._replicas:
            raise KeyboardInterrupt  # as a Ctrl-C that lands between the two forks
        real_fork(self)
        made.append(self._replicas[-1][0])

    monkeypatch.setattr(nn.ProcessReplicas, "_fork", fork_then_interrupt)
    with mt.inference_mode():
        replicas = nn.ProcessReplicas(model, processes=3)
        with pytest.raises(KeyboardInterrupt):
            replicas(x)
        assert len(made) == 1 and not _alive(made[0]) and not replicas._replicas
        np.testing.assert_allclose(replicas(x).data, model(x).data)  # alone from then on, all rows


def test_an_interrupted_close_is_finished_by_the_next_call(monkeypatch: pytest.MonkeyPatch) -> None:
    model, x = _small_resnet(), _images(6)
    with mt.inference_mode():
        replicas = nn.ProcessReplicas(model, processes=3)
        replicas(x)
        pids = [pid for pid, _ in replicas._replicas]
        real_waitpid = os.waitpid
        calls = []

        def interrupted_once(pid: int, options: int) -> tuple[int, int]:
            calls.append(pid)
            if len(calls) == 1:
                raise KeyboardInterrupt
            return real_waitpid(pid, options)

        monkeypatch.setattr(os, "waitpid", interrupted_once)
        with pytest.raises(KeyboardInterrupt):
            replicas.close()
        assert len(replicas._replicas) == 2  # killed, not yet reaped
        out = replicas(x)  # finishes the close, then runs alone: every row, this batch's
        np.testing.assert_allclose(out.data, model(x).data)
        assert not replicas._replicas and not any(_alive(pid) for pid in pids)


class _Labels(nn.Module):
    def forward(self, x: mt.Tensor) -> mt.Tensor:
        return mt.Tensor._wrap(np.array(["cat"] * x.shape[0], dtype=object))


def test_an_output_that_cannot_be_sent_is_refused() -> None:
    with mt.inference_mode(), nn.ProcessReplicas(_Labels().eval(), processes=2) as replicas:
        with pytest.raises(TypeError, match="ProcessReplicas: the model returned dtype object, which cannot be sent"):
            replicas(mt.tensor(np.zeros((4, 2))))


class _Counts(nn.Module):
    """Counts its calls in a buffer: a model whose evaluation writes into itself."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", mt.tensor(np.zeros(1)))

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        self.calls.data += 1
        return x


def test_a_model_that_writes_into_itself_gets_one_line_with_the_fix() -> None:
    with mt.inference_mode(), nn.ProcessReplicas(_Counts().eval(), processes=2) as replicas:
        with pytest.raises(
            ValueError, match=r"ProcessReplicas: the model writes into a parameter or buffer .*processes=1"
        ):
            replicas(mt.tensor(np.zeros((4, 2))))


def test_the_callers_signal_handlers_do_not_run_in_a_replica(tmp_path) -> None:
    mark = tmp_path / "handled"
    previous = signal.signal(signal.SIGTERM, lambda number, frame: mark.write_text(str(os.getpid())))
    try:
        model = _small_resnet()
        with mt.inference_mode(), nn.ProcessReplicas(model, processes=2) as replicas:
            replicas(_images(4))
            replicas(_images(4))  # the replica is serving: its handlers are set
            (pid, _), *_ = replicas._replicas
            os.kill(pid, signal.SIGTERM)  # as a job scheduler signals every process of the job
            with pytest.raises(RuntimeError, match="ended before it answered|has ended"):
                for _ in range(3):
                    replicas(_images(4))
        assert not mark.exists()  # the replica ended by SIGTERM's default, the caller's handler not run in it
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_models_that_cannot_be_checked_or_ranks_of_a_job_run_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from minitorch_nndl.nn import replicas as replicas_module

    def duck(x: mt.Tensor) -> mt.Tensor:
        return x

    threads = parallel.num_threads()
    monkeypatch.setattr(parallel, "blas_threads", lambda: 1)
    try:
        parallel.set_num_threads(2)
        with mt.inference_mode():
            assert nn.ProcessReplicas(duck).processes == 1
            with pytest.raises(ValueError, match="not an nn.Module"):
                nn.ProcessReplicas(duck, processes=2)
            monkeypatch.setattr(replicas_module, "launched_world_size", lambda: 2)  # a rank of mpiexec -n 2
            assert nn.ProcessReplicas(_small_resnet()).processes == 1
    finally:
        parallel.set_num_threads(threads)
