"""The build-it-yourself exercises: our solutions pass the grader, fresh stubs and planted mistakes fail it
with the right report, and the command line keeps a student's work and speaks in one-line errors.

A student's answer is written the way a student writes it: the stub's ``raise
NotImplementedError`` line replaced by code (:func:`answer`).  Few drawn inputs per stage
(``EXAMPLES``) keep this file fast; ``check --all --solutions`` at the default 25 is one
slow test.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hypothesis")

import minitorch_nndl as mt
from minitorch_nndl import exercises
from minitorch_nndl.exercises.command import main

EXAMPLES = 10
DOCS = Path(__file__).resolve().parent.parent / "docs"

CORRECT = {
    "unbroadcast": """
        extra = grad.ndim - len(shape)
        if extra:
            grad = grad.sum(axis=tuple(range(extra)))
        axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
        return grad.sum(axis=axes, keepdims=True) if axes else grad
    """,
    "mul": "return unbroadcast(grad * b, a.shape), unbroadcast(grad * a, b.shape)",
    "div": "return unbroadcast(grad / b, a.shape), unbroadcast(-grad * a / (b * b), b.shape)",
    "exp": "return (grad * y,)",
    "relu": "return (grad * (x > 0),)",
    "mean": """
        n = int(np.prod([ctx.shape[a] for a in ctx.axes]))
        kept = [1 if i in ctx.axes else size for i, size in enumerate(ctx.shape)]
        return np.broadcast_to((grad if ctx.keepdims else grad.reshape(kept)) / n, ctx.shape), None, None
    """,
    "im2col": """
        N, C, H, W = x_shape
        KH, KW = kernel_size
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        OH, OW = output_size(H, KH, sh, ph, dh), output_size(W, KW, sw, pw, dw)
        blocks = cols.reshape(C, KH, KW, N, OH, OW)
        dx = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
        for kh in range(KH):
            for kw in range(KW):
                rows = slice(kh * dh, kh * dh + sh * (OH - 1) + 1, sh)
                columns = slice(kw * dw, kw * dw + sw * (OW - 1) + 1, sw)
                dx[:, :, rows, columns] += blocks[:, kh, kw].transpose(1, 0, 2, 3)
        return dx[:, :, ph : ph + H, pw : pw + W]
    """,
    "conv2d": """
        C_out = weight.shape[0]
        g_mat = grad.transpose(1, 0, 2, 3).reshape(C_out, -1)
        dw = (g_mat @ cols.T).reshape(weight.shape)
        dx = col2im(weight.reshape(C_out, -1).T @ g_mat, x_shape, kernel_size, stride, padding, dilation)
        return dx, dw, grad.sum(axis=(0, 2, 3)) if ctx.has_bias else None
    """,
    "sgd_momentum": """
        g = grad + weight_decay * param
        buf = g if buf is None else momentum * buf + g
        return param - lr * buf, buf
    """,
    "adam": """
        g = grad + weight_decay * param
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
    """,
}


def answer(name: str, code: str) -> str:
    """The stub of exercise ``name`` with its ``raise NotImplementedError`` line replaced by ``code``."""
    lines = exercises.stub_text(exercises.exercise(name)).splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("raise NotImplementedError"))
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    body = [indent + line if line else line for line in textwrap.dedent(code).strip().splitlines()]
    return "\n".join([*lines[:at], *body, *lines[at + 1 :]]) + "\n"


def write(folder: Path, name: str, code: str) -> None:
    (folder / f"{name}.py").write_text(answer(name, code), encoding="utf-8")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """Fresh stubs, with the two exercises others import (unbroadcast, im2col) already solved."""
    folder = tmp_path / "my-exercises"
    exercises.start(folder)
    for name in ("unbroadcast", "im2col"):
        write(folder, name, CORRECT[name])
    return folder


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------ the catalog and the stubs


def test_list_shows_every_exercise_in_teaching_order_with_a_chapter_that_exists(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    names = exercises.names()
    assert names[:2] == ["unbroadcast", "mul"] and names[-2:] == ["sgd_momentum", "adam"]
    required = {"mul", "div", "pow", "exp", "log", "sum", "mean", "matmul", "relu", "softmax", "log_softmax"}
    required |= {"cross_entropy", "im2col", "conv2d", "max_pool2d", "batch_norm", "sgd_momentum", "adam"}
    assert required <= set(names)
    rows = [line for line in out.splitlines() if line[:3].strip().rstrip(".").isdigit()]
    assert [row.split()[1] for row in rows] == names
    for ex in exercises.EXERCISES:
        assert (DOCS.parent / ex.chapter.split(",")[0]).is_file(), ex.chapter


def test_stubs_import_only_the_public_api_and_their_sibling_exercises():
    allowed = {"numpy", "minitorch_nndl"} | set(exercises.names())
    for ex in exercises.EXERCISES:
        tree = ast.parse(exercises.stub_text(ex))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert imported <= allowed, (ex.name, imported - allowed)
        uses = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert uses == set(ex.uses), ex.name


# ------------------------------------------------------------------ the grader


@pytest.mark.parametrize("name", exercises.names())
def test_our_solutions_pass_the_grader(name):
    result = exercises.check(name, solutions=True, examples=EXAMPLES)
    assert result.passed, result.text()
    assert "tiny CNN" in result.text()


@pytest.mark.slow
def test_check_all_solutions_at_the_default_number_of_examples(capsys):
    code, out, _ = run_cli(capsys, "check", "--all", "--solutions")
    assert code == 0, out
    assert out.splitlines()[-1] == f"{len(exercises.EXERCISES)} of {len(exercises.EXERCISES)} exercises pass"


def test_fresh_stubs_fail_with_not_implemented(tmp_path, capsys):
    exercises.start(tmp_path)
    code, out, err = run_cli(capsys, "check", "--all", "--dir", tmp_path, "--examples", 1)
    assert code == 1 and err == ""
    for ex in exercises.EXERCISES:
        assert f"{ex.name}: FAILED (not implemented)" in out
    assert out.splitlines()[-1].startswith(f"0 of {len(exercises.EXERCISES)} exercises pass; next: unbroadcast")


def test_an_unfinished_sibling_is_named(tmp_path):
    exercises.start(tmp_path)
    write(tmp_path, "mul", CORRECT["mul"])  # unbroadcast.py is still the stub
    report = exercises.check("mul", tmp_path, examples=1).text()
    assert "not implemented yet: unbroadcast" in report
    assert "raised in unbroadcast.py, which mul.py uses: do that exercise first" in report


@pytest.mark.parametrize("name", ["mul", "div", "mean", "conv2d", "sgd_momentum", "adam"])
def test_correct_answers_pass(workspace, name):
    write(workspace, name, CORRECT[name])
    result = exercises.check(name, workspace, examples=EXAMPLES)
    assert result.passed, result.text()
    assert result.text().startswith(f"{name}: passed ({workspace / name}.py): ")


# mistake -> (exercise, code, failure kind, what the report must say).  Hypothesis may find a mistake among
# its draws (and shrink it) or leave it to the fixed cases; the kind is the same either way, except where noted.
PLANTED = {
    "missing unbroadcast": (
        "mul",
        "return grad * b, grad * a",
        "shape",
        ["has shape", "but", "hint: where an input was broadcast", "unbroadcast("],
    ),
    "wrong sign": (
        "div",
        "return unbroadcast(grad / b, a.shape), unbroadcast(grad * a / (b * b), b.shape)",
        "sign",
        ["dL/db, element", "expected -", "every element has the opposite sign", "-a / b**2"],
    ),
    "forgotten 1/N in mean": (
        "mean",
        CORRECT["mean"].replace(" / n", ""),
        "factor",
        # n, the factor, is that of whichever input fails first (a drawn one, or the fixed (2, 3, 4) case)
        ["dL/dx, element", re.compile(r"every element is \d+ times ours"), "forgotten 1/n"],
    ),
    "conv dW without the transpose": (
        "conv2d",
        CORRECT["conv2d"].replace("g_mat @ cols.T", "g_mat @ cols"),
        "error",
        ["backward raised ValueError", "conv2d.py line", "dw = (g_mat @ cols).reshape", "cols needs its transpose"],
    ),
    "a float64 gradient for float32": (
        "exp",
        "return ((grad * y).astype(np.float64),)",
        "check_op",
        ["passed so far: output and gradients equal ours", "float32", "hint: float32 in, float32 out"],
    ),
    "a list, not a tuple": ("exp", "return [grad * y]", "error", ["returned a list: return a tuple"]),
    "grad changed in place": ("relu", "grad *= x > 0\nreturn (grad,)", "mutation", ["grad *= mask"]),
    "eps inside the square root": (
        "adam",
        CORRECT["adam"].replace("(np.sqrt(v_hat) + eps)", "np.sqrt(v_hat + eps)"),
        "values",
        ["param after step 1, element", "eps goes outside the square root"],
    ),
    "momentum buffer starts at zero": (
        "sgd_momentum",
        CORRECT["sgd_momentum"].replace("g if buf is None else", "(1 - momentum) * g if buf is None else"),
        ("factor", "values"),  # shrunk to param = 0 the whole step is half ours; the fixed case has param != 0
        ["param after step 1, element", "expected", "got", "buf = g on the first step"],
    ),
}


@pytest.mark.parametrize("mistake", list(PLANTED))
def test_a_planted_mistake_fails_with_the_right_report(workspace, mistake):
    name, code, kind, phrases = PLANTED[mistake]
    write(workspace, name, code)
    result = exercises.check(name, workspace, examples=EXAMPLES)
    report = result.text()
    assert not result.passed
    kinds = kind if isinstance(kind, tuple) else (kind,)
    assert result.finding.kind in kinds, report
    assert report.startswith(f"{name}: FAILED ({result.finding.kind}) in {workspace / name}.py")
    assert "failing input: " in report
    assert f"explained in: {exercises.exercise(name).chapter}" in report
    for phrase in phrases:
        found = phrase.search(report) if isinstance(phrase, re.Pattern) else phrase in report
        assert found, (phrase, report)


def test_a_small_failing_case_shows_its_values_and_the_incoming_grad(workspace):
    """A shrunk input of a few elements is printed with its values, and so is grad: the case can be redone by hand."""
    write(workspace, "unbroadcast", "return grad[(0,) * (grad.ndim - len(shape))]")  # one copy, not their sum
    report = exercises.check("unbroadcast", workspace, examples=EXAMPLES).text()
    assert re.search(r"smallest failing input: x: float64 \([\d, ]*\) = \S", report), report
    assert re.search(r"the incoming grad \(dL/dy, shape \([\d, ]+\)\) was \[", report), report
    assert "a constant factor" not in report, report


def test_a_constant_factor_is_claimed_only_when_it_can_be_one():
    """One or two elements always agree on *some* ratio: only a whole number (or one over it) is named as a factor."""
    from minitorch_nndl.exercises.report import compare_arrays

    expected = np.array([0.3, -0.7])
    assert compare_arrays("d", 63.5 * expected, expected).kind == "values"
    assert compare_arrays("d", 2 * expected, expected).kind == "factor"
    assert compare_arrays("d", expected / 3, expected).kind == "factor"
    assert compare_arrays("d", -expected[:1], expected[:1]).kind == "sign"
    assert compare_arrays("d", 31.6 * expected[:1], expected[:1]).kind == "values"
    zero = compare_arrays("d", 0 * expected[:1], expected[:1])  # not "0 times ours"
    assert zero.kind == "values" and "yours is 0 everywhere" in zero.lines[1]
    three = np.array([0.3, -0.7, 1.1])
    assert "every element is 31.6 times ours" in compare_arrays("d", 31.6 * three, three).lines[1]


def test_every_chapter_section_named_by_an_exercise_exists():
    """The sections a student is sent to (``list``, every report, the stub's first paragraph) are headings there."""

    def plain(text: str) -> str:
        return " ".join(re.sub(r"[`$*]", "", text).split())

    for ex in exercises.EXERCISES:
        path, _, section = ex.chapter.partition(", ")
        lines = (DOCS.parent / path).read_text(encoding="utf-8").splitlines()
        headings = [plain(line.lstrip("#")) for line in lines if line.startswith("## ")]
        opening = ast.get_docstring(ast.parse(exercises.stub_text(ex))).split("\n\n")[0]
        assert path in plain(opening), (ex.name, opening)
        for named in [section, *re.findall(r'"([^"]+)"', plain(opening))]:
            assert any(h.startswith(plain(named)) for h in headings), (ex.name, named, headings)


def test_fixed_cases_catch_what_a_few_draws_miss(workspace):
    correct = """
        a2, b2 = (a[None, :] if a.ndim == 1 else a), (b[:, None] if b.ndim == 1 else b)
        g = grad[..., None] if b.ndim == 1 else grad
        g = np.expand_dims(g, -2) if a.ndim == 1 else g
        ga = unbroadcast(g @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        return ga, unbroadcast(np.swapaxes(a2, -1, -2) @ g, b2.shape).reshape(b.shape)
    """
    write(workspace, "matmul", correct)
    assert exercises.check("matmul", workspace, examples=1).passed
    no_batch_sum = correct.replace("unbroadcast(g @ np.swapaxes(b2, -1, -2), a2.shape)", "(g @ b2.mT)")
    write(workspace, "matmul", no_batch_sum)
    result = exercises.check("matmul", workspace, examples=1)  # one draw: the smallest input, two 1-vectors
    assert not result.passed
    assert "  failing input: A: float64 (2, 3), B: float64 (4, 3, 2)" in result.text()


def test_grading_a_broken_answer_leaves_the_library_alone(workspace):
    write(workspace, "mul", PLANTED["missing unbroadcast"][1])
    assert not exercises.check("mul", workspace, examples=EXAMPLES).passed
    assert "unbroadcast" not in sys.modules and "mul" not in sys.modules
    a = mt.tensor(np.ones((2, 3)), requires_grad=True)
    b = mt.tensor(np.full(3, 2.0), requires_grad=True)
    (a * b).sum().backward()
    assert b.grad.shape == (3,) and np.all(b.grad == 2.0)


# ------------------------------------------------------------------ start: never lose a student's work


def test_start_writes_stubs_and_never_overwrites_work(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "start", tmp_path)
    assert code == 0 and f"check unbroadcast --dir {tmp_path}" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(ex.file for ex in exercises.EXERCISES)
    mine = tmp_path / "mul.py"
    mine.write_text("# my work\n")
    code, out, err = run_cli(capsys, "start", tmp_path)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and "nothing was written" in err and "--force" in err
    assert mine.read_text() == "# my work\n"
    code, _, _ = run_cli(capsys, "start", tmp_path, "--force")
    assert code == 0
    assert (tmp_path / "mul.py.bak").read_text() == "# my work\n"
    assert mine.read_text() == exercises.stub_text(exercises.exercise("mul"))
    assert not (tmp_path / "div.py.bak").exists()  # an untouched stub needs no backup
    mine.write_text("# my second try\n")
    run_cli(capsys, "start", tmp_path, "--force")  # a second --force keeps the first backup too
    assert (tmp_path / "mul.py.bak").read_text() == "# my work\n"
    assert (tmp_path / "mul.py.bak2").read_text() == "# my second try\n"
    run_cli(capsys, "start", tmp_path, "--force")  # and a third, on the untouched stub, loses nothing
    assert sorted(p.name for p in tmp_path.glob("mul.py*")) == ["mul.py", "mul.py.bak", "mul.py.bak2"]


def test_start_refuses_a_folder_inside_the_package(capsys):
    inside = Path(exercises.__file__).parent / "my-work"
    code, _, err = run_cli(capsys, "start", inside)
    assert code == 2 and err.startswith("error: ") and "inside the installed package" in err
    assert not inside.exists()


# ------------------------------------------------------------------ the command line


def test_check_exit_status_is_zero_only_when_it_passes(workspace, capsys):
    code, out, _ = run_cli(capsys, "check", "unbroadcast", "--dir", workspace, "--examples", EXAMPLES)
    assert code == 0 and out.startswith("unbroadcast: passed")
    code, out, _ = run_cli(capsys, "check", "mul", "--dir", workspace, "--examples", 1)
    assert code == 1 and out.startswith("mul: FAILED (not implemented)")


def test_user_mistakes_are_one_error_line_with_the_fix(workspace, tmp_path, capsys):
    (workspace / "div.py").write_text("def broken(:\n    pass\n")
    (workspace / "log.py").unlink()
    (tmp_path / "empty").mkdir()
    cases = [
        (["check", "mull", "--dir", workspace], "no exercise named 'mull'; did you mean mul?"),
        (["check", "mul", "--dir", tmp_path / "nowhere"], "no folder"),
        (["check", "div", "--dir", workspace], "div.py, line 1:"),
        (["check", "log", "--dir", workspace], "log.py does not exist: `python3 -m minitorch_nndl.exercises start NEW"),
        (
            ["check", "log", "--dir", tmp_path / "empty"],
            f"log.py does not exist: `{exercises.COMMAND} start {tmp_path}",
        ),
        (["check", "mul", "--dir", workspace / "mul.py"], "mul.py is a file: --dir takes the folder"),
        (["check"], "check needs one exercise NAME or --all"),
        (["check", "mul", "--all"], "check needs one exercise NAME or --all"),
        (["check", "--all", "--solutions", "--dir", workspace], "--solutions grades the library's own ops"),
        (["check", "mul", "--examples", "0"], "must be 1 or more"),
    ]
    for argv, message in cases:
        code, out, err = run_cli(capsys, *argv)
        assert code == 2, (argv, out, err)
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, (argv, err)
        assert "Traceback" not in out + err


def test_check_all_reports_a_broken_file_and_goes_on(workspace, capsys):
    (workspace / "div.py").write_text("def broken(:\n    pass\n")
    code, out, err = run_cli(capsys, "check", "--all", "--dir", workspace, "--examples", 1)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "div.py, line 1:" in err
    assert "unbroadcast: passed" in out and "mul: FAILED (not implemented)" in out and "pow: FAILED" in out
    assert out.splitlines()[-1].startswith(f"2 of {len(exercises.EXERCISES)} exercises pass; next: mul")


def test_the_package_runs_as_a_program():
    done = subprocess.run(
        [sys.executable, "-m", "minitorch_nndl.exercises", "list"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert " 1. unbroadcast" in done.stdout
