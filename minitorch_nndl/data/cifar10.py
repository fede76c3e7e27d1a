"""CIFAR-10 from the official "python version" files, read safely.

The dataset (Krizhevsky, 2009) is 60 000 colour images of 32x32 pixels in 10 classes,
distributed as ``cifar-10-python.tar.gz``, which holds the folder
``cifar-10-batches-py/`` with five training batches (``data_batch_1`` .. ``_5``, 10 000
images each), ``test_batch`` and ``batches.meta``.  Each batch is a Python *pickle* of
a dict ``{b"data": uint8 array (10000, 3072), b"labels": [int, ...], ...}``; a row of
``data`` is one image stored channel by channel (1024 red, 1024 green, 1024 blue
values, each 32x32 row-major).

Pickles can run arbitrary code when loaded, so this module never calls ``pickle.load``
on them: :class:`RestrictedUnpickler` only lets through the NumPy names that rebuild an
array or scalar (``_reconstruct``, ``ndarray``, ``dtype``, ``scalar``, ``_frombuffer``) and
the two calls Python 3 uses for byte strings (``_codecs.encode(text, "latin1")``,
``bytes()``), and refuses anything else with :class:`UnsafePickleError`.

Every problem with the data is an ``OSError`` (``FileNotFoundError``, ``DownloadError``)
or a ``ValueError`` (:class:`CIFAR10FormatError`) whose message is one line naming the
file, what is wrong with it and how to fix it.

Splits: ``"train"`` = batches 1-4 (40 000 images), ``"dev"`` = batch 5 (10 000, a
validation set carved from the official training set), ``"train+dev"`` = batches 1-5
(50 000), ``"test"`` = ``test_batch`` (10 000).

The files are read from ``root/cifar-10-batches-py/`` when that folder exists, else
straight out of ``root/cifar-10-python.tar.gz`` (no extraction needed); ``download=True``
fetches and verifies the archive first, and fills in the files an incomplete folder lacks.  Host-only code (NumPy).
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
from .dataset import DatasetInfo, TensorDataset

__all__ = ["CIFAR10", "CIFAR10FormatError", "RestrictedUnpickler", "UnsafePickleError", "restricted_loads"]

FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4"),
    "dev": ("data_batch_5",),
    "train+dev": ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"),
    "test": ("test_batch",),
}
META = "batches.meta"
ALL_FILES = (*SPLITS["train+dev"], *SPLITS["test"], META)


def _missing(folder: Path, names: tuple[str, ...], reasons: bool = True) -> list[str]:
    """The files of ``names`` that ``folder`` lacks or holds empty (with why, when ``reasons``)."""
    out = []
    for name in names:
        path = folder / name
        if not path.is_file():
            out.append(f"{name} is missing" if reasons else name)
        elif path.stat().st_size == 0:
            out.append(f"{name} is empty" if reasons else name)
    return out


def _fix_for(path: Path) -> str:
    """How to replace a damaged file: a batch file is re-extracted, an archive downloaded again."""
    if path.name == ARCHIVE:
        return f"delete {path} and run again with download=True (the examples' --download) to download it again"
    return f"delete {path} and run again with download=True (the examples' --download) to extract a fresh copy"


class CIFAR10FormatError(ValueError):
    """A CIFAR-10 file is truncated, not a CIFAR-10 batch, or holds unexpected objects."""


class UnsafePickleError(CIFAR10FormatError, pickle.UnpicklingError):
    """A pickle names a global outside the allow-list (``os.system``, ``eval``, ...): refused, never run.

    It is a :class:`CIFAR10FormatError` (a ``ValueError``) like every other bad file, and a
    ``pickle.UnpicklingError`` for code that catches that.
    """


def _one_line(exc: BaseException) -> str:
    """An exception as ``Type: message`` on one line (messages are embedded in one-line errors)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _numpy_global(name: str) -> Any:
    """``name`` from NumPy's core (``numpy._core`` since NumPy 2, ``numpy.core`` before)."""
    try:
        from numpy import _core as core  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy import core
    module, _, attr = name.rpartition(".")
    return getattr(getattr(core, module), attr)


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as Python 3 writes ``bytes`` at protocol 2: ``encode(text, "latin1")``.

    Only that one use is let through; any other codec is refused.
    """
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing to call _codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


def _empty_bytes(*args: Any) -> bytes:
    """``bytes()``, which is how Python 3 writes ``b""`` at protocol 2 (nothing else is allowed)."""
    if args:
        raise pickle.UnpicklingError("refusing to call bytes() with arguments")
    return b""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild NumPy arrays, bytes and plain containers, and nothing else.

    Unpickling calls whatever ``module.name`` the stream names (``os.system`` included).
    A CIFAR-10 batch only names what rebuilds NumPy arrays and scalars, plus -- in files
    written by Python 3 at protocol 2 -- ``_codecs.encode(text, "latin1")`` and ``bytes()``
    for byte strings.  :meth:`find_class` maps exactly those names to harmless functions
    (the last two only accept that use) and refuses any other global *before* it is looked
    up, let alone called.  PyTorch's ``weights_only`` unpickler allows ``_codecs.encode`` too.
    """

    ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        **{
            (f"numpy.{core}.{module}", name): _numpy_global(f"{module}.{name}")
            for core in ("core", "_core")
            for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))
        },
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
        ("__builtin__", "bytes"): _empty_bytes,
        ("builtins", "bytes"): _empty_bytes,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def restricted_loads(data: bytes | IO[bytes], source: str = "<bytes>") -> Any:
    """Unpickle ``data`` (bytes or a binary file) with :class:`RestrictedUnpickler` and ``encoding="bytes"``.

    Raises :class:`UnsafePickleError` for a pickle that names anything but NumPy arrays and
    byte strings, and :class:`CIFAR10FormatError` for one that is truncated or corrupt; both
    messages are one line that starts with ``source``.
    """
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    try:
        return RestrictedUnpickler(stream, encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("refusing"):
            raise UnsafePickleError(
                f"{source}: {exc} from a pickle: CIFAR-10 files hold only NumPy arrays, lists and "
                "byte strings, so this file is not one (nothing in it was run)"
            ) from None
        raise CIFAR10FormatError(f"{source}: not a valid pickle, truncated or corrupt ({_one_line(exc)})") from exc
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, MemoryError) as exc:
        raise CIFAR10FormatError(f"{source}: not a valid pickle, truncated or corrupt ({_one_line(exc)})") from exc


def _bytes_keys(obj: Any) -> Any:
    """A dict with ``str`` keys (a pickle written from Python 3 strings) keyed by ``bytes`` like the official files."""
    if isinstance(obj, dict):
        return {k.encode("utf-8") if isinstance(k, str) else k: v for k, v in obj.items()}
    return obj


def _parse_batch(obj: Any, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N,32,32,3), labels int64 (N,)) from one unpickled batch dict, with checks."""
    obj = _bytes_keys(obj)
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
    obj = _bytes_keys(obj)
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
    #: name, classes, mean, std, image size and channels, for programs (see :class:`DatasetInfo`)
    info: ClassVar[DatasetInfo] = DatasetInfo("cifar10", CLASSES, MEAN, STD, image_size=32, channels=3)

    def __init__(self, root: str | os.PathLike, split: str = "train", download: bool = False) -> None:
        if split not in SPLITS:
            raise ValueError(f"CIFAR10: split must be one of {sorted(SPLITS)}, got {split!r}")
        self.root = Path(root).expanduser()
        self.split = split
        if download:
            self.download(self.root)
        files = (*SPLITS[split], META)
        folder = self._find_folder(self.root)
        archive = self.root / ARCHIVE
        if folder is not None and not _missing(folder, files):
            self.source = folder
            loaded = {name: self._read_file(folder / name) for name in files}
        elif archive.is_file():
            self.source = archive
            loaded = self._read_archive(archive, files)
        else:
            raise self._not_found(self.root, folder, files)
        parts = [self._parse(_parse_batch, loaded, name) for name in SPLITS[split]]
        self.classes: list[str] = self._parse(_parse_meta, loaded, META)
        images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        self.images: np.ndarray = images
        self.labels: np.ndarray = labels
        super().__init__(images, labels)

    # ------------------------------------------------------------------ reading
    def _parse(self, parse: Any, loaded: dict[str, Any], name: str) -> Any:
        """``parse(loaded[name])``; a bad file's error names it and says how to replace it."""
        if self.source.name == ARCHIVE:
            where, damaged = f"{self.source}:{FOLDER}/{name}", self.source
        else:
            where = damaged = self.source / name
        try:
            return parse(loaded[name], str(where))
        except CIFAR10FormatError as exc:
            raise CIFAR10FormatError(f"{exc}; {_fix_for(damaged)}") from None

    @staticmethod
    def _find_folder(root: Path) -> Path | None:
        """``root/cifar-10-batches-py`` when it is a folder, else ``root`` when it holds CIFAR-10 files."""
        if (root / FOLDER).is_dir():
            return root / FOLDER
        if any((root / name).exists() for name in ALL_FILES):
            return root
        return None

    @classmethod
    def _not_found(cls, root: Path, folder: Path | None, files: tuple[str, ...]) -> FileNotFoundError:
        """The error for data that is not there: what exactly is missing, and how to get it."""
        get_it = (
            f"pass download=True (the examples' --download) to fetch {cls.URL} into {root}, "
            "or download it yourself and put it there"
        )
        if folder is not None:
            return FileNotFoundError(
                f"CIFAR-10 folder {folder} is incomplete ({', '.join(_missing(folder, files))}) and no {ARCHIVE} "
                f"is beside it: pass download=True (the examples' --download) to fetch {cls.URL} and add the "
                f"missing files (the others are kept), or put that archive into {root} yourself"
            )
        if not root.exists():
            return FileNotFoundError(
                f"the data folder {root} does not exist (is the path mistyped?): point to the folder that holds "
                f"{FOLDER}/ or {ARCHIVE}, or {get_it}"
            )
        if not root.is_dir():
            return FileNotFoundError(
                f"the data folder {root} is a file, not a folder: point to the folder that holds {FOLDER}/"
            )
        return FileNotFoundError(
            f"CIFAR-10 not found: looked for the folder {root / FOLDER} and the archive {root / ARCHIVE} "
            f"(and for batch files directly in {root}); {get_it}"
        )

    @staticmethod
    def _read_file(path: Path) -> Any:
        with open(path, "rb") as f:
            try:
                return restricted_loads(f, str(path))
            except CIFAR10FormatError as exc:
                raise type(exc)(f"{exc}; {_fix_for(path)}") from None

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
        except CIFAR10FormatError as exc:
            raise type(exc)(f"{exc}; {_fix_for(archive)}") from None
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise CIFAR10FormatError(
                f"{archive}: truncated or corrupt archive ({_one_line(exc)}); {_fix_for(archive)}"
            ) from exc
        missing = sorted(set(wanted.values()) - set(found))
        if missing:
            raise CIFAR10FormatError(
                f"{archive}: not the CIFAR-10 python archive, {', '.join(f'{FOLDER}/{m}' for m in missing)} "
                f"missing inside; {_fix_for(archive)}"
            )
        return found

    # ------------------------------------------------------------------ download
    @classmethod
    def download(cls, root: str | os.PathLike, progress: bool = True) -> Path:
        """Make sure ``root/cifar-10-batches-py/`` holds every file: download and/or extract as needed.

        A complete folder is left alone.  An incomplete one (a file missing or empty) gets
        the missing files from the archive, and nothing it already holds is overwritten.
        An archive already present is checked against :attr:`MD5` before it is trusted.
        The download goes through a temporary file renamed only once the MD5 matched, and
        the archive is extracted into a scratch folder whose files are renamed into place
        at the end, so an interrupted run never leaves a file or folder that looks complete.
        """
        root = Path(root).expanduser()
        folder = cls._find_folder(root)
        if folder is not None and not _missing(folder, ALL_FILES):
            return folder
        archive = root / ARCHIVE
        if archive.is_file():
            digest = md5_file(archive)
            if digest != cls.MD5:
                raise DownloadError(
                    f"{archive} exists but its MD5 is {digest}, not {cls.MD5}: it is truncated or corrupt; "
                    "delete it and run again with download=True (the examples' --download)"
                )
        else:
            download_url(cls.URL, archive, md5=cls.MD5, progress=progress)
        # Extract into a scratch folder and rename the results into place, so an interrupted
        # extraction never leaves a half-filled cifar-10-batches-py/ behind.
        scratch = Path(tempfile.mkdtemp(prefix=".cifar-extract-", dir=root))
        try:
            safe_extract_tar(archive, scratch)
            lacking = _missing(scratch / FOLDER, ALL_FILES, reasons=False)
            if lacking:
                raise CIFAR10FormatError(
                    f"{archive}: not the CIFAR-10 python archive ({', '.join(f'{FOLDER}/{n}' for n in lacking)} "
                    f"missing inside); {_fix_for(archive)}"
                )
            if folder is None:
                os.replace(scratch / FOLDER, root / FOLDER)
                folder = root / FOLDER
            else:
                for name in _missing(folder, ALL_FILES, reasons=False):
                    os.replace(scratch / FOLDER / name, folder / name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return folder

    def __repr__(self) -> str:
        return f"CIFAR10(split={self.split!r}, n={len(self)}, source={str(self.source)!r})"
