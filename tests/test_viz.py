"""minitorch_nndl.viz: the autograd graph as DOT text and as a PNG."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl.viz import draw_graph, render_graph, retain_grads
from minitorch_nndl.viz import graph as graph_module

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _expression() -> tuple[mt.Tensor, mt.Tensor, mt.Tensor]:
    x = mt.randn(2, 3, requires_grad=True)
    w = mt.randn(3, 4, requires_grad=True)
    y = (x @ w).relu().sum()
    return x, w, y


def _labels(dot: str) -> list[str]:
    return re.findall(r'label="([^"]*)"', dot)


def test_dot_names_ops_and_shapes() -> None:
    x, w, y = _expression()
    dot = draw_graph(y, names={"x": x, "w": w})
    assert dot.startswith("digraph")
    assert dot.rstrip().endswith("}")
    labels = _labels(dot)
    for op in ("MatMul", "ReLU", "Sum"):
        assert op in labels, (op, labels)
    joined = "\n".join(labels)
    assert "(2, 3) float32" in joined
    assert "(3, 4) float32" in joined
    assert "(2, 4) float32" in joined
    assert "() float32" in joined
    # 3 ops, 5 tensors (x, w, x@w, relu, sum), and 3 + 4 edges (op->output, input->op)
    assert len(re.findall(r"shape=ellipse", dot)) == 3
    assert len(re.findall(r"shape=box", dot)) == 5
    assert len(re.findall(r"->", dot)) == 7
    # no gradient before backward
    assert "grad" not in joined


def test_gradients_shown_after_backward() -> None:
    x, w, y = _expression()
    y.backward(retain_graph=True)
    dot = draw_graph(y, names={"x": x, "w": w})
    x_label = next(label for label in _labels(dot) if label.startswith("x\\n"))
    assert "grad (2, 3)" in x_label
    first = float(np.asarray(x.grad).reshape(-1)[0])
    assert f"{first:.4g}" in x_label
    w_label = next(label for label in _labels(dot) if label.startswith("w\\n"))
    assert "grad (3, 4)" in w_label
    hidden = _labels(draw_graph(y, show_grad=False, names={"x": x, "w": w}))
    assert not any("grad" in label for label in hidden)


def test_released_graph_is_drawn_with_a_note() -> None:
    x, w, y = _expression()
    y.backward()  # without retain_graph each node lets go of its inputs (autograd.backward)
    labels = _labels(draw_graph(y, names={"x": x, "w": w}))
    assert any(label.startswith("Sum") and "retain_graph=True" in label for label in labels)


def test_value_used_twice_gives_two_edges_and_deterministic_text() -> None:
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    dot = draw_graph(y)
    assert dot.count("t2 -> op1;") == 2  # x (t2) feeds Mul (op1) twice
    assert dot == draw_graph(y)


def test_constants_are_drawn_and_leaf_only() -> None:
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    c = mt.tensor([3.0, 4.0])
    dot = draw_graph(x * c)
    assert "dashed" in dot  # the constant c
    single = draw_graph(x)
    assert "shape=ellipse" not in single and "(2,) float32" in single
    with pytest.raises(TypeError, match="draw_graph"):
        draw_graph(np.ones(3))  # type: ignore[arg-type]


def _check_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    import matplotlib.image as mpimg

    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50


def test_render_matplotlib_fallback(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)
    _, _, y = _expression()
    y.backward(retain_graph=True)
    out = render_graph(y, tmp_path / "graph.png")
    _check_png(out)
    with pytest.raises(RuntimeError, match="dot"):
        render_graph(y, tmp_path / "g.png", engine="dot")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_render_with_graphviz(tmp_path) -> None:
    _, _, y = _expression()
    out = render_graph(y, tmp_path / "graph.png", engine="dot")
    _check_png(out)


def test_render_rejects_unknown_engine(tmp_path) -> None:
    _, _, y = _expression()
    with pytest.raises(ValueError, match="engine"):
        render_graph(y, tmp_path / "g.png", engine="svg")


def _edges(dot: str) -> list[tuple[str, str]]:
    return re.findall(r"^\s+(\w+) -> (\w+);$", dot, flags=re.M)


def _adjoint_of(label: str) -> list[float]:
    """The values after 'adjoint (shape) [' in a box's label."""
    shown = re.search(r"adjoint \([\d, ]*\) \[([^\]]*)\]", label)
    assert shown, label
    return [float(v) for v in shown[1].split(", ") if v != "..."]


def test_backward_drawing_shows_every_adjoint_with_arrows_pointing_back() -> None:
    """direction='backward': each box holds the library's adjoint (checked against PyTorch), every edge reversed."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x0, w0 = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    x = mt.tensor(x0, requires_grad=True)
    w = mt.tensor(w0, requires_grad=True)
    h = x @ w
    r = h.relu()
    loss = (r * r).sum()
    kept = retain_grads(loss)
    assert kept[0] is loss and len(kept) == 4 and {id(h), id(r)} <= {id(t) for t in kept}  # loss, r*r, r, h
    loss.backward(retain_graph=True)
    names = {"x": x, "w": w, "h": h, "r": r, "loss": loss}
    forward, backward = draw_graph(loss, names=names), draw_graph(loss, names=names, direction="backward")
    assert sorted(_edges(backward)) == sorted((b, a) for a, b in _edges(forward))
    assert "rankdir=TB" in backward and "#c62828" in backward

    tx = torch.tensor(x0, requires_grad=True)
    tw = torch.tensor(w0, requires_grad=True)
    th = tx @ tw
    tr = th.relu()
    th.retain_grad()
    tr.retain_grad()
    (tr * tr).sum().backward()
    oracle = {"x": tx.grad, "w": tw.grad, "h": th.grad, "r": tr.grad, "loss": torch.ones(())}
    labels = {label.split("\\n")[0]: label for label in _labels(backward)}
    for name, tensor in names.items():
        np.testing.assert_allclose(tensor.grad, oracle[name].numpy(), rtol=1e-12)
        shown = _adjoint_of(labels[name])
        np.testing.assert_allclose(shown, tensor.grad.reshape(-1)[: len(shown)], rtol=1e-3)  # 4 digits shown


def test_backward_drawing_needs_the_adjoints_and_a_known_direction(tmp_path, monkeypatch) -> None:
    x, w, y = _expression()
    y.backward(retain_graph=True)  # no retain_grads: the interior adjoints are gone
    with pytest.raises(ValueError, match="retain_grads"):
        draw_graph(y, direction="backward")
    with pytest.raises(ValueError, match="direction"):
        draw_graph(y, direction="sideways")
    x, w, y = _expression()
    retain_grads(y)
    y.backward(retain_graph=True)
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)
    _check_png(render_graph(y, tmp_path / "backward.png", direction="backward"))
    with pytest.raises(TypeError, match="retain_grads"):
        retain_grads(np.ones(2))  # type: ignore[arg-type]


def test_backward_drawing_holds_the_hand_computed_adjoints_without_torch() -> None:
    """Chapter 2's worked example, L = sum((w x + b)^2): the drawn adjoints are the ones derived by hand."""
    w, b = mt.tensor(2.0, requires_grad=True), mt.tensor(-1.0, requires_grad=True)
    x = mt.tensor([1.0, 2.0, 3.0])  # a constant: no adjoint flows to it, and the drawing leaves it out
    y = w * x + b
    loss = (y * y).sum()
    retain_grads(loss)
    loss.backward(retain_graph=True)
    names = {"w": w, "b": b, "x": x, "y": y, "loss": loss}
    labels = {label.split("\\n")[0]: label for label in _labels(draw_graph(loss, names=names, direction="backward"))}
    by_hand = {"loss": [1.0], "y": [2.0, 6.0, 10.0], "w": [44.0], "b": [18.0]}  # y-bar = 2y, w-bar = sum y-bar x
    for name, adjoint in by_hand.items():
        assert _adjoint_of(labels[name]) == adjoint, (name, labels[name])
    assert "x" not in labels and "(3,) float32\\nvalue [1, 2, 3]" not in "".join(labels.values())


def test_matplotlib_layout_never_overlaps_boxes_of_one_row() -> None:
    """Wide labels side by side (a long adjoint next to a short one) get room for their longest line."""
    a = mt.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    b = mt.tensor(np.ones(4), requires_grad=True)
    c = mt.tensor(2.0, requires_grad=True)
    loss = ((a + b) * c).sum()
    retain_grads(loss)
    loss.backward(retain_graph=True)
    graph = graph_module._build(loss, True, {"a": a, "b": b, "c": c}, 4, "backward")
    pos, width, _ = graph_module._positions(graph)
    rows: dict[float, list[tuple[float, float]]] = {}
    for item in graph.items:
        x, y = pos[item.key]
        half = graph_module._box_chars(item) / 2
        rows.setdefault(y, []).append((x - half, x + half))
    assert any(len(spans) > 1 for spans in rows.values())
    for spans in rows.values():
        spans.sort()
        assert spans[0][0] >= 0 and spans[-1][1] <= width
        assert all(left[1] <= right[0] for left, right in zip(spans, spans[1:])), spans
