"""Atomic file writes: the reader sees the old file or the new one, never half of one.

:func:`atomic_write` opens a temporary file in the destination's folder (same file
system, so the final rename is atomic), hands it to the caller, then flushes it to disk
(``fsync``) and moves it over the destination with ``os.replace``.  If anything fails or
is interrupted (Ctrl-C) before the rename, the temporary file is removed and the
destination is untouched.  Checkpoints, ``best.npz`` copies and the history files are
all written this way.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "atomic_copy", "atomic_write_json"]


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """``with atomic_write(path, "w") as fh: fh.write(...)``: the file appears whole at ``path`` or not at all.

    ``mode`` and ``open_kwargs`` are those of :func:`open` (``"w"``/``"wb"``, ``newline=""``, ...).
    The folder is created when missing; the file gets the usual permissions (``0o666 & ~umask``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy ``src`` to ``dst`` atomically (``best.npz`` from ``last.npz``); returns ``dst``."""
    with open(src, "rb") as source, atomic_write(dst) as target:
        shutil.copyfileobj(source, target)
    return Path(dst)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """``obj`` as indented JSON at ``path``, atomically (config.json, history.json, test_summary.json)."""
    with atomic_write(path, "w") as fh:
        json.dump(obj, fh, indent=1)
    return Path(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
