"""Download a file safely: stream to a temporary file, verify, then rename atomically.

A download that is interrupted, truncated or corrupt must never leave behind a file
that looks complete, or the next run would trust it.  So :func:`download_url` writes
to ``<dest>.<random>.part`` in the destination's own folder (same filesystem, so the
final ``os.replace`` is atomic), checks the byte count against ``Content-Length`` and
the MD5 against the expected digest, and only then renames the file into place.  On
any failure the temporary file (and any folder made for it) is deleted, and the error names
the URL, the reason and where to save the file by hand.

:func:`safe_extract_tar` unpacks an archive after rejecting members that would escape
the target folder (absolute paths, ``..``, links, device files).

Host-only code (files and sockets); works with ``http(s)://`` and ``file://`` URLs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["ChecksumError", "DownloadError", "download_url", "md5_file", "safe_extract_tar"]


class DownloadError(OSError):
    """A download or extraction failed (no network, truncated transfer, bad checksum, unsafe archive).

    An ``OSError``, like the ``FileNotFoundError`` of data that is not there, so a program can
    catch every "the data is not usable" problem as ``(OSError, ValueError)``.
    """


class ChecksumError(DownloadError):
    """The downloaded bytes do not have the expected MD5 digest."""


def md5_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _progress_bar(total: int | None, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency, but a missing bar must not break a download
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, leave=False)


def download_url(
    url: str,
    dest: str | os.PathLike,
    md5: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``dest`` (a file path) and return it.

    The bytes go to a temporary file next to ``dest``; it is renamed to ``dest`` only
    after the whole body arrived (``Content-Length`` matched when the server sent one)
    and, when ``md5`` is given, the digest matched.  Raises :class:`DownloadError` (or
    its subclass :class:`ChecksumError`) otherwise, leaving ``dest`` untouched and no
    temporary file behind.
    """
    dest = Path(dest)
    by_hand = f"download it by hand (e.g. in a browser) and save it as {dest.resolve()}, then run again"
    created = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]  # removed again on failure
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    bar = None
    try:
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise DownloadError(
                    f"could not download {url} ({_reason(exc)}): check the network connection, or {by_hand}"
                ) from exc
            with response:
                length = response.headers.get("Content-Length")
                expected = int(length) if length is not None and length.isdigit() else None
                bar = _progress_bar(expected, dest.name, progress)
                try:
                    while chunk := response.read(chunk_size):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
                except Exception as exc:  # OSError, URLError, http.client.IncompleteRead, ...
                    raise DownloadError(
                        f"download of {url} broke off after {received} bytes ({_reason(exc)}): run again, or {by_hand}"
                    ) from exc
            out.flush()
            os.fsync(out.fileno())
        if expected is not None and received != expected:
            raise DownloadError(
                f"download of {url} is truncated (got {received} of {expected} bytes): run again, or {by_hand}"
            )
        if md5 is not None and digest.hexdigest() != md5.lower():
            raise ChecksumError(
                f"MD5 mismatch for {url}: expected {md5.lower()}, got {digest.hexdigest()} "
                f"({received} bytes); the file was discarded: run again, or {by_hand}"
            )
        os.replace(tmp, dest)
    finally:
        if bar is not None:
            bar.close()
        if tmp.exists():
            tmp.unlink()
            for folder in created:  # innermost first; a folder something else wrote into stays
                with contextlib.suppress(OSError):
                    folder.rmdir()
    return dest


def _reason(exc: BaseException) -> str:
    """Why a transfer failed, in a few words on one line ("[Errno 111] Connection refused")."""
    reason = getattr(exc, "reason", None) if not isinstance(exc, urllib.error.HTTPError) else None
    text = str(reason if reason is not None else exc) or type(exc).__name__
    return " ".join(text.split())


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = member.name
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")) or ".." in path.parts or (len(name) > 1 and name[1] == ":"):
        raise DownloadError(f"refusing to extract {archive}: member {name!r} would escape the target folder")
    if not (member.isfile() or member.isdir()):
        raise DownloadError(f"refusing to extract {archive}: member {name!r} is a link or special file")


def safe_extract_tar(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a (possibly gzipped) tar archive into ``dest`` after checking every member.

    Members with absolute paths, ``..`` components, links or device entries are refused
    with :class:`DownloadError` before anything is written.  A truncated or corrupt
    archive raises :class:`DownloadError` as well.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, archive)
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12: a second line of defence
                tar.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - older Pythons
                tar.extractall(dest, members=members)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DownloadError(f"could not extract {archive}: the archive is truncated or corrupt ({exc})") from exc
    return dest
