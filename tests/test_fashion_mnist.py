"""Fashion-MNIST: the real Debian files (skipped when absent) and the IDX reader on small written files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from minitorch_nndl.data import DataLoader, FashionMNIST, IDXFormatError, read_idx
from minitorch_nndl.data.fashion_mnist import DEBIAN_ROOT

real = pytest.mark.skipif(
    not (DEBIAN_ROOT / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed",
)


def _write_idx(path: Path, array: np.ndarray, magic: int | None = None, compress: bool = True) -> Path:
    magic = (0x08 << 8 | array.ndim) if magic is None else magic
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def _small_root(tmp_path: Path, n_train: int = 30, n_test: int = 12, compress: bool = True) -> Path:
    rng = np.random.default_rng(0)
    sfx = ".gz" if compress else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_train, 28, 28)), compress=compress)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{sfx}", np.arange(n_train) % 10, compress=compress)
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_test, 28, 28)), compress=compress)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{sfx}", np.arange(n_test) % 10, compress=compress)
    return tmp_path


@real
@pytest.mark.parametrize(("split", "n"), [("train", 50000), ("dev", 10000), ("train+dev", 60000), ("test", 10000)])
def test_real_files_split_sizes(split, n):
    ds = FashionMNIST(split=split)
    assert len(ds) == n
    assert ds.images.shape == (n, 28, 28, 1) and ds.images.dtype == np.uint8
    assert ds.labels.shape == (n,) and ds.labels.dtype == np.int64
    assert ds.labels.min() == 0 and ds.labels.max() == 9
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot" and len(ds.classes) == 10


@real
def test_real_files_content():
    test = FashionMNIST(split="test")
    np.testing.assert_array_equal(np.bincount(test.labels), [1000] * 10)
    full = FashionMNIST(split="train+dev")
    np.testing.assert_array_equal(np.bincount(full.labels), [6000] * 10)
    train, dev = FashionMNIST(split="train"), FashionMNIST(split="dev")
    np.testing.assert_array_equal(full.images[:50000], train.images)
    np.testing.assert_array_equal(full.images[50000:], dev.images)
    assert len(FashionMNIST(split="dev", dev_size=5000)) == 5000
    counts = np.bincount(full.images.ravel(), minlength=256)  # exact statistics from the value histogram
    values = np.arange(256) / 255.0
    mean = (counts * values).sum() / counts.sum()
    std = np.sqrt((counts * (values - mean) ** 2).sum() / counts.sum())
    assert abs(mean - FashionMNIST.MEAN[0]) < 1e-4
    assert abs(std - FashionMNIST.STD[0]) < 1e-4
    x, y = next(iter(DataLoader(test, batch_size=64)))
    assert x.shape == (64, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 1.0


@pytest.mark.parametrize("compress", [True, False])
def test_small_written_files(tmp_path, compress):
    root = _small_root(tmp_path, compress=compress)
    train = FashionMNIST(root, "train", dev_size=10)
    dev = FashionMNIST(root, "dev", dev_size=10)
    test = FashionMNIST(root, "test")
    assert (len(train), len(dev), len(test)) == (20, 10, 12)
    raw = read_idx(root / ("train-images-idx3-ubyte" + (".gz" if compress else "")), 2051)
    np.testing.assert_array_equal(dev.images[..., 0], raw[20:])
    np.testing.assert_array_equal(train.labels, np.arange(20) % 10)
    with pytest.raises(ValueError):
        FashionMNIST(root, "dev", dev_size=31)


def test_bad_magic_truncation_and_missing(tmp_path):
    root = _small_root(tmp_path)
    _write_idx(root / "t10k-labels-idx1-ubyte.gz", np.arange(12) % 10, magic=2051)
    with pytest.raises(IDXFormatError, match="magic number 2051, expected 2049"):
        FashionMNIST(root, "test")
    images = root / "train-images-idx3-ubyte.gz"
    data = gzip.decompress(images.read_bytes())
    images.write_bytes(gzip.compress(data[:-100]))
    with pytest.raises(IDXFormatError, match="header announces"):
        FashionMNIST(root, "train")
    images.write_bytes(b"not gzip at all")
    with pytest.raises(IDXFormatError):
        FashionMNIST(root, "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as info:
        FashionMNIST(tmp_path / "empty", "train")
    assert str(tmp_path / "empty" / "train-images-idx3-ubyte.gz") in str(info.value)
    with pytest.raises(ValueError, match="split"):
        FashionMNIST(root, "valid")


def test_every_bad_file_is_one_line_with_a_fix(tmp_path):
    root = _small_root(tmp_path)
    (root / "train-labels-idx1-ubyte.gz").write_bytes(b"")
    with pytest.raises(IDXFormatError) as info:
        FashionMNIST(root, "train")
    msg = str(info.value)
    assert "\n" not in msg and "train-labels-idx1-ubyte.gz" in msg and "replace it with an intact copy" in msg


def test_a_data_folder_that_does_not_exist_is_named_as_such(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        FashionMNIST(tmp_path / "dtaa", "test")
    msg = str(info.value)
    assert msg.startswith(f"the data folder {tmp_path / 'dtaa'} does not exist") and "\n" not in msg


def test_files_in_a_fashion_mnist_subfolder_are_found(tmp_path):
    (tmp_path / "fashion-mnist").mkdir()
    _small_root(tmp_path / "fashion-mnist")
    ds = FashionMNIST(tmp_path, "test")
    assert ds.source == tmp_path / "fashion-mnist" and not ds.from_system_copy
    assert ds.source_note == f"Fashion-MNIST from {tmp_path / 'fashion-mnist'}"
    assert FashionMNIST.find_root(tmp_path, system_copy=False) == tmp_path / "fashion-mnist"


def test_the_system_copy_is_used_only_when_asked_and_then_it_says_so(tmp_path, monkeypatch, caplog):
    (tmp_path / "system").mkdir()
    system = _small_root(tmp_path / "system")
    monkeypatch.setattr("minitorch_nndl.data.fashion_mnist.DEBIAN_ROOT", system)
    empty = tmp_path / "data"
    empty.mkdir()
    with pytest.raises(FileNotFoundError):
        FashionMNIST(empty, "test")  # no silent fallback
    assert FashionMNIST.find_root(empty) == system and FashionMNIST.find_root(empty, system_copy=False) is None
    with caplog.at_level("INFO", logger="minitorch_nndl.data.fashion_mnist"):
        ds = FashionMNIST(empty, "test", fallback=True)
    assert ds.source == system and ds.from_system_copy and ds.root == empty
    assert ds.source_note == (
        f"Fashion-MNIST from {system} (the system copy from Debian's dataset-fashion-mnist package; "
        f"{empty} holds no Fashion-MNIST files)"
    )
    assert ds.source_note in caplog.text and "system" in repr(ds)
    assert FashionMNIST(None, "test").from_system_copy


def _server(tmp_path: Path, monkeypatch) -> dict[str, str]:
    """A folder of small .gz files served as file:// URLs in place of the official site; returns their MD5s."""
    from minitorch_nndl.data import md5_file
    from minitorch_nndl.data.fashion_mnist import ALL_FILES

    (tmp_path / "site").mkdir()
    site = _small_root(tmp_path / "site")
    digests = {stem: md5_file(site / f"{stem}.gz") for stem in ALL_FILES}
    monkeypatch.setattr(FashionMNIST, "URL", site.as_uri() + "/")
    monkeypatch.setattr(FashionMNIST, "MD5", digests)
    monkeypatch.setattr("minitorch_nndl.data.fashion_mnist.DEBIAN_ROOT", tmp_path / "no-system-copy")
    return digests


def test_the_official_md5s_are_the_readmes():
    assert FashionMNIST.MD5 == {
        "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    assert FashionMNIST.URL.endswith("/")


def test_download_fetches_verifies_and_keeps_what_is_there(tmp_path, monkeypatch):
    _server(tmp_path, monkeypatch)
    data = tmp_path / "data"
    ds = FashionMNIST(data, "test", download=True)
    assert ds.source == data / "fashion-mnist" and len(ds) == 12
    names = sorted(p.name for p in (data / "fashion-mnist").iterdir())
    assert names == sorted(f"{stem}.gz" for stem in FashionMNIST.MD5)  # all four, no temporary file left
    # an incomplete folder gets only the missing file; the others are not fetched again
    (data / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    kept = data / "fashion-mnist" / "train-images-idx3-ubyte.gz"
    kept.write_bytes(kept.read_bytes())  # same bytes, new inode: a re-download would replace it
    inode = kept.stat().st_ino
    assert len(FashionMNIST(data, "test", download=True)) == 12
    assert kept.stat().st_ino == inode and (data / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").is_file()


def test_a_download_with_the_wrong_md5_leaves_nothing(tmp_path, monkeypatch):
    from minitorch_nndl.data import ChecksumError

    digests = _server(tmp_path, monkeypatch)
    monkeypatch.setattr(FashionMNIST, "MD5", {**digests, "t10k-images-idx3-ubyte": "0" * 32})
    with pytest.raises(ChecksumError, match="MD5 mismatch"):
        FashionMNIST(tmp_path / "data", "test", download=True)
    assert "t10k-images-idx3-ubyte.gz" not in [p.name for p in (tmp_path / "data" / "fashion-mnist").iterdir()]


def test_download_uses_a_folder_or_system_copy_that_has_everything(tmp_path, monkeypatch):
    _server(tmp_path, monkeypatch)
    monkeypatch.setattr(FashionMNIST, "URL", (tmp_path / "nowhere").as_uri() + "/")  # a fetch would fail
    (tmp_path / "system").mkdir()
    system = _small_root(tmp_path / "system")
    monkeypatch.setattr("minitorch_nndl.data.fashion_mnist.DEBIAN_ROOT", system)
    (tmp_path / "data").mkdir()
    ds = FashionMNIST(tmp_path / "data", "test", download=True, fallback=True)
    assert ds.from_system_copy and not (tmp_path / "data" / "fashion-mnist").exists()
    with pytest.raises(ValueError, match="needs a root folder"):
        FashionMNIST(None, "test", download=True)


def test_info_describes_the_data_set():
    from minitorch_nndl.data import CIFAR10, DatasetInfo

    info = FashionMNIST.info
    assert isinstance(info, DatasetInfo) and info.name == "fashion-mnist"
    assert (info.image_size, info.channels, info.num_classes) == (28, 1, 10)
    assert info.classes == FashionMNIST.CLASSES and info.mean == FashionMNIST.MEAN and info.std == FashionMNIST.STD
    assert (CIFAR10.info.name, CIFAR10.info.image_size, CIFAR10.info.channels) == ("cifar10", 32, 3)
    assert CIFAR10.info.classes == CIFAR10.CLASSES and CIFAR10.info.mean == CIFAR10.MEAN
    with pytest.raises(AttributeError):
        info.image_size = 32  # frozen


def test_the_catalog_downloads_what_neither_the_folder_nor_the_system_copy_holds(tmp_path, monkeypatch):
    from minitorch_nndl.data import catalog

    _server(tmp_path, monkeypatch)  # no system copy either
    ds = catalog.open_split("fashion-mnist", tmp_path / "data", "test", download=True)
    assert ds.source == tmp_path / "data" / "fashion-mnist" and not ds.from_system_copy and len(ds) == 12
