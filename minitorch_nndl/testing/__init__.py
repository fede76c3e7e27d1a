"""Tools for testing operators, ours and yours: ``check_op`` and Hypothesis strategies.

``from minitorch_nndl.testing import check_op, OpCheckError, assert_grad_close`` needs
only NumPy.  The strategies (``shapes``, ``broadcastable_shapes``, ``tensors``,
``distinct_tensors``, ``conv_params``, ``reals_away_from``) need Hypothesis
(``pip install hypothesis`` or the ``dev`` extra) and are imported on first use::

    from hypothesis import given
    from minitorch_nndl.testing import check_op, tensors

    @given(tensors(shape=(3, 4)))
    def test_my_tanh(x):
        check_op(MyTanh.apply, x, reference=numpy.tanh)

See ``examples/custom_op.py`` for a complete walk-through.
"""

from __future__ import annotations

from typing import Any

from .check import OpCheckError, assert_grad_close, check_op

_STRATEGIES = (
    "ConvParams",
    "broadcastable_pairs",
    "broadcastable_shapes",
    "conv_params",
    "distinct_tensors",
    "reals_away_from",
    "shapes",
    "tensors",
)

__all__ = ["OpCheckError", "assert_grad_close", "check_op", "strategies"]
__all__.extend(_STRATEGIES)


def __getattr__(name: str) -> Any:
    """Import the Hypothesis strategies lazily, so ``check_op`` works without Hypothesis."""
    if name == "strategies" or name in _STRATEGIES:
        import importlib

        strategies = importlib.import_module(f"{__name__}.strategies")
        return strategies if name == "strategies" else getattr(strategies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
