"""``Module``: the base class of layers and models.

A module is a tree.  Assigning an attribute registers it by its type::

    self.weight = Parameter(...)        # a learnable tensor   -> parameters()
    self.conv1 = Conv2d(...)             # a child module       -> children()
    self.register_buffer("running_mean", mt.zeros(c))   # state that is saved
                                                          # but not learned -> buffers()

From that registry the base class derives everything a training loop needs:
``parameters()`` for the optimizer, ``train()``/``eval()`` for layers that
behave differently in the two modes (BatchNorm, Dropout), ``to(device)``,
``zero_grad()``, and ``state_dict()``/``load_state_dict()`` whose keys are the
dotted attribute paths PyTorch uses (``"layer1.0.conv1.weight"``), so weights
map 1:1 between the two frameworks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from .. import backend
from ..grad_mode import no_grad
from ..tensor import Tensor
from .parameter import Parameter


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` could not match."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class RemovableHandle:
    """Returned by ``register_forward_hook``; ``handle.remove()`` unregisters the hook."""

    def __init__(self, hooks: dict[int, Callable], key: int) -> None:
        self._hooks = hooks
        self._key = key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


_hook_counter = 0


def _parse_to_args(device: Any, dtype: Any) -> tuple[str | None, Any]:
    """``to("cuda")``, ``to(mt.float64)``, ``to("cpu", dtype=...)``: sort the positional argument."""
    if device is not None and not isinstance(device, str):
        device, dtype = None, device  # to(mt.float64)
    elif isinstance(device, str) and not (device.strip().lower() == "cpu" or device.strip().lower().startswith("cuda")):
        device, dtype = None, device  # to("float64")
    if device is not None:
        device = backend.normalize_device(device)
    if dtype is not None:
        dtype = backend.as_dtype(dtype)
        if not backend.is_floating(dtype):
            raise TypeError(f"Module.to: only floating-point dtypes are allowed, got {dtype}")
    return device, dtype


class Module:
    """Base class of every layer and model.  Subclasses set attributes in ``__init__`` and define ``forward``.

    >>> import minitorch_nndl as mt
    >>> from minitorch_nndl import nn
    >>> class TwoLayer(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1 = nn.Linear(4, 8)
    ...         self.fc2 = nn.Linear(8, 2)
    ...     def forward(self, x):
    ...         return self.fc2(self.fc1(x).relu())
    >>> [name for name, _ in TwoLayer().named_parameters()]
    ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    """

    training: bool

    def __init__(self) -> None:
        # object.__setattr__ bypasses our own __setattr__, which needs these dicts to exist.
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ forward
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward() method")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # A layer's own array math (BatchNorm's running statistics) runs on its input's device.
        device = next((a.device for a in args if isinstance(a, Tensor)), "cpu")
        with backend.device_context(device):
            out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    def register_forward_hook(self, hook: Callable[[Module, tuple, Any], Any]) -> RemovableHandle:
        """Call ``hook(module, inputs, output)`` after every forward; a non-None return replaces the output."""
        global _hook_counter
        _hook_counter += 1
        self._forward_hooks[_hook_counter] = hook
        return RemovableHandle(self._forward_hooks, _hook_counter)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() has run: call super().__init__() first"
            )
        params, buffers, modules = d["_parameters"], d["_buffers"], d["_modules"]
        if isinstance(value, Parameter):
            self._discard(name)
            params[name] = value
        elif isinstance(value, Module):
            self._discard(name)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to parameter {name!r} of {type(self).__name__} "
                    "(a Parameter or None is required)"
                )
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to child module {name!r} (Module or None)")
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} to buffer {name!r} (Tensor or None)")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails, i.e. for registered names.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            table = d.get(registry)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def _discard(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        self._non_persistent_buffers.discard(name)
        self.__dict__.pop(name, None)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or a None placeholder, e.g. a layer built with ``bias=False``)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected a Parameter or None, got {type(param).__name__}")
        self._discard(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register state that is not learned (BatchNorm's running statistics).

        Buffers move with ``to()`` and, when ``persistent``, are saved by ``state_dict()``;
        they are not returned by ``parameters()``, so optimizers never touch them.
        """
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer({name!r}): expected a Tensor or None, got {type(tensor).__name__}")
        if isinstance(tensor, Parameter):
            raise TypeError(f"register_buffer({name!r}): a Parameter is not a buffer; assign it as an attribute")
        self._discard(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): expected a Module, got {type(module).__name__}")
        self._discard(name)
        self._modules[name] = module

    # ------------------------------------------------------------------ traversal
    def named_modules(self, memo: set[int] | None = None, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and all below it, pre-order, each once: ``("", self)``, ``("layer1", ...)``, ..."""
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def _named_members(self, registry: str, prefix: str, recurse: bool) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, Parameter)`` pairs in registration order; a shared Parameter appears once."""
        yield from self._named_members("_parameters", prefix, recurse)  # type: ignore[misc]

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every submodule (children first) and on this module; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of scalar parameters (only those with ``requires_grad`` when ``trainable_only``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # ------------------------------------------------------------------ modes and gradients
    def train(self, mode: bool = True) -> Module:
        """Set training mode (``mode=True``) or evaluation mode on this module and all below it."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode): mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: BatchNorm uses its running statistics, Dropout is the identity."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget accumulated gradients: ``p.grad = None`` (or zeros when ``set_to_none=False``)."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = p.xp.zeros_like(p.grad)

    # ------------------------------------------------------------------ device and dtype
    def to(self, device: Any = None, dtype: Any = None) -> Module:
        """Move parameters and buffers to ``device`` and/or cast floating ones to ``dtype``, in place.

        The Parameter objects stay the same (only their ``.data``, and ``.grad`` if any, are
        replaced), so an optimizer built before the move still updates this module's
        parameters.  Integer buffers (``num_batches_tracked``) keep their dtype.
        Accepts ``to("cuda")``, ``to(mt.float64)`` and ``to("cpu", dtype=mt.float32)``.
        """
        device, dtype = _parse_to_args(device, dtype)

        def convert(array: Any) -> Any:
            if device is not None:
                array = backend.to_device(array, device)
            if dtype is not None and backend.is_floating(array.dtype) and array.dtype != dtype:
                array = array.astype(dtype)
            return array

        for p in self.parameters():
            p.data = convert(p.data)
            if p.grad is not None:
                p.grad = convert(p.grad)
        for b in self.buffers():
            b.data = convert(b.data)
        return self

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, index: int = 0) -> Module:
        return self.to(f"cuda:{index}")

    def float(self) -> Module:
        return self.to(dtype=backend.float32)

    def double(self) -> Module:
        return self.to(dtype=backend.float64)

    # ------------------------------------------------------------------ saving and loading
    def _state_items(self) -> Iterator[tuple[str, Tensor]]:
        """The tensors of ``state_dict`` in PyTorch's order: per module, parameters then buffers."""
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for name, p in module._parameters.items():
                if p is not None:
                    yield dot + name, p
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent_buffers:
                    yield dot + name, b

    def state_dict(self) -> OrderedDict[str, Any]:
        """``{dotted name: array}`` for every parameter and persistent buffer.

        The arrays are copies on the module's device (NumPy on the CPU, CuPy on a GPU), so
        the dict is a snapshot that later training does not change.  Names follow PyTorch
        (``"bn1.running_mean"``, ``"bn1.num_batches_tracked"``).  Save it with
        ``numpy.savez(path, **{k: mt.backend.to_numpy(v) for k, v in sd.items()})``.
        """
        return OrderedDict((name, backend.copy(t.data)) for name, t in self._state_items())

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state_dict`` (arrays, NumPy or CuPy, or Tensors) into this module.

        Each value is copied onto the device of the tensor it replaces and cast to that
        tensor's dtype (a float64 checkpoint loads into a float32 model as float32).
        Nothing is changed unless every value fits: shape mismatches always raise, and with
        ``strict=True`` so do missing and unexpected keys; the ``RuntimeError`` lists them
        all by name.  Returns ``(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, Mapping) and not hasattr(state_dict, "keys"):
            raise TypeError(f"load_state_dict: expected a mapping of name -> array, got {type(state_dict).__name__}")
        own = OrderedDict(self._state_items())
        given = list(state_dict.keys())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in given if k not in own]
        mismatched: list[str] = []
        prepared: list[tuple[Tensor, Any]] = []
        for name, target in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            if isinstance(value, Tensor):
                value = value.data
            value_shape = tuple(value.shape if hasattr(value, "shape") else backend.np.shape(value))
            if value_shape != tuple(target.shape):
                mismatched.append(f"{name}: checkpoint shape {value_shape}, model shape {tuple(target.shape)}")
                continue
            prepared.append((target, value))
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("shape mismatches: " + "; ".join(mismatched))
        if problems:
            raise RuntimeError(f"Error(s) loading state_dict for {type(self).__name__}:\n  " + "\n  ".join(problems))
        with no_grad():
            for target, value in prepared:
                array = backend.asarray(value, dtype=target.dtype, device=target.device)
                if array is target.data:
                    continue
                with backend.device_context(target.device):  # the copy runs on the tensor's GPU
                    target.data[...] = array
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr`` (its hyper-parameters)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {child_repr}")
        name = type(self).__name__
        if not lines:
            return f"{name}()"
        if len(lines) == 1 and not self._modules:
            return f"{name}({lines[0]})"
        return name + "(\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))
