"""The scripts behind chapter 4's col2im figure and chapter 9's ablation run, at toy size.

The figures in docs/ are made by these scripts; a script that no longer runs against the
current library would leave a chapter citing numbers nobody can reproduce.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "figures"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, FIGURES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_col2im_copy_counts_figure(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    script = _script("make_col2im_counts")
    script.main(tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_ablation_runs_at_toy_size(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    script = _script("make_ablation")
    try:
        script.main(
            ["--train-size", "300", "--test-size", "200", "--train-eval-size", "200", "--epochs", "1"]
            + ["--long-epochs", "2", "--seeds", "0", "--extra-seeds", "--only", "course", "recipe"]
            + ["--out", str(tmp_path)]
        )
    except FileNotFoundError as exc:  # Debian's dataset-fashion-mnist is not installed here
        pytest.skip(f"the ablation needs Fashion-MNIST: {exc}")
    results = json.loads((tmp_path / "ablation.json").read_text())
    assert results, "the ablation wrote no runs"
    assert (tmp_path / "ablation.png").exists()
