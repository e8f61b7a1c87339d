"""Fetch training images from Google Drive with gdown, unpack archives safely, and advise on Colab paths."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
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
from urllib.parse import parse_qs, urlsplit

from tqdm import tqdm

from dcgan_faces.atomic import remove_stale, write_atomically, write_json

BASE_ENV = "DCGAN_FACES_GDRIVE_BASE"
DEFAULT_BASE = "https://drive.google.com"
RETRIES = 3  # gdown's own retries for dropped connections, per file
TIMEOUT = (30.0, 300.0)  # (connect, read) seconds; gdown waits forever by default
CHUNK = 1 << 20
_ID = r"[-\w]{25,}"  # Drive ids are 28 or 33 characters; shorter words are not ids
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz")
_HAND = "download it by hand in a browser and pass --data /path/to/folder_or_archive"
_YOURSELF = "unpack it yourself and pass --data /path/to/folder"


class FetchError(Exception):
    """A download or extraction failed; str() is one line that says what to do."""


def _one_line(text: object, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _base() -> str:
    return os.environ.get(BASE_ENV, DEFAULT_BASE).rstrip("/")


# ---------------------------------------------------------------- parsing


def parse_gdrive(id_or_url: str) -> tuple[str, str]:
    """('file'|'folder', id) from a bare file id, a share URL or a folder URL."""
    text = id_or_url.strip()
    if re.fullmatch(_ID, text):
        return "file", text
    parts = urlsplit(text)
    if parts.scheme in ("http", "https") and parts.netloc:
        path = parts.path
        if m := re.match(rf"^/drive/(?:u/\d+/)?folders/({_ID})(?:/|$)", path):
            return "folder", m.group(1)
        if m := re.match(rf"^/file/(?:u/\d+/)?d/({_ID})(?:/|$)", path):
            return "file", m.group(1)
        ids = parse_qs(parts.query).get("id", [])
        if len(ids) == 1 and re.fullmatch(_ID, ids[0]):
            return "file", ids[0]
    raise FetchError(
        f"Not a Google Drive file id or share link: {_one_line(id_or_url)!r}. "
        f"Pass a link like https://drive.google.com/file/d/ID/view, or {_HAND}"
    )


# ---------------------------------------------------------------- safe extraction


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
    return FetchError(f"Refused to extract {archive.name}: {why}. Check where it came from, or {_YOURSELF}")


def _too_big(archive: Path, max_bytes: int) -> FetchError:
    return FetchError(f"Refused to extract {archive.name}: it unpacks to more than {max_bytes:,} bytes. "
                      f"Raise max_bytes if that is expected, or {_YOURSELF}")


def _copy(src: BinaryIO, target: Path, budget: int) -> int:
    """Copy src to target, stopping once more than budget bytes were written; returns bytes written."""
    written = 0
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
                target.parent.mkdir(parents=True, exist_ok=True)
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
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(member)
                assert src is not None  # regular files always have a reader
                written += _copy(src, target, max_bytes - written)
            yield


def safe_extract(archive: Path, dest_dir: Path, *, max_bytes: int, quiet: bool = True) -> Path:
    """Extract a zip or tar archive into dest_dir (which must be absent or empty), refusing unsafe members.

    Refuses (FetchError, dest_dir untouched) absolute paths, '..' components, links, devices and a total
    size over max_bytes. Works in a temporary folder next to dest_dir and renames it into place at the end.
    """
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
    except FetchError:
        raise
    except (OSError, EOFError, RuntimeError, ValueError, zipfile.BadZipFile, tarfile.TarError, zlib.error,
            lzma.LZMAError) as e:
        why = f"{type(e).__name__}: {_one_line(e)}"
        msg = f"Could not extract {archive.name} ({why}); it is damaged or cut short. Fetch it again, or "
        raise FetchError(msg + _YOURSELF) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir


# ---------------------------------------------------------------- downloading


def _marker(dest_dir: Path, fid: str) -> Path:
    return dest_dir / f".complete-{fid}.json"


def _reuse(dest_dir: Path, fid: str) -> Path | None:
    """The image folder of an earlier complete download of fid, if it is still there."""
    try:
        info = json.loads(_marker(dest_dir, fid).read_text())
        data = dest_dir / info["data_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if data.is_dir() else None


def _clear_partial(dest_dir: Path, fid: str) -> None:
    """Remove what an interrupted earlier attempt for fid left behind."""
    _marker(dest_dir, fid).unlink(missing_ok=True)
    for path in [dest_dir / fid, dest_dir / f".staging-{fid}", *dest_dir.glob(f".{fid}.extract-*")]:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _image_root(folder: Path) -> Path:
    """Step down through wrapper folders (e.g. a zip of 'faces/') to the folder that holds the files."""
    while True:
        visible = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
        if len(visible) != 1 or not visible[0].is_dir():
            return folder
        folder = visible[0]


def _looks_like_html(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _html_error(path: Path, fid: str) -> FetchError:
    with open(path, "rb") as f:
        text = _one_line(f.read(1 << 20).decode("utf-8", "replace")).lower()
    return _quota(fid) if _is_quota(text) else _not_public(fid)


def _is_quota(text: str) -> bool:
    return "too many users" in text or "can't view or download this file at this time" in text


def _quota(fid: str) -> FetchError:
    return FetchError(f"Google Drive refused the download of {fid} (quota exceeded: too many downloads "
                      f"recently; it resets within 24 hours). Try later, or {_HAND}")


def _not_public(fid: str) -> FetchError:
    return FetchError(f"Google Drive would not hand out {fid}: it is not shared as 'Anyone with the link', "
                      f"the id is wrong, or it was deleted. Fix the sharing, or {_HAND}")


def _explain(err: BaseException, fid: str) -> FetchError:
    """Turn what gdown/requests raised into a one-line FetchError that says what to do."""
    import gdown
    import requests

    if isinstance(err, FetchError):
        return err
    cause = err.__cause__ if isinstance(err, gdown.exceptions.DownloadError) and err.__cause__ else err
    text = _one_line(err).lower()
    network = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
    if isinstance(cause, network):
        return FetchError(f"Could not reach Google Drive to download {fid} (network error: "
                          f"{type(cause).__name__}). Check the internet connection and retry, or {_HAND}")
    if isinstance(err, requests.HTTPError) and err.response is not None:
        code = err.response.status_code
        if code == 429:
            return _quota(fid)
        if code in (401, 403, 404):
            return _not_public(fid)
        return FetchError(f"Google Drive answered HTTP {code} for {fid}. Retry later, or {_HAND}")
    if _is_quota(text):
        return _quota(fid)
    if isinstance(err, gdown.exceptions.FileURLRetrievalError) or "permission" in text:
        return _not_public(fid)
    if isinstance(err, OSError) and not isinstance(err, requests.RequestException):
        return FetchError(f"Could not save the download of {fid} ({type(err).__name__}: {_one_line(err)}). "
                          f"Free some disk space or pick another --cache-dir, or {_HAND}")
    return FetchError(f"Download of {fid} failed ({type(err).__name__}: {_one_line(err)}). Retry, or {_HAND}")


class _WithoutRetryLines:
    """stderr without gdown's "Retrying (1/3) in 2.0s: ..." lines, so that a failure ends in our one line.

    Everything else (gdown's progress bar) passes through; the retries are counted.
    """

    def __init__(self, stream):
        self.stream, self.retries, self._dropping = stream, 0, False

    def write(self, text: str) -> int:
        if text.startswith("Retrying ("):
            self.retries, self._dropping = self.retries + 1, True
            return len(text)
        if self._dropping and text == "\n":
            self._dropping = False
            return len(text)
        self._dropping = False
        return self.stream.write(text)

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _download_file(fid: str, staging: Path, max_bytes: int, quiet: bool) -> Path:
    import gdown

    def guard(done: int, total: int | None) -> None:
        if max(done, total or 0) > max_bytes:
            raise FetchError(f"The Google Drive file {fid} is larger than {max_bytes:,} bytes; "
                             f"raise max_bytes if that is expected, or {_HAND}")

    out = gdown.download(url=f"{_base()}/uc?id={fid}", output=str(staging) + os.sep, quiet=quiet,
                         use_cookies=False, progress=guard, timeout=TIMEOUT, retries=RETRIES)
    path = Path(str(out))
    if _looks_like_html(path):  # an error page served as if it were the file
        raise _html_error(path, fid)
    return path


def _download_folder(fid: str, staging: Path, quiet: bool) -> None:
    import gdown

    gdown.download_folder(url=f"{_base()}/drive/folders/{fid}", output=str(staging), quiet=quiet,
                          use_cookies=False, timeout=TIMEOUT, retries=RETRIES)


def _place(download: Path, final: Path, fid: str, max_bytes: int, quiet: bool) -> None:
    """Unpack an archive into final, or put a single downloaded file in it."""
    if zipfile.is_zipfile(download) or tarfile.is_tarfile(download):
        safe_extract(download, final, max_bytes=max_bytes, quiet=quiet)
        download.unlink()
    elif download.name.lower().endswith(_ARCHIVE_SUFFIXES):
        raise FetchError(f"The download of {fid} ({download.name}) is not a readable archive; it may be "
                         f"damaged. Retry, or {_HAND}")
    else:
        final.mkdir()
        name = re.sub(r"[^\w.-]", "_", download.name)  # a non-Drive host names it after the URL
        os.replace(download, final / name)


def fetch_gdrive(id_or_url: str, dest_dir: Path, *, max_bytes: int = 50 * 2**30, quiet: bool = False) -> Path:
    """Download a Drive file or folder into dest_dir, unpack archives safely, and return the image folder.

    A finished download leaves a marker (.complete-<id>.json) so later calls reuse it without the network.
    """
    kind, fid = parse_gdrive(id_or_url)
    dest_dir = Path(dest_dir)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        if (data := _reuse(dest_dir, fid)) is not None:
            if not quiet:
                print(f"Using the earlier download of {fid} in {data}", file=sys.stderr)
            return data
        _clear_partial(dest_dir, fid)
    except OSError as e:
        msg = f"Cannot use {dest_dir} for downloads ({_one_line(e)}); pick another --cache-dir, or {_HAND}"
        raise FetchError(msg) from e
    staging, final = dest_dir / f".staging-{fid}", dest_dir / fid
    stderr = _WithoutRetryLines(sys.stderr)
    try:
        with contextlib.redirect_stderr(stderr):
            if kind == "folder":
                _download_folder(fid, staging, quiet)
                name, size = fid, sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
                os.replace(staging, final)
            else:
                staging.mkdir()
                download = _download_file(fid, staging, max_bytes, quiet)
                name, size = download.name, download.stat().st_size
                _place(download, final, fid, max_bytes, quiet)
        data = _image_root(final)
        info = {"id": fid, "kind": kind, "file": name, "size": size,
                "data_dir": str(data.relative_to(dest_dir))}
        write_json(_marker(dest_dir, fid), info)
    except Exception as e:
        raise _explain(e, fid) from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return data


# ---------------------------------------------------------------- Colab


def in_colab() -> bool:
    """True when google.colab is importable."""
    if "google.colab" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):
        return False


def colab_advice() -> str:
    """Where to keep data, cache and runs on Colab so they survive a disconnect."""
    return (
        "Running on Google Colab: local files vanish when the session ends, so keep data and runs on Drive.\n"
        "Mount it first:  from google.colab import drive; drive.mount('/content/drive')\n"
        "then pass, for example:\n"
        "  --data '/content/drive/MyDrive/faces' --cache-dir '/content/drive/MyDrive/dcgan_cache' "
        "--out '/content/drive/MyDrive/dcgan_runs/faces64'\n"
        "A zip of the images downloads and unpacks far faster than a Drive folder of many small files."
    )


# ---------------------------------------------------------------- slow mounts

SLOW_ENV = "DCGAN_FACES_SLOW_DIRS"  # extra folders to treat as slow mounts (os.pathsep-separated), for tests
_SLOW_FS = ("fuse", "nfs", "cifs", "smb", "9p", "sshfs", "davfs")
FINGERPRINT_BYTES = 1 << 20


def _mount_type(path: Path) -> str:
    """File-system type of the mount holding `path` (from /proc/mounts; '' where unknown)."""
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return ""
    best, fs_type = "", ""
    for point, kind in mounts:
        if (str(path) + "/").startswith(point.rstrip("/") + "/") and len(point) > len(best):
            best, fs_type = point, kind
    return fs_type


def is_slow_mount(path: Path) -> bool:
    """True for a network or FUSE mount such as Colab's /content/drive: slow, and it may vanish mid-write."""
    path = Path(path).expanduser().resolve()
    marked = [Path(p).resolve() for p in os.environ.get(SLOW_ENV, "").split(os.pathsep) if p]
    if str(path).startswith("/content/drive") or any(path.is_relative_to(m) for m in marked):
        return True
    return _mount_type(path).startswith(_SLOW_FS)


def fingerprint(path: Path) -> dict:
    """Size, modification time and a hash of the first and last MiB: enough to tell two cache files apart."""
    size = path.stat().st_size
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        digest.update(file.read(FINGERPRINT_BYTES))
        file.seek(max(0, size - FINGERPRINT_BYTES))
        digest.update(file.read(FINGERPRINT_BYTES))
    return {"size": size, "mtime_ns": path.stat().st_mtime_ns, "sha1": digest.hexdigest()}


def local_copy(path: Path, local_root: Path | None = None) -> Path:
    """`path` itself on a fast disk; on a slow mount, a copy on local disk, made once and checked by fingerprint.

    Training reads random batches from the memory-mapped cache all the time: from a FUSE mount every read is
    a network round trip, from local disk it is free. The copy is reused while its recorded fingerprint
    matches the original's, and skipped (the original used) when the local disk lacks the room.
    """
    path = Path(path)
    if not is_slow_mount(path):
        return path
    root = Path(local_root or Path(tempfile.gettempdir()) / "dcgan_faces_local")
    copy = root / hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16] / path.name
    record = copy.with_suffix(".fingerprint.json")
    wanted = fingerprint(path)
    try:
        if copy.exists() and json.loads(record.read_text()) == wanted:
            return copy
    except (OSError, ValueError):
        pass
    copy.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(copy.parent)
    if shutil.disk_usage(copy.parent).free < wanted["size"] * 1.1:
        print(f"not enough local disk to copy {path}; reading it from the mount (slower)", file=sys.stderr)
        return path
    print(f"copying {path} ({wanted['size'] / 2**20:,.0f} MiB) to local disk {copy} for fast reads", file=sys.stderr)
    write_atomically(copy, lambda tmp: shutil.copyfile(path, tmp))
    write_json(record, wanted)
    return copy
