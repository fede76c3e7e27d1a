"""Pictures of what the library computes: the autograd graph of an expression.

``draw_graph(tensor)`` returns Graphviz DOT text; ``render_graph(tensor, path)``
writes a PNG (with Graphviz's ``dot`` when installed, else with matplotlib).
``retain_grads(loss)`` before a backward, and ``direction="backward"``, draw the
backward pass: the arrows from the loss back, the adjoint on every tensor.
"""

from .graph import draw_graph, render_graph, retain_grads

__all__ = ["draw_graph", "render_graph", "retain_grads"]
