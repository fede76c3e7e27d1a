"""Small fake datasets in the exact on-disk formats of the real ones, for tests and demos.

:func:`write_fake_cifar10` writes ``cifar-10-batches-py/`` and/or
``cifar-10-python.tar.gz`` byte-for-byte in the layout of the official CIFAR-10
"python version": Python-2-style pickles (protocol 2, byte strings stored as
``SHORT_BINSTRING``/``BINSTRING`` as Python 2's ``str`` was, NumPy arrays through
``numpy.core.multiarray._reconstruct``), dict keys ``b"batch_label"``, ``b"labels"``,
``b"data"``, ``b"filenames"`` and a ``batches.meta`` with ``b"label_names"``,
``b"num_cases_per_batch"``, ``b"num_vis"``.  So the real loader, restricted unpickler
included, is exercised without the 170 MB download.

The images are learnable: each class has its own colour and stripe direction/frequency,
plus noise, so a tiny model reaches high accuracy within a few steps.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from .cifar10 import ARCHIVE, CIFAR10, FOLDER, SPLITS

__all__ = ["fake_cifar10_images", "write_fake_cifar10"]


class _Py2StylePickler(pickle._Pickler):  # the pure-Python pickler lets us change how bytes are written
    """Protocol-2 pickler that writes ``bytes`` the way Python 2 wrote ``str``.

    Python 3 pickles ``bytes`` at protocol 2 as a call to ``_codecs.encode``; Python 2
    (which produced the official files) wrote the raw bytes with ``SHORT_BINSTRING`` /
    ``BINSTRING``, which Python 3 reads back as ``bytes`` under ``encoding="bytes"``.  Text
    (``str``, such as NumPy's byte-order flag ``'|'``) is written the same way, as Python 2's
    ``str`` was.
    NumPy's ``_reconstruct`` is named by its historical module ``numpy.core.multiarray``.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def _write_binstring(self, raw: bytes) -> None:
        n = len(raw)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + raw)

    def save_py2_bytes(self, obj: bytes) -> None:
        self._write_binstring(obj)
        self.memoize(obj)

    def save_py2_str(self, obj: str) -> None:  # e.g. the byte-order mark '|' in NumPy's dtype state
        self._write_binstring(obj.encode("latin-1"))
        self.memoize(obj)

    dispatch[bytes] = save_py2_bytes
    dispatch[str] = save_py2_str

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if getattr(obj, "__name__", None) == "_reconstruct" and "multiarray" in getattr(obj, "__module__", ""):
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def _py2_pickle(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _Py2StylePickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def fake_cifar10_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (N, 32, 32, 3) images whose colour and stripes depend on the label."""
    n = labels.shape[0]
    hues = np.array(
        [
            [230, 40, 40],
            [40, 200, 40],
            [40, 60, 230],
            [220, 220, 40],
            [200, 40, 200],
            [40, 200, 200],
            [240, 140, 30],
            [130, 70, 20],
            [140, 140, 140],
            [250, 250, 250],
        ],
        dtype=np.float64,
    )
    ys, xs = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    freq = (1 + labels % 5)[:, None, None] * (np.pi / 16)
    horizontal = (labels < 5)[:, None, None]
    stripes = np.where(horizontal, np.sin(freq * ys), np.sin(freq * xs))  # (N, 32, 32)
    base = hues[labels][:, None, None, :] * (0.65 + 0.35 * stripes[..., None])
    noisy = base + rng.normal(0.0, 12.0, size=(n, 32, 32, 3))
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def write_fake_cifar10(
    root: str | os.PathLike,
    n_per_batch: int = 10,
    archive: bool = True,
    extracted: bool = True,
    seed: int = 0,
) -> dict[str, Path]:
    """Write a small CIFAR-10 look-alike under ``root`` and return its paths.

    Every batch file (``data_batch_1`` .. ``_5``, ``test_batch``) holds ``n_per_batch``
    images with balanced labels.  ``extracted=True`` writes ``root/cifar-10-batches-py/``,
    ``archive=True`` writes ``root/cifar-10-python.tar.gz`` with the same members under the
    ``cifar-10-batches-py/`` prefix.  Returns ``{"folder": ..., "archive": ...}`` for what was
    written, plus ``"root"``.
    """
    if not (archive or extracted):
        raise ValueError("write_fake_cifar10: nothing to write (archive=False and extracted=False)")
    if n_per_batch <= 0:
        raise ValueError(f"write_fake_cifar10: n_per_batch must be positive, got {n_per_batch}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [*SPLITS["train+dev"], *SPLITS["test"]]
    members: dict[str, bytes] = {}
    for b, name in enumerate(names):
        labels = rng.permutation(np.arange(n_per_batch) % 10)
        images = fake_cifar10_images(labels, rng)
        data = np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(n_per_batch, 3072))  # rows are CHW
        label_text = "testing batch 1 of 1" if name == "test_batch" else f"training batch {b + 1} of 5"
        members[name] = _py2_pickle(
            {
                b"batch_label": label_text.encode(),
                b"labels": [int(v) for v in labels],
                b"data": data,
                b"filenames": [f"{CIFAR10.CLASSES[v]}_s_{b:02d}{i:04d}.png".encode() for i, v in enumerate(labels)],
            }
        )
    members["batches.meta"] = _py2_pickle(
        {
            b"num_cases_per_batch": n_per_batch,
            b"label_names": [c.encode() for c in CIFAR10.CLASSES],
            b"num_vis": 3072,
        }
    )
    paths: dict[str, Path] = {"root": root}
    if extracted:
        folder = root / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        for name, payload in members.items():
            (folder / name).write_bytes(payload)
        paths["folder"] = folder
    if archive:
        path = root / ARCHIVE
        with tarfile.open(path, "w:gz") as tar:
            folder_info = tarfile.TarInfo(FOLDER)
            folder_info.type, folder_info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(folder_info)
            for name, payload in members.items():
                info = tarfile.TarInfo(f"{FOLDER}/{name}")
                info.size, info.mode, info.mtime = len(payload), 0o644, 1_230_000_000
                tar.addfile(info, io.BytesIO(payload))
        paths["archive"] = path
    return paths
