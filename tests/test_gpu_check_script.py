"""scripts/gpu_check.sh is the one check a GPU session runs, on a machine it gets for minutes:
it must fit its budget, keep TF32 out of the correctness suite, and be valid bash."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_check.sh"
BUDGET_S = 8 * 60


def _commands() -> list[str]:
    """The script's lines with continuation lines joined."""
    return SCRIPT.read_text().replace("\\\n", " ").splitlines()


def test_the_step_limits_fit_in_eight_minutes() -> None:
    limits = [int(m) for line in _commands() for m in re.findall(r"\btimeout(?: -s \w+)?(?: -k (?:\d+))? (\d+)", line)]
    kill_grace = [int(m) for line in _commands() for m in re.findall(r"\btimeout[^\n]*?-k (\d+)", line)]
    assert len(limits) >= 6, limits  # versions, smoke, pytest, two benchmarks, example
    assert sum(limits) + sum(kill_grace) <= BUDGET_S, (limits, kill_grace)


def test_tf32_never_reaches_the_test_suite() -> None:
    commands = _commands()
    assert not any(re.search(r"^\s*export\s+CUPY_TF32", line) for line in commands)
    for line in commands:
        if re.search(r"(?:^|[\s;&|'])CUPY_TF32=1\s", line) and not line.lstrip().startswith("#"):
            assert "pytest" not in line and ("benchmarks/" in line or "examples/" in line), line
    pytest_lines = [line for line in commands if "-m pytest" in line]
    assert pytest_lines and all(" -x" not in line for line in pytest_lines)  # one failure must not hide the rest


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_script_is_valid_bash() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0
