"""What :meth:`~minitorch_nndl.train.Trainer.fit` returns: how the run ended, where it got, what it kept."""

from __future__ import annotations

from dataclasses import dataclass, field

from .history import History

__all__ = ["FitResult"]


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns.

    ``status``: ``"completed"``, ``"interrupted"`` (Ctrl-C; ``last_checkpoint`` holds the
    position) or ``"nan"`` (a non-finite loss; ``message`` names the step).  ``epoch`` is the
    number of completed epochs, ``best_epoch`` the number (from 1) of the epoch ``best.npz`` holds.
    """

    status: str
    epoch: int
    step: int
    message: str = ""
    best_acc: float = float("nan")
    best_epoch: int | None = None
    last_checkpoint: str | None = None
    best_checkpoint: str | None = None
    history: History = field(default_factory=History)

    @property
    def ok(self) -> bool:
        return self.status == "completed"
