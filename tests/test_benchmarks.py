"""The ResNet18 benchmark runs end to end (tiny settings): its workers answer, the rounds
alternate, and the table has every row.  Its figures are measurements, never asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_bench_resnet18_prints_the_whole_table_from_paired_rounds():
    pytest.importorskip("torch")
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_resnet18.py"), "--batch-sizes", "2"]
    command += ["--steps", "1", "--rounds", "2", "--min-seconds", "0", "--warmup", "0"]
    env = {**os.environ, "MINITORCH_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=ROOT, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert any("alternating, at least 2 per framework" in line for line in lines), done.stdout
    for label in ("train, batch 2", "eval, batch 2", "peak RSS of training, batch 2", "of which the steps added"):
        row = next(line for line in lines if line.strip().startswith(label))
        assert row.split()[-1].replace(".", "", 1).isdigit(), row  # ours / PyTorch, a number


def test_bench_resnet18_refuses_bad_arguments_in_one_line():
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_resnet18.py"), "--rounds", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")
