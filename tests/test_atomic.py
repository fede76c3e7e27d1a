"""atomic_write: the destination holds the old file or the new one, never a part; no temporary file is left."""

from __future__ import annotations

import os
import stat

import pytest

from minitorch_nndl.train import History
from minitorch_nndl.train.atomic import atomic_copy, atomic_write


def test_a_failure_inside_the_block_keeps_the_old_file(tmp_path) -> None:
    path = tmp_path / "sub" / "notes.txt"
    with atomic_write(path, "w") as fh:  # the folder is created
        fh.write("old")
    with pytest.raises(RuntimeError, match="half way"):
        with atomic_write(path, "w") as fh:
            fh.write("new, but only ha")
            raise RuntimeError("half way")
    assert path.read_text() == "old"
    assert os.listdir(path.parent) == ["notes.txt"]
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600


def test_atomic_copy_and_history_files(tmp_path) -> None:
    src = tmp_path / "last.npz"
    src.write_bytes(b"\x00\x01" * 1000)
    assert atomic_copy(src, tmp_path / "best.npz").read_bytes() == src.read_bytes()
    history = History()
    history.log_epoch({"epoch": 1, "train_loss": 0.5})
    history.save(tmp_path / "run")
    assert sorted(os.listdir(tmp_path / "run")) == ["history.csv", "history.json", "history_steps.csv"]
    assert (tmp_path / "run" / "history.csv").read_bytes() == b"epoch,train_loss\n1,0.5\n"
