"""One path for a batch: only the DataLoader moves data; the Trainer runs where the model is.

:func:`model_device` decides the Trainer's device (the model's, or a ``device=`` given for
compatibility, to which the model is moved once); :func:`on_device` is the check every batch
and every input to ``predict`` passes: data on another device is an error that names both
devices and the fix, never a silent copy.  A NumPy batch (a plain iterable of arrays) is
wrapped as it is when the model is on the CPU.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..tensor import Tensor

__all__ = ["model_device", "on_device"]


def model_device(model: Any, device: Any = None) -> str:
    """The device to run on: ``device`` (the model is moved there if needed), else the model's parameters'."""
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    if device is not None:
        device = backend.normalize_device(device)
        if any(p.device != device for p in params):
            model.to(device)  # Module.to keeps the Parameter objects: an optimizer over them still works
        return device
    devices = sorted({p.device for p in params})
    if len(devices) > 1:
        raise ValueError(f"Trainer: the model's parameters are on several devices ({', '.join(devices)}); move it")
    return devices[0] if devices else "cpu"


def on_device(x: Any, device: str, what: str = "batch") -> Tensor:
    """``x`` as a Tensor on ``device``; a Tensor or array elsewhere raises ``ValueError`` (nothing is moved)."""
    where = x.device if isinstance(x, Tensor) else backend.device_of(x)
    if where != device:
        raise ValueError(
            f"Trainer: the {what} is on {where} but the model is on {device}; only the DataLoader moves data: "
            f"give it device={device!r} (or move the tensor yourself)"
        )
    return x if isinstance(x, Tensor) else Tensor(x, device=device)
