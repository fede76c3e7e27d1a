"""Ctrl-C during ``Trainer.fit``: stop at a position that can be saved, or say why none can.

:class:`InterruptGuard` installs a SIGINT handler for the duration of a ``with`` block (main
thread only; elsewhere, or where the interpreter forbids it, nothing is installed and a
``KeyboardInterrupt`` arrives as usual).  The first Ctrl-C sets :attr:`stop_requested`: the
loop finishes its current step, calls :meth:`check`, and the resulting :class:`StopRequestedError`
lets the Trainer save ``last.npz`` at that exact position.  A second Ctrl-C raises
``KeyboardInterrupt`` at once; that, or a ``KeyboardInterrupt`` raised by user code (a
callback, the loss), is handled the same way, and the position saved is the last completed step.

The one place where nothing can be saved is the middle of an update: the optimizer step, the
scheduler step and the position's advance (and the same at an epoch's end) run inside
:meth:`updating`; an interrupt that lands there leaves :attr:`in_update` set, and the Trainer
then keeps the ``last.npz`` it has instead of saving half-updated weights.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["InterruptGuard", "StopRequestedError"]


class StopRequestedError(Exception):
    """The first Ctrl-C asked the loop to stop after the current step."""


class InterruptGuard:
    """First Ctrl-C: stop after this step; second: ``KeyboardInterrupt`` now.  Knows whether an update is half done."""

    def __init__(self) -> None:
        self.stop_requested = False
        self.in_update = False
        self._previous: Any = None
        self._installed = False

    def check(self) -> None:
        """Raise :class:`StopRequestedError` when a Ctrl-C asked to stop (call it between whole steps)."""
        if self.stop_requested:
            raise StopRequestedError

    @contextmanager
    def updating(self) -> Iterator[None]:
        """Mark the block as an update: an exception escaping from it leaves ``in_update`` set."""
        self.in_update = True
        yield
        self.in_update = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.stop_requested:
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
            raise KeyboardInterrupt
        self.stop_requested = True
        print(
            "\nCtrl-C: stopping after the current step and saving last.npz (press Ctrl-C again to abort now)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> InterruptGuard:
        self.stop_requested = self.in_update = False
        self._installed = False
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handler)
                self._installed = True
            except (ValueError, OSError):  # not allowed here (e.g. embedded interpreter)
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_requested = False
        if self._installed:
            previous = self._previous if self._previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, previous)
            self._installed = False
