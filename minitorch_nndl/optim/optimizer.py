"""``Optimizer``: the bookkeeping every update rule shares.

An optimizer holds *parameter groups* and *per-parameter state*:

* ``param_groups`` is a list of dicts.  Each has a ``"params"`` list of Tensors
  plus its own hyper-parameters (``lr``, ``weight_decay``, ``momentum``, ...);
  a group that does not name a hyper-parameter takes the optimizer's default.
  Schedulers change learning rates by writing ``group["lr"]``.
* ``state`` maps a parameter (the Tensor itself) to a dict of buffers such as
  ``{"step": 3, "exp_avg": array, "exp_avg_sq": array}``.  Buffers are created
  lazily at the first step, on the parameter's device and with its dtype.

A subclass only writes :meth:`Optimizer.step`.  Steps are NumPy/CuPy array
updates done *in place* on ``p.data``: no autograd graph is built, nothing is
copied between host and device, and a float32 parameter stays float32 because
every hyper-parameter enters the math as a Python ``float`` (NEP 50: a Python
scalar never promotes an array).  On the CPU :meth:`Optimizer._blockwise` runs an
update a cache-sized block at a time, the blocks split over the CPU's cores.

``state_dict()`` / ``load_state_dict()`` follow PyTorch's layout, so a run can
be stopped and resumed bit for bit::

    {"state": {0: {"step": 5, "exp_avg": array, ...}, 3: {...}},
     "param_groups": [{"lr": 0.1, "weight_decay": 5e-4, ..., "params": [0, 1, 2]}, ...]}

Parameters are numbered 0, 1, 2, ... in the order they appear across the
groups; only parameters that have state appear under ``"state"``.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from .. import backend
from ..kernels import parallel
from ..tensor import Tensor

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]

UPDATE_BLOCK = 1 << 17
"""Elements per block of :meth:`Optimizer._blockwise` (512 KiB of float32): a block and its
temporaries stay in a core's cache from the first pass of an update to the last, and each
NumPy call is long enough that two threads rarely wait for each other (ResNet18's SGD step
on 2 cores: 6.5 ms with these blocks, 9.1 with blocks of 32,768 elements)."""


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad`` and checkpoints.

    Args:
        params: an iterable of Tensors, or of dicts (parameter groups) each with a
            ``"params"`` entry and optional per-group hyper-parameters.
        defaults: hyper-parameter values used by groups that do not set them.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params should be an iterable of Tensors or of dicts, "
                "got a single Tensor (wrap it in a list)"
            )
        if isinstance(params, dict):
            raise TypeError(
                f"{type(self).__name__}: params should be an iterable of Tensors or of dicts, "
                "got one dict (wrap it in a list)"
            )
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}

        groups = list(params)
        if len(groups) == 0:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters (e.g. layers unfrozen during fine-tuning).

        Missing hyper-parameters are filled from ``defaults``; a parameter may
        belong to only one group.
        """
        if not isinstance(param_group, dict):
            raise TypeError(
                f"{type(self).__name__}: a parameter group must be a dict, got {type(param_group).__name__}"
            )
        if "params" not in param_group:
            raise ValueError(f"{type(self).__name__}: a parameter group needs a 'params' entry")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(
                f"{type(self).__name__}: parameters must be given in a deterministic order (a list), not a set"
            )
        params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{type(self).__name__}: can only optimize Tensors, but parameter {i} is {type(p).__name__}"
                )
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: can't optimize a non-leaf Tensor (parameter {i})")
            if not backend.is_floating(p.dtype):
                raise TypeError(
                    f"{type(self).__name__}: can only optimize floating-point Tensors, parameter {i} is {p.dtype}"
                )
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{type(self).__name__}: a parameter group contains the same parameter twice")
        existing = {id(p) for group in self.param_groups for p in group["params"]}
        if existing.intersection(ids):
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one parameter group")

        group = {key: value for key, value in param_group.items() if key != "params"}
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._validate_group(group)
        group["params"] = params
        self.param_groups.append(group)

    def _validate_group(self, group: dict[str, Any]) -> None:
        """Raise ValueError for hyper-parameters outside their domain (subclasses extend this)."""
        lr = group.get("lr")
        if lr is None or not isinstance(lr, numbers.Real):
            raise ValueError(f"{type(self).__name__}: learning rate must be a number, got {lr!r}")
        if lr < 0:
            raise ValueError(f"{type(self).__name__}: invalid learning rate {lr} (must be >= 0)")
        wd = group.get("weight_decay", 0.0)
        if wd < 0:
            raise ValueError(f"{type(self).__name__}: invalid weight_decay {wd} (must be >= 0)")

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``p.grad = None`` (or fill them with zeros in place)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if given."""
        raise NotImplementedError

    @staticmethod
    def _blockwise(update: Callable[..., None], *arrays: Any) -> None:
        """``update(*arrays)``, run on matching blocks of the same-shaped ``arrays`` (a parameter,
        its gradient, its state buffers), the blocks split over the threads of
        :mod:`minitorch_nndl.kernels.parallel`.

        An update is a few whole-array passes (``buf *= momentum``, ``buf += g``, ...).  Over
        a parameter of megabytes each pass streams it through memory again; over a block of
        :data:`UPDATE_BLOCK` elements the later passes find it in the cache, and the
        temporaries are block-sized.  Every element gets the same arithmetic either way, so
        the result is the same bit for bit.  CuPy arrays, small ones, and arrays that do not
        share one flat memory order get a single call with the whole arrays."""
        flats = _flat_views(arrays)
        if flats is None:
            update(*arrays)
            return
        blocks = -(-flats[0].size // UPDATE_BLOCK)

        def run(first: int, last: int) -> None:
            for block in range(first, last):
                part = slice(block * UPDATE_BLOCK, (block + 1) * UPDATE_BLOCK)
                update(*(flat[part] for flat in flats))

        parallel.for_batch_ranges(run, blocks, flats[0], parallel.MIN_SPLIT_ELEMENTS)

    def _params_with_grads(self, group: dict[str, Any], opname: str) -> Iterator[tuple[Tensor, Any]]:
        """``(p, grad)`` for each parameter of ``group`` that has a gradient.

        While the caller updates ``p``, its device is the current one: CuPy runs every
        kernel on the current GPU, so a parameter on ``cuda:1`` is updated on ``cuda:1``.
        """
        for p in group["params"]:
            g = self._grad_of(p, opname)
            if g is None:
                continue
            with backend.device_context(p.device):
                yield p, g

    @staticmethod
    def _grad_of(p: Tensor, opname: str) -> Any:
        """``p.grad`` as an array with the parameter's shape, dtype and device (or None)."""
        grad = p.grad
        if grad is None:
            return None
        if isinstance(grad, Tensor):
            grad = grad.data
        if tuple(grad.shape) != p.shape:
            raise ValueError(f"{opname}: gradient shape {tuple(grad.shape)} does not match parameter shape {p.shape}")
        if backend.device_of(grad) != p.device:
            raise RuntimeError(f"{opname}: gradient is on {backend.device_of(grad)} but the parameter is on {p.device}")
        if grad.dtype != p.dtype:
            grad = grad.astype(p.dtype)
        return grad

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """A snapshot of hyper-parameters and state (arrays are copies, on the parameters' devices)."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            saved = {key: copy.deepcopy(value) for key, value in group.items() if key != "params"}
            saved["params"] = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                saved["params"].append(index[id(p)])
            groups.append(saved)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = {key: _snapshot(value) for key, value in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`: the hyper-parameters of every group and the state of every parameter.

        The optimizer must have been built over the same parameters in the same
        group structure.  Arrays are copied onto each parameter's device with its
        dtype; integer keys may arrive as strings (e.g. from JSON).
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state has {len(saved_groups)} parameter groups, "
                f"this optimizer has {len(self.param_groups)}"
            )
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: group {i} has {len(group['params'])} parameters, "
                    f"the state has {len(saved['params'])}"
                )
        params_by_index: dict[int, Tensor] = {}
        for group, saved in zip(self.param_groups, saved_groups):
            for p, idx in zip(group["params"], saved["params"]):
                params_by_index[int(idx)] = p

        new_state: dict[Tensor, dict[str, Any]] = {}
        for key, buffers in state_dict["state"].items():
            idx = int(key)
            if idx not in params_by_index:
                raise ValueError(f"{type(self).__name__}.load_state_dict: state for unknown parameter index {idx}")
            p = params_by_index[idx]
            new_state[p] = {name: _restore(value, p, name) for name, value in buffers.items()}

        for group, saved in zip(self.param_groups, saved_groups):
            params = group["params"]
            group.clear()
            for key, value in saved.items():
                if key == "params":
                    continue
                if isinstance(self.defaults.get(key), tuple) and isinstance(value, list):
                    value = tuple(value)
                group[key] = copy.deepcopy(value)
            group["params"] = params
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _snapshot(value: Any) -> Any:
    """A copy of one state entry: arrays stay on their device, numbers stay Python numbers."""
    if hasattr(value, "copy") and hasattr(value, "dtype") and getattr(value, "ndim", 0) > 0:
        return backend.copy(value)
    if hasattr(value, "item") and hasattr(value, "dtype"):
        return value.item()
    return copy.deepcopy(value)


def _restore(value: Any, p: Tensor, name: str) -> Any:
    """A state entry from a checkpoint, as an owned array on ``p``'s device (floats get ``p``'s dtype)."""
    if name == "step" or isinstance(value, numbers.Number):
        return value.item() if hasattr(value, "item") else value
    if not hasattr(value, "dtype"):
        value = backend.np.asarray(value)
    if value.ndim == 0:
        return value.item()
    dtype = p.dtype if backend.is_floating(value.dtype) else value.dtype
    if tuple(value.shape) != p.shape:
        raise ValueError(f"load_state_dict: state {name!r} has shape {tuple(value.shape)}, the parameter has {p.shape}")
    array = backend.asarray(value, dtype=dtype, device=p.device)
    with backend.device_context(p.device):  # an owned array in the parameter's memory layout
        restored = backend.xp_of(array).empty_like(p.data, dtype=dtype)
        restored[...] = array
    return restored


def _flat_views(arrays: tuple[Any, ...]) -> list[Any] | None:
    """1-D views of NumPy ``arrays`` of one shape and one memory layout, in memory order (each
    element at the same index in all of them); None for CuPy, for arrays of at most
    :data:`UPDATE_BLOCK` elements, and when they are not all laid out alike and contiguously."""
    first = arrays[0]
    if not isinstance(first, np.ndarray) or first.size <= UPDATE_BLOCK:
        return None
    if any(not isinstance(a, np.ndarray) or a.shape != first.shape or a.strides != first.strides for a in arrays):
        return None
    memory_order = sorted(range(first.ndim), key=lambda axis: -first.strides[axis])
    views = [a.transpose(memory_order) for a in arrays]
    if not views[0].flags.c_contiguous:
        return None
    return [view.reshape(-1) for view in views]
