"""Real learning, offline: a small ResNet from our primitives on Fashion-MNIST.

ResNet10 (one BasicBlock per stage) with base width 16 (308,538 parameters), CIFAR stem,
SGD Nesterov lr 0.1 batch 128, weight decay 5e-4 off BN/bias, warm-up + cosine to 0,
label smoothing 0.1, no augmentation, trained 3 epochs on all 60,000 training images
(``--final``) must reach >= 91% test accuracy.  The same command, by hand::

    OPENBLAS_NUM_THREADS=1 python examples/resnet18_cifar10.py --dataset fashion-mnist \\
        --arch resnet10 --width 16 --epochs 3 --no-augment --final --monitor-test

Takes tens of minutes on a small CPU, hence ``slow`` (run with ``pytest -m slow``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "resnet18_cifar10.py"

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not (DEBIAN / "train-images-idx3-ubyte.gz").exists(), reason="Debian's dataset-fashion-mnist")
def test_small_resnet_reaches_91_percent_in_3_epochs(tmp_path) -> None:
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        str(EXAMPLE),
        "--dataset",
        "fashion-mnist",
        "--arch",
        "resnet10",
        "--width",
        "16",
        "--epochs",
        "3",
        "--no-augment",
        "--final",
        "--monitor-test",
        "--quiet",
        "--data-dir",
        str(tmp_path / "none"),  # falls back to the Debian folder
        "--out",
        str(out),
    ]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=4 * 3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "test_summary.json").read_text())
    hist = json.loads((out / "history.json").read_text())
    per_epoch = [round(100 * r["test_acc"], 2) for r in hist["epochs"]]
    print(f"test accuracy per epoch: {per_epoch}; minutes: {summary['train_minutes']:.1f}")
    assert len(hist["epochs"]) == 3
    assert summary["test_acc"] >= 0.91, per_epoch
