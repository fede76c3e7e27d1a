"""The library pieces the example programs are built from: minitorch_nndl.cli, train.runs, train.recipe,
data.random_subset.  The programs themselves are tested end to end in test_example_e2e.py."""

from __future__ import annotations

import argparse
import os

import numpy as np
import pytest

from minitorch_nndl import cli, nn, optim
from minitorch_nndl.data import CIFAR10, FashionMNIST, TensorDataset, random_subset
from minitorch_nndl.train import recipe, runs, save_checkpoint


def _parser() -> cli.OneLineParser:
    p = cli.OneLineParser(prog="prog")
    p.add_argument("--n", type=cli.whole_number(1, " (leave it out for all)"))
    p.add_argument("--lr", type=cli.real_number(0, low_ok=False))
    p.add_argument("--p", type=cli.real_number(0, 1))
    return p


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--n", "0"], "error: argument --n: must be 1 or more, got 0 (leave it out for all)"),
        (["--n", "x"], "error: argument --n: expected a whole number, got 'x'"),
        (["--lr", "0"], "error: argument --lr: must be more than 0, got 0"),
        (["--lr", "nan"], "error: argument --lr: must be more than 0, got nan"),
        (["--p", "1"], "error: argument --p: must be at least 0 and below 1, got 1"),
        (["--bogus"], "error: unrecognized arguments: --bogus"),
    ],
)
def test_argparse_complaints_are_one_line_with_status_2(argv, message, capsys):
    assert cli.run_program(_parser(), argv, lambda args: 0) == 2
    assert capsys.readouterr().err == message + "\n"


def test_run_program_maps_errors_to_exit_statuses(capsys):
    def fail(exc: BaseException):
        def body(args: argparse.Namespace) -> int:
            raise exc

        return body

    assert cli.run_program(_parser(), ["--n", "3"], lambda args: args.n) == 3
    assert cli.run_program(_parser(), ["--help"], lambda args: 5) == 0
    capsys.readouterr()
    assert cli.run_program(_parser(), [], fail(cli.UsageError("drop --x"))) == 2
    assert capsys.readouterr().err == "error: drop --x\n"
    assert cli.run_program(_parser(), [], fail(cli.DataError("the file is damaged"))) == 1
    assert capsys.readouterr().err == "error: the file is damaged\n"
    assert cli.run_program(_parser(), [], fail(KeyboardInterrupt()), interrupted="stopped") == 130
    assert capsys.readouterr().err.strip() == "stopped"


def test_printed_commands(tmp_path, monkeypatch):
    script = tmp_path / "examples" / "x.py"
    script.parent.mkdir()
    script.touch()
    monkeypatch.chdir(tmp_path)
    assert cli.command_line(script, "--out", "a b") == "python3 examples/x.py --out 'a b'"
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli.command_line(script) == f"python3 {script}"
    argv = ["--lr", "1", "--epochs", "3", "--lr=2", "--lrx", "4"]
    assert cli.without_option(argv, "--lr") == ["--epochs", "3", "--lrx", "4"]
    assert cli.flag("data_dir") == "--data-dir"
    assert cli.given_options(argparse.Namespace(a=None, b=0, c=False)) == {"b", "c"}


def test_a_fresh_folder_never_replaces_an_earlier_run(tmp_path):
    out = tmp_path / "run"
    assert runs.fresh_folder(out) == (out, "")
    out.mkdir()
    assert runs.fresh_folder(out) == (out, "")  # an empty folder is used as it is
    (out / "last.npz").write_bytes(b"x")
    (out / "notes.txt").write_text("mine")
    assert runs.fresh_folder(out) == (tmp_path / "run-2", f"({out} holds an earlier run, which is kept)")
    (tmp_path / "run-2").mkdir()
    (tmp_path / "run-2" / "x").touch()
    assert runs.fresh_folder(out)[0] == tmp_path / "run-3"
    folder, note = runs.fresh_folder(out, overwrite=True)
    assert folder == out and "--overwrite" in note
    runs.prepare_folder(folder, True, ("last.npz", "best.npz"))
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # only the run's own files go
    with pytest.raises(cli.UsageError, match="is a file, not a folder"):
        runs.fresh_folder(out / "notes.txt")


def test_read_run_checkpoint_says_what_is_wrong(tmp_path):
    with pytest.raises(cli.UsageError, match="--resume nowhere.npz: the checkpoint does not exist"):
        runs.read_run_checkpoint("nowhere.npz", "--resume", "prog.py")
    with pytest.raises(cli.UsageError, match="is a folder; name the last.npz"):
        runs.read_run_checkpoint(str(tmp_path), "--resume", "prog.py")
    (tmp_path / "junk.npz").write_bytes(os.urandom(500))
    with pytest.raises(cli.DataError, match="junk.npz"):
        runs.read_run_checkpoint(str(tmp_path / "junk.npz"), "--resume", "prog.py")
    model = nn.Linear(2, 2)
    save_checkpoint(tmp_path / "bare.npz", model=model)
    with pytest.raises(cli.DataError, match="not written by prog.py"):
        runs.read_run_checkpoint(str(tmp_path / "bare.npz"), "--eval-only", "prog.py")
    save_checkpoint(tmp_path / "run.npz", model=model, config={"arch": "linear"})
    assert runs.read_run_checkpoint(str(tmp_path / "run.npz"), "--eval-only", "prog.py")["config"]["arch"] == "linear"


def _lrs(sched, opt, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_the_recipes_schedules():
    model = nn.Linear(3, 2)
    opt = recipe.build_optimizer(model, "sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    assert isinstance(opt, optim.SGD) and [g["weight_decay"] for g in opt.param_groups] == [5e-4, 0.0]
    assert isinstance(recipe.build_optimizer(model, "adam", lr=1e-3), optim.Adam)
    sched = recipe.build_scheduler(opt, 10, schedule="cosine", lr=0.1, epochs=2, warmup_epochs=0.5)
    lrs = _lrs(sched, opt, 20)
    assert lrs[0] == pytest.approx(0.001) and max(lrs) == pytest.approx(0.1) and lrs.index(max(lrs)) == 5
    assert lrs[-1] < 0.01 and recipe.build_scheduler(opt, 10, "none", 0.1, 2) is None
    # rebuilt at step 7 for 3 epochs: the rates of a 3-epoch schedule from there on
    fresh_opt = recipe.build_optimizer(nn.Linear(3, 2), "sgd", lr=0.1)
    planned = _lrs(recipe.build_scheduler(fresh_opt, 10, "cosine", 0.1, 3, 0.5), fresh_opt, 30)
    rebuilt = recipe.rebuild_scheduler(opt, 10, 7, schedule="cosine", lr=0.1, epochs=3, warmup_epochs=0.5)
    np.testing.assert_allclose(_lrs(rebuilt, opt, 23), planned[7:], rtol=1e-12)
    with pytest.raises(ValueError, match="schedule must be one of"):
        recipe.build_scheduler(opt, 10, "linear", 0.1, 2)


def test_the_recipes_transforms_follow_the_data_set():
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    x = recipe.eval_transform(FashionMNIST.info)(images)
    expected = (images.transpose(0, 3, 1, 2) / 255.0 - FashionMNIST.MEAN[0]) / FashionMNIST.STD[0]
    np.testing.assert_allclose(np.asarray(x), expected, rtol=1e-5, atol=1e-5)
    assert recipe.crop_padding(CIFAR10.info) == 4 and recipe.crop_padding(FashionMNIST.info) == 2
    augmented = recipe.train_transform(FashionMNIST.info, augment=True, cutout=8)(images)
    assert np.asarray(augmented).shape == (4, 1, 28, 28)


def test_random_subset_is_seeded_and_keeps_the_order():
    ds = TensorDataset(np.arange(100), np.arange(100))
    a, b = random_subset(ds, 10, seed=3), random_subset(ds, 10, seed=3)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert len(a) == 10 and (np.diff(a.indices) > 0).all()
    assert not np.array_equal(a.indices, random_subset(ds, 10, seed=4).indices)
    assert random_subset(ds, None) is ds and random_subset(ds, 100) is ds


def test_a_recipe_from_a_run_config_builds_and_describes_its_pieces():
    cfg = {"epochs": 2, "batch_size": 16, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True}
    cfg.update(weight_decay=5e-4, schedule="cosine", warmup_epochs=0.5, label_smoothing=0.1, augment=True, cutout=8)
    how = recipe.Recipe.from_config({**cfg, "arch": "resnet10", "out": "runs/x"})  # other keys are ignored
    assert how.describe(CIFAR10.info) == {
        "augmentation": "random crop (pad 4) + horizontal flip + cutout 8",
        "optimizer": "SGD nesterov momentum 0.9",
        "schedule": "0.5 warm-up epochs + cosine decay to 0",
    }
    assert recipe.Recipe(epochs=1, batch_size=8, optimizer="adam", augment=False).describe(CIFAR10.info) == {
        "augmentation": "none",
        "optimizer": "Adam",
        "schedule": "5 warm-up epochs + cosine decay to 0",
    }
    opt = how.build_optimizer(nn.Linear(3, 2))
    assert opt.param_groups[0]["lr"] == 0.05 and how.loss_fn().label_smoothing == 0.1
    assert how.build_scheduler(opt, 10) is not None


def test_the_catalog_opens_data_sets_by_name(tmp_path):
    from minitorch_nndl.data import catalog
    from minitorch_nndl.data.synthetic import write_fake_cifar10

    write_fake_cifar10(tmp_path, n_per_batch=5, archive=False)
    assert catalog.info("cifar10") is CIFAR10.info and catalog.info("fashion-mnist") is FashionMNIST.info
    assert len(catalog.open_split("cifar10", tmp_path, "test")) == 5
    with pytest.raises(ValueError, match="unknown data set 'mnist': choose from cifar10, fashion-mnist"):
        catalog.open_split("mnist", tmp_path, "test")


class _Result:
    def __init__(self, status: str, last_checkpoint: str | None) -> None:
        self.status, self.last_checkpoint = status, last_checkpoint


def test_stop_hints_name_the_command_that_continues():
    def command(*args: str) -> str:
        return " ".join(["python3 prog.py", *args])

    argv = ["--epochs", "3", "--lr", "0.5"]
    assert runs.stop_hint(_Result("interrupted", "r/last.npz"), command, argv, 0.5) == (
        130,
        "Continue with:\n    python3 prog.py --resume r/last.npz",
    )
    assert runs.stop_hint(_Result("interrupted", None), command, argv, 0.5)[1].startswith("Nothing was saved yet")
    code, hint = runs.stop_hint(_Result("nan", "r/last.npz"), command, argv, 0.5)
    assert code == 1 and hint.endswith("python3 prog.py --resume r/last.npz --lr 0.05")
    assert runs.stop_hint(_Result("nan", None), command, argv, 0.5)[1].endswith("prog.py --epochs 3 --lr 0.05")


def test_check_resumable_refuses_a_run_that_cannot_continue(tmp_path):
    ck = {"trainer": {"epoch": 2, "global_step": 10}}
    path = tmp_path / "last.npz"
    runs.check_resumable(ck, path, epochs=3, epochs_given=True, warmup_epochs=1)
    with pytest.raises(cli.UsageError, match="fewer than the 2 epochs"):
        runs.check_resumable(ck, path, epochs=1, epochs_given=True)
    with pytest.raises(
        cli.UsageError, match="already trained all its 2 epochs: to train longer, resume with --epochs 3"
    ):
        runs.check_resumable(ck, path, epochs=2, epochs_given=False)
    with pytest.raises(cli.UsageError, match="resume with more than --epochs 2"):
        runs.check_resumable(ck, path, epochs=2, epochs_given=True)
    with pytest.raises(cli.UsageError, match="shorter than this run's 3.5 warm-up epochs: resume with --epochs 4"):
        runs.check_resumable(ck, path, epochs=3, epochs_given=True, warmup_epochs=3.5)


def test_restore_best_without_a_best_checkpoint(tmp_path):
    assert runs.restore_best(nn.Linear(2, 2), tmp_path) == (None, None)
    model = nn.Linear(2, 2)
    save_checkpoint(tmp_path / "best.npz", model=model, trainer={"epoch": 4})
    other = nn.Linear(2, 2)
    assert runs.restore_best(other, tmp_path) == (tmp_path / "best.npz", 4)
    np.testing.assert_array_equal(other.weight.numpy(), model.weight.numpy())


def test_the_named_recipes_and_their_derived_defaults():
    ours, seed = recipe.Recipe.named("default"), recipe.Recipe.named("seed")
    assert (ours.epochs, ours.batch_size, ours.lr, ours.warmup_epochs, ours.nesterov, ours.augment) == (
        200,
        128,
        0.1,
        5.0,
        True,
        True,
    )
    assert (seed.epochs, seed.batch_size, seed.lr, seed.schedule, seed.weight_decay) == (30, 64, 0.001, "none", 0.0)
    assert not seed.nesterov and not seed.augment and seed.label_smoothing == 0.0
    assert recipe.Recipe.named("default", "fashion-mnist").epochs == 15
    assert recipe.Recipe.named(batch_size=256).lr == pytest.approx(0.2)  # the linear scaling rule
    assert recipe.Recipe.named(optimizer="adam", batch_size=256).lr == 1e-3
    assert recipe.Recipe.named(epochs=5).warmup_epochs == 1.0 and recipe.Recipe.named(epochs=19).warmup_epochs == 2.0
    assert recipe.Recipe.named("seed", lr=0.5, augment=True).lr == 0.5  # given settings win, but seed never augments
    assert not recipe.Recipe.named("seed", augment=True).augment
    assert recipe.Recipe.named(lr=None).lr == 0.1  # None means "not given"
    with pytest.raises(ValueError, match="'default' and 'seed'"):
        recipe.Recipe.named("fast")
