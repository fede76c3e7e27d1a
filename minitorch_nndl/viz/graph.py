"""Draw the autograd graph of a tensor: Graphviz DOT text, or a PNG.

The graph that ``Function.apply`` records is a chain of ``Node`` objects: every
tensor produced by an op keeps ``tensor._node``, whose ``inputs`` are the
tensors the op consumed.  :func:`draw_graph` walks those links from a result
back to the leaves and writes one box per tensor (name, shape, dtype and, after
``backward``, its gradient) and one ellipse per op (the ``Function``'s class
name)::

    x = mt.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)                  # keep the links for drawing
    print(draw_graph(y, names={"x": x, "y": y}))   # DOT text
    render_graph(y, "graph.png", names={"x": x, "y": y})

A ``backward`` without ``retain_graph`` releases each node's saved arrays *and*
its links to its inputs (so memory can be reclaimed during the walk); to draw a
graph with its gradients, call ``backward(retain_graph=True)`` first.  A released
op is drawn with a note saying so.

The backward pass itself: ``retain_grads(loss)`` before the backward keeps the
adjoint of every interior tensor, and ``direction="backward"`` draws the arrows
the way the walk goes (from the loss back to the leaves), each tensor labelled
with its adjoint::

    retain_grads(loss)
    loss.backward(retain_graph=True)
    render_graph(loss, "backward.png", direction="backward")

Plotting is host-only code: values and gradients on a GPU are copied to the host
to be printed (only the few values shown).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import backend
from ..autograd import _topological_order
from ..tensor import Tensor

DIRECTIONS = ("forward", "backward")


@dataclass
class _Item:
    key: str
    kind: str  # "tensor" or "op"
    lines: list[str]
    style: str = ""  # "leaf", "output", "const", "" (intermediate) for tensors


@dataclass
class _Graph:
    items: list[_Item] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)  # in the forward direction: input -> op -> output
    backward: bool = False  # draw the edges reversed, as the backward walk goes


def retain_grads(root: Tensor) -> list[Tensor]:
    """``retain_grad()`` on every tensor an op produced in ``root``'s graph, ``root`` included.

    Call it before ``root.backward(retain_graph=True)``: afterwards every tensor of
    the graph holds its adjoint in ``.grad``, which ``draw_graph(root,
    direction="backward")`` shows.  Returns those tensors, the loss first.
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"retain_grads: expected a Tensor, got {type(root).__name__}")
    interior = [t for t in reversed(_topological_order(root)) if t._node is not None] if root.requires_grad else []
    for tensor in interior:
        tensor.retain_grad()
    return interior


def _format_values(array: Any, max_values: int) -> str:
    # copy only the values shown (a GPU activation may be hundreds of MB)
    shown = ", ".join(f"{v:.4g}" for v in backend.to_numpy(array.reshape(-1)[:max_values]).tolist())
    if array.size > max_values:
        shown += ", ..."
    return f"[{shown}]"


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _style(tensor: Tensor, root: Tensor) -> str:
    """How a tensor's box is drawn: the output, an op's result, a leaf to differentiate, or a constant."""
    if tensor is root:
        return "output"
    if tensor._node is not None:
        return ""
    return "leaf" if tensor.requires_grad else "const"


def _tensor_lines(
    tensor: Tensor, label: str | None, show_grad: bool, backward: bool, max_values: int
) -> tuple[list[str], str]:
    """A tensor box's lines (name, shape and dtype, value, grad or adjoint), and, for a backward
    drawing of a tensor without an adjoint, how the error names it ("" otherwise)."""
    lines = [] if label is None else [label]
    lines.append(f"{_shape_text(tensor.shape)} {tensor.dtype}")
    if tensor.data.size <= max_values:
        lines.append("value " + _format_values(tensor.data, max_values))
    if (show_grad or backward) and tensor.grad is not None:
        shown = _format_values(tensor.grad, max_values)
        lines.append(f"{'adjoint' if backward else 'grad'} {_shape_text(tuple(tensor.grad.shape))} {shown}")
    elif backward and tensor.requires_grad:
        node = tensor._node
        origin = f"the output of {node.name}" if node is not None else "a leaf"
        return lines, label or f"{origin} {_shape_text(tensor.shape)}"
    return lines, ""


def _build(
    root: Tensor, show_grad: bool, names: Mapping[str, Tensor] | None, max_values: int, direction: str = "forward"
) -> _Graph:
    if not isinstance(root, Tensor):
        raise TypeError(f"draw_graph: expected a Tensor, got {type(root).__name__}")
    if direction not in DIRECTIONS:
        raise ValueError(f"draw_graph: direction must be 'forward' or 'backward', got {direction!r}")
    label_of = {id(t): name for name, t in (names or {}).items()}
    graph = _Graph(backward=direction == "backward")
    missing: list[str] = []
    keys: dict[int, str] = {}
    counts = {"t": 0, "op": 0}

    def key(obj: Any, prefix: str) -> str:  # stable names t0, t1, op0... in visiting order
        if id(obj) not in keys:
            keys[id(obj)] = f"{prefix}{counts[prefix]}"
            counts[prefix] += 1
        return keys[id(obj)]

    seen: set[int] = set()
    stack = [root]
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        node = tensor._node
        if graph.backward and not tensor.requires_grad:
            continue  # no adjoint flows to a constant: the backward drawing leaves it out
        lines, absent = _tensor_lines(tensor, label_of.get(id(tensor)), show_grad, graph.backward, max_values)
        if absent:
            missing.append(absent)
        tkey = key(tensor, "t")
        graph.items.append(_Item(tkey, "tensor", lines, _style(tensor, root)))
        if node is None:
            continue
        okey = key(node, "op")
        op_lines = [node.name]
        if getattr(node, "freed", False) and not any(p is not None for p in node.inputs):
            op_lines.append("(inputs released by backward;")
            op_lines.append("use retain_graph=True to draw them)")
        graph.items.append(_Item(okey, "op", op_lines))
        graph.edges.append((okey, tkey))
        for parent in node.inputs:
            if parent is None or (graph.backward and not parent.requires_grad):
                continue
            graph.edges.append((key(parent, "t"), okey))
            stack.append(parent)
    # Each tensor produced by an op appears once; its op appears once (one node per output).
    if missing:
        raise ValueError(
            f"draw_graph(direction='backward'): no adjoint on {', '.join(missing)}; call "
            "viz.retain_grads(loss) before loss.backward(retain_graph=True)"
        )
    return graph


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


_FILL = {"output": "#ffd9a8", "leaf": "#c6e2ff", "const": "#eeeeee", "": "#ffffff"}


def draw_graph(
    tensor: Tensor,
    show_grad: bool = True,
    names: Mapping[str, Tensor] | None = None,
    max_values: int = 4,
    direction: str = "forward",
) -> str:
    """Graphviz DOT text of the autograd graph that produced ``tensor``.

    Tensors are boxes (optional name from ``names``, shape, dtype, the values of
    small tensors, and ``.grad`` once backward has filled it when ``show_grad``:
    leaves always, interior tensors when ``retain_grad()`` was called);
    ops are ellipses labelled with the ``Function`` class name (``Mul``, ``Sum``...).
    Leaves that require grad are blue, constants grey, the output orange.
    Edges run in the direction of the forward pass; backward walks them in reverse.
    ``direction="backward"`` draws that walk: arrows from the output back to the
    leaves (red), and every tensor's adjoint, which must be there
    (:func:`retain_grads` before ``backward(retain_graph=True)``).
    """
    graph = _build(tensor, show_grad, names, max_values, direction)
    out = [
        "digraph autograd {",
        "  rankdir=TB;" if graph.backward else "  rankdir=BT;",  # the output on top either way
        '  node [fontname="Helvetica", fontsize=10];',
    ]
    if graph.backward:
        out.append('  edge [color="#c62828"];')
    for item in graph.items:
        label = "\\n".join(_escape(line) for line in item.lines)
        if item.kind == "op":
            out.append(f'  {item.key} [label="{label}", shape=ellipse, style=filled, fillcolor="#e8f5e9"];')
        else:
            dashed = ",dashed" if item.style == "const" else ""
            out.append(
                f'  {item.key} [label="{label}", shape=box, style="rounded,filled{dashed}", '
                f'fillcolor="{_FILL[item.style]}"];'
            )
    for src, dst in graph.edges:
        out.append(f"  {dst} -> {src};" if graph.backward else f"  {src} -> {dst};")
    out.append("}")
    return "\n".join(out) + "\n"


def _layers(graph: _Graph) -> dict[str, int]:
    """Depth of every item: each item one above its deepest input; a leaf just below its first consumer."""
    inputs: dict[str, list[str]] = {item.key: [] for item in graph.items}
    consumers: dict[str, list[str]] = {item.key: [] for item in graph.items}
    for src, dst in graph.edges:
        inputs[dst].append(src)
        consumers[src].append(dst)
    depth: dict[str, int] = {}
    for item in graph.items:
        stack = [(item.key, False)]
        while stack:
            key, ready = stack.pop()
            if key in depth:
                continue
            if ready:
                depth[key] = 1 + max((depth[p] for p in inputs[key]), default=-1)
                continue
            stack.append((key, True))
            stack.extend((p, False) for p in inputs[key] if p not in depth)
    for key, users in consumers.items():  # a weight or a constant sits next to the op that uses it
        if not inputs[key] and users:
            depth[key] = min(depth[u] for u in users) - 1
    return depth


def _box_chars(item: _Item) -> int:
    """A box's width in characters: its longest line and a margin."""
    return max(len(line) for line in item.lines) + 6


def _positions(graph: _Graph) -> tuple[dict[str, tuple[float, float]], int, int]:
    """(x, y) of every item, x in characters: each box as wide as its longest line, each row centred,
    so neighbours never overlap; with the width (characters) and height (rows) of the drawing."""
    depth = _layers(graph)
    rows: dict[int, list[_Item]] = {}
    for item in graph.items:
        rows.setdefault(depth[item.key], []).append(item)
    row_chars = {level: sum(_box_chars(item) for item in items) for level, items in rows.items()}
    width = max(row_chars.values())
    pos: dict[str, tuple[float, float]] = {}
    for level, items in rows.items():
        x = (width - row_chars[level]) / 2
        for item in items:
            pos[item.key] = (x + _box_chars(item) / 2, level)
            x += _box_chars(item)
    return pos, width, max(rows) + 1


def _render_matplotlib(graph: _Graph, path: Path, dpi: int) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    pos, width, height = _positions(graph)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.065 * width), max(3.0, 1.1 * height)))
    for src, dst in graph.edges:
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        start, end = ((x0, y0 + 0.22), (x1, y1 - 0.22))
        if graph.backward:  # the walk goes from the output down to the leaves
            start, end = end, start
        color = "#c62828" if graph.backward else "#555555"
        ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": color})
    for item in graph.items:
        x, y = pos[item.key]
        box = "round,pad=0.3" if item.kind == "tensor" else "ellipse,pad=0.3"
        color = "#e8f5e9" if item.kind == "op" else _FILL[item.style]
        ax.text(
            x,
            y,
            "\n".join(item.lines),
            ha="center",
            va="center",
            fontsize=7,
            bbox={"boxstyle": box, "facecolor": color, "edgecolor": "#333333"},
        )
    ax.set_xlim(0, width)
    ax.set_ylim(-0.6, height - 0.4)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def render_graph(
    tensor: Tensor,
    path: str | Path,
    show_grad: bool = True,
    names: Mapping[str, Tensor] | None = None,
    engine: str = "auto",
    dpi: int = 100,
    direction: str = "forward",
) -> Path:
    """Write the autograd graph of ``tensor`` as a PNG at ``path`` and return the path.

    ``engine="dot"`` uses Graphviz's ``dot`` program, ``"matplotlib"`` a simple
    layered layout (leaves at the bottom, the output at the top), and ``"auto"``
    uses ``dot`` when it is on the PATH, else matplotlib.  ``direction`` as in
    :func:`draw_graph`.
    """
    if engine not in ("auto", "dot", "matplotlib"):
        raise ValueError(f"render_graph: engine must be 'auto', 'dot' or 'matplotlib', got {engine!r}")
    path = Path(path)
    dot = shutil.which("dot")
    if engine == "dot" and dot is None:
        raise RuntimeError("render_graph: engine='dot' but Graphviz's `dot` program is not on the PATH")
    if engine != "matplotlib" and dot is not None:
        text = draw_graph(tensor, show_grad=show_grad, names=names, direction=direction)
        subprocess.run(
            [dot, "-Tpng", f"-Gdpi={dpi}", "-o", str(path)],
            input=text.encode(),
            check=True,
            capture_output=True,
        )
        return path
    _render_matplotlib(_build(tensor, show_grad, names, 4, direction), path, dpi)
    return path


__all__ = ["draw_graph", "render_graph", "retain_grads"]
