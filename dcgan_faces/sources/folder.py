"""A folder of image files (`--data PATH`): its images found and fingerprinted, then decoded into the cache."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from dcgan_faces import cache
from dcgan_faces.runfolder import is_run_folder
from dcgan_faces.sources.base import CacheSettings, DataError, Log, PathSource, Scan, shown
from dcgan_faces.sources.images import decode_into
from dcgan_faces.staging import is_slow_mount

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif"})
TAIL_BYTES = 256  # the end of each file enters the fingerprint: an image replaced by another of equal size shows


class ImageFolder(PathSource):
    """A folder of face photos, searched recursively; its cache is matched by the files' fingerprint."""

    @classmethod
    def from_text(cls, text: str) -> ImageFolder:
        return cls(text)  # any --data that no other kind claims

    def scan(self, wanted: CacheSettings, log: Log = print, exclude: Iterable[Path] = ()) -> Scan:
        files = image_files(self.path, exclude=(*exclude, wanted.cache_dir), log=log)
        fingerprint, listing = identify(self.path, files)
        return Scan(self.key, f"folder {shown(self.path)} ({len(files):,} image files)",
                    wanted.files(shown(self.path), self.path.name), wanted.expected(shown(self.path), fingerprint),
                    lambda: (len(files), decode_into(self.path, files, wanted, log)),
                    fingerprint["fingerprint"], listing, len(files))


def image_files(folder: Path, flag: str = "--data", exclude: Iterable[Path] = (), log: Log | None = None) -> list[Path]:
    """The image files in or below `folder`; DataError naming `flag` when it is no folder or holds none."""
    if folder.is_file():
        raise DataError(f"{flag} {shown(folder)} is a file, not a folder: give the folder that holds the images "
                        "(or a .npy/.npz array of them)")
    if not folder.is_dir():
        raise DataError(f"{flag} {shown(folder)}: no such folder; give a folder of face images")
    files = find_images(folder, exclude, log)
    if not files:
        raise DataError(f"{flag} {shown(folder)}: no image files (jpg, jpeg, png, bmp, webp, gif) in or below it")
    return files


def find_images(folder: Path, exclude: Iterable[Path] = (), log: Log | None = None) -> list[Path]:
    """Image files under `folder`, recursively, in a stable order: known suffixes, and files with none.
    Skipped: hidden files; FIFOs, sockets and devices (opening one would hang); folders in `exclude`; this
    project's run folders and caches, which may sit inside the data folder (`cd photos; ... --data .`).
    Symlinked folders are followed, each real folder read once: one reached again (a link back up, a second link
    to it) is skipped and `log` says so. A broken link is kept, to be counted as unreadable."""
    return list(_walk_images(Path(folder), exclude, log))


def holds_images(folder: Path, exclude: Iterable[Path] = ()) -> bool:
    """Whether `folder` is a folder with an image file in or below it; stops at the first one."""
    return folder.is_dir() and next(_walk_images(folder, exclude), None) is not None


def _walk_images(folder: Path, exclude: Iterable[Path], log: Log | None = None) -> Iterator[Path]:
    excluded = {Path(p).resolve() for p in exclude}
    read, folders, looped = {folder.resolve()}, [folder], []
    while folders:
        with os.scandir(folders.pop()) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        subfolders = []
        for entry in entries:
            path = Path(entry.path)
            if _is_folder(entry):
                real = path.resolve()
                if real in excluded or is_run_folder(path) or (path / cache.MARKER).exists():
                    continue
                if real in read:
                    looped.append((path, real))
                    continue
                read.add(real)
                subfolders.append(path)
            elif not entry.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES | {""} \
                    and _regular_or_broken(entry):
                yield path
        folders.extend(reversed(subfolders))  # depth first, in name order
    if looped and log is not None:
        link, real = looped[0]
        log(f"skipped {len(looped)} folder(s) reached a second time through a linked folder (a loop, or two ways "
            f"to one folder): their images are read once, e.g. {shown(link)} → {shown(real)}")


def _is_folder(entry: os.DirEntry) -> bool:
    """A folder, or a link to one; not a broken link or a link loop."""
    try:
        return entry.is_dir()
    except OSError:  # a link loop
        return False


def _regular_or_broken(entry: os.DirEntry) -> bool:
    """A regular file (links followed), or a link to nothing or a loop; not a FIFO, socket or device."""
    try:
        return entry.is_file() or (entry.is_symlink() and not os.path.exists(entry.path))
    except OSError:  # a link loop
        return True


def _stat(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:  # a broken link or a link loop: it is counted as unreadable when decoded
        return 0, 0
    return info.st_size, info.st_mtime_ns


def _tail(path: Path, size: int) -> bytes:
    """The last TAIL_BYTES of the file, read in one system call (Linux and macOS have pread); b"" if unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            return os.pread(fd, TAIL_BYTES, max(0, size - TAIL_BYTES))
        finally:
            os.close(fd)
    except OSError:
        return b""


def identify(folder: Path, files: list[Path]) -> tuple[dict, np.ndarray]:
    """(fingerprint, listing) of a folder's images. The fingerprint hashes each file's path below `folder`, size,
    time and (off slow mounts, where a read costs a round trip) last bytes: a moved folder is the same images.
    The listing: per file, uint64 hashes of its name and of all that, to tell which files changed."""
    content = not is_slow_mount(folder)
    digest = hashlib.sha256()
    sizes, newest = 0, 0
    listing = np.empty((len(files), 2), dtype=np.uint64)
    for row, path in enumerate(files):
        size, mtime = _stat(path)
        sizes, newest = sizes + size, max(newest, mtime)
        name = os.fsencode(path.relative_to(folder))
        entry = name + b"\0" + f"{size} {mtime}".encode() + b"\0"
        digest.update(entry)
        if content:
            tail = hashlib.sha1(_tail(path, size)).digest()
            digest.update(tail)
            entry += tail
        listing[row] = _hash64(name), _hash64(entry)
    fingerprint = {"files": len(files), "bytes": sizes, "newest_mtime_ns": newest, "fingerprint": digest.hexdigest()}
    return fingerprint, listing


def _hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")
