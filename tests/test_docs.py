r"""Every Python code block in docs/*.md runs, its shown outputs are true, and the docs' links and figures exist.

Convention (stated in docs/index.md): a fenced block whose info string is
``python`` (or ``py``) runs; ``python no-run`` (any info string with the word
``no-run``) is shown but not run.  The blocks of one file run in order in one
shared namespace, in a fresh temporary working directory, with matplotlib's
non-interactive backend.

Shown outputs: a comment ``# -> TEXT`` is what the statement it belongs to prints.
A block runs one top-level statement at a time; the ``# ->`` comments from the
first line of a top-level statement up to the next one (on its lines or on
comment lines right after it) are, one line each and in order, everything that
statement writes to stdout::

    print(x.shape, x.dtype)  # -> (3,) float32
    for name in ("a", "b"):
        print(name)
    # -> a
    # -> b

The comparison is exact after stripping trailing whitespace from every line, with
one wildcard: ``...`` in a shown output matches any text (also across lines), as
doctest's ELLIPSIS does; use it for the digits of a float that are not the point
(``# -> 44.0000...``), or better, print rounded numbers.  A shown line that ends
in a backslash continues on the next ``# ->`` line (its leading spaces dropped), for
an output line too long for one comment: ``# -> gradcheck failed for input 0 \``
then ``# ->     at index (0,): ...`` stand for one printed line.  A statement without a
``# ->`` comment is not compared (other comments after a ``print`` are prose);
a chapter without any shown output is fine.  Output that depends on the machine
(whether CUDA is present, a timing) is never written with ``# ->``.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import time
import tokenize
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")
SHOWN = re.compile(r"^#\s?->(?: (?P<text>.*))?$")  # a shown-output comment: "# -> text" or a bare "# ->"
SLOW_BLOCK_SECONDS = 20.0  # generous: snippets are meant to take well under 2 s on a quiet machine


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    info: str
    code: str

    @property
    def runs(self) -> bool:
        words = self.info.replace(",", " ").split()
        return bool(words) and words[0] in ("python", "py", "python3") and "no-run" not in words


def extract_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, in order."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, indent = match["fence"], len(match["indent"])
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not re.match(rf"^ *{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[i]):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        if i >= len(lines):
            raise AssertionError(f"{path.name}:{start + 1}: unclosed code fence")
        blocks.append(Block(path, start + 1, match["info"].strip(), "\n".join(body) + "\n"))
        i += 1
    return blocks


def _doc_files() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


@pytest.fixture
def docs_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    yield tmp_path
    import matplotlib.pyplot as plt

    plt.close("all")


def shown_outputs(code: str) -> dict[int, list[str]]:
    """The ``# -> TEXT`` comments of a block, by 1-based line (within the block)."""
    shown: dict[int, list[str]] = {}
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.COMMENT and (match := SHOWN.match(token.string)):
            shown.setdefault(token.start[0], []).append((match["text"] or "").rstrip())
    return shown


def join_continued(lines: list[str]) -> str:
    """Shown-output lines as one text; a line ending in a backslash runs on into the next (its indent dropped)."""
    text, continued = "", False
    for line in lines:
        text += line.lstrip() if continued else ("\n" if text else "") + line
        continued = text.endswith("\\")
        text = text.removesuffix("\\")
    return text


def output_matches(shown: str, printed: str) -> bool:
    """``printed`` equals ``shown`` line by line, trailing whitespace stripped; ``...`` matches anything."""
    printed = "\n".join(line.rstrip() for line in printed.rstrip("\n").split("\n"))
    pattern = ".*?".join(re.escape(part) for part in shown.split("..."))
    return re.fullmatch(pattern, printed, flags=re.S) is not None


def run_block(block: Block, namespace: dict) -> list[str]:
    """Run a block statement by statement; return one message per shown output that differs from the real one."""
    label = f"{block.path.name}:block@line{block.line}"
    tree = ast.parse(block.code, label)
    shown = shown_outputs(block.code)
    statements = tree.body
    starts = [s.lineno for s in statements] + [len(block.code.splitlines()) + 1]
    orphans = [line for line in shown if line < starts[0]]
    failures = [f"{block.path.name}:{block.line + line}: '# ->' before any statement" for line in orphans]
    for statement, start, end in zip(statements, starts, starts[1:]):
        expected = [text for line in range(start, end) for text in shown.get(line, [])]
        code = compile(ast.Module(body=[statement], type_ignores=[]), label, "exec")
        if not expected:
            exec(code, namespace)
            continue
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(code, namespace)
        printed = buffer.getvalue()
        if not output_matches(join_continued(expected), printed):
            failures.append(
                f"{block.path.name}:{block.line + start}: the shown output\n"
                + "".join(f"    # -> {text}\n" for text in expected)
                + "  is not what it prints:\n"
                + "".join(f"    # -> {line.rstrip()}\n" for line in printed.rstrip("\n").split("\n"))
            )
    return failures


@pytest.mark.parametrize("path", [*_doc_files(), DOCS.parent / "README.md"], ids=lambda p: p.name)
def test_python_blocks_run(path: Path, docs_env: Path) -> None:
    namespace: dict = {"__name__": f"docs_{path.stem.replace('-', '_')}"}
    failures: list[str] = []
    for block in extract_blocks(path):
        if not block.runs:
            continue
        start = time.perf_counter()
        try:
            failures += run_block(block, namespace)
        except Exception:
            pytest.fail(f"{path.name}, block at line {block.line} raised:\n{traceback.format_exc()}", pytrace=False)
        seconds = time.perf_counter() - start
        assert seconds < SLOW_BLOCK_SECONDS, f"{path.name}, block at line {block.line} took {seconds:.1f} s"
    assert not failures, "\n".join(failures)


def test_docs_exist_and_index_orders_every_chapter() -> None:
    files = _doc_files()
    chapters = [p.name for p in files if re.match(r"\d\d-", p.name)]
    assert len(chapters) >= 12, chapters
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    positions = [index.find(f"({name})") for name in chapters]
    assert all(p >= 0 for p in positions), [n for n, p in zip(chapters, positions) if p < 0]
    assert positions == sorted(positions), "index.md must list the chapters in order"
    assert "no-run" in index, "index.md must state the code-block convention"


@pytest.mark.parametrize("path", _doc_files(), ids=lambda p: p.name)
def test_links_and_figures_exist(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target) or target.startswith("#") or target.startswith("mailto:"):
            continue
        local = (path.parent / target.split("#")[0]).resolve()
        assert local.exists(), f"{path.name}: broken link {target}"
        if local.suffix == ".png":
            assert local.stat().st_size < 200_000, f"{target} is {local.stat().st_size} bytes (keep figures < 200 KB)"
            assert local.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{target} is not a PNG"
            scripts = list((DOCS / "figures").glob("make_*.py"))
            assert any(local.stem.split(".")[0] in s.read_text(encoding="utf-8") for s in scripts), (
                f"{target}: no docs/figures/make_*.py script mentions it, so it cannot be regenerated"
            )


def test_math_delimiters_balance() -> None:
    for path in _doc_files():
        prose = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
        prose = re.sub(r"`[^`\n]*`", "", prose)
        display = prose.count("$$")
        assert display % 2 == 0, f"{path.name}: unbalanced $$"
        inline = prose.replace("$$", "").replace(r"\$", "").count("$")
        assert inline % 2 == 0, f"{path.name}: unbalanced $"


def test_extractor_understands_the_convention(tmp_path: Path) -> None:
    sample = tmp_path / "sample.md"
    sample.write_text(
        "text\n```python\nx = 1\n```\n\n```python no-run\nraise SystemExit\n```\n\n````text\n```python\n````\n"
        "```py\ny = x + 1\n```\n",
        encoding="utf-8",
    )
    blocks = extract_blocks(sample)
    assert [b.info for b in blocks] == ["python", "python no-run", "text", "py"]
    assert [b.runs for b in blocks] == [True, False, False, True]
    assert blocks[0].line == 2 and blocks[0].code == "x = 1\n"
    ns: dict = {}
    for b in blocks:
        if b.runs:
            exec(b.code, ns)
    assert ns["y"] == 2
    assert os.path.exists(sample)


def test_shown_outputs_are_compared(tmp_path: Path) -> None:
    """The ``# ->`` convention: per top-level statement, trailing spaces ignored, ``...`` a wildcard."""
    assert output_matches("(3,) float32", "(3,) float32   \n")
    assert output_matches("44.0000...", "44.00000000012\n")
    assert output_matches("a\nb", "a\nb\n") and not output_matches("a", "a\nb\n")
    assert not output_matches("1.5", "1.4999\n") and not output_matches("x", "")
    assert join_continued(["a b \\", "   c", "d"]) == "a b c\nd"
    sample = tmp_path / "sample.md"
    sample.write_text(
        "```python\nx = 2  # a comment, not an output\nprint(x)  # -> 2\nfor i in range(2):\n    print(i)\n"
        "# -> 0\n# -> 1\nprint('# -> in a string is not a comment')\nprint(x + 1)  # -> 4\n```\n",
        encoding="utf-8",
    )
    (block,) = extract_blocks(sample)
    assert sorted(shown_outputs(block.code)) == [2, 5, 6, 8]
    (failure,) = run_block(block, {})
    assert "sample.md:9" in failure and "# -> 4" in failure and "# -> 3" in failure


def _load_api_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_api_reference", DOCS / "figures" / "make_api_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_names_every_public_name() -> None:
    """Chapter 12 is generated; a public name added later without regenerating it fails here."""
    import importlib

    script = _load_api_script()
    page = (DOCS / "12-api-reference.md").read_text(encoding="utf-8")
    missing = []
    for module_name in script.MODULES:
        assert f"## `{module_name}`" in page, f"chapter 12 has no section for {module_name}"
        module = importlib.import_module(module_name)
        for name in script.public_names(module):
            if not re.search(rf"\*\*`{re.escape(name)}[(`]", page):  # the entry, not a longer name
                missing.append(f"{module_name}.{name}")
    assert not missing, f"not in docs/12-api-reference.md: {missing}; run `python docs/figures/make_api_reference.py`"


def _load_figure_script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, DOCS / "figures" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plain_vs_residual_script_runs_on_a_tiny_problem(tmp_path: Path) -> None:
    """Chapter 8's experiment script, on random data and a 4-layer net, so it cannot rot unnoticed."""
    import argparse

    import numpy as np

    script = _load_figure_script("make_plain_vs_residual")
    args = argparse.Namespace(blocks=1, width=4, train_size=64, test_size=32, epochs=1, batch_size=32, lr=0.05, seed=0)
    rng = np.random.default_rng(0)
    data = (
        rng.standard_normal((64, 1, 28, 28)).astype(np.float32),
        rng.integers(0, 10, 64),
        rng.standard_normal((32, 1, 28, 28)).astype(np.float32),
        rng.integers(0, 10, 32),
    )
    results = {name: script.train(args, name == "residual", data) for name in ("plain", "residual")}
    for r in results.values():
        assert len(r["losses"]) == 2 and all(np.isfinite(r["losses"]))
        assert len(r["test_accuracy"]) == 1 and 0.0 <= r["test_accuracy"][0] <= 1.0
        assert len(r["conv_grad_norms_at_init"]) == 3  # stem + 2 convs in the block
    assert results["plain"]["parameters"] == results["residual"]["parameters"]
    script.plot(results, args, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_resnet_table_in_chapter_8_matches_our_code() -> None:
    """Recompute chapter 8's table (about 2 minutes on 2 cores) and compare it with the page, row by row."""
    script = _load_figure_script("make_resnet_table")
    page = (DOCS / "08-resnet.md").read_text(encoding="utf-8")
    for name in script.ARCHS:
        assert script.row(name) in page, f"chapter 8's row for {name} differs from make_resnet_table.py's output"


def test_activation_memory_script_shows_the_walk_freeing_activations() -> None:
    """Chapter 2's claim, on the script's own ResNet18: memory falls during backward, and stays with retain_graph."""
    script = _load_figure_script("make_activation_memory")
    freed, kept = script.measure(4, retain_graph=False), script.measure(4, retain_graph=True)
    assert freed["graph"] > 3 * freed["parameters"]  # activations dominate
    assert freed["walk"][-1] - freed["after"] < 0.2 * freed["graph"]  # by the last node, little beyond the gradients
    assert freed["peak"] - freed["graph"] < 3 * freed["parameters"]  # the gradients and one node's working arrays
    assert freed["after"] < 2 * freed["parameters"]
    assert kept["after"] > 0.9 * kept["graph"]  # retain_graph keeps it all


def test_tiny_cnn_figure_script_runs_the_chapters_code(tmp_path: Path) -> None:
    """make_tiny_cnn_backward.py draws chapter 6's own tensors, so the figure cannot drift from the printed numbers."""
    from minitorch_nndl.viz import draw_graph, render_graph

    script = _load_figure_script("make_tiny_cnn_backward")
    ns = script.run_chapter()
    dot = draw_graph(ns["loss"], direction="backward")
    for op in ("CrossEntropy", "Linear", "MaxPool2d", "ReLU", "BatchNorm", "Conv2d"):
        assert f'label="{op}"' in dot, op
    out = render_graph(ns["loss"], tmp_path / "b.png", engine="matplotlib", dpi=30, direction="backward")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gradcheck_eps_script_shows_the_v() -> None:
    """Chapter 10's figure: the central difference is best near 1e-5, worse for larger and smaller steps."""
    import minitorch_nndl as mt

    script = _load_figure_script("make_gradcheck_eps")
    assert script.central_error(1e-6) < 1e-9 < script.central_error(1e-12)
    assert script.central_error(1e-6) < script.central_error(1e-2)
    assert script.forward_error(1e-8) > 10 * script.central_error(1e-5)
    assert script.central_error(1e-9, mt.float32) > 0.1  # the step vanishes in float32


@pytest.mark.slow
def test_activation_memory_table_in_chapter_2_matches_the_script() -> None:
    """The table of chapter 2, recomputed (a few seconds): a change in what the ops save shows up here.

    tracemalloc also counts Python's own small objects, which differ a little from one process to
    the next, so each figure may differ from the page by 0.1 MB (and 5%); a change in what the graph
    keeps is an activation-sized array, far more.
    """
    script = _load_figure_script("make_activation_memory")
    page = (DOCS / "02-reverse-mode.md").read_text(encoding="utf-8")

    def figures(row: str) -> list[float]:
        return [float(v) for v in re.findall(r"\d+(?:\.\d+)?", row)]

    shown = {int(figures(r)[0]): figures(r)[1:] for r in page.splitlines() if re.match(r"\| \d+ \| [\d.]+ MB \|", r)}
    for row in script.table()[2:]:
        batch, *measured = figures(row)
        assert int(batch) in shown, f"chapter 2's activation-memory table has no row for batch {batch}"
        for got, on_page in zip(measured, shown[int(batch)]):
            assert abs(got - on_page) <= 0.1 + 0.05 * on_page, (
                f"chapter 2's activation-memory table says {shown[int(batch)]} at batch {batch}, the script "
                f"measures {row!r}; rerun make_activation_memory.py"
            )
