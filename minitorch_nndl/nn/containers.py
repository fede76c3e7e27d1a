"""Modules that hold other modules: ``Sequential``, ``ModuleList``, and the do-nothing ``Identity``."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

from .activation import ReLU
from .fused import conv_bn
from .module import Module
from .normalization import BatchNorm2d
from .residual import residual_blocks


class Identity(Module):
    """y = x (a placeholder, e.g. a ResNet's max-pool on 32x32 inputs);  dy/dx = 1."""

    def forward(self, x: Any) -> Any:
        return x


class _ModuleSequence(Module):
    """The list protocol shared by ``Sequential`` and ``ModuleList``: children named by position."""

    def _index(self, index: int) -> str:
        n = len(self._modules)
        if not -n <= index < n:
            raise IndexError(f"{type(self).__name__} index {index} out of range for length {n}")
        return list(self._modules)[index % n]

    def _slice(self, index: slice) -> Any:
        raise NotImplementedError

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return self._slice(index)
        return self._modules[self._index(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        setattr(self, self._index(index), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> Any:
        self.add_module(str(len(self)), module)
        return self


class Sequential(_ModuleSequence):
    """Modules applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    Children are named ``"0"``, ``"1"``, ... (or by the keys of an ``OrderedDict``),
    which gives state-dict keys such as ``"layer1.0.conv1.weight"``.  Indexing with an
    int returns a module, with a slice a new ``Sequential`` over the same modules.
    """

    def __init__(self, *modules: Module | OrderedDict[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def _slice(self, index: slice) -> Sequential:
        return Sequential(OrderedDict(list(self._modules.items())[index]))

    def forward(self, x: Any) -> Any:
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            blocks = _residual_run(modules, i)
            if len(blocks) > 1:  # residual blocks in a row (a ResNet stage): one chain in evaluation
                x = residual_blocks(x, blocks)
                i += len(blocks)
            elif i + 1 < len(modules) and isinstance(modules[i + 1], BatchNorm2d):
                relu = modules[i + 2] if i + 2 < len(modules) and type(modules[i + 2]) is ReLU else None
                x = conv_bn(modules[i], modules[i + 1], x, relu=relu)  # conv, batch norm (, ReLU): one op in evaluation
                i += 2 if relu is None else 3
            else:
                x = modules[i](x)
                i += 1
        return x


def _residual_run(modules: list[Module], start: int) -> list[Module]:
    """The residual blocks (modules with ``residual_parts()``) from ``modules[start]`` up to the next other module."""
    run = []
    for module in modules[start:]:
        if not callable(getattr(module, "residual_parts", None)):
            break
        run.append(module)
    return run


class ModuleList(_ModuleSequence):
    """A list of modules whose parameters are registered (a plain Python list would hide them).

    It has no ``forward``: the owner decides how to call its entries.
    """

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _slice(self, index: slice) -> ModuleList:
        return ModuleList(list(self._modules.values())[index])

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self
