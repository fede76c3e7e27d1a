"""The example program end to end on a tiny synthetic CIFAR-10, on the CPU, and predict.py.

In process (``main(argv)`` returns the exit status), so each run takes a second or two.
``test_newcomer_walk.py`` runs the same program as real processes, the way a user does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

import minitorch_nndl as mt
from minitorch_nndl.data import CIFAR10
from minitorch_nndl.data.synthetic import write_fake_cifar10
from minitorch_nndl.train import load_checkpoint
from minitorch_nndl.train.recipe import eval_transform

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


@pytest.fixture
def no_plots(monkeypatch) -> None:
    """Skip drawing the PNGs (about half a second each) in tests about something else; the run fixture draws them."""
    from minitorch_nndl.train import plots

    for name in ("plot_curves", "plot_lr", "plot_confusion_matrix", "plot_per_class_accuracy", "plot_prediction_grid"):
        monkeypatch.setattr(plots, name, lambda *args, **kwargs: None)


TINY = ["--arch", "resnet10", "--width", "8", "--batch-size", "16", "--quiet", "--log-every", "2"]
SMALLER = ["--arch", "resnet10", "--width", "4", "--batch-size", "16", "--quiet", "--log-every", "2"]


@pytest.fixture(scope="module")
def run(example, data_dir, tmp_path_factory) -> Path:
    """1 epoch, then resume to 2 with nothing but --resume and --epochs: the run's own settings carry on."""
    out = tmp_path_factory.mktemp("run") / "r"
    args = ["--data-dir", str(data_dir), *TINY, "--out", str(out), "--cutout", "8"]
    assert example.main([*args, "--epochs", "1"]) == 0
    assert load_checkpoint(out / "last.npz")["trainer"]["epoch"] == 1
    assert example.main(["--resume", str(out / "last.npz"), "--epochs", "2"]) == 0
    return out


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _assert_one_error_line(err: str) -> None:
    """A user-facing failure: exactly one ``error:`` line and no traceback."""
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1, err


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
    assert config["epochs"] == 2 and config["cutout"] == 8  # the resumed run kept --cutout, took --epochs
    hist = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in hist["epochs"]] == [1, 2]  # numbered as on the console
    assert [r["step"] for r in hist["steps"]] == list(range(1, 11))  # 80 train images / 16, twice
    assert all(np.isfinite(r["loss"]) for r in hist["steps"])
    csv_bytes = (run / "history.csv").read_bytes()
    assert b"\r\n" not in csv_bytes
    lines = csv_bytes.decode().strip().splitlines()
    assert len(lines) == 3 and "dev_acc" in lines[0]
    summary = json.loads((run / "test_summary.json").read_text())
    assert summary["n_test"] == 20 and 0.0 <= summary["test_acc"] <= 1.0
    assert np.array(summary["confusion_matrix"]).sum() == 20
    assert set(summary["per_class_acc"]) == set(CIFAR10.CLASSES)
    assert summary["epochs_trained"] == 2 and summary["best_epoch"] in (1, 2) and summary["train_minutes"] > 0


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
    x = eval_transform(CIFAR10.info)(test.images[3:4])
    with mt.no_grad():
        p = model(mt.tensor(x)).softmax(axis=1).numpy()[0]
    assert lines[1].split()[1] == CIFAR10.CLASSES[int(p.argmax())]
    assert probs[0] == pytest.approx(100 * p.max(), abs=0.01)
    # a larger, non-square image is cropped and resized
    big = np.kron(test.images[3], np.ones((3, 2, 1), dtype=np.uint8))
    mpimg.imsave(tmp_path / "big.png", big)
    assert predict.main(["--checkpoint", str(run / "best.npz"), str(tmp_path / "big.png")]) == 0


def test_predict_refuses_a_file_that_is_not_an_image(run: Path, tmp_path, capsys) -> None:
    predict = _load("predict")
    (tmp_path / "notes.png").write_text("not a picture")
    assert predict.main(["--checkpoint", str(run / "best.npz"), str(tmp_path / "notes.png")]) == 1
    err = capsys.readouterr().err
    _assert_one_error_line(err)
    assert "notes.png" in err
    assert predict.main(["--checkpoint", str(run / "best.npz")]) == 2  # the image is missing: a usage error
    _assert_one_error_line(capsys.readouterr().err)


def test_eval_only_writes_beside_the_runs_summary(run: Path, example, capsys) -> None:
    before = (run / "test_summary.json").read_text()
    assert example.main(["--eval-only", str(run / "best.npz")]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert (run / "test_summary.json").read_text() == before  # train_minutes, epochs_trained, best_epoch kept
    evaluation = run / "eval-best"
    summary = json.loads((evaluation / "test_summary.json").read_text())
    assert summary["n_test"] == 20 and summary["checkpoint"] == str(run / "best.npz")
    assert summary["test_acc"] == json.loads(before)["test_acc"]  # the same model, the same test set
    assert (evaluation / "confusion_matrix.png").read_bytes()[:8] == PNG_SIGNATURE
    # a second evaluation does not replace the first; --subset shrinks the test set
    assert example.main(["--eval-only", str(run / "best.npz"), "--subset", "7"]) == 0
    assert json.loads((run / "eval-best-2" / "test_summary.json").read_text())["n_test"] == 7
    # training options cannot apply to an evaluation
    assert example.main(["--eval-only", str(run / "best.npz"), "--lr", "0.5"]) == 2
    _assert_one_error_line(capsys.readouterr().err)


def test_eval_only_into_a_new_folder(run: Path, data_dir: Path, example, tmp_path, no_plots) -> None:
    out = tmp_path / "eval"
    assert example.main(["--eval-only", str(run / "best.npz"), "--data-dir", str(data_dir), "--out", str(out)]) == 0
    assert json.loads((out / "test_summary.json").read_text())["n_test"] == 20


def test_resume_takes_the_saved_settings_and_names_each_change(example, data_dir, tmp_path, capsys, no_plots) -> None:
    """The data folder given at the start is used on resume; an option given again is named in the banner."""
    out = tmp_path / "r"
    args = ["--data-dir", str(data_dir), *SMALLER, "--out", str(out), "--epochs", "1"]
    assert example.main(args) == 0
    moved = tmp_path / "moved-data"
    shutil.copytree(data_dir, moved)
    capsys.readouterr()
    assert example.main(["--resume", str(out / "last.npz"), "--epochs", "2", "--data-dir", str(moved)]) == 0
    banner = capsys.readouterr().out
    assert "with the run's saved settings" in banner
    assert f"data_dir {str(data_dir)!r} -> {str(moved)!r}" in banner and "epochs 1 -> 2" in banner
    config = json.loads((out / "config.json").read_text())
    assert config["data_dir"] == str(moved)
    assert load_checkpoint(out / "last.npz")["config"] == config  # the checkpoint carries the same record
    assert [r["step"] for r in config["resumes"]] == [5] and "data_dir" in config["resumes"][0]["changed"]
    # settings that define the run cannot change on resume: the message names them and the fix
    for bad in (["--width", "16"], ["--seed", "3"], ["--out", str(tmp_path / "elsewhere")]):
        assert example.main(["--resume", str(out / "last.npz"), "--epochs", "3", *bad]) == 2
        err = capsys.readouterr().err
        _assert_one_error_line(err)
        assert bad[0] in err and "without --resume" in err
    # a finished run has nothing left to train
    assert example.main(["--resume", str(out / "last.npz")]) == 2
    err = capsys.readouterr().err
    assert "already trained all its 2 epochs" in err and "--epochs 3" in err
    assert example.main(["--resume", str(out / "last.npz"), "--epochs", "1"]) == 2
    assert "fewer than the 2 epochs" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere").exists()


def test_extending_a_run_rebuilds_the_schedule_for_the_new_length(
    example, data_dir, tmp_path, capsys, no_plots
) -> None:
    """1 epoch, then --epochs 2: from the resume point on, the rates are those of a 2-epoch schedule."""
    out, fresh = tmp_path / "extended", tmp_path / "fresh"
    args = ["--data-dir", str(data_dir), *SMALLER, "--warmup-epochs", "0.4"]
    assert example.main([*args, "--out", str(out), "--epochs", "1"]) == 0
    capsys.readouterr()
    assert example.main(["--resume", str(out / "last.npz"), "--epochs", "2"]) == 0
    banner = capsys.readouterr().out
    assert "schedule  0.4 warm-up epochs + cosine decay to 0 over 2 epochs" in banner
    assert "schedule is rebuilt for lr 0.0125 over 2 epochs and continues at step 5" in banner
    assert example.main([*args, "--out", str(fresh), "--epochs", "2"]) == 0
    extended = [r["lr"] for r in json.loads((out / "history.json").read_text())["steps"]]
    planned = [r["lr"] for r in json.loads((fresh / "history.json").read_text())["steps"]]
    assert len(extended) == len(planned) == 10
    np.testing.assert_allclose(extended[5:], planned[5:], rtol=1e-12)  # the new schedule, not the old one again
    assert extended[5] < max(planned)  # past the peak: no second warm-up


def test_lr_on_resume_rebuilds_the_schedule(example, data_dir, tmp_path, capsys, no_plots) -> None:
    out = tmp_path / "r"
    args = ["--data-dir", str(data_dir), *SMALLER, "--schedule", "none", "--out", str(out), "--epochs", "1"]
    assert example.main(args) == 0
    assert example.main(["--resume", str(out / "last.npz"), "--epochs", "2", "--lr", "0.001"]) == 0
    steps = json.loads((out / "history.json").read_text())["steps"]
    assert {r["lr"] for r in steps[:5]} == {0.0125} and {r["lr"] for r in steps[5:]} == {0.001}
    assert "lr 0.0125 -> 0.001" in capsys.readouterr().out


def test_a_rerun_never_overwrites_an_earlier_run(example, data_dir, tmp_path, capsys, no_plots) -> None:
    out = tmp_path / "run"
    args = ["--data-dir", str(data_dir), *SMALLER, "--out", str(out)]
    assert example.main([*args, "--epochs", "1"]) == 0
    first = {name: (out / name).read_bytes() for name in ("best.npz", "last.npz", "config.json", "history.json")}
    capsys.readouterr()
    # the same command again: a fresh folder, the banner says so, the first run is untouched
    assert example.main([*args, "--epochs", "1", "--seed", "1"]) == 0
    assert f"output    {out}-2 ({out} holds an earlier run, which is kept)" in capsys.readouterr().out
    assert {name: (out / name).read_bytes() for name in first} == first
    assert load_checkpoint(out.with_name("run-2") / "last.npz")["config"]["seed"] == 1
    # --epochs 0 reports the untrained model of its own folder, never the earlier run's model
    assert example.main([*args, "--epochs", "0"]) == 0
    assert "model of epoch 0 (untrained" in capsys.readouterr().out
    summary = json.loads((out.with_name("run-3") / "test_summary.json").read_text())
    assert summary["epochs_trained"] == 0 and summary["best_epoch"] is None and summary["checkpoint"] is None
    assert {name: (out / name).read_bytes() for name in first} == first
    # --overwrite replaces the run in --out, and an empty folder is used as it is
    assert example.main([*args, "--epochs", "0", "--overwrite"]) == 0
    assert not (out / "best.npz").exists() and not (out / "last.npz").exists()
    assert json.loads((out / "test_summary.json").read_text())["epochs_trained"] == 0
    (tmp_path / "empty").mkdir()
    assert example.main([*args[:-1], str(tmp_path / "empty"), "--epochs", "0"]) == 0
    assert (tmp_path / "empty" / "test_summary.json").exists() and not (tmp_path / "empty-2").exists()


class _PressCtrlC:
    """A Trainer that receives a real SIGINT after its third step, as if the user pressed Ctrl-C."""

    def __init__(self, trainer_cls) -> None:
        self.trainer_cls = trainer_cls

    def __call__(self, *args, **kwargs):
        def press(trainer) -> None:
            if trainer.global_step == 3:
                os.kill(os.getpid(), signal.SIGINT)

        kwargs["callbacks"] = [*kwargs.get("callbacks", ()), press]
        return self.trainer_cls(*args, **kwargs)


def test_ctrl_c_prints_one_resume_command_that_works(
    example, data_dir, tmp_path, capsys, monkeypatch, no_plots
) -> None:
    monkeypatch.chdir(tmp_path)  # the default run folder runs/... is relative to here
    monkeypatch.setattr(example, "Trainer", _PressCtrlC(example.Trainer))
    assert example.main(["--data-dir", str(data_dir), *SMALLER, "--epochs", "2"]) == 130
    err = capsys.readouterr().err
    assert err.count("--resume") == 1 and "resume=" not in err  # one hint, not two
    command = shlex.split(err.strip().splitlines()[-1])
    assert command[0] == "python3" and Path(command[1]).resolve() == EXAMPLES / "resnet18_cifar10.py"
    assert command[2:] == ["--resume", "runs/cifar10-resnet10-default/last.npz"]
    monkeypatch.setattr(example, "Trainer", example.Trainer.trainer_cls)
    assert example.main(command[2:]) == 0  # the printed command, verbatim
    assert load_checkpoint(tmp_path / "runs/cifar10-resnet10-default/last.npz")["trainer"]["epoch"] == 2


def test_ctrl_c_before_training_is_one_line_and_leaves_no_folder(example, data_dir, tmp_path, capsys, monkeypatch):
    def press_ctrl_c_while_loading(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(example.runs, "load_splits", press_ctrl_c_while_loading)
    assert example.main(["--data-dir", str(data_dir), *SMALLER, "--out", str(tmp_path / "o")]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "interrupted" in err
    assert not (tmp_path / "o").exists()


def test_resuming_from_an_older_checkpoint_is_refused(example, data_dir, tmp_path, capsys, no_plots) -> None:
    """best.npz (or any copy) older than last.npz: resuming from it would overwrite the later epochs."""
    out = tmp_path / "r"
    assert example.main(["--data-dir", str(data_dir), *SMALLER, "--out", str(out), "--epochs", "1"]) == 0
    shutil.copy(out / "last.npz", out / "epoch1.npz")
    assert example.main(["--resume", str(out / "last.npz"), "--epochs", "2"]) == 0
    later = (out / "last.npz").read_bytes()
    capsys.readouterr()
    assert example.main(["--resume", str(out / "epoch1.npz"), "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    _assert_one_error_line(err)
    assert "would replace the later epochs" in err and f"Resume from {out / 'last.npz'}" in err
    assert (out / "last.npz").read_bytes() == later


def test_resume_shorter_than_the_warm_up_says_what_to_give(example, data_dir, tmp_path, capsys, monkeypatch, no_plots):
    monkeypatch.setattr(example, "Trainer", _PressCtrlC(example.Trainer))
    out = tmp_path / "r"
    args = ["--data-dir", str(data_dir), *SMALLER, "--out", str(out), "--epochs", "4", "--warmup-epochs", "3"]
    assert example.main(args) == 130
    capsys.readouterr()
    assert example.main(["--resume", str(out / "last.npz"), "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    _assert_one_error_line(err)
    assert "shorter than this run's 3 warm-up epochs: resume with --epochs 3 or more" in err


def test_the_printed_command_names_the_script_as_typed_from_the_repository(example, monkeypatch) -> None:
    monkeypatch.chdir(EXAMPLES.parent)
    assert example._command("--resume", "x/last.npz") == "python3 examples/resnet18_cifar10.py --resume x/last.npz"


BAD_OPTIONS = [
    (["--epochs", "-1"], "--epochs: must be 0 or more, got -1"),
    (["--batch-size", "0"], "--batch-size: must be 1 or more, got 0"),
    (["--width", "0"], "--width: must be 1 or more, got 0"),
    (["--lr", "-1"], "--lr: must be more than 0, got -1"),
    (["--lr", "fast"], "--lr: expected a number, got 'fast'"),
    (["--subset", "0"], "--subset: must be 1 or more, got 0 (leave --subset out to use every image)"),
    (["--subset", "-5"], "--subset: must be 1 or more, got -5"),
    (["--cutout", "-1"], "--cutout: must be 0 or more, got -1 (0 = no cutout)"),
    (["--warmup-epochs", "5", "--epochs", "3"], "--warmup-epochs 5 is longer than the run (3 epochs)"),
    (["--resume", "nowhere/last.npz"], "--resume nowhere/last.npz: the checkpoint does not exist"),
    (["--resume", "a.npz", "--eval-only", "b.npz"], "not allowed with argument"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_options_are_one_line_usage_errors(example, data_dir, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert example.main(["--data-dir", str(data_dir), *SMALLER, *argv]) == 2
    err = capsys.readouterr().err
    _assert_one_error_line(err)
    assert err.startswith("error: ") and message in err and len(_lines(err)) == 1
    assert list(tmp_path.iterdir()) == []  # no run folder


def _damaged_data(data_dir: Path, tmp_path: Path) -> dict[str, Path]:
    """Copies of the fake data set, each broken the way a newcomer's download gets broken."""
    cases = {}
    for name in ("truncated batch", "empty test_batch", "missing batch"):
        root = tmp_path / name.replace(" ", "-")
        shutil.copytree(data_dir, root)
        cases[name] = root
    folder = "cifar-10-batches-py"
    batch = cases["truncated batch"] / folder / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[: batch.stat().st_size // 2])
    (cases["empty test_batch"] / folder / "test_batch").write_bytes(b"")
    (cases["missing batch"] / folder / "data_batch_3").unlink()
    cases["missing --data-dir"] = tmp_path / "no-such-folder"
    return cases


def test_bad_data_is_one_error_line_and_leaves_no_run_folder(example, data_dir, tmp_path, capsys, monkeypatch):
    cases = _damaged_data(data_dir, tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    for name, root in cases.items():
        assert example.main(["--data-dir", str(root), *SMALLER, "--epochs", "1"]) == 1, name
        err = capsys.readouterr().err
        _assert_one_error_line(err)
        assert str(root) in err, name  # the message names the place to look at
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no runs/ folder


def test_corrupted_checkpoints_are_refused_by_resume_eval_only_and_predict(run: Path, example, tmp_path, capsys):
    import matplotlib.image as mpimg

    predict = _load("predict")
    mpimg.imsave(tmp_path / "img.png", np.zeros((32, 32, 3), np.uint8))
    good = (run / "last.npz").read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 3] ^= 0x04
    damaged = {"truncated": good[: len(good) // 2], "bit-flipped": bytes(flipped), "random": os.urandom(2048)}
    for name, content in damaged.items():
        folder = tmp_path / name
        folder.mkdir()
        path = folder / "last.npz"
        path.write_bytes(content)
        for argv, main in (
            (["--resume", str(path), "--epochs", "3"], example.main),
            (["--eval-only", str(path)], example.main),
            (["--checkpoint", str(path), str(tmp_path / "img.png")], predict.main),
        ):
            assert main(argv) == 1, (name, argv)
            err = capsys.readouterr().err
            _assert_one_error_line(err)
            assert str(path) in err and "damaged" in err and "allow_pickle" not in err, (name, err)
        assert sorted(p.name for p in folder.iterdir()) == ["last.npz"], name  # no eval-last/ folder


def test_a_diverging_run_stops_once_and_suggests_a_lower_lr(example, data_dir, tmp_path, capsys, monkeypatch, no_plots):
    """pyproject turns RuntimeWarnings from minitorch_nndl into errors, so warnings would fail this test."""
    monkeypatch.chdir(tmp_path)
    assert example.main(["--data-dir", str(data_dir), *SMALLER, "--epochs", "1", "--lr", "1e8"]) == 1
    err = capsys.readouterr().err
    assert "non-finite loss" in err and "RuntimeWarning" not in err
    assert err.strip().endswith("--lr 1e+07") and "python3 " in err


def test_subset_shrinks_dev_and_test_too(example, data_dir, tmp_path, capsys, no_plots) -> None:
    out = tmp_path / "quick"
    args = ["--data-dir", str(data_dir), *SMALLER, "--epochs", "1", "--subset", "12", "--out", str(out)]
    assert example.main(args) == 0
    banner = capsys.readouterr().out
    assert "train 12, dev 12, test 12 images (--subset" in banner
    assert json.loads((out / "test_summary.json").read_text())["n_test"] == 12


def _write_idx(path: Path, array: np.ndarray) -> None:
    magic = (0x08 << 8) | array.ndim  # unsigned bytes, then the number of dimensions
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_banner_says_where_the_data_came_from(example, tmp_path, capsys, no_plots) -> None:
    root = tmp_path / "fm"
    root.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 10_040), ("t10k", 20)):  # the dev split is the last 10 000 training images
        _write_idx(root / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(root / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    args = ["--dataset", "fashion-mnist", "--data-dir", str(root), *SMALLER, "--epochs", "1", "--subset", "16"]
    assert example.main([*args, "--out", str(tmp_path / "run")]) == 0
    assert f"Fashion-MNIST from {root}" in capsys.readouterr().out


def test_missing_data_names_the_folder_and_leaves_nothing(example, tmp_path, capsys) -> None:
    out = tmp_path / "o"
    code = example.main(["--data-dir", str(tmp_path / "nothing"), "--epochs", "1", "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    _assert_one_error_line(err)
    assert str(tmp_path / "nothing") in err and "--download" in err
    assert not out.exists()


@pytest.mark.skipif(mt.cuda.is_available(), reason="checks the message shown without a GPU")
def test_cuda_without_gpu_suggests_cpu(example, data_dir, tmp_path, capsys) -> None:
    args = ["--device", "cuda", "--data-dir", str(data_dir), "--out", str(tmp_path / "o")]
    assert example.main(args) == 1
    err = capsys.readouterr().err
    _assert_one_error_line(err)
    assert "--device cpu" in err and "python3 " in err and "minitorch-nndl[cuda]" not in err
    assert not (tmp_path / "o").exists()


def test_help_states_each_default_once(example) -> None:
    text = example.build_parser().format_help()
    assert "95%" in text and "73.6%" in text and "%%" not in text
    assert "(default: None)" not in text
    assert "which data set (default cifar10)" in text
    assert "write_fake_cifar10" in text  # how to try it without the data set
    assert "--subset N" in text and "at most N dev and N test images" in " ".join(text.split())


def test_recipes(example) -> None:
    parser = example.build_parser()
    seed = example.resolve_config(parser.parse_args(["--recipe", "seed"]))
    assert (seed["stem"], seed["lr"], seed["batch_size"], seed["epochs"]) == ("imagenet", 0.001, 64, 30)
    assert (seed["schedule"], seed["label_smoothing"], seed["augment"], seed["weight_decay"]) == ("none", 0.0, False, 0)
    assert seed["momentum"] == 0.9 and not seed["nesterov"]
    default = example.resolve_config(parser.parse_args(["--batch-size", "256"]))
    assert default["stem"] == "cifar" and default["lr"] == pytest.approx(0.2)  # linear scaling
    assert default["schedule"] == "cosine" and default["warmup_epochs"] == 5 and default["epochs"] == 200
    assert (default["dataset"], default["data_dir"], default["device"], default["seed"]) == (
        "cifar10",
        "./data",
        "cpu",
        0,
    )
    fm = example.resolve_config(parser.parse_args(["--dataset", "fashion-mnist"]))
    assert fm["epochs"] == 15


def test_example_builds_standard_and_narrow_resnets(example) -> None:
    """--width 64 is the standard network; a narrow resnet10 runs on 1-channel 28x28 images."""
    from minitorch_nndl import models

    ref = {k: v.shape for k, v in models.resnet18(num_classes=10).state_dict().items()}
    ours = example.build_model({"arch": "resnet18", "num_classes": 10, "stem": "cifar", "in_channels": 3})
    assert {k: v.shape for k, v in ours.state_dict().items()} == ref
    small = example.build_model({"arch": "resnet10", "width": 16, "num_classes": 10, "stem": "cifar", "in_channels": 1})
    out = small(mt.randn(2, 1, 28, 28))
    assert out.shape == (2, 10)


def test_banner_points_out_a_forced_older_openblas_kernel_family(
    example, data_dir, tmp_path, capsys, no_plots, monkeypatch
):
    """OPENBLAS_CORETYPE=Haswell on an AVX-512 CPU (as on this project's machines) slows every
    GEMM; the CPU banner says so, with the fix, and a GPU run or an unforced BLAS says nothing."""
    from minitorch_nndl.kernels import parallel  # noqa: PLC0415

    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setattr(parallel, "blas_kernels", lambda: "Haswell")
    monkeypatch.setattr(parallel, "cpu_has_avx512", lambda: True)
    args = ["--data-dir", str(data_dir), *SMALLER, "--epochs", "1", "--subset", "8"]
    assert example.main([*args, "--out", str(tmp_path / "forced")]) == 0
    out = capsys.readouterr().out
    assert "note      OPENBLAS_CORETYPE=Haswell" in out and "env -u OPENBLAS_CORETYPE" in out
    monkeypatch.setattr(parallel, "blas_kernels", lambda: "SkylakeX")
    assert example.main([*args, "--out", str(tmp_path / "chosen")]) == 0
    assert "OPENBLAS_CORETYPE" not in capsys.readouterr().out
