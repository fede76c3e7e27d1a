"""Pictures of what the library computes: the autograd graph of an expression.

``draw_graph(tensor)`` returns Graphviz DOT text; ``render_graph(tensor, path)``
writes a PNG (with Graphviz's ``dot`` when installed, else with matplotlib).
"""

from .graph import draw_graph, render_graph

__all__ = ["draw_graph", "render_graph"]
