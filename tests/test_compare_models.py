"""``examples/compare_models.py`` end to end on a tiny configuration (synthetic data, seconds), and its
command-line contract: one ``error:`` line for bad input, nothing written before the inputs are checked,
an earlier comparison never overwritten."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "compare_models.py"
TINY = ["--dataset", "fake", "--subset", "16", "--test-subset", "16", "--epochs", "2", "--width", "0.0625"]
TINY += ["--batch-size", "8", "--eval-batch-size", "16"]


@pytest.fixture(scope="module")
def compare():
    spec = importlib.util.spec_from_file_location("compare_models", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["compare_models"] = module
    spec.loader.exec_module(module)
    return module


def test_a_tiny_comparison_writes_every_table_and_plot(compare, tmp_path, capsys) -> None:
    out = tmp_path / "cmp"
    models = "lenet5,alexnet,googlenet,resnet10"  # the new networks, and one ResNet
    assert compare.main([*TINY, "--models", models, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(compare.OUT_FILES)
    rows = list(csv.DictReader(open(out / "results.csv", encoding="utf-8")))
    assert [r["model"] for r in rows] == models.split(",")
    for r in rows:
        assert r["status"] == "completed"
        assert int(r["params"]) > 0 and int(r["macs_per_image"]) > 0
        assert float(r["train_images_per_s"]) > 0 and float(r["eval_images_per_s"]) > 0
        assert 0.0 <= float(r["final_test_acc"]) <= 1.0
    epochs = list(csv.DictReader(open(out / "epochs.csv", encoding="utf-8")))
    assert len(epochs) == 2 * len(rows)
    table = (out / "results.md").read_text(encoding="utf-8")
    assert "test acc ep 2" in table and "| googlenet |" in table
    assert "compare_models.py --dataset fake" in table  # the command that made it
    assert "| resnet10 |" in capsys.readouterr().out


def test_an_earlier_comparison_is_never_overwritten(compare, tmp_path) -> None:
    out = tmp_path / "cmp"
    args = [*TINY, "--epochs", "1", "--models", "lenet5", "--out", str(out)]
    assert compare.main(args) == 0
    first = (out / "results.csv").read_bytes()
    assert compare.main(args) == 0
    assert (out / "results.csv").read_bytes() == first
    assert (tmp_path / "cmp-2" / "results.csv").is_file()
    assert compare.main([*args, "--overwrite"]) == 0
    assert not (tmp_path / "cmp-3").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--models", "lenet5,resnet99"], "unknown network(s) resnet99; choose from lenet5, alexnet"),
        (["--models", "vgg11,vgg11"], "named twice"),
        (["--epochs", "0"], "--epochs: must be 1 or more, got 0"),
        (["--width", "-1"], "--width: must be more than 0, got -1"),
        (["--subset", "0"], "--subset: must be 1 or more"),
        (["--batch-size", "x"], "--batch-size: expected a whole number"),
        (["--device", "tpu"], "--device"),
    ],
)
def test_bad_input_is_one_error_line_and_writes_nothing(compare, tmp_path, capsys, extra, message) -> None:
    out = tmp_path / "cmp"
    status = compare.main([*TINY, *extra, "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not out.exists()


def test_missing_data_names_the_folder_and_the_fix(compare, tmp_path, capsys) -> None:
    out = tmp_path / "cmp"
    status = compare.main(["--dataset", "cifar10", "--data-dir", str(tmp_path / "nowhere"), "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("error: ") and "nowhere" in err and "Traceback" not in err
    assert not out.exists()


def test_cuda_without_a_gpu_says_why_and_how_to_run_on_the_cpu(compare, tmp_path, capsys) -> None:
    import minitorch_nndl as mt

    if mt.cuda.is_available():
        pytest.skip("CUDA is usable here")
    out = tmp_path / "cmp"
    status = compare.main([*TINY, "--device", "cuda", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("error: --device cuda") and "Traceback" not in err
    assert "--device cpu" in err.splitlines()[-1]
    assert not out.exists()
