"""CIFAR-10 reader (on fake files in the official format), restricted unpickler, download helper."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import pickle
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from minitorch_nndl.data import (
    CIFAR10,
    ChecksumError,
    CIFAR10FormatError,
    DataLoader,
    DownloadError,
    Normalize,
    ToTensor,
    download_url,
    restricted_loads,
    safe_extract_tar,
)
from minitorch_nndl.data.synthetic import write_fake_cifar10

N = 20  # images per fake batch


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_fake_cifar10(root, n_per_batch=N, archive=True, extracted=True, seed=0)
    return root


def _only_archive(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "cifar-10-python.tar.gz", dst / "cifar-10-python.tar.gz")
    return dst


@pytest.mark.parametrize(("split", "batches"), [("train", 4), ("dev", 1), ("train+dev", 5), ("test", 1)])
def test_split_sizes_dtypes_and_classes(fake_root, split, batches):
    ds = CIFAR10(fake_root, split=split)
    assert len(ds) == batches * N
    assert ds.images.shape == (batches * N, 32, 32, 3) and ds.images.dtype == np.uint8
    assert ds.labels.shape == (batches * N,) and ds.labels.dtype == np.int64
    assert 0 <= ds.labels.min() and ds.labels.max() <= 9
    assert ds.classes == list(CIFAR10.CLASSES)
    assert ds.classes[0] == "airplane" and ds.classes[9] == "truck"
    x, y = ds[3]
    np.testing.assert_array_equal(x, ds.images[3])
    assert y == ds.labels[3]


def test_train_plus_dev_is_train_then_dev(fake_root):
    both = CIFAR10(fake_root, "train+dev")
    train, dev = CIFAR10(fake_root, "train"), CIFAR10(fake_root, "dev")
    np.testing.assert_array_equal(both.images, np.concatenate([train.images, dev.images]))
    np.testing.assert_array_equal(both.labels, np.concatenate([train.labels, dev.labels]))


def test_folder_and_archive_give_identical_arrays(fake_root, tmp_path):
    archive_only = _only_archive(fake_root, tmp_path / "a")
    for split in ("train", "dev", "test"):
        from_folder = CIFAR10(fake_root, split)
        from_archive = CIFAR10(archive_only, split)
        assert from_folder.source.is_dir() and from_archive.source.name.endswith(".tar.gz")
        np.testing.assert_array_equal(from_folder.images, from_archive.images)
        np.testing.assert_array_equal(from_folder.labels, from_archive.labels)
    assert not (archive_only / "cifar-10-batches-py").exists()  # read without extracting
    # root may also be the batches folder itself
    direct = CIFAR10(fake_root / "cifar-10-batches-py", "dev")
    np.testing.assert_array_equal(direct.images, CIFAR10(fake_root, "dev").images)


def test_rows_are_decoded_from_chw_to_hwc(fake_root):
    raw = restricted_loads((fake_root / "cifar-10-batches-py" / "test_batch").read_bytes())
    assert set(raw) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert isinstance(raw[b"labels"], list) and raw[b"data"].shape == (N, 3072)
    ds = CIFAR10(fake_root, "test")
    for i in (0, 7):
        row = raw[b"data"][i]
        # pixel (r, c) of channel k is row[k * 1024 + r * 32 + c]
        assert ds.images[i, 5, 9, 2] == row[2 * 1024 + 5 * 32 + 9]
        np.testing.assert_array_equal(ds.images[i], row.reshape(3, 32, 32).transpose(1, 2, 0))
    assert ds.labels.tolist() == raw[b"labels"]


def test_fake_files_use_python2_pickle_opcodes(fake_root):
    payload = (fake_root / "cifar-10-batches-py" / "data_batch_1").read_bytes()
    assert payload[:2] == b"\x80\x02"
    assert b"numpy.core.multiarray\n_reconstruct" in payload and b"_codecs" not in payload


def test_fake_images_are_learnable(fake_root):
    """Nearest class mean on raw pixels separates the classes: the fake data is learnable."""
    train, test = CIFAR10(fake_root, "train+dev"), CIFAR10(fake_root, "test")
    flat = train.images.reshape(len(train), -1).astype(np.float64)
    means = np.stack([flat[train.labels == c].mean(axis=0) for c in range(10)])
    test_flat = test.images.reshape(len(test), -1).astype(np.float64)
    pred = np.argmin(((test_flat[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert (pred == test.labels).mean() >= 0.9


def test_loader_over_cifar(fake_root):
    ds = CIFAR10(fake_root, "train")
    tf_ = [ToTensor(), Normalize(CIFAR10.MEAN, CIFAR10.STD)]
    loader = DataLoader(ds, batch_size=32, shuffle=True, seed=0, transform=lambda x, rng: tf_[1](tf_[0](x)))
    x, y = next(iter(loader))
    assert x.shape == (32, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    assert len(CIFAR10.MEAN) == len(CIFAR10.STD) == 3


# ----------------------------------------------------------------------------- safety and errors
class _RunsCommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_restricted_unpickler_refuses_code_execution(fake_root, tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({b"data": _RunsCommand(f"touch {marker}"), b"labels": []}, protocol=4)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        restricted_loads(evil)
    assert not marker.exists()

    folder = tmp_path / "root" / "cifar-10-batches-py"
    shutil.copytree(fake_root / "cifar-10-batches-py", folder)
    (folder / "data_batch_5").write_bytes(evil)
    with pytest.raises(pickle.UnpicklingError, match=r"data_batch_5.*refusing to load (posix|os)\.system"):
        CIFAR10(tmp_path / "root", "dev")
    assert not marker.exists()
    # builtins are refused too
    with pytest.raises(pickle.UnpicklingError):
        restricted_loads(pickle.dumps(eval, protocol=2))


def test_missing_data_message_names_paths_and_download(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        CIFAR10(tmp_path)  # an existing folder without the data
    msg = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py") in msg
    assert str(tmp_path / "cifar-10-python.tar.gz") in msg
    assert "download=True" in msg and "--download" in msg
    with pytest.raises(ValueError, match="split"):
        CIFAR10(tmp_path, split="validation")


def test_a_data_folder_that_does_not_exist_is_named_as_such(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        CIFAR10(tmp_path / "dtaa")
    msg = str(info.value)
    assert msg.startswith(f"the data folder {tmp_path / 'dtaa'} does not exist") and "mistyped" in msg
    assert "\n" not in msg and "download=True" in msg


def test_truncated_and_foreign_files_are_reported(fake_root, tmp_path):
    folder = tmp_path / "r" / "cifar-10-batches-py"
    shutil.copytree(fake_root / "cifar-10-batches-py", folder)
    good = (folder / "test_batch").read_bytes()
    (folder / "test_batch").write_bytes(good[: len(good) // 2])
    with pytest.raises(CIFAR10FormatError, match="test_batch"):
        CIFAR10(tmp_path / "r", "test")
    (folder / "test_batch").write_bytes(pickle.dumps({b"something": 1}, protocol=4))
    with pytest.raises(CIFAR10FormatError, match="not a CIFAR-10 batch"):
        CIFAR10(tmp_path / "r", "test")
    raw = restricted_loads(good)
    raw[b"data"] = raw[b"data"][:, :100]
    buf = io.BytesIO()
    from minitorch_nndl.data.synthetic import _Py2StylePickler

    _Py2StylePickler(buf, protocol=2).dump(raw)
    (folder / "test_batch").write_bytes(buf.getvalue())
    with pytest.raises(CIFAR10FormatError, match="3072"):
        CIFAR10(tmp_path / "r", "test")


def test_corrupt_archive_is_reported(fake_root, tmp_path):
    root = _only_archive(fake_root, tmp_path / "c")
    archive = root / "cifar-10-python.tar.gz"
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(CIFAR10FormatError, match="truncated or corrupt"):
        CIFAR10(root, "test")


# ----------------------------------------------------------------------------- downloads
def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_download_file_url_verifies_and_renames(tmp_path):
    src = tmp_path / "src.bin"
    payload = os.urandom(50_000)
    src.write_bytes(payload)
    dest = tmp_path / "out" / "file.bin"
    got = download_url(src.as_uri(), dest, md5=_md5(payload), progress=False, chunk_size=4096)
    assert got == dest and dest.read_bytes() == payload
    assert os.listdir(dest.parent) == ["file.bin"]


def test_download_wrong_md5_leaves_nothing(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 1000)
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(ChecksumError, match="MD5 mismatch"):
        download_url(src.as_uri(), dest, md5="0" * 32, progress=False)
    assert not dest.parent.exists()  # the folder made for the download is gone too
    dest.parent.mkdir()
    with pytest.raises(DownloadError):
        download_url((tmp_path / "missing.bin").as_uri(), dest, progress=False)
    assert os.listdir(dest.parent) == []  # a folder that was there before stays


class _TruncatingHandler(http.server.BaseHTTPRequestHandler):
    body = b"y" * 10_000

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body) * 2))  # promises more than it sends
        self.end_headers()
        self.wfile.write(self.body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_download_truncated_http_response_leaves_nothing(tmp_path):
    server = http.server.HTTPServer(("127.0.0.1", 0), _TruncatingHandler)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        dest = tmp_path / "dl" / "f.tar.gz"
        url = f"http://127.0.0.1:{server.server_port}/f.tar.gz"
        with pytest.raises(DownloadError, match="truncated|broke off"):
            download_url(url, dest, progress=False)
        assert not dest.parent.exists()
    finally:
        thread.join(timeout=5)
        server.server_close()


def test_cifar_download_from_local_url(fake_root, tmp_path, monkeypatch):
    archive = fake_root / "cifar-10-python.tar.gz"
    monkeypatch.setattr(CIFAR10, "URL", archive.as_uri())
    monkeypatch.setattr(CIFAR10, "MD5", _md5(archive.read_bytes()))
    ds = CIFAR10(tmp_path / "dl", "dev", download=True)
    assert (tmp_path / "dl" / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert sorted(os.listdir(tmp_path / "dl")) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]
    np.testing.assert_array_equal(ds.images, CIFAR10(fake_root, "dev").images)
    # the official checksum does not match the fake archive: reported, nothing left behind
    monkeypatch.setattr(CIFAR10, "MD5", "c58f30108f718f92721af3b95e74349a")
    with pytest.raises(ChecksumError):
        CIFAR10(tmp_path / "dl2", "dev", download=True)
    assert not (tmp_path / "dl2").exists()
    # an existing archive with the wrong checksum is not trusted
    _only_archive(fake_root, tmp_path / "dl3")
    with pytest.raises(DownloadError, match="MD5"):
        CIFAR10(tmp_path / "dl3", "dev", download=True)


def _tar_with(path: Path, name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = linkname
        data = b"" if kind != tarfile.REGTYPE else b"evil"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    ("name", "kind", "link"),
    [
        ("../escape.txt", tarfile.REGTYPE, ""),
        ("/abs/escape.txt", tarfile.REGTYPE, ""),
        ("ok/link", tarfile.SYMTYPE, "/etc"),
    ],
)
def test_safe_extract_rejects_escaping_members(tmp_path, name, kind, link):
    archive = _tar_with(tmp_path / "bad.tar.gz", name, kind, link)
    target = tmp_path / "target"
    with pytest.raises(DownloadError, match="refusing"):
        safe_extract_tar(archive, target)
    assert not (tmp_path / "escape.txt").exists()
    assert list(target.iterdir()) == []


# ----------------------------------------------------------------------------- a newcomer's broken folders
# Every problem is an OSError or a ValueError with a one-line message that names the file and the fix,
# so a program can print it as one "error: ..." line.


@pytest.fixture
def broken_root(fake_root, tmp_path, monkeypatch) -> Path:
    """A copy of the fake data set (folder and archive); CIFAR10.URL/MD5 point at the fake archive."""
    archive = fake_root / "cifar-10-python.tar.gz"
    monkeypatch.setattr(CIFAR10, "URL", archive.as_uri())
    monkeypatch.setattr(CIFAR10, "MD5", _md5(archive.read_bytes()))
    root = tmp_path / "data"
    shutil.copytree(fake_root, root)
    return root


def _one_line_error(excinfo, *fragments: str) -> str:
    msg = str(excinfo.value)
    assert isinstance(excinfo.value, (OSError, ValueError)), type(excinfo.value)
    assert "\n" not in msg, msg
    for fragment in fragments:
        assert fragment in msg, (fragment, msg)
    return msg


def test_half_truncated_batch_says_which_file_and_the_advice_works(broken_root):
    batch = broken_root / "cifar-10-batches-py" / "data_batch_2"
    good = batch.read_bytes()
    batch.write_bytes(good[: len(good) // 2])
    with pytest.raises(CIFAR10FormatError) as info:
        CIFAR10(broken_root, "train")
    _one_line_error(info, str(batch), "truncated", f"delete {batch}", "download=True")
    batch.unlink()  # follow the advice: delete it, run again with download=True
    ds = CIFAR10(broken_root, "train", download=True)
    assert batch.read_bytes() == good and len(ds) == 4 * N


def test_zero_byte_test_batch_is_reported_and_download_refills_it(broken_root):
    batch = broken_root / "cifar-10-batches-py" / "test_batch"
    good = batch.read_bytes()
    batch.write_bytes(b"")
    assert CIFAR10(broken_root, "test").source.name == "cifar-10-python.tar.gz"  # the archive beside it is read
    (broken_root / "cifar-10-python.tar.gz").unlink()
    with pytest.raises(FileNotFoundError) as info:
        CIFAR10(broken_root, "test")
    _one_line_error(info, str(batch.parent), "test_batch is empty", "download=True")
    CIFAR10(broken_root, "test", download=True)
    assert batch.read_bytes() == good


@pytest.mark.parametrize("missing", ["data_batch_3", "test_batch", "batches.meta"])
def test_missing_batch_file_is_named_and_download_adds_only_it(broken_root, missing):
    folder = broken_root / "cifar-10-batches-py"
    (broken_root / "cifar-10-python.tar.gz").unlink()  # with the archive beside it, it would be read instead
    (folder / missing).unlink()
    with pytest.raises(FileNotFoundError) as info:
        CIFAR10(broken_root, "train+dev" if missing != "test_batch" else "test")
    _one_line_error(info, str(folder), f"{missing} is missing", "download=True")
    other = folder / ("data_batch_1" if missing != "data_batch_1" else "data_batch_2")
    before = other.stat().st_mtime_ns
    other_bytes = other.read_bytes()
    CIFAR10(broken_root, "test", download=True)  # fetches the archive: the folder is incomplete
    assert (folder / missing).is_file()
    assert other.stat().st_mtime_ns == before and other.read_bytes() == other_bytes  # untouched
    assert sorted(os.listdir(broken_root)) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]  # no scratch left


def test_a_code_running_pickle_is_a_one_line_format_error(broken_root, tmp_path):
    marker = tmp_path / "pwned"
    batch = broken_root / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(pickle.dumps({b"data": _RunsCommand(f"touch {marker}"), b"labels": []}, protocol=2))
    with pytest.raises(CIFAR10FormatError) as info:  # a ValueError (and an UnpicklingError)
        CIFAR10(broken_root, "test")
    assert isinstance(info.value, pickle.UnpicklingError)
    _one_line_error(info, str(batch), "refusing to load", "system", "nothing in it was run", f"delete {batch}")
    assert not marker.exists()


def _py3_pickle(obj, protocol: int) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("keys", ["bytes", "str"])
def test_python3_pickles_of_the_official_format_load(fake_root, tmp_path, protocol, keys):
    """A user's own subset written by Python 3 (protocol 2 uses _codecs.encode for bytes, 5 _frombuffer)."""
    official = restricted_loads((fake_root / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    meta = restricted_loads((fake_root / "cifar-10-batches-py" / "batches.meta").read_bytes())
    folder = tmp_path / "mine" / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def rekey(d):
        return {k.decode(): v for k, v in d.items()} if keys == "str" else d

    subset = {**official, b"data": official[b"data"][:7], b"labels": [np.int64(v) for v in official[b"labels"][:7]]}
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        (folder / name).write_bytes(_py3_pickle(rekey(subset), protocol))
    (folder / "batches.meta").write_bytes(_py3_pickle(rekey({**meta, b"empty": b""}), protocol))
    if protocol == 2:
        assert b"_codecs\nencode" in (folder / "data_batch_1").read_bytes()
    ds = CIFAR10(tmp_path / "mine", "test")
    assert ds.classes == list(CIFAR10.CLASSES)
    np.testing.assert_array_equal(ds.images, CIFAR10(fake_root, "train").images[:7])
    np.testing.assert_array_equal(ds.labels, np.asarray(official[b"labels"][:7]))


@pytest.mark.parametrize(
    "payload",
    [
        b"\x80\x02c_codecs\nencode\nX\x04\x00\x00\x00abcdX\x05\x00\x00\x00rot13\x86R.",  # another codec
        b"\x80\x02c__builtin__\nbytes\nJ\x00\xe1\xf5\x05\x85R.",  # bytes(100_000_000)
        b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.",
        b"\x80\x02cnumpy\nload\nX\x01\x00\x00\x00x\x85R.",
    ],
    ids=["codecs-rot13", "bytes-with-size", "eval", "numpy-load"],
)
def test_everything_but_the_allowed_uses_is_still_refused(payload):
    with pytest.raises(pickle.UnpicklingError, match="refusing") as info:
        restricted_loads(payload, "x.pkl")
    assert isinstance(info.value, CIFAR10FormatError) and "\n" not in str(info.value)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failed_download_names_the_url_and_where_to_put_the_file(tmp_path, monkeypatch):
    url = f"http://127.0.0.1:{_closed_port()}/cifar-10-python.tar.gz"
    monkeypatch.setattr(CIFAR10, "URL", url)
    root = tmp_path / "data"
    with pytest.raises(DownloadError) as info:
        CIFAR10(root, "test", download=True)
    assert isinstance(info.value, OSError)
    _one_line_error(
        info, f"could not download {url}", "Connection refused", f"save it as {root / 'cifar-10-python.tar.gz'}"
    )
    assert not root.exists()  # nothing partial: not even the folder made for it


def test_a_broken_off_download_leaves_nothing_and_says_so(tmp_path, monkeypatch):
    class Broken(io.BytesIO):
        headers: dict = {}

        def read(self, n=-1):
            raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout: Broken())
    with pytest.raises(DownloadError) as info:
        download_url("https://example.invalid/f.bin", tmp_path / "d" / "f.bin", progress=False)
    _one_line_error(info, "broke off after 0 bytes", "Connection reset by peer", str(tmp_path / "d" / "f.bin"))
    assert not (tmp_path / "d").exists()


def test_an_archive_without_every_batch_is_refused_before_anything_is_extracted(fake_root, tmp_path, monkeypatch):
    archive = tmp_path / "src" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(fake_root / "cifar-10-python.tar.gz") as src, tarfile.open(archive, "w:gz") as dst:
        for member in src:
            if not member.name.endswith("data_batch_4"):
                dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    monkeypatch.setattr(CIFAR10, "URL", archive.as_uri())
    monkeypatch.setattr(CIFAR10, "MD5", _md5(archive.read_bytes()))
    root = tmp_path / "data"
    with pytest.raises(CIFAR10FormatError) as info:
        CIFAR10(root, "test", download=True)
    _one_line_error(
        info, "cifar-10-batches-py/data_batch_4 missing inside", f"delete {root / 'cifar-10-python.tar.gz'}"
    )
    assert sorted(os.listdir(root)) == ["cifar-10-python.tar.gz"]  # no half-filled batches folder
