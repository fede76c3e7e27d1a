"""Reverse-mode automatic differentiation: ``Function``, its saved ``Context``, the graph walk.

A differentiable op is a subclass of :class:`Function` with two static methods
written side by side::

    class Mul(Function):
        "d(a*b)/da = b,  d(a*b)/db = a"

        @staticmethod
        def forward(ctx, a, b):          # raw arrays in, raw array out
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):         # dL/d(out) in, one dL/d(input) per input out
                                         # (trailing non-tensor arguments may be left out)
            a, b = ctx.saved_tensors
            return grad * b, grad * a

``Mul.apply(x, y)`` runs ``forward`` on the tensors' arrays and, when a gradient
is needed, records a :class:`Node` that links the output to its inputs.
:func:`backward` later walks those nodes in reverse topological order.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from . import backend
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

if TYPE_CHECKING:
    from .tensor import Tensor


class Context:
    """What a Function's forward leaves for its backward.

    ``save_for_backward(*arrays)`` stores arrays, read back as ``saved_tensors``;
    any other attribute (``ctx.axis = 1``) is stored as is.  ``needs_input_grad``
    tells backward which inputs want a gradient, so it can skip work.
    """

    def __init__(self) -> None:
        self.saved_tensors: tuple = ()
        self.needs_input_grad: tuple[bool, ...] = ()

    def save_for_backward(self, *arrays: Any) -> None:
        self.saved_tensors = arrays


KEEP_INPUTS_UP_TO = 4096
"""Inputs of at most this many elements are held by the graph as they are (see :class:`Node`)."""


class Node:
    """One recorded op in the graph: the Function, its context, and links to its inputs.

    The links are what the backward walk follows.  A leaf (a parameter, an input) and a
    small tensor are linked directly.  A large interior tensor, an activation, is linked
    *weakly*, together with the node that produced it: the graph does not keep it alive
    by itself, as PyTorch's graph does not.  Whatever its consumers' backwards need they
    saved in their contexts (BatchNorm its input, ReLU its output); an activation that
    no context saved and nobody else holds (a ReLU's input, an addition's operands) is
    freed as soon as the forward has passed it, which is a third of ResNet18's memory.
    Read through :attr:`inputs`, such a link gives the tensor while it is alive, else a
    stand-in with its shape, dtype and producing node but no values (:meth:`stand_in`),
    the same object for every consumer, so gradients from several consumers still add up.
    """

    __slots__ = ("function", "ctx", "links", "freed", "output_meta", "_stand_in")

    def __init__(self, function: type, ctx: Context, inputs: tuple, output: Any = None) -> None:
        self.function = function
        self.ctx = ctx
        self.links = tuple(_link(t) for t in inputs)  # one per argument: None for non-tensor arguments
        self.freed = False
        self.output_meta = None if output is None else (tuple(output.shape), output.dtype, backend.device_of(output))
        self._stand_in: Tensor | None = None

    @property
    def name(self) -> str:
        return self.function.__name__

    @property
    def inputs(self) -> tuple:
        """The input tensors (None for non-tensor arguments), stand-ins for freed activations."""
        return tuple(_follow(link) for link in self.links)

    @inputs.setter
    def inputs(self, tensors: tuple) -> None:
        self.links = tuple(_link(t) for t in tensors)

    def stand_in(self) -> Tensor:
        """A tensor for this node's output once the output itself is gone: same shape, dtype,
        device and node, values a zero-strided broadcast of one 0 (no memory)."""
        if self._stand_in is None:
            from .tensor import Tensor  # noqa: PLC0415  (tensor imports autograd)

            shape, dtype, device = self.output_meta
            with backend.device_context(device):
                xp = backend.xp_for(device)
                data = xp.broadcast_to(xp.zeros((), dtype=dtype), shape)
            self._stand_in = Tensor._wrap(data, requires_grad=True)
            self._stand_in._node = self
        return self._stand_in


def _link(tensor: Tensor | None) -> Any:
    """How a node holds one input: directly (None, a leaf, a small tensor) or weakly."""
    if tensor is None or tensor._node is None or tensor.data.size <= KEEP_INPUTS_UP_TO:
        return tensor
    return (weakref.ref(tensor), tensor._node)


def _follow(link: Any) -> Tensor | None:
    if not isinstance(link, tuple):
        return link
    reference, producer = link
    tensor = reference()
    return producer.stand_in() if tensor is None else tensor


class Function:
    """Base class of every differentiable op.  Subclasses define ``forward`` and ``backward``."""

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Tensor:
        """Run forward on the arrays of the Tensor arguments and record the graph node."""
        from .tensor import Tensor  # noqa: PLC0415  (tensor imports autograd)

        tensors = [a for a in args if isinstance(a, Tensor)]
        device = "cpu"
        if tensors:
            device = tensors[0].device
            for t in tensors[1:]:
                if t.device != device:
                    raise RuntimeError(
                        f"{cls.__name__}: expected all tensors on the same device, got {device} and {t.device}"
                    )
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        ctx = Context()
        needs_grad = is_grad_enabled() and any(t.requires_grad for t in tensors)
        if needs_grad:
            ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with backend.device_context(device):  # CuPy computes on the current GPU: make it the inputs'
            out = cls.forward(ctx, *raw, **kwargs)
        result = Tensor._wrap(out, requires_grad=needs_grad)
        if needs_grad:
            inputs = tuple(a if isinstance(a, Tensor) else None for a in args)
            result._node = Node(cls, ctx, inputs, result.data)
        return result


def _topological_order(root: Tensor) -> list[Tensor]:
    """Tensors reachable from ``root`` through graph nodes, leaves first, each before its consumers.

    Iterative depth-first search (an explicit stack, not recursion), so a chain of
    100,000 ops is fine.  The walk pops from the end: ``root`` first, every tensor
    after all the tensors that consumed it.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        tensor, children_done = stack.pop()
        if children_done:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        node = tensor._node
        if node is not None:
            for parent in node.inputs:
                if parent is not None and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def _accumulate_into(tensor: Tensor, g: Any) -> None:
    """Add ``g`` to ``tensor.grad``; the first time, store a private copy (dense, in g's memory order).

    The copy matters: a backward may hand out a read-only broadcast view
    (``Sum``) or the very same array to two inputs (``Add``), and optimizers
    update ``.grad`` in place.  The stored gradient always has the tensor's dtype.
    """
    if tensor.grad is None:
        tensor.grad = tensor.xp.array(g, dtype=tensor.dtype, copy=True, order="K")  # g's memory order
    else:
        tensor.grad = tensor.grad + g.astype(tensor.dtype, copy=False)


def backward(root: Tensor, grad: Any = None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into every leaf's ``.grad``.

    Three steps: seed the output's gradient (ones for a scalar loss), walk the
    graph once in reverse topological order, and check every gradient a
    Function's ``backward`` returns against the input it is for.  In the walk each
    tensor's gradient is complete (all consumers have contributed, summed) before
    it is pushed to its inputs.  Without ``retain_graph`` each node's saved arrays
    and its links to its inputs are released right after its backward ran, and
    the walk pops each tensor off its list when it reaches it (its consumers have
    all run and released it by then), so an activation is freed as soon as the
    walk has passed it, unless the caller still holds it (the loss, a variable);
    docs chapter 2 ("Activation memory") measures this.  A second backward
    through a released node is an error.  To draw the graph with its
    gradients (``viz.draw_graph``), backward with ``retain_graph=True``.
    """
    seed = _seed_gradient(root, grad)
    with no_grad(), backend.device_context(root.device):
        _walk(root, seed, retain_graph)


def _seed_gradient(root: Tensor, grad: Any) -> Any:
    """d(root)/d(root): ones for a scalar, else the ``grad`` given (checked, on root's device)."""
    if not root.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad and has no graph "
            "(was it computed under no_grad(), or from tensors without requires_grad=True?)"
        )
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward: grad can be implicitly created only for scalar outputs, "
                f"but the output has shape {tuple(root.shape)}; pass grad= (e.g. ones_like)"
            )
        with backend.device_context(root.device):
            return root.xp.ones_like(root.data)
    from .tensor import Tensor  # noqa: PLC0415  (tensor imports autograd)

    if isinstance(grad, Tensor):
        if grad.device != root.device:
            raise RuntimeError(f"backward: grad is on {grad.device} but the output is on {root.device}")
        grad = grad.data
    grad = backend.asarray(grad, dtype=root.dtype, device=root.device)
    if tuple(grad.shape) != tuple(root.shape):
        raise ValueError(f"backward: grad shape {tuple(grad.shape)} does not match output shape {tuple(root.shape)}")
    return grad


def _walk(root: Tensor, seed: Any, retain_graph: bool) -> None:
    """The chain rule, node by node, from ``root`` back to the leaves."""
    grads: dict[int, Any] = {id(root): seed}
    pending = _topological_order(root)
    while pending:
        tensor = pending.pop()  # the walk holds it no longer
        g = grads.pop(id(tensor), None)
        if g is None:
            continue
        node = tensor._node
        if node is None or tensor._retains_grad:
            _accumulate_into(tensor, g)
        if node is None:
            continue
        with backend.device_context(tensor.device):
            input_grads = _run_backward(node, g)
        for parent, pg in zip(node.inputs, input_grads):
            if parent is None or pg is None or not parent.requires_grad:
                continue
            _check_gradient(node, parent, pg)
            key = id(parent)
            grads[key] = pg if key not in grads else grads[key] + pg
        if not retain_graph:  # release saved arrays and input links, as PyTorch does
            node.ctx = Context()
            node.links = (None,) * len(node.links)
            node.freed = True


def _run_backward(node: Node, g: Any) -> tuple:
    """``node``'s Function.backward, with one gradient (or None) per input."""
    if node.freed:
        raise RuntimeError(
            f"backward: trying to backward through the graph a second time (at {node.name}); "
            "its saved arrays were freed. Call backward(retain_graph=True) the first time "
            "if you need to backward twice."
        )
    input_grads = node.function.backward(node.ctx, g)
    if not isinstance(input_grads, tuple):
        input_grads = (input_grads,)
    if len(input_grads) < len(node.links) and any(link is not None for link in node.links[len(input_grads) :]):
        raise RuntimeError(f"{node.name}.backward returned {len(input_grads)} gradients for {len(node.links)} inputs")
    return input_grads


def _check_gradient(node: Node, parent: Tensor, pg: Any) -> None:
    """The contract of a backward: each gradient has its input's shape and dtype."""
    if tuple(pg.shape) != tuple(parent.shape):
        raise RuntimeError(
            f"{node.name}.backward returned a gradient of shape {tuple(pg.shape)} "
            f"for an input of shape {tuple(parent.shape)}"
        )
    if pg.dtype != parent.dtype:  # the dtype discipline: no silent float64 in backward
        raise TypeError(
            f"{node.name}.backward returned a {pg.dtype} gradient for a {parent.dtype} input; "
            "a backward must return gradients in its input's dtype"
        )


__all__ = [
    "Context",
    "Function",
    "Node",
    "backward",
    "enable_grad",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
]
