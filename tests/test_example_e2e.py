"""The example program end to end on a tiny synthetic CIFAR-10, on the CPU, and predict.py."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl.data import CIFAR10
from minitorch_nndl.data.synthetic import write_fake_cifar10
from minitorch_nndl.train import load_checkpoint

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNGS = ("curves.png", "lr.png", "confusion_matrix.png", "per_class_accuracy.png", "predictions.png")


def _load(name: str):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    return _load("resnet18_cifar10")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_fake_cifar10(root, n_per_batch=20, archive=False, extracted=True, seed=0)
    return root


TINY = ["--arch", "resnet10", "--width", "8", "--batch-size", "16", "--quiet", "--log-every", "2"]


@pytest.fixture(scope="module")
def run(example, data_dir, tmp_path_factory) -> Path:
    """1 epoch, then resume to 2: exercises --resume and leaves a complete output folder."""
    out = tmp_path_factory.mktemp("run")
    args = ["--data-dir", str(data_dir), *TINY, "--out", str(out), "--cutout", "8"]
    assert example.main([*args, "--epochs", "1"]) == 0
    assert load_checkpoint(out / "last.npz")["trainer"]["epoch"] == 1
    assert (
        example.main(["--resume", str(out / "last.npz"), "--epochs", "2", "--data-dir", str(data_dir), "--quiet"]) == 0
    )
    return out


def test_every_output_file(run: Path) -> None:
    for name in PNGS:
        path = run / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE, name
        import matplotlib.image as mpimg

        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100, (name, img.shape)
    for name in ("last.npz", "best.npz"):
        ck = load_checkpoint(run / name)
        assert ck["config"]["arch"] == "resnet10" and ck["config"]["width"] == 8
        assert "conv1.weight" in ck["model"] and "layer4.0.bn2.running_var" in ck["model"]
        assert all(np.isfinite(v).all() for v in ck["model"].values())
        assert ck["optimizer"]["param_groups"][0]["nesterov"] is True
    assert load_checkpoint(run / "last.npz")["trainer"]["epoch"] == 2
    config = json.loads((run / "config.json").read_text())
    assert config["lr"] == pytest.approx(0.1 * 16 / 128) and config["label_smoothing"] == 0.1
    hist = json.loads((run / "history.json").read_text())
    assert len(hist["epochs"]) == 2
    assert [r["step"] for r in hist["steps"]] == list(range(1, 11))  # 80 train images / 16, twice
    assert all(np.isfinite(r["loss"]) for r in hist["steps"])
    lines = (run / "history.csv").read_text().strip().splitlines()
    assert len(lines) == 3 and "dev_acc" in lines[0]
    summary = json.loads((run / "test_summary.json").read_text())
    assert summary["n_test"] == 20 and 0.0 <= summary["test_acc"] <= 1.0
    assert np.array(summary["confusion_matrix"]).sum() == 20
    assert set(summary["per_class_acc"]) == set(CIFAR10.CLASSES)


def test_predict_prints_top3_matching_the_model(run: Path, data_dir: Path, tmp_path, capsys, example) -> None:
    import matplotlib.image as mpimg

    predict = _load("predict")
    test = CIFAR10(data_dir, split="test")
    png = tmp_path / "img.png"
    mpimg.imsave(png, test.images[3])
    capsys.readouterr()
    assert predict.main(["--checkpoint", str(run / "best.npz"), str(png)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all("%" in line for line in lines[1:])
    probs = [float(line.split()[-1].rstrip("%")) for line in lines[1:]]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 100.01
    # the same prediction as the model on the data set's own (normalized) image
    ck = load_checkpoint(run / "best.npz")
    model = example.build_model(ck["config"])
    model.load_state_dict(ck["model"])
    model.eval()
    x = example.eval_transform(example.dataset_info("cifar10"))(test.images[3:4])
    with mt.no_grad():
        p = model(mt.tensor(x)).softmax(axis=1).numpy()[0]
    assert lines[1].split()[1] == CIFAR10.CLASSES[int(p.argmax())]
    assert probs[0] == pytest.approx(100 * p.max(), abs=0.01)
    # a larger, non-square image is cropped and resized
    big = np.kron(test.images[3], np.ones((3, 2, 1), dtype=np.uint8))
    mpimg.imsave(tmp_path / "big.png", big)
    assert predict.main(["--checkpoint", str(run / "best.npz"), str(tmp_path / "big.png")]) == 0


def test_eval_only(run: Path, data_dir: Path, example, tmp_path, capsys) -> None:
    out = tmp_path / "eval"
    assert example.main(["--eval-only", str(run / "best.npz"), "--data-dir", str(data_dir), "--out", str(out)]) == 0
    summary = json.loads((out / "test_summary.json").read_text())
    assert summary == {**summary, "n_test": 20}
    assert (out / "confusion_matrix.png").read_bytes()[:8] == PNG_SIGNATURE
    assert "test accuracy" in capsys.readouterr().out


def test_missing_data_says_how_to_download(example, tmp_path, capsys) -> None:
    code = example.main(["--data-dir", str(tmp_path / "nothing"), "--epochs", "1", "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "CIFAR-10 was not found" in err
    assert f"python examples/resnet18_cifar10.py --data-dir {tmp_path / 'nothing'} --epochs 1" in err
    assert err.strip().endswith("--download")


@pytest.mark.skipif(mt.cuda.is_available(), reason="checks the message shown without a GPU")
def test_cuda_without_gpu_suggests_cpu(example, data_dir, tmp_path) -> None:
    with pytest.raises(SystemExit, match="--device cpu"):
        example.main(["--device", "cuda", "--data-dir", str(data_dir), "--out", str(tmp_path)])


def test_recipes(example) -> None:
    parser = example.build_parser()
    seed = example.resolve_config(parser.parse_args(["--recipe", "seed"]))
    assert (seed["stem"], seed["lr"], seed["batch_size"], seed["epochs"]) == ("imagenet", 0.001, 64, 30)
    assert (seed["schedule"], seed["label_smoothing"], seed["augment"], seed["weight_decay"]) == ("none", 0.0, False, 0)
    assert seed["momentum"] == 0.9 and not seed["nesterov"]
    default = example.resolve_config(parser.parse_args(["--batch-size", "256"]))
    assert default["stem"] == "cifar" and default["lr"] == pytest.approx(0.2)  # linear scaling
    assert default["schedule"] == "cosine" and default["warmup_epochs"] == 5 and default["epochs"] == 200
    fm = example.resolve_config(parser.parse_args(["--dataset", "fashion-mnist"]))
    assert fm["epochs"] == 15
    assert "95%" in parser.format_help()


def test_example_builds_standard_and_narrow_resnets(example) -> None:
    """--width 64 is the standard network; a narrow resnet10 runs on 1-channel 28x28 images."""
    from minitorch_nndl import models

    ref = {k: v.shape for k, v in models.resnet18(num_classes=10).state_dict().items()}
    ours = example.build_model({"arch": "resnet18", "num_classes": 10, "stem": "cifar", "in_channels": 3})
    assert {k: v.shape for k, v in ours.state_dict().items()} == ref
    small = example.build_model({"arch": "resnet10", "width": 16, "num_classes": 10, "stem": "cifar", "in_channels": 1})
    out = small(mt.randn(2, 1, 28, 28))
    assert out.shape == (2, 10)
