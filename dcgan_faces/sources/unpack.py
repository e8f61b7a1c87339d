"""Unpack a zip or tar archive safely: no absolute paths, no '..', no links or devices, a size limit, and nothing
left behind when it fails."""

from __future__ import annotations

import lzma
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm import tqdm

CHUNK = 1 << 20
YOURSELF = "unpack it yourself and pass --data /path/to/folder"


class FetchError(Exception):
    """A download or extraction failed; str() is one line that says what to do."""


def one_line(text: object, limit: int = 300) -> str:
    """`text` on one line, cut to `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _member_parts(name: str, archive: Path) -> tuple[str, ...]:
    """The path parts of an archive member, refusing absolute paths and '..'."""
    unified = name.replace("\\", "/")
    if unified.startswith("/") or re.match(r"^[A-Za-z]:", unified):
        raise _refuse(archive, f"member {name!r} has an absolute path")
    parts = tuple(p for p in PurePosixPath(unified).parts if p not in ("", "."))
    if ".." in parts:
        raise _refuse(archive, f"member {name!r} points outside the folder")
    return parts


def _refuse(archive: Path, why: str) -> FetchError:
    return FetchError(f"Refused to extract {archive.name}: {why}. Check where it came from, or {YOURSELF}")


def _too_big(archive: Path, max_bytes: int) -> FetchError:
    return FetchError(f"Refused to extract {archive.name}: it unpacks to more than {max_bytes:,} bytes. "
                      f"Raise max_bytes if that is expected, or {YOURSELF}")


def _copy(src: BinaryIO, target: Path, budget: int) -> int:
    """Write src to target (making its folder), stopping once past budget bytes; returns the bytes written."""
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as dst:
        while written <= budget and (block := src.read(CHUNK)):
            dst.write(block)
            written += len(block)
    return written


Member = tuple[str, str, int, Callable[[], BinaryIO]]  # name, "file", "dir" or what is refused, size, opener


def _zip_members(archive: Path, max_bytes: int) -> Iterator[Member]:
    with zipfile.ZipFile(archive) as zf:
        if sum(info.file_size for info in zf.infolist()) > max_bytes:  # refused before anything is written
            raise _too_big(archive, max_bytes)
        for info in zf.infolist():
            kind = stat.S_IFMT(info.external_attr >> 16)
            what = "symlink" if kind == stat.S_IFLNK else "special file"
            if kind in (0, stat.S_IFREG, stat.S_IFDIR):
                what = "dir" if info.is_dir() else "file"
            yield info.filename, what, info.file_size, lambda info=info: zf.open(info)


def _tar_members(archive: Path) -> Iterator[Member]:
    with tarfile.open(archive, mode="r|*") as tf:  # stream mode: one pass over a compressed tar
        for member in tf:
            what = ("file" if member.isfile() else "dir" if member.isdir() else "symlink" if member.issym()
                    else "hard link" if member.islnk() else "special file")
            yield member.name, what, member.size, lambda member=member: tf.extractfile(member)


def _extract(members: Iterator[Member], archive: Path, into: Path, max_bytes: int) -> Iterator[None]:
    """Write the members into `into`, checked as they come; yields once a member."""
    written = 0
    for name, what, size, opener in members:
        parts = _member_parts(name, archive)
        if what not in ("file", "dir"):
            raise _refuse(archive, f"member {name!r} is a {what}")
        if written + size > max_bytes:
            raise _too_big(archive, max_bytes)
        target = into.joinpath(*parts)
        if what == "dir" or not parts:
            target.mkdir(parents=True, exist_ok=True)
        else:
            with opener() as src:
                written += _copy(src, target, max_bytes - written)
        if written > max_bytes:  # a header that understates the real size
            raise _too_big(archive, max_bytes)
        yield


def safe_extract(archive: Path, dest_dir: Path, *, max_bytes: int, quiet: bool = True) -> Path:
    """Extract a zip or tar archive into dest_dir (absent or empty), by way of a temporary folder beside it;
    FetchError, dest_dir untouched, for absolute paths, '..', links, devices and a total size over max_bytes."""
    archive, dest_dir = Path(archive), Path(dest_dir)
    if dest_dir.exists() and (not dest_dir.is_dir() or any(dest_dir.iterdir())):
        raise FetchError(f"Cannot extract {archive.name} into {dest_dir}: it already exists and is not empty")
    members = _zip_members(archive, max_bytes) if zipfile.is_zipfile(archive) else _tar_members(archive)
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.extract-", dir=dest_dir.parent))
    try:
        for _ in tqdm(_extract(members, archive, tmp, max_bytes), desc=f"Extracting {archive.name}", unit=" files",
                      disable=quiet, file=sys.stderr):  # the bar closes itself when the loop ends or fails
            pass
        os.replace(tmp, dest_dir)
    except (OSError, EOFError, RuntimeError, ValueError, zipfile.BadZipFile, tarfile.TarError, zlib.error,
            lzma.LZMAError) as e:
        raise FetchError(f"Could not extract {archive.name} ({type(e).__name__}: {one_line(e)}); it is damaged or "
                         f"cut short. Fetch it again, or {YOURSELF}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir
