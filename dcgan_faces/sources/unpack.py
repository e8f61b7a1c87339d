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
from collections.abc import Iterator
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


def _zip_members(zf: zipfile.ZipFile, archive: Path, max_bytes: int) -> list[tuple[zipfile.ZipInfo, tuple]]:
    members, total = [], 0
    for info in zf.infolist():
        parts = _member_parts(info.filename, archive)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            what = "symlink" if kind == stat.S_IFLNK else "special file"
            raise _refuse(archive, f"member {info.filename!r} is a {what}")
        total += info.file_size
        if total > max_bytes:
            raise _too_big(archive, max_bytes)
        if parts:
            members.append((info, parts))
    return members


def _extract_zip(archive: Path, into: Path, max_bytes: int) -> Iterator[None]:
    with zipfile.ZipFile(archive) as zf:
        written = 0
        for info, parts in _zip_members(zf, archive, max_bytes):
            target = into.joinpath(*parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                with zf.open(info) as src:
                    written += _copy(src, target, max_bytes - written)
            if written > max_bytes:  # a header that understates the real size
                raise _too_big(archive, max_bytes)
            yield


def _extract_tar(archive: Path, into: Path, max_bytes: int) -> Iterator[None]:
    # Stream mode: one pass over a compressed tar; members are checked as they come.
    with tarfile.open(archive, mode="r|*") as tf:
        written = 0
        for member in tf:
            parts = _member_parts(member.name, archive)
            if not (member.isfile() or member.isdir()):
                what = "symlink" if member.issym() else "hard link" if member.islnk() else "special file"
                raise _refuse(archive, f"member {member.name!r} is a {what}")
            if written + member.size > max_bytes:
                raise _too_big(archive, max_bytes)
            target = into.joinpath(*parts)
            if member.isdir() or not parts:
                target.mkdir(parents=True, exist_ok=True)
            else:
                src = tf.extractfile(member)
                assert src is not None  # regular files always have a reader
                written += _copy(src, target, max_bytes - written)
            yield


def safe_extract(archive: Path, dest_dir: Path, *, max_bytes: int, quiet: bool = True) -> Path:
    """Extract a zip or tar archive into dest_dir (absent or empty), by way of a temporary folder beside it;
    FetchError, dest_dir untouched, for absolute paths, '..', links, devices and a total size over max_bytes."""
    archive, dest_dir = Path(archive), Path(dest_dir)
    if dest_dir.exists() and (not dest_dir.is_dir() or any(dest_dir.iterdir())):
        raise FetchError(f"Cannot extract {archive.name} into {dest_dir}: it already exists and is not empty")
    if zipfile.is_zipfile(archive):
        steps = _extract_zip
    elif tarfile.is_tarfile(archive):
        steps = _extract_tar
    else:
        raise FetchError(f"{archive} is not a zip or tar archive; pass --data with a folder of images")
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.extract-", dir=dest_dir.parent))
    try:
        with tqdm(steps(archive, tmp, max_bytes), desc=f"Extracting {archive.name}", unit=" files",
                  disable=quiet, file=sys.stderr) as bar:
            for _ in bar:
                pass
        os.replace(tmp, dest_dir)
    except (OSError, EOFError, RuntimeError, ValueError, zipfile.BadZipFile, tarfile.TarError, zlib.error,
            lzma.LZMAError) as e:
        raise FetchError(f"Could not extract {archive.name} ({type(e).__name__}: {one_line(e)}); it is damaged or "
                         f"cut short. Fetch it again, or {YOURSELF}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir
