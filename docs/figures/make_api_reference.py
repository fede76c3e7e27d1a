"""Generate docs/12-api-reference.md from the docstrings of the public modules.

    python docs/figures/make_api_reference.py          # rewrites docs/12-api-reference.md

For every module in ``MODULES``: its docstring's first paragraph, then every public
name (``__all__``, or the functions and classes the module defines) with its
signature and the first paragraph of its docstring; for classes, their public
methods with the first line of theirs.  ``tests/test_docs.py`` checks that every
public name of these modules appears in the generated page, so an API added later
without regenerating the page fails the suite.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent.parent
OUT = DOCS / "12-api-reference.md"

MODULES = [
    "minitorch_nndl",
    "minitorch_nndl.autograd",
    "minitorch_nndl.grad_mode",
    "minitorch_nndl.factories",
    "minitorch_nndl.backend",
    "minitorch_nndl.cuda",
    "minitorch_nndl.gradcheck",
    "minitorch_nndl.ops.elementwise",
    "minitorch_nndl.ops.activation",
    "minitorch_nndl.ops.reduce",
    "minitorch_nndl.ops.matmul",
    "minitorch_nndl.ops.shape",
    "minitorch_nndl.ops.conv",
    "minitorch_nndl.ops.pool",
    "minitorch_nndl.ops.norm",
    "minitorch_nndl.ops.lrn",
    "minitorch_nndl.ops.loss",
    "minitorch_nndl.ops.dropout",
    "minitorch_nndl.ops._util",
    "minitorch_nndl.ops.validate",
    "minitorch_nndl.kernels",
    "minitorch_nndl.nn",
    "minitorch_nndl.nn.functional",
    "minitorch_nndl.nn.init",
    "minitorch_nndl.optim",
    "minitorch_nndl.optim.lr_scheduler",
    "minitorch_nndl.data",
    "minitorch_nndl.data.transforms",
    "minitorch_nndl.data.synthetic",
    "minitorch_nndl.data.catalog",
    "minitorch_nndl.data.sampler",
    "minitorch_nndl.distributed",
    "minitorch_nndl.models",
    "minitorch_nndl.train",
    "minitorch_nndl.train.recipe",
    "minitorch_nndl.train.runs",
    "minitorch_nndl.train.sharded",
    "minitorch_nndl.train.data_parallel",
    "minitorch_nndl.cli",
    "minitorch_nndl.testing",
    "minitorch_nndl.testing.strategies",
    "minitorch_nndl.viz",
    "minitorch_nndl.exercises",
    "minitorch_nndl.exercises.grader",
    "minitorch_nndl.exercises.report",
]

# names that are re-exported for convenience and documented where they are defined
SKIP_IN = {"minitorch_nndl": {"Tensor"}}


def public_names(module: Any) -> list[str]:
    """``__all__`` when the module has one, else the functions and classes it defines."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n
            for n, obj in vars(module).items()
            if not n.startswith("_")
            and (inspect.isfunction(obj) or inspect.isclass(obj))
            and getattr(obj, "__module__", None) == module.__name__
        ]
    return sorted(n for n in names if not n.startswith("_"))


def first_paragraph(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    para = doc.strip().split("\n\n")[0]
    return " ".join(line.strip() for line in para.splitlines())


def _annotation(annotation: Any) -> str:
    if isinstance(annotation, str):  # postponed annotations (from __future__ import annotations)
        return annotation
    return inspect.formatannotation(annotation)


def signature(obj: Any) -> str:
    """``(a: int, b: str = 'x') -> T`` with string annotations shown unquoted and defaults as repr."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    parts = []
    seen_kwonly = False
    for p in sig.parameters.values():
        text = p.name
        if p.kind is p.VAR_POSITIONAL:
            text = "*" + text
            seen_kwonly = True
        elif p.kind is p.VAR_KEYWORD:
            text = "**" + text
        elif p.kind is p.KEYWORD_ONLY and not seen_kwonly:
            parts.append("*")
            seen_kwonly = True
        if p.annotation is not p.empty:
            text += f": {_annotation(p.annotation)}"
        if p.default is not p.empty:
            default = re.sub(r" at 0x[0-9a-f]+", "", repr(p.default))
            text += f" = {default}" if p.annotation is not p.empty else f"={default}"
        parts.append(text)
    out = f"({', '.join(parts)})"
    if sig.return_annotation is not sig.empty:
        out += f" -> {_annotation(sig.return_annotation)}"
    return out


def escape(text: str) -> str:
    """Keep docstring text from being read as Markdown math or HTML."""
    text = re.sub(r"<(?=[A-Za-z/])", "&lt;", text)  # "<module>" would read as an HTML tag
    return text.replace("$", "\\$")


def describe(module_name: str, name: str, obj: Any) -> list[str]:
    lines: list[str] = []
    if inspect.ismodule(obj):
        lines.append(f"- **`{name}`** (module): {escape(first_paragraph(obj))}")
        return lines
    if inspect.isclass(obj):
        bases = [b.__name__ for b in obj.__bases__ if b is not object]
        kind = f"class({', '.join(bases)})" if bases else "class"
        init_sig = signature(obj)
        doc = escape(first_paragraph(obj))
        lines.append(f"- **`{name}{init_sig}`** *{kind}*" + (f": {doc}" if doc else ""))
        methods = []
        for mname, member in sorted(vars(obj).items()):
            if mname.startswith("_") and mname not in ("__call__",):
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if isinstance(member, property):
                methods.append(f"`{mname}` (property)")
                continue
            if inspect.isfunction(member):
                doc = (inspect.getdoc(member) or "").strip().splitlines()
                summary = f": {escape(doc[0])}" if doc else ""
                methods.append(f"`{mname}{signature(member)}`{summary}")
        for m in methods:
            lines.append(f"  - {m}")
        return lines
    if callable(obj):
        doc = escape(first_paragraph(obj))
        lines.append(f"- **`{name}{signature(obj)}`**" + (f": {doc}" if doc else ""))
        return lines
    value = repr(obj)
    if len(value) > 80:
        value = value[:77] + "..."
    lines.append(f"- **`{name}`** = `{value}`")
    return lines


def generate() -> str:
    out = [
        "# 12. API reference",
        "",
        "Generated from the docstrings by `python docs/figures/make_api_reference.py`",
        "([script](figures/make_api_reference.py)); regenerate it after changing a public API",
        "(`tests/test_docs.py` fails when a public name is missing here). Signatures are",
        "exact; descriptions are the first paragraph of each docstring: read the source",
        "for the rest, each module is written to be read. Math in this page is written as",
        "in the docstrings (plain text), the chapters derive it.",
        "",
        "Contents: " + ", ".join(f"[`{m}`](#{m.replace('.', '').replace('_', '')})" for m in MODULES) + ".",
        "",
    ]
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        out.append(f'<a id="{module_name.replace(".", "").replace("_", "")}"></a>')
        out.append("")
        out.append(f"## `{module_name}`")
        out.append("")
        doc = first_paragraph(module)
        if doc:
            out.append(escape(doc))
            out.append("")
        skip = SKIP_IN.get(module_name, set())
        for name in public_names(module):
            if name in skip:
                out.append(f"- **`{name}`**: see `minitorch_nndl.tensor`.")
                continue
            obj = getattr(module, name)
            out.extend(describe(module_name, name, obj))
        out.append("")
    # the Tensor class, documented once, in full
    tensor_module = importlib.import_module("minitorch_nndl.tensor")
    out.append('<a id="minitorchnndltensor"></a>')
    out.append("")
    out.append("## `minitorch_nndl.tensor`")
    out.append("")
    out.append(escape(first_paragraph(tensor_module)))
    out.append("")
    for name in public_names(tensor_module):
        out.extend(describe("minitorch_nndl.tensor", name, getattr(tensor_module, name)))
    out.append("")
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    OUT.write_text(generate(), encoding="utf-8")
    print(OUT, len(OUT.read_text(encoding="utf-8").splitlines()), "lines")


if __name__ == "__main__":
    main()
