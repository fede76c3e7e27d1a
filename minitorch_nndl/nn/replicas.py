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
holds the same arrays, is in eval mode (batch statistics would differ per share) and has no
forward hooks (a hook would run in the replica, where what it records is lost).  ``processes``
defaults to the threads :mod:`~minitorch_nndl.kernels.parallel` uses when the BLAS is single
threaded (``use_batch_threads()``), else 1; with 1 process, a CUDA model, or no ``os.fork``
(Windows), calling the replicas is calling the model, and nothing is made read-only.  Each
process computes its share on one thread (:func:`~minitorch_nndl.kernels.parallel.single_threaded`).
Memory: each replica's own activations and scratch buffers (the weights and the filters prepared
on the first batch stay shared; a batch size that needs other filters, as a smaller last batch
may, has them made in every process).  Ctrl-C interrupts the caller only (the replicas ignore
it); the call then ends the replicas, and so does any error in one of them, which is raised in
the caller; ``close()`` (or the end of the ``with``) kills them.
"""

from __future__ import annotations

import json
import os
import signal
import warnings
import weakref
from multiprocessing.connection import Connection
from socket import socketpair
from typing import Any

import numpy as np

from ..grad_mode import inference_block, keep_fixed
from ..kernels import parallel
from ..tensor import Tensor
from .module import Module

__all__ = ["ProcessReplicas"]


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
        self._arrays = [(tensor, tensor.data) for tensor in (*model.parameters(), *model.buffers())]
        reason = _cannot_fork(model, self._arrays)
        if processes is None:
            processes = 1 if reason or parallel.blas_threads() != 1 else parallel.num_threads()
        elif processes > 1 and reason:
            raise ValueError(f"ProcessReplicas: cannot run {type(model).__name__} in {processes} processes: {reason}")
        self.processes = processes
        if processes > 1:  # copies of the weights are about to be made: none may change from now on
            keep_fixed(array for _, array in self._arrays)
        self._replicas: list[tuple[int, Connection]] = []  # forked by the first call
        self._forked = False
        self._finalizer = weakref.finalize(self, _end, self._replicas, os.getpid())

    def _fork(self) -> tuple[int, Connection]:
        ours, theirs = socketpair()
        # Ctrl-C held back until the child ignores it (a Ctrl-C at the fork would otherwise end the child)
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            with warnings.catch_warnings():  # Python 3.12+: "multi-threaded, use of fork() may lead to deadlocks";
                # safe here: the pool's threads hold no lock while they wait, and the child runs only _serve
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # the replica: serve until it is killed (or the caller's end closes), never return
                ours.close()
                _serve(self.model, Connection(theirs.detach()), [connection for _, connection in self._replicas])
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        theirs.close()
        return pid, Connection(ours.detach())

    def __call__(self, x: Tensor) -> Tensor:
        """``model(x)``, the batch's shares computed side by side, concatenated along the batch axis.

        The first call runs the model itself (on the batch threads) and then forks the replicas:
        what ``inference_mode()`` prepared on it (the filters) is then in memory the processes
        share, so they read one copy of it, as threads would, instead of one each."""
        if self.processes == 1 or not isinstance(x, Tensor) or not isinstance(x.data, np.ndarray) or len(x.data) < 2:
            return self.model(x)
        self._check_unchanged()
        if not self._forked:
            output = self.model(x)
            _output_array(output, (0, len(x.data)))  # a model whose output cannot be split: say so now
            self._forked = True
            try:
                for _ in range(self.processes - 1):
                    self._replicas.append(self._fork())
            except BaseException:  # Ctrl-C (held back during each fork) or no memory to fork: none are left
                self.close()
                raise
            return output
        if not self._replicas:  # closed, or ended by an error
            return self.model(x)
        shares = parallel.split(len(x.data), self.processes)
        try:
            for k, ((pid, connection), (start, stop)) in enumerate(zip(self._replicas, shares[1:]), start=1):
                try:
                    _send_array(connection, x.data[start:stop])
                except OSError:  # its end is closed: it died (killed, out of memory)
                    raise RuntimeError(f"ProcessReplicas: replica {k} (pid {pid}) has ended; make new ones") from None
            with parallel.single_threaded():
                mine = self.model(x[shares[0][0] : shares[0][1]])
            outputs = [_output_array(mine, shares[0])]
            for k, ((pid, connection), (start, stop)) in enumerate(zip(self._replicas, shares[1:]), start=1):
                outputs.append(_receive_array(connection, f"replica {k} (pid {pid}), images {start}..{stop - 1}"))
        except BaseException:  # Ctrl-C, or an error here or in a replica: a replica may be mid-batch; end them all
            self.close()
            raise
        return Tensor._wrap(np.concatenate(outputs))

    def _check_unchanged(self) -> None:
        if inference_block() is not self._block:
            raise RuntimeError(
                "ProcessReplicas: used outside the inference_mode() block they were made in (the weights may have "
                "changed since): make new ones inside this block"
            )
        if any(tensor.data is not array for tensor, array in self._arrays):
            raise RuntimeError("ProcessReplicas: the model's parameters or buffers were replaced: make new replicas")
        reason = _cannot_fork(self.model, self._arrays)
        if reason:
            raise RuntimeError(f"ProcessReplicas: the model changed since the replicas were made: {reason}")

    def close(self) -> None:
        """End the replicas (a later call runs the model in this process alone)."""
        self._forked = True
        self._finalizer()

    def __enter__(self) -> ProcessReplicas:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cannot_fork(model: Module, arrays: list[tuple[Tensor, Any]]) -> str | None:
    """Why ``model`` cannot be copied into forked processes, or None."""
    if not hasattr(os, "fork"):
        return "this platform has no os.fork"
    if any(not isinstance(array, np.ndarray) for _, array in arrays):
        return "its arrays are not NumPy arrays (a GPU model is one device already)"
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
    if len(output.data) != share[1] - share[0]:
        raise ValueError(
            f"ProcessReplicas: the model turned {share[1] - share[0]} images into an output of shape "
            f"{tuple(output.shape)}; expected one row per image"
        )
    return output.data


def _send_array(connection: Connection, array: np.ndarray) -> None:
    array = np.ascontiguousarray(array)
    connection.send_bytes(json.dumps({"dtype": array.dtype.str, "shape": array.shape}).encode())
    connection.send_bytes(memoryview(array).cast("B"))


def _receive_array(connection: Connection, sender: str) -> np.ndarray:
    try:
        header = json.loads(connection.recv_bytes())
    except (EOFError, OSError):  # the other end closed (a replica that died, or the caller gone)
        if sender == "the caller":
            raise EOFError from None
        raise RuntimeError(f"ProcessReplicas: {sender} ended before it answered") from None
    if "error" in header:
        raise RuntimeError(f"ProcessReplicas: {sender} failed: {header['error']}")
    array = np.empty(header["shape"], dtype=np.dtype(header["dtype"]))
    connection.recv_bytes_into(memoryview(array).cast("B"))
    return array


def _end(replicas: list[tuple[int, Connection]], caller: int) -> None:
    """Kill the replicas and wait for them (in the ``caller``'s process only, not in a process forked from
    it).  A replica holds nothing that needs cleaning up, and an end of input would not reach one whose
    socket a process forked later (a data loader's worker) also holds."""
    while replicas and os.getpid() == caller:
        pid, connection = replicas.pop()
        connection.close()
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
