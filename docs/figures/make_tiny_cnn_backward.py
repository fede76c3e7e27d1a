"""Figure for chapter 6: the backward pass of its tiny CNN, adjoints on every node, arrows pointing back.

    python3 docs/figures/make_tiny_cnn_backward.py   # writes docs/figures/tiny_cnn_backward.png

The network and its numbers are not repeated here: the script runs the chapter's
own ``python`` blocks (all of docs/06-pooling.md, in order, as tests/test_docs.py
does), so the picture always shows the numbers printed in the chapter.  It then
draws ``loss`` with ``viz.render_graph(..., direction="backward")``.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from minitorch_nndl.viz import render_graph  # noqa: E402

HERE = Path(__file__).resolve().parent
CHAPTER = HERE.parent / "06-pooling.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", flags=re.S | re.M)  # exactly "python": no-run blocks are skipped


def run_chapter(path: Path = CHAPTER) -> dict:
    """The namespace left by the chapter's python blocks, run in order in a scratch directory."""
    namespace: dict = {"__name__": "chapter"}
    here = Path.cwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        try:
            for code in BLOCK.findall(path.read_text(encoding="utf-8")):
                exec(compile(code, str(path), "exec"), namespace)
        finally:
            os.chdir(here)
    return namespace


def main() -> None:
    ns = run_chapter()
    names = {n: ns[n] for n in ("W", "gamma", "beta", "W_fc", "b_fc", "c", "b", "r", "m", "f", "z", "loss")}
    out = HERE / "tiny_cnn_backward.png"
    render_graph(ns["loss"], out, names=names, engine="matplotlib", dpi=60, direction="backward")
    print(out, out.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
