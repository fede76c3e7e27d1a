"""A newcomer's path through the example, as real processes in a fresh copy of the programs.

The walk of issue 11: ``--help``; a small run on synthetic CIFAR-10 data (no download);
Ctrl-C (a real SIGINT); the resume command the program prints, run verbatim; ``predict.py``
on the result; the same command again (a new folder, the first run untouched); then each
bad input a newcomer tries -- options, damaged data, damaged checkpoints -- each of which
must end in one ``error:`` line, the documented exit status, no traceback and no run folder.

The data errors' wording belongs to the data modules and their tests; here only the
contract of the program is checked.  ``test_example_e2e.py`` checks the same things in
process, faster and in more detail.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from minitorch_nndl.data.synthetic import write_fake_cifar10
from minitorch_nndl.train import load_checkpoint

REPO = Path(__file__).resolve().parent.parent
SCRIPT = "examples/resnet18_cifar10.py"
SMALL = ["--arch", "resnet10", "--width", "4", "--batch-size", "16", "--quiet"]
TIMEOUT = 300  # seconds: a hung process fails the test instead of the whole suite


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _run(cwd: Path, argv: list[str]) -> subprocess.CompletedProcess:
    """``python3 ARGV...`` in ``cwd``, the way a user types it (with this interpreter as python3)."""
    return subprocess.run(
        [sys.executable, *argv], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def _run_all(cwd: Path, commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
    """Several independent commands at once (two at a time: the suite runs on 2 cores)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda argv: _run(cwd, argv), commands))


def _assert_user_error(done: subprocess.CompletedProcess, status: int, what: str) -> None:
    assert done.returncode == status, f"{what}: exit {done.returncode}, stderr:\n{done.stderr}"
    assert "Traceback" not in done.stderr, f"{what}:\n{done.stderr}"
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, f"{what}: expected one error line, got:\n{done.stderr}"


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh copy of the example programs and a small synthetic CIFAR-10, as a newcomer would have."""
    root = tmp_path_factory.mktemp("clone")
    shutil.copytree(REPO / "examples", root / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    write_fake_cifar10(root / "fake-cifar", n_per_batch=40, archive=False, extracted=True, seed=0)
    import matplotlib.image as mpimg

    mpimg.imsave(root / "cat.png", np.full((40, 48, 3), 120, np.uint8))  # a photo to classify
    return root


@pytest.fixture(scope="module")
def stopped_and_resumed(clone: Path) -> dict[str, str]:
    """Train, press Ctrl-C after the first epoch, then run the printed resume command verbatim."""
    first = [SCRIPT, "--data-dir", "fake-cifar", *SMALL, "--epochs", "5"]
    proc = subprocess.Popen(
        [sys.executable, *first], cwd=clone, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    seen = []
    try:
        for line in proc.stdout:  # wait until training is under way, then press Ctrl-C
            seen.append(line)
            if line.startswith("epoch   1 |"):
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, "".join(seen) + out + err
    assert "Traceback" not in err and err.count("--resume") == 1, err  # one resume hint
    printed = err.strip().splitlines()[-1].strip()
    argv = shlex.split(printed)
    assert argv[0] == "python3", printed
    resumed = _run(clone, argv[1:])  # verbatim, with this interpreter as python3
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    return {"command": shlex.join(first), "printed": printed, "resumed_out": resumed.stdout}


def _readme_commands(marker: str) -> list[list[str]]:
    """The commands of the README's bash block that mentions ``marker``, without the leading python3."""
    blocks = (REPO / "README.md").read_text(encoding="utf-8").split("```bash\n")[1:]
    block = next(b.split("```")[0] for b in blocks if marker in b)
    commands = [shlex.split(line) for line in block.splitlines() if line.strip()]
    assert all(c[0] == "python3" for c in commands), block
    return [c[1:] for c in commands]


def test_the_readme_commands_for_trying_it_without_the_data_set(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    make_data, train = _readme_commands("write_fake_cifar10")
    done = _run(tmp_path, make_data)  # verbatim
    assert done.returncode == 0, done.stderr
    done = _run(tmp_path, [*train, "--subset", "64", "--quiet"])  # verbatim, made a quick run
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout and "Traceback" not in done.stderr


def test_help_shows_how_to_start_without_the_data_set(clone: Path) -> None:
    done = _run(clone, [SCRIPT, "--help"])
    assert done.returncode == 0 and done.stderr == ""
    assert "write_fake_cifar10" in done.stdout and "%%" not in done.stdout and "(default: None)" not in done.stdout


def test_ctrl_c_then_the_printed_command_finishes_the_run(clone: Path, stopped_and_resumed) -> None:
    assert stopped_and_resumed["printed"] == f"python3 {SCRIPT} --resume runs/cifar10-resnet10-default/last.npz"
    run = clone / "runs" / "cifar10-resnet10-default"
    assert load_checkpoint(run / "last.npz")["trainer"]["epoch"] == 5
    assert "with the run's saved settings" in stopped_and_resumed["resumed_out"]
    assert (run / "test_summary.json").exists() and (run / "curves.png").exists()


def test_predict_on_the_trained_model(clone: Path, stopped_and_resumed) -> None:
    done = _run(clone, ["examples/predict.py", "--checkpoint", "runs/cifar10-resnet10-default/best.npz", "cat.png"])
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 4


def test_the_same_command_again_goes_to_a_new_folder(clone: Path, stopped_and_resumed) -> None:
    run = clone / "runs" / "cifar10-resnet10-default"
    before = (run / "best.npz").read_bytes(), (run / "history.json").read_bytes()
    again = _run(clone, [*shlex.split(stopped_and_resumed["command"]), "--epochs", "1"])
    assert again.returncode == 0, again.stderr
    assert "runs/cifar10-resnet10-default-2 (runs/cifar10-resnet10-default holds an earlier run" in again.stdout
    assert ((run / "best.npz").read_bytes(), (run / "history.json").read_bytes()) == before
    assert (clone / "runs" / "cifar10-resnet10-default-2" / "last.npz").exists()


def _damaged_data(clone: Path) -> dict[str, str]:
    """Copies of the fake data set broken as downloads get broken; the value is the --data-dir to pass."""
    folder = "cifar-10-batches-py"
    cases = {}
    for name in ("truncated-batch", "empty-test-batch", "missing-batch"):
        root = clone / "broken" / name
        if not root.exists():
            shutil.copytree(clone / "fake-cifar", root)
        cases[name] = str(root.relative_to(clone))
    batch = clone / cases["truncated-batch"] / folder / "data_batch_1"
    batch.write_bytes((clone / "fake-cifar" / folder / "data_batch_1").read_bytes()[:5000])
    (clone / cases["empty-test-batch"] / folder / "test_batch").write_bytes(b"")
    (clone / cases["missing-batch"] / folder / "data_batch_4").unlink(missing_ok=True)
    cases["missing-data-dir"] = "fake-cifra"  # a typo
    return cases


def _damaged_checkpoints(clone: Path, good: Path) -> dict[str, str]:
    data = good.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0x08
    contents = {"truncated": data[: len(data) // 2], "bit-flipped": bytes(flipped), "random": os.urandom(3000)}
    paths = {}
    for name, content in contents.items():
        path = clone / "damaged" / name / "last.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        paths[name] = str(path.relative_to(clone))
    return paths


BAD_OPTIONS = {
    "--epochs -1": ["--epochs", "-1"],
    "--batch-size 0": ["--batch-size", "0"],
    "--width 0": ["--width", "0"],
    "--lr -1": ["--lr", "-1"],
    "--subset 0": ["--subset", "0"],
    "--subset -5": ["--subset", "-5"],
    "--cutout -1": ["--cutout", "-1"],
    "--warmup-epochs 5 --epochs 3": ["--warmup-epochs", "5", "--epochs", "3"],
}


def _bad_inputs(clone: Path) -> list[tuple[str, list[str], int]]:
    """(what, command, expected exit status) for every bad input of issue 11."""
    cases = []
    for what, extra in BAD_OPTIONS.items():  # after SMALL, so each one wins over SMALL's values
        cases.append((what, [SCRIPT, "--data-dir", "fake-cifar", *SMALL, *extra], 2))
    for what, data_dir in _damaged_data(clone).items():
        cases.append((what, [SCRIPT, "--data-dir", data_dir, *SMALL, "--epochs", "1"], 1))
    good = clone / "runs" / "cifar10-resnet10-default" / "last.npz"
    for what, path in _damaged_checkpoints(clone, good).items():
        cases.append((f"{what} checkpoint, --resume", [SCRIPT, "--resume", path, "--epochs", "9"], 1))
        cases.append((f"{what} checkpoint, --eval-only", [SCRIPT, "--eval-only", path], 1))
        cases.append((f"{what} checkpoint, predict.py", ["examples/predict.py", "--checkpoint", path, "cat.png"], 1))
    return cases


def _check_bad_inputs(clone: Path, cases: list[tuple[str, list[str], int]]) -> None:
    runs_before = sorted(p.name for p in (clone / "runs").iterdir())
    for (what, _, status), done in zip(cases, _run_all(clone, [argv for _, argv, _ in cases])):
        _assert_user_error(done, status, what)
    assert sorted(p.name for p in (clone / "runs").iterdir()) == runs_before  # no new run folder
    for folder in (clone / "damaged").glob("*"):
        assert [p.name for p in folder.iterdir()] == ["last.npz"], folder  # no eval-last/ either


def test_every_bad_input_as_processes(clone: Path, stopped_and_resumed) -> None:
    """Exit status, one error line, no traceback, nothing written: for each bad input, as a real process."""
    _check_bad_inputs(clone, _bad_inputs(clone))
