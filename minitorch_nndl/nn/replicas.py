"""``ProcessReplicas``: evaluation on every CPU core, one forked copy of the model per core.

Threads in one process share Python's global interpreter lock, and a network's evaluation is
thousands of NumPy calls, each of which takes the lock to start and to return.  On two cores
ResNet18's evaluation at batch 32 ran at 0.77 of twice one thread's speed: the threads do no
extra work, they wait for each other (``kernels/parallel.py`` has the measurements).  Two
*processes* have a lock each.  So the batch is split the way data-parallel training splits it,
but for evaluation, where nothing has to be summed afterwards:

    process 0 (the caller)        x[0:16]  -> model -> logits[0:16]  \\
    process 1 (a forked replica)  x[16:32] -> model -> logits[16:32] /  concatenated

A replica is made by ``os.fork()``: the child is a copy of the caller at that moment, the
model's weights included, and the copy costs nothing until one side writes (the operating
system shares the pages until then).  The first call runs the model itself and forks after it,
so the filters ``inference_mode()`` prepared on that batch are shared too: the processes read
one copy of them from the caches, as threads would.  Each later call sends a replica its images
and receives its outputs through a socket, as raw bytes with a small JSON header (nothing is
unpickled).

    with mt.inference_mode(), nn.ProcessReplicas(model) as replicas:
        for x, y in loader:
            logits = replicas(x)          # model(x)'s logits, to float rounding

The copies stay the same model because nothing may change it while they live: they are made
and used inside one ``inference_mode()`` block, every parameter and buffer is read-only until
that block ends (an update raises NumPy's error), and each call checks that the model still
holds the same modules, tensors and arrays, is in eval mode (batch statistics would differ per
share) and has no forward hooks (a hook would run in the replica, where what it records is
lost).  ``processes`` defaults to the threads :mod:`~minitorch_nndl.kernels.parallel` uses when
the BLAS is single threaded (``use_batch_threads()``), else 1; the default is 1 too for a model
that cannot be copied (a CUDA model, hooks, training mode, no ``os.fork`` as on Windows) and on
a rank of a multi-process job (its cores are the other ranks'); with 1 process, calling the
replicas is calling the model, and nothing is made read-only.  Each process runs this library's
work on one thread (:func:`~minitorch_nndl.kernels.parallel.single_threaded`); the BLAS keeps
its own setting (``use_batch_threads()`` makes it one thread).
Memory: each replica's own activations and scratch buffers (the weights and the filters prepared
on the first batch stay shared; a batch size that needs other filters, as a smaller last batch
may, has them made in every process).  Ctrl-C interrupts the caller only (the replicas ignore
it); the call then ends the replicas, and so does any error in one of them, which is raised in
the caller; ``close()`` (or the end of the ``with``) kills them.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import warnings
import weakref
from multiprocessing.connection import Connection
from socket import socketpair
from typing import Any

import numpy as np

from ..distributed.world import launched_world_size
from ..grad_mode import inference_block, keep_fixed
from ..kernels import parallel
from ..tensor import Tensor
from .module import Module

__all__ = ["ProcessReplicas"]

SENT_KINDS = "biufc"
"""The dtype kinds that go between the processes as raw bytes: bool, integers, floats, complex."""


class ProcessReplicas:
    """``model`` evaluated in ``processes`` processes, each on its contiguous share of the batch:
    the caller's process and ``processes - 1`` forked replicas (see the module's docstring)."""

    def __init__(self, model: Module, processes: int | None = None) -> None:
        if inference_block() is None:
            raise RuntimeError("ProcessReplicas: make them inside `with mt.inference_mode():` (the weights stay fixed)")
        if processes is not None and (not isinstance(processes, int) or processes < 1):
            raise ValueError(f"ProcessReplicas: processes must be a positive int, got {processes!r}")
        self.model = model
        self._block = inference_block()
        reason = _cannot_fork(model)
        if processes is None:
            alone = reason or parallel.blas_threads() != 1 or launched_world_size() > 1
            processes = 1 if alone else parallel.num_threads()
        elif processes > 1 and reason:
            raise ValueError(f"ProcessReplicas: cannot run {type(model).__name__} in {processes} processes: {reason}")
        self.processes = processes
        self._state = _state_of(model) if processes > 1 else []  # what every call checks is still there
        if processes > 1:  # copies of the weights are about to be made: none may change from now on
            keep_fixed(array for _, _, array in self._state)
        self._replicas: list[tuple[int, Connection]] = []  # forked by the first call
        self._forked = self._closed = False
        self._caller = os.getpid()
        weakref.finalize(self, _end, self._replicas, self._caller)  # replicas never closed end with the object

    def __call__(self, x: Tensor) -> Tensor:
        """``model(x)``, the batch's shares computed side by side, concatenated along the batch axis.

        The first call runs the model itself (on the batch threads) and then forks the replicas:
        what ``inference_mode()`` prepared on it (the filters) is then in memory the processes
        share, so they read one copy of it, as threads would, instead of one each."""
        data = x.data if isinstance(x, Tensor) else None
        if self.processes == 1 or not isinstance(data, np.ndarray) or data.ndim == 0 or len(data) < 2:
            return self.model(x)
        self._check_unchanged()
        if data.dtype.kind not in SENT_KINDS:
            raise TypeError(f"ProcessReplicas: cannot send images of dtype {data.dtype} to the replicas")
        if not self._forked:
            output = self._own_share(x)
            _output_array(output, (0, len(data)))  # a model whose output cannot be split: say so now
            self._forked = True
            self._fork_replicas()
            return output
        if self._closed or len(self._replicas) != self.processes - 1:  # closed, or ended by an error
            self.close()  # again: it finishes one that a Ctrl-C interrupted
            return self.model(x)
        return self._split_call(x)

    def _split_call(self, x: Tensor) -> Tensor:
        shares = parallel.split(len(x.data), self.processes)
        try:
            for k, ((pid, connection), (start, stop)) in enumerate(zip(self._replicas, shares[1:]), start=1):
                try:
                    _send_array(connection, x.data[start:stop])
                except OSError:  # its end is closed: it died (killed, out of memory)
                    raise RuntimeError(f"ProcessReplicas: replica {k} (pid {pid}) has ended; make new ones") from None
            with parallel.single_threaded():
                mine = self._own_share(x[shares[0][0] : shares[0][1]])
            outputs = [_output_array(mine, shares[0])]
            for k, ((pid, connection), (start, stop)) in enumerate(zip(self._replicas, shares[1:]), start=1):
                outputs.append(_receive_array(connection, f"replica {k} (pid {pid}), images {start}..{stop - 1}"))
            if any(out.shape[1:] != outputs[0].shape[1:] or out.dtype != outputs[0].dtype for out in outputs):
                shapes = ", ".join(f"{out.shape} {out.dtype}" for out in outputs)
                raise ValueError(f"ProcessReplicas: the shares' outputs differ in shape or dtype ({shapes})")
        except BaseException:  # Ctrl-C, or an error here or in a replica: a replica may be mid-batch; end them all
            self.close()
            raise
        return Tensor._wrap(np.concatenate(outputs))

    def _own_share(self, x: Tensor) -> Any:
        try:
            return self.model(x)
        except ValueError as error:
            if "read-only" not in str(error):
                raise
            raise ValueError(
                f"ProcessReplicas: the model writes into a parameter or buffer as it evaluates ({error}), which its "
                "replicas would not see: evaluate it in one process (ProcessReplicas(model, processes=1), or "
                "kernels.parallel.set_num_threads(1) for the Trainer's evaluation)"
            ) from error

    def _fork_replicas(self) -> None:
        """Fork the replicas, each registered the moment it exists, so that a Ctrl-C (or a failed fork)
        part way ends the ones made; their copy of every Python object frozen out of the collector
        (``gc.freeze``), so a collection in a replica does not write into the pages it shares."""
        try:
            gc.freeze()
            for _ in range(self.processes - 1):
                self._fork()
        except BaseException:
            self.close()
            raise
        finally:
            gc.unfreeze()

    def _fork(self) -> None:
        ours, theirs = socketpair()
        # Ctrl-C is held back in this thread until the replica ignores it and is on the list
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            with warnings.catch_warnings():  # Python 3.12+: "multi-threaded, use of fork() may lead to deadlocks";
                # the pool's threads hold no lock while they wait, and the replica runs only _serve
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # the replica: serve until it is killed (or the caller's end closes), never return
                ours.close()
                _serve(self.model, Connection(theirs.detach()), [connection for _, connection in self._replicas])
            self._replicas.append((pid, Connection(ours.detach())))
        finally:
            theirs.close()
            ours.close()  # detached (a no-op) once the replica is on the list
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def _check_unchanged(self) -> None:
        if inference_block() is not self._block:
            raise RuntimeError(
                "ProcessReplicas: used outside the inference_mode() block (or the thread) they were made in; the "
                "weights may have changed since: make new ones inside this block"
            )
        now = _state_of(self.model)
        if len(now) != len(self._state) or any(
            a is not b or t is not u or d is not e for (a, t, d), (b, u, e) in zip(now, self._state)
        ):
            raise RuntimeError(
                "ProcessReplicas: the model's modules, parameters or buffers were replaced since the replicas were "
                "made: make new ones"
            )
        reason = _cannot_share_batches(self.model)
        if reason:
            raise RuntimeError(f"ProcessReplicas: the model changed since the replicas were made: {reason}")

    def close(self) -> None:
        """End the replicas (a later call runs the model in this process alone)."""
        self._forked = self._closed = True
        _end(self._replicas, self._caller)

    def __enter__(self) -> ProcessReplicas:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _state_of(model: Module) -> list[tuple[Module, Tensor, Any]]:
    """(module, tensor, array) for every parameter and buffer, in order: what a call checks is unchanged."""
    return [
        (module, tensor, tensor.data)
        for module in model.modules()
        for tensor in (*module.parameters(recurse=False), *module.buffers(recurse=False))
    ]


def _cannot_fork(model: Any) -> str | None:
    """Why ``model`` cannot be copied into forked processes, or None."""
    if not hasattr(os, "fork"):
        return "this platform has no os.fork"
    if not isinstance(model, Module):
        return f"it is a {type(model).__name__}, not an nn.Module (nothing to check it by)"
    if any(not isinstance(t.data, np.ndarray) for t in (*model.parameters(), *model.buffers())):
        return "its arrays are not NumPy arrays (a GPU model is one device already)"
    return _cannot_share_batches(model)


def _cannot_share_batches(model: Module) -> str | None:
    """What in ``model`` would make its replicas differ from it (training mode, forward hooks), or None:
    the part of :func:`_cannot_fork` that can change while they live (the rest every call's array check covers)."""
    for name, module in model.named_modules():
        label = name or "the model"
        if module.training:
            return f"{label} is in training mode (call model.eval() first)"
        if module._forward_hooks:
            return f"{label} has forward hooks, which would run in the replicas (evaluate the model itself)"
    return None


def _serve(model: Module, connection: Connection, others: list[Connection]) -> None:
    """A replica's life: ``model`` on every batch received, its output sent back, until end of input."""
    try:
        for number in signal.valid_signals():  # the caller's handlers (a checkpoint on SIGTERM) are the caller's
            if callable(signal.getsignal(number)):
                with contextlib.suppress(OSError, ValueError):
                    signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        for other in others:  # the earlier replicas' sockets: only the caller may hold them open
            other.close()
        parallel.set_num_threads(1)
        while True:
            try:
                x = _receive_array(connection, "the caller")
            except EOFError:
                break
            try:
                output = _output_array(model(Tensor._wrap(x)), (0, len(x)))
            except Exception as error:  # sent to the caller, which raises it
                connection.send_bytes(json.dumps({"error": f"{type(error).__name__}: {error}"}).encode())
                continue
            _send_array(connection, output)
    finally:
        os._exit(0)  # never run the caller's cleanup (atexit, open files' buffers) in the copy


def _output_array(output: Any, share: tuple[int, int]) -> np.ndarray:
    if not isinstance(output, Tensor) or not isinstance(output.data, np.ndarray) or output.ndim == 0:
        raise TypeError(f"ProcessReplicas: the model returned {type(output).__name__}; expected a Tensor per image")
    if output.data.dtype.kind not in SENT_KINDS:
        raise TypeError(f"ProcessReplicas: the model returned dtype {output.data.dtype}, which cannot be sent")
    if len(output.data) != share[1] - share[0]:
        raise ValueError(
            f"ProcessReplicas: the model turned {share[1] - share[0]} images into an output of shape "
            f"{tuple(output.shape)}; expected one row per image"
        )
    return output.data


def _send_array(connection: Connection, array: np.ndarray) -> None:
    array = np.ascontiguousarray(array)
    connection.send_bytes(json.dumps({"dtype": array.dtype.str, "shape": array.shape}).encode())
    connection.send_bytes(array.reshape(-1).view(np.uint8))


def _receive_array(connection: Connection, sender: str) -> np.ndarray:
    try:
        header = json.loads(connection.recv_bytes())
        if "error" in header:
            raise RuntimeError(f"ProcessReplicas: {sender} failed: {header['error']}")
        array = np.empty(header["shape"], dtype=np.dtype(header["dtype"]))
        if array.size:
            connection.recv_bytes_into(array.reshape(-1).view(np.uint8))
        else:
            connection.recv_bytes()
    except (EOFError, OSError):  # the other end closed (a replica that died, or the caller gone)
        if sender == "the caller":
            raise EOFError from None
        raise RuntimeError(f"ProcessReplicas: {sender} ended before it answered") from None
    return array


def _end(replicas: list[tuple[int, Connection]], caller: int) -> None:
    """Kill the replicas, then reap them (in the ``caller``'s process only, not in one forked from it).
    Each stays on the list until it is reaped, so an interrupted end is finished by the next one, and
    a pid on the list is never one the system has given to another process.  A replica holds nothing
    that needs cleaning up, and killing it does not wait for the batch it may be computing."""
    if os.getpid() != caller:
        return
    for pid, connection in replicas:
        connection.close()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    while replicas:
        try:
            os.waitpid(replicas[-1][0], 0)
        except ChildProcessError:
            pass
        replicas.pop()
