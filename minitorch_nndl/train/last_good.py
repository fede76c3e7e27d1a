"""Keep the model from before the first non-finite loss, on the device, without a host sync.

On the CPU the Trainer reads every loss as soon as it is computed (reading is free there)
and stops before a NaN step touches the weights.  On a GPU, reading a loss makes the host
wait for all queued work, so losses are read only at log points; the steps between a NaN
and that point would otherwise overwrite the weights with garbage.

:class:`LastGoodModel` keeps, on the device,

* ``ok``: "every loss so far was finite", a 0-d boolean array: ``ok &= isfinite(loss)``;
* a copy of every parameter and buffer as it was *before* the latest step, refreshed only
  while every earlier loss was finite: ``copyto(copy, current, where=ok)``, then
  ``ok &= isfinite(loss)``.

Once a loss is non-finite, ``ok`` stays False and the copy stays the model from before that
step.  When the log point finds the NaN, :meth:`restore` puts it back.  The cost is one copy
of the model in device memory and one masked copy per tensor per step; no host sync.
"""

from __future__ import annotations

from typing import Any

from .. import backend


class LastGoodModel:
    """The parameters and buffers from before the first step whose loss was not finite."""

    def __init__(self) -> None:
        self.ok: Any = None  # device bool: all losses so far finite
        self._tensors: list[Any] = []
        self._copies: list[Any] = []

    def before_update(self, loss: Any, before: list[tuple[Any, Any]]) -> None:
        """Record the step's loss (a device array) and the model as it was before the step.

        ``before`` pairs each tensor with its array before this step (for BatchNorm buffers,
        the copy taken before the forward pass that already updated them).
        """
        xp = backend.xp_of(loss)
        if self.ok is None:
            self._tensors = [t for t, _ in before]
            self._copies = [backend.copy(v) for _, v in before]
            self.ok = xp.isfinite(loss)
            return
        # The model before this step is good when every *earlier* loss was finite.
        for copy, (_, value) in zip(self._copies, before):
            xp.copyto(copy, value, where=self.ok)
        self.ok = self.ok & xp.isfinite(loss)

    def restore(self) -> None:
        """Put the last good parameters and buffers back (call after a NaN was found)."""
        for tensor, copy in zip(self._tensors, self._copies):
            tensor.data[...] = copy
        self.reset()

    def reset(self) -> None:
        self.ok = None
        self._tensors, self._copies = [], []
