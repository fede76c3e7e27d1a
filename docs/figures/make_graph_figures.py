"""Draw the autograd graph of chapter 1-2's worked example, before and after backward.

    python docs/figures/make_graph_figures.py        # writes graph_forward.png, graph_backward.png

The example is  loss = sum((w * x + b)^2)  with w = 2, b = -1, x = [1, 2, 3].
Uses Graphviz's `dot` when installed, else matplotlib (minitorch_nndl.viz.render_graph).
"""

from __future__ import annotations

from pathlib import Path

import minitorch_nndl as mt
from minitorch_nndl.viz import render_graph

HERE = Path(__file__).resolve().parent


def build() -> tuple[mt.Tensor, dict[str, mt.Tensor]]:
    w = mt.tensor(2.0, requires_grad=True)
    b = mt.tensor(-1.0, requires_grad=True)
    x = mt.tensor([1.0, 2.0, 3.0])
    y = (w * x + b).retain_grad()
    loss = (y * y).sum()
    return loss, {"w": w, "b": b, "x": x, "y": y, "loss": loss}


def main() -> None:
    loss, names = build()
    render_graph(loss, HERE / "graph_forward.png", names=names, dpi=80)
    loss.backward(retain_graph=True)  # keep the graph's links so it can be drawn with its gradients
    render_graph(loss, HERE / "graph_backward.png", names=names, dpi=80)
    for name in ("graph_forward.png", "graph_backward.png"):
        print(HERE / name, (HERE / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
