"""CIFAR-10 from the official "python version" files, read safely.

The dataset (Krizhevsky, 2009) is 60 000 colour images of 32x32 pixels in 10 classes,
distributed as ``cifar-10-python.tar.gz``, which holds the folder
``cifar-10-batches-py/`` with five training batches (``data_batch_1`` .. ``_5``, 10 000
images each), ``test_batch`` and ``batches.meta``.  Each batch is a Python *pickle* of
a dict ``{b"data": uint8 array (10000, 3072), b"labels": [int, ...], ...}``; a row of
``data`` is one image stored channel by channel (1024 red, 1024 green, 1024 blue
values, each 32x32 row-major).

Pickles can run arbitrary code when loaded, so this module never calls ``pickle.load``
on them: :class:`RestrictedUnpickler` only lets through the three NumPy names that
rebuild an array (``_reconstruct``, ``ndarray``, ``dtype``) and refuses anything else.

Splits: ``"train"`` = batches 1-4 (40 000 images), ``"dev"`` = batch 5 (10 000, a
validation set carved from the official training set), ``"train+dev"`` = batches 1-5
(50 000), ``"test"`` = ``test_batch`` (10 000).

The files are read from ``root/cifar-10-batches-py/`` when that folder exists, else
straight out of ``root/cifar-10-python.tar.gz`` (no extraction needed); ``download=True``
fetches and verifies the archive first.  Host-only code (NumPy).
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import IO, Any, ClassVar

import numpy as np

from ._download import DownloadError, download_url, md5_file, safe_extract_tar
from .dataset import TensorDataset

__all__ = ["CIFAR10", "CIFAR10FormatError", "RestrictedUnpickler", "restricted_loads"]

FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4"),
    "dev": ("data_batch_5",),
    "train+dev": ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"),
    "test": ("test_batch",),
}
META = "batches.meta"


class CIFAR10FormatError(ValueError):
    """A CIFAR-10 file is truncated, not a CIFAR-10 batch, or holds unexpected objects."""


def _numpy_reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild NumPy arrays and plain containers, and nothing else.

    Unpickling calls whatever ``module.name`` the stream names (``os.system`` included).
    The official CIFAR-10 batches only name NumPy's array reconstruction helpers, so
    :meth:`find_class` allows exactly those and raises ``pickle.UnpicklingError`` for
    any other global *before* it is looked up, let alone called.
    """

    ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name} from a pickle: only NumPy array reconstruction "
                f"({', '.join(m + '.' + n for m, n in self.ALLOWED)}) is allowed in CIFAR-10 files"
            ) from None


def restricted_loads(data: bytes | IO[bytes], source: str = "<bytes>") -> Any:
    """Unpickle ``data`` (bytes or a binary file) with :class:`RestrictedUnpickler` and ``encoding="bytes"``."""
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    try:
        return RestrictedUnpickler(stream, encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        if "refusing" in str(exc):
            raise pickle.UnpicklingError(f"{source}: {exc}") from None
        raise CIFAR10FormatError(f"{source}: not a valid pickle, truncated or corrupt ({exc})") from exc
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, MemoryError) as exc:
        raise CIFAR10FormatError(f"{source}: not a valid pickle, truncated or corrupt ({exc!r})") from exc


def _parse_batch(obj: Any, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N,32,32,3), labels int64 (N,)) from one unpickled batch dict, with checks."""
    if not isinstance(obj, dict) or b"data" not in obj or b"labels" not in obj:
        keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise CIFAR10FormatError(
            f"{source}: not a CIFAR-10 batch (expected a dict with b'data' and b'labels', got {keys})"
        )
    data, labels = obj[b"data"], obj[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise CIFAR10FormatError(f"{source}: b'data' should be a uint8 array of shape (N, 3072), got {desc}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != data.shape[0] or labels.dtype.kind not in "iu":
        raise CIFAR10FormatError(
            f"{source}: b'labels' should hold {data.shape[0]} integers, got {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise CIFAR10FormatError(f"{source}: labels outside 0..9 (min {labels.min()}, max {labels.max()})")
    # A row is CHW (3 planes of 32x32); images are kept channels-last (HWC) like image files.
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels.astype(np.int64)


def _parse_meta(obj: Any, source: str) -> list[str]:
    if not isinstance(obj, dict) or b"label_names" not in obj:
        raise CIFAR10FormatError(f"{source}: not CIFAR-10 metadata (expected a dict with b'label_names')")
    names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in obj[b"label_names"]]
    if len(names) != 10:
        raise CIFAR10FormatError(f"{source}: expected 10 label names, got {len(names)}")
    return names


class CIFAR10(TensorDataset):
    """CIFAR-10 as arrays: ``.images`` uint8 ``(N, 32, 32, 3)``, ``.labels`` int64 ``(N,)``.

    ``ds[i]`` is ``(image HWC uint8, label)``; ``ds.get_batch(idx)`` gathers a batch with
    array indexing, which the :class:`~minitorch_nndl.data.DataLoader` uses.  Pair it
    with ``ToTensor()`` and ``Normalize(CIFAR10.MEAN, CIFAR10.STD)``.

    Args:
        root: folder that holds ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``
            (``root`` may also be the ``cifar-10-batches-py`` folder itself).
        split: ``"train"`` (batches 1-4), ``"dev"`` (batch 5), ``"train+dev"`` (1-5) or ``"test"``.
        download: fetch the archive (170 MB) from the official site when neither the folder
            nor the archive is present, verify its MD5, and extract it.
    """

    URL: ClassVar[str] = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    MD5: ClassVar[str] = "c58f30108f718f92721af3b95e74349a"
    #: per-channel mean and std of the 50 000 official training images, pixel values scaled to [0, 1]
    MEAN: ClassVar[tuple[float, float, float]] = (0.4914, 0.4822, 0.4465)
    STD: ClassVar[tuple[float, float, float]] = (0.2470, 0.2435, 0.2616)
    CLASSES: ClassVar[tuple[str, ...]] = (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )

    def __init__(self, root: str | os.PathLike, split: str = "train", download: bool = False) -> None:
        if split not in SPLITS:
            raise ValueError(f"CIFAR10: split must be one of {sorted(SPLITS)}, got {split!r}")
        self.root = Path(root).expanduser()
        self.split = split
        if download:
            self.download(self.root)
        files = (*SPLITS[split], META)
        folder = self._find_folder(self.root)
        if folder is not None:
            self.source = folder
            loaded = {name: self._read_file(folder / name) for name in files}
        else:
            archive = self.root / ARCHIVE
            if not archive.is_file():
                raise FileNotFoundError(
                    f"CIFAR-10 not found: looked for the folder {self.root / FOLDER} and the archive {archive} "
                    f"(and for batch files directly in {self.root}). Pass download=True (the examples' "
                    f"--download flag) to fetch {self.URL} into {self.root}, or download it yourself and put it there."
                )
            self.source = archive
            loaded = self._read_archive(archive, files)
        parts = [_parse_batch(loaded[name], f"{self.source}:{name}") for name in SPLITS[split]]
        images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        self.classes: list[str] = _parse_meta(loaded[META], f"{self.source}:{META}")
        self.images: np.ndarray = images
        self.labels: np.ndarray = labels
        super().__init__(images, labels)

    # ------------------------------------------------------------------ reading
    @staticmethod
    def _find_folder(root: Path) -> Path | None:
        for candidate in (root / FOLDER, root):
            if (candidate / META).is_file() and (candidate / "test_batch").is_file():
                return candidate
        return None

    @staticmethod
    def _read_file(path: Path) -> Any:
        if not path.is_file():
            raise FileNotFoundError(
                f"CIFAR-10 file {path} is missing: the folder {path.parent} is incomplete. Delete it and "
                f"extract {ARCHIVE} again (or pass download=True)"
            )
        with open(path, "rb") as f:
            return restricted_loads(f, str(path))

    @staticmethod
    def _read_archive(archive: Path, names: tuple[str, ...]) -> dict[str, Any]:
        """Unpickle the wanted members straight from the .tar.gz, in archive order, without extracting."""
        wanted = {f"{FOLDER}/{n}": n for n in names}
        found: dict[str, Any] = {}
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:  # streams through the archive once
                    short = wanted.get(member.name.lstrip("./"))
                    if short is None or not member.isfile():
                        continue
                    f = tar.extractfile(member)
                    assert f is not None
                    found[short] = restricted_loads(f.read(), f"{archive}:{member.name}")
                    if len(found) == len(wanted):
                        break
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise CIFAR10FormatError(
                f"{archive}: truncated or corrupt archive ({exc}); delete it and download it again"
            ) from exc
        missing = sorted(set(wanted.values()) - set(found))
        if missing:
            raise CIFAR10FormatError(
                f"{archive}: not the CIFAR-10 python archive, members {[f'{FOLDER}/{m}' for m in missing]} are missing"
            )
        return found

    # ------------------------------------------------------------------ download
    @classmethod
    def download(cls, root: str | os.PathLike, progress: bool = True) -> Path:
        """Make sure ``root/cifar-10-batches-py/`` exists: download and/or extract as needed.

        An archive already present is checked against :attr:`MD5` before it is trusted.
        The download goes through a temporary file renamed only once the MD5 matched, and
        the archive is extracted into a scratch folder that is renamed into place at the
        end, so an interrupted run never leaves a file or folder that looks complete.
        """
        root = Path(root).expanduser()
        folder = cls._find_folder(root)
        if folder is not None:
            return folder
        archive = root / ARCHIVE
        if archive.is_file():
            digest = md5_file(archive)
            if digest != cls.MD5:
                raise DownloadError(
                    f"{archive} exists but its MD5 is {digest}, not {cls.MD5}: it is truncated or corrupt. "
                    f"Delete it and run again with download=True."
                )
        else:
            download_url(cls.URL, archive, md5=cls.MD5, progress=progress)
        # Extract into a scratch folder and move the result into place in one rename, so an
        # interrupted extraction never leaves a half-filled cifar-10-batches-py/ behind.
        scratch = Path(tempfile.mkdtemp(prefix=".cifar-extract-", dir=root))
        try:
            safe_extract_tar(archive, scratch)
            if not (scratch / FOLDER / META).is_file():
                raise CIFAR10FormatError(f"{archive}: not the CIFAR-10 python archive (no {FOLDER}/{META} inside)")
            os.replace(scratch / FOLDER, root / FOLDER)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return root / FOLDER

    def __repr__(self) -> str:
        return f"CIFAR10(split={self.split!r}, n={len(self)}, source={str(self.source)!r})"
