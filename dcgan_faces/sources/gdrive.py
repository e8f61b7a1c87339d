"""Images on Google Drive (`--gdrive ID_OR_URL`): a file, archive or folder, fetched with gdown into --cache-dir
only when its cache must be built, an archive unpacked safely (unpack.py). A Drive id names fixed content, so the
cache is matched by id alone: a new Colab session with the cache on Drive downloads and unpacks nothing."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from dcgan_faces.atomic import write_json
from dcgan_faces.sources.base import CacheSettings, DataError, Log, Scan, Source
from dcgan_faces.sources.folder import image_files
from dcgan_faces.sources.images import decode_into
from dcgan_faces.sources.unpack import FetchError, one_line, safe_extract

PREFIX = "gdrive:"  # a Drive source as --data and config.json name it: gdrive:ID
BASE_ENV = "DCGAN_FACES_GDRIVE_BASE"
DEFAULT_BASE = "https://drive.google.com"
RETRIES = 3  # gdown's own retries for dropped connections, per file
TIMEOUT = (30.0, 300.0)  # (connect, read) seconds; gdown waits forever by default
_ID = r"[-\w]{25,}"  # Drive ids are 28 or 33 characters; shorter words are not ids
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz")
_HAND = "download it by hand in a browser and pass --data /path/to/folder_or_archive"


class GoogleDrive(Source):
    """A Drive file id, share URL or folder URL, parsed once; recorded as gdrive:ID."""

    run_name = "gdrive"

    def __init__(self, link: str):
        try:
            self.kind, self.id = parse_gdrive(link)
        except FetchError as error:
            raise DataError(f"--gdrive: {error}") from None
        self.key = PREFIX + self.id

    @classmethod
    def from_text(cls, text: str) -> GoogleDrive | None:
        return cls(text.removeprefix(PREFIX)) if text.startswith(PREFIX) else None

    def scan(self, wanted: CacheSettings, log: Log = print, exclude: Iterable[Path] = ()) -> Scan:
        def download():
            try:
                folder = self.fetch(Path(wanted.cache_dir) / "downloads")
            except FetchError as error:
                raise DataError(f"--gdrive: {error}") from None
            files = image_files(folder, "--gdrive")
            return len(files), decode_into(folder, files, wanted, log)

        return Scan(self.key, f"Google Drive {self.id}", wanted.files(self.key, "gdrive"),
                    wanted.expected(self.key, {}), download, downloads=True)

    def fetch(self, dest_dir: Path, *, max_bytes: int = 50 * 2**30, quiet: bool = False) -> Path:
        """Download a Drive file or folder into dest_dir, unpack archives safely, and return the image folder.
        A finished download leaves a marker (.complete-<id>.json) so later calls reuse it without the network."""
        fid, dest_dir = self.id, Path(dest_dir)
        try:
            dest_dir.mkdir(parents=True, exist_ok=True)
            if (data := _reuse(dest_dir, fid)) is not None:
                if not quiet:
                    print(f"Using the earlier download of {fid} in {data}", file=sys.stderr)
                return data
            _clear_partial(dest_dir, fid)
        except OSError as e:
            raise FetchError(f"Cannot use {dest_dir} for downloads ({one_line(e)}); pick another --cache-dir, "
                             f"or {_HAND}") from e
        staging, final = dest_dir / f".staging-{fid}", dest_dir / fid
        try:
            with contextlib.redirect_stderr(_WithoutRetryLines(sys.stderr)):
                if self.kind == "folder":
                    import gdown

                    gdown.download_folder(url=f"{_base()}/drive/folders/{fid}", output=str(staging), quiet=quiet,
                                          use_cookies=False, timeout=TIMEOUT, retries=RETRIES)
                    name, size = fid, sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
                    os.replace(staging, final)
                else:
                    staging.mkdir()
                    download = _download_file(fid, staging, max_bytes, quiet)
                    name, size = download.name, download.stat().st_size
                    _place(download, final, fid, max_bytes, quiet)
            data = _image_root(final)
            write_json(_marker(dest_dir, fid), {"id": fid, "kind": self.kind, "file": name, "size": size,
                                                "data_dir": str(data.relative_to(dest_dir))})
        except Exception as e:
            raise _explain(e, fid) from e
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return data


def _base() -> str:
    return os.environ.get(BASE_ENV, DEFAULT_BASE).rstrip("/")


def parse_gdrive(id_or_url: str) -> tuple[str, str]:
    """('file'|'folder', id) from a bare file id, a share URL or a folder URL."""
    text = id_or_url.strip()
    if re.fullmatch(_ID, text):
        return "file", text
    parts = urlsplit(text)
    if parts.scheme in ("http", "https") and parts.netloc:
        if m := re.match(rf"^/drive/(?:u/\d+/)?folders/({_ID})(?:/|$)", parts.path):
            return "folder", m.group(1)
        if m := re.match(rf"^/file/(?:u/\d+/)?d/({_ID})(?:/|$)", parts.path):
            return "file", m.group(1)
        ids = parse_qs(parts.query).get("id", [])
        if len(ids) == 1 and re.fullmatch(_ID, ids[0]):
            return "file", ids[0]
    raise FetchError(f"Not a Google Drive file id or share link: {one_line(id_or_url)!r}. "
                     f"Pass a link like https://drive.google.com/file/d/ID/view, or {_HAND}")


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
    text = one_line(err).lower()
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
        return FetchError(f"Could not save the download of {fid} ({type(err).__name__}: {one_line(err)}). "
                          f"Free some disk space or pick another --cache-dir, or {_HAND}")
    return FetchError(f"Download of {fid} failed ({type(err).__name__}: {one_line(err)}). Retry, or {_HAND}")


class _WithoutRetryLines:
    """stderr without gdown's "Retrying (1/3) in 2.0s: ..." lines (and the newline printed after each), so that a
    failure ends in our one line; everything else (gdown's progress bar) passes through."""

    def __init__(self, stream):
        self.stream, self._dropping = stream, False

    def write(self, text: str) -> int:
        after_retry, self._dropping = self._dropping, text.startswith("Retrying (")
        if self._dropping or (after_retry and text == "\n"):
            return len(text)
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
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    if head[:512].lstrip().lower().startswith((b"<!doctype html", b"<html")):  # an error page served as the file
        raise _quota(fid) if _is_quota(one_line(head.decode("utf-8", "replace")).lower()) else _not_public(fid)
    return path


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
