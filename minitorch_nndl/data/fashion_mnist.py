"""Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017) from its IDX files.

70 000 grayscale 28x28 images of clothing in 10 classes, distributed as four gzipped
IDX files (the MNIST format: a big-endian header -- magic number, then one 32-bit size
per dimension -- followed by raw uint8 values)::

    train-images-idx3-ubyte.gz  magic 2051, 60000 x 28 x 28
    train-labels-idx1-ubyte.gz  magic 2049, 60000
    t10k-images-idx3-ubyte.gz   magic 2051, 10000 x 28 x 28
    t10k-labels-idx1-ubyte.gz   magic 2049, 10000

Splits: ``"train"`` = the first ``60000 - dev_size`` training images, ``"dev"`` = the
last ``dev_size``, ``"train+dev"`` = all 60 000, ``"test"`` = the 10 000 t10k images.

``download=True`` fetches the files a folder lacks from the official site (30 MB in all)
into ``root/fashion-mnist/``, each checked against the MD5 the Fashion-MNIST README lists
before it is renamed into place.  Files already there are not re-checked against those
digests: Debian's copy (``/usr/share/datasets/fashion-mnist``) is recompressed, so its
``.gz`` digests differ from the official ones; the reader checks every file's header and
length instead.  Host-only code (NumPy).
"""

from __future__ import annotations

import functools
import gzip
import logging
import os
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np

from ._download import download_url
from .dataset import DatasetInfo, TensorDataset

__all__ = ["DEBIAN_ROOT", "FashionMNIST", "IDXFormatError", "read_idx"]

DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")
logger = logging.getLogger(__name__)
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
ALL_FILES = (*FILES["train"], *FILES["test"])


class IDXFormatError(ValueError):
    """An IDX file has the wrong magic number, a bad header, or is truncated."""


_REPLACE = "replace it with an intact copy (download it again, or reinstall dataset-fashion-mnist)"


def read_idx(path: str | os.PathLike, magic: int) -> np.ndarray:
    """Read an IDX file (gzipped when its name ends in ``.gz``) holding unsigned bytes.

    Checks the magic number (``2051`` for 3-D image files, ``2049`` for 1-D label files)
    and that the body has exactly the number of values the header announces.  The result
    is read-only and cached per (file, modification time), so building the train and dev
    splits decompresses the file once.
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise IDXFormatError(f"{path}: cannot read ({' '.join(str(exc).split())})") from exc
    return _read_idx_cached(str(path), st.st_mtime_ns, st.st_size, magic)


@functools.lru_cache(maxsize=8)
def _read_idx_cached(name: str, mtime_ns: int, size: int, magic: int) -> np.ndarray:
    path = Path(name)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise IDXFormatError(
            f"{path}: cannot read ({' '.join(str(exc).split())}): the file is truncated or not gzip; {_REPLACE}"
        ) from exc
    if len(raw) < 8:
        raise IDXFormatError(f"{path}: only {len(raw)} bytes, too short for an IDX header; {_REPLACE}")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise IDXFormatError(f"{path}: magic number {found}, expected {magic} (wrong or corrupt file); {_REPLACE}")
    ndim = raw[3]  # the low byte of the magic is the number of dimensions, the one before it the type (0x08 = uint8)
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise IDXFormatError(
            f"{path}: header announces shape {dims} ({expected} values) but the body has {len(raw) - header} "
            f"(truncated?); {_REPLACE}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


class FashionMNIST(TensorDataset):
    """Fashion-MNIST as arrays: ``.images`` uint8 ``(N, 28, 28, 1)``, ``.labels`` int64.

    Where the data came from is never a guess: ``.source`` is the folder the files were
    read from, ``.from_system_copy`` says whether that is Debian's copy, and
    ``.source_note`` is one line saying so, for a program to print.

    Args:
        root: folder holding the four IDX files (``.gz`` or uncompressed), directly or in a
            ``fashion-mnist/`` subfolder.  ``None`` uses Debian's ``dataset-fashion-mnist``
            package in ``/usr/share/datasets/fashion-mnist``.
        split: ``"train"``, ``"dev"``, ``"train+dev"`` or ``"test"`` (see the module docstring).
        dev_size: how many of the 60 000 training images form the dev split (from the end).
        fallback: when ``root`` holds no Fashion-MNIST files, read Debian's copy instead
            (``.source_note`` then says so).
        download: when neither ``root`` (nor, with ``fallback``, Debian's copy) holds all four
            files, fetch the missing ones into ``root/fashion-mnist/`` (see :meth:`download`).
    """

    #: per-channel mean/std of all 60 000 images of the training file, pixel values in [0, 1]
    MEAN: ClassVar[tuple[float]] = (0.2860,)
    STD: ClassVar[tuple[float]] = (0.3530,)
    CLASSES: ClassVar[tuple[str, ...]] = (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
    #: name, classes, mean, std, image size and channels, for programs (see :class:`DatasetInfo`)
    info: ClassVar[DatasetInfo] = DatasetInfo("fashion-mnist", CLASSES, MEAN, STD, image_size=28, channels=1)
    #: where ``download=True`` fetches ``<file>.gz`` from, and the MD5 of each file (the Fashion-MNIST README's)
    URL: ClassVar[str] = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    MD5: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
    }

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        dev_size: int = 10000,
        fallback: bool = False,
        download: bool = False,
    ) -> None:
        if split not in ("train", "dev", "train+dev", "test"):
            raise ValueError(f"FashionMNIST: split must be 'train', 'dev', 'train+dev' or 'test', got {split!r}")
        self.root = DEBIAN_ROOT if root is None else Path(root).expanduser()
        self.split = split
        if download:
            if root is None:
                raise ValueError("FashionMNIST: download=True needs a root folder to download into")
            self.download(self.root, system_copy=fallback)
        self.classes: list[str] = list(self.CLASSES)
        found = self.find_root(self.root, system_copy=False)
        if found is None and fallback and self.root != DEBIAN_ROOT:
            found = self.find_root(DEBIAN_ROOT, system_copy=False)
        #: the folder the four files were read from
        self.source: Path = self.root if found is None else found
        #: True when the files came from Debian's system copy, not from ``root``
        self.from_system_copy: bool = self.source == DEBIAN_ROOT
        #: one line that says where the data came from, for a program to print
        self.source_note: str = f"Fashion-MNIST from {self.source}"
        if self.from_system_copy:
            self.source_note += " (the system copy from Debian's dataset-fashion-mnist package"
            self.source_note += f"; {self.root} holds no Fashion-MNIST files)" if self.root != DEBIAN_ROOT else ")"
            logger.info(self.source_note)
        which = "test" if split == "test" else "train"
        image_name, label_name = FILES[which]
        images = read_idx(self._find(image_name), IMAGE_MAGIC)
        labels = read_idx(self._find(label_name), LABEL_MAGIC)
        if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1:
            raise IDXFormatError(f"{self.source}: unexpected shapes images {images.shape}, labels {labels.shape}")
        if images.shape[0] != labels.shape[0]:
            raise IDXFormatError(f"{self.source}: {images.shape[0]} images but {labels.shape[0]} labels")
        if labels.size and labels.max() > 9:
            raise IDXFormatError(f"{self.source}: labels outside 0..9 (max {labels.max()})")
        if split != "test":
            n = images.shape[0]
            if not 0 <= dev_size <= n:
                raise ValueError(f"FashionMNIST: dev_size must be in [0, {n}], got {dev_size}")
            cut = n - dev_size
            sl = {"train": slice(0, cut), "dev": slice(cut, n), "train+dev": slice(0, n)}[split]
            images, labels = images[sl], labels[sl]
        self.images: np.ndarray = np.ascontiguousarray(images[..., None])  # (N, 28, 28, 1) channels-last
        self.labels: np.ndarray = labels.astype(np.int64)
        super().__init__(self.images, self.labels)

    @staticmethod
    def find_root(data_dir: str | os.PathLike, system_copy: bool = True) -> Path | None:
        """The folder that holds all four files: ``data_dir/fashion-mnist``, ``data_dir``, or
        (when ``system_copy``) Debian's copy in ``/usr/share/datasets/fashion-mnist``; None if none does."""
        data_dir = Path(data_dir).expanduser()
        candidates = [data_dir / "fashion-mnist", data_dir] + ([DEBIAN_ROOT] if system_copy else [])
        for folder in candidates:
            if all(any((folder / f"{stem}{sfx}").is_file() for sfx in (".gz", "")) for stem in ALL_FILES):
                return folder
        return None

    @classmethod
    def download(cls, root: str | os.PathLike, progress: bool = True, system_copy: bool = False) -> Path:
        """Make sure all four files are there; returns the folder that holds them.

        A folder :meth:`find_root` finds (with ``system_copy``, Debian's copy counts) is left
        alone.  Otherwise each file ``root/fashion-mnist/`` lacks is downloaded from :attr:`URL`
        through a temporary file renamed only once its MD5 matched :attr:`MD5` (see
        :func:`~minitorch_nndl.data.download_url`); the files it already holds are kept.
        """
        root = Path(root).expanduser()
        found = cls.find_root(root, system_copy=system_copy)
        if found is not None:
            return found
        target = root / "fashion-mnist"
        for stem in ALL_FILES:
            if not any((target / f"{stem}{sfx}").is_file() for sfx in (".gz", "")):
                download_url(f"{cls.URL}{stem}.gz", target / f"{stem}.gz", md5=cls.MD5[stem], progress=progress)
        return target

    def _find(self, stem: str) -> Path:
        for candidate in (self.source / f"{stem}.gz", self.source / stem):
            if candidate.is_file():
                return candidate
        hint = (
            "on Debian/Ubuntu `sudo apt-get install dataset-fashion-mnist` (files go to "
            f"{DEBIAN_ROOT}), pass download=True (the examples' --download) to fetch them into "
            f"{self.root / 'fashion-mnist'}, or download the four *-ubyte.gz files from "
            "https://github.com/zalandoresearch/fashion-mnist (data/fashion) into that folder"
        )
        if not self.root.exists():
            raise FileNotFoundError(f"the data folder {self.root} does not exist (is the path mistyped?): {hint}")
        raise FileNotFoundError(
            f"Fashion-MNIST file not found: looked for {self.source / (stem + '.gz')} and {self.source / stem}; {hint}"
        )

    def __repr__(self) -> str:
        return f"FashionMNIST(split={self.split!r}, n={len(self)}, source={str(self.source)!r})"
