"""Helpers for building parameter groups."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..tensor import Tensor


def split_weight_decay(
    named_parameters: Any,
    weight_decay: float,
    skip: Iterable[str] = ("bias", "bn", "norm"),
) -> list[dict[str, Any]]:
    """Two parameter groups: one decayed with ``weight_decay``, one with ``weight_decay=0``.

    Weight decay pulls weights toward zero to limit a model's capacity.  For
    biases and normalisation scales/shifts that is not useful (they have few
    entries and BatchNorm makes the network invariant to the scale of the
    preceding weights anyway), so the usual recipe exempts them.  A parameter is
    exempt when it has ``ndim <= 1`` (biases, BatchNorm weight/bias) or when its
    name contains one of the ``skip`` substrings (case-insensitive).

    Args:
        named_parameters: a Module (anything with ``named_parameters()``) or an
            iterable of ``(name, Tensor)`` pairs.
        weight_decay: the coefficient for the decayed group.
        skip: name substrings that mark a parameter as exempt.

    Returns:
        ``[{"params": decayed, "weight_decay": weight_decay}, {"params": exempt, "weight_decay": 0.0}]``,
        leaving out a group that would be empty; pass it straight to an optimizer.

    >>> import minitorch_nndl as mt
    >>> w, b = mt.zeros((3, 2), requires_grad=True), mt.zeros(3, requires_grad=True)
    >>> groups = split_weight_decay([("fc.weight", w), ("fc.bias", b)], 5e-4)
    >>> [(len(g["params"]), g["weight_decay"]) for g in groups]
    [(1, 0.0005), (1, 0.0)]
    """
    if hasattr(named_parameters, "named_parameters"):
        named_parameters = named_parameters.named_parameters()
    tokens = tuple(s.lower() for s in skip)
    decay: list[Tensor] = []
    no_decay: list[Tensor] = []
    for item in named_parameters:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Tensor)):
            raise TypeError(f"split_weight_decay: expected (name, Tensor) pairs, got {type(item).__name__}")
        name, p = item
        exempt = p.ndim <= 1 or any(token in name.lower() for token in tokens)
        (no_decay if exempt else decay).append(p)
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": float(weight_decay)})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups
