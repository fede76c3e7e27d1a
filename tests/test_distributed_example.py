"""The example on two ranks: ``mpiexec -n 2 python3 examples/resnet18_cifar10.py --distributed ...``.

On a tiny synthetic CIFAR-10 (20 images per batch file): one epoch, then a resume to a second.
Rank 0 alone prints and writes; the dev accuracy it reports is the whole dev set's; the other rank
takes part in training and evaluation and leaves nothing behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_distributed import launch, needs_mpi

from minitorch_nndl.data.synthetic import write_fake_cifar10
from minitorch_nndl.train import Trainer, load_checkpoint, restore_model, runs

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "resnet18_cifar10.py"
TINY = ["--arch", "resnet10", "--width", "4", "--batch-size", "8", "--quiet", "--log-every", "2", "--subset", "40"]


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory) -> tuple[Path, Path, str, str]:
    """(data folder, run folder, output of the first run, output of the resumed one)."""
    root = tmp_path_factory.mktemp("distributed-example")
    data = root / "data"
    write_fake_cifar10(data, n_per_batch=20, archive=False, extracted=True, seed=0)
    out = root / "runs" / "r"
    first = [str(EXAMPLE), "--distributed", "--data-dir", str(data), *TINY, "--epochs", "1", "--out", str(out)]
    code, text = launch(first, timeout=240)
    assert code == 0, text
    code, resumed = launch([str(EXAMPLE), "--distributed", "--resume", str(out / "last.npz"), "--epochs", "2"])
    assert code == 0, resumed
    return data, out, text, resumed


@needs_mpi
def test_the_banner_says_the_ranks_the_global_batch_and_the_lr_scaling(two_rank_run):
    _, _, text, resumed = two_rank_run
    line = next(line for line in text.splitlines() if line.strip().startswith("parallel"))
    assert "2 ranks x batch 8 = global batch 16" in line
    assert "lr 0.0125 = 0.00625 x 2 ranks (linear scaling" in line  # 0.1 x 8/128, for the global batch of 16
    assert "not scaled: given or resumed" in resumed


@needs_mpi
def test_rank_0_alone_prints_and_writes_one_set_of_outputs(two_rank_run):
    _, out, text, resumed = two_rank_run
    assert text.count("resnet10 on cifar10") == 1 and text.count("epoch   1 |") == 1
    assert text.count("test accuracy") == 1 and resumed.count("epoch   2 |") == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(runs.RUN_FILES)
    assert [p.name for p in out.parent.iterdir()] == ["r"]  # no second folder from the other rank
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["distributed"] is True and cfg["lr"] == pytest.approx(0.0125)


@needs_mpi
def test_the_reported_dev_accuracy_is_that_of_the_whole_dev_set_and_the_run_resumed(two_rank_run):
    import importlib.util
    import sys

    data, out, _, _ = two_rank_run
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history["epochs"]] == [1, 2]  # the first run and the resumed one
    ck = load_checkpoint(out / "last.npz")
    assert ck["trainer"]["epoch"] == 2
    spec = importlib.util.spec_from_file_location("resnet18_cifar10_for_dist", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example
    spec.loader.exec_module(example)
    cfg = {**ck["config"], "distributed": False, "device": "cpu"}
    model = example.build_model(cfg)
    restore_model(model, ck["model"])
    dev = runs.load_splits(cfg)["dev"]
    assert len(dev) == 20  # every dev image, not one rank's 10
    trainer = Trainer(model, None, example.nn.CrossEntropyLoss(), quiet=True)
    result = trainer.evaluate(runs.eval_loader(dev, cfg))
    assert result["acc"] == history["epochs"][-1]["dev_acc"]
    np.testing.assert_allclose(result["loss"], history["epochs"][-1]["dev_loss"], rtol=1e-5)
