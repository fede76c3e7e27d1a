"""``Parameter``: a Tensor that a :class:`~minitorch_nndl.nn.Module` learns.

Assigning a Parameter to a module attribute (``self.weight = Parameter(...)``)
registers it, so ``module.parameters()`` finds it and an optimizer can update
it.  A Parameter is an ordinary leaf :class:`~minitorch_nndl.tensor.Tensor`
with ``requires_grad=True``; the subclass only marks it for registration.
"""

from __future__ import annotations

from typing import Any

from ..tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad and is registered by the Module that holds it.

    ``Parameter(tensor)`` shares ``tensor``'s array (no copy); ``Parameter(array_or_list)``
    builds one as :class:`Tensor` would.  Only floating-point data can be a Parameter
    that requires grad.

    >>> import minitorch_nndl as mt
    >>> w = Parameter(mt.zeros(2, 3))
    >>> w.requires_grad, w.shape
    (True, (2, 3))
    """

    def __init__(self, data: Any = None, requires_grad: bool = True, dtype: Any = None, device: Any = None) -> None:
        if data is None:
            data = []
        if isinstance(data, Tensor) and dtype is None and device is None:
            # share the array: Parameter(t) is a new leaf over t's storage
            self._set_fields(data.data)
            if requires_grad:
                self.requires_grad_(True)
            return
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, device=device)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
