"""The on-disk cache of preprocessed images: a uint8 `<name>-<hash of the source>_<res>_<res>.npy` per source and
size beside its .json manifest, which holds a CRC-32 per MiB: opening checks a small cache whole, a large one by
sample and then whole in the background (`Check`). Space is allocated first: a full disk is one line, no bus error."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcgan_faces.atomic import remove_stale, temporary_path, write_json

BLOCK = 1 << 20  # bytes per checksum block
FULL_CHECK_UP_TO = 256 << 20  # caches up to this size are verified whole when opened
SAMPLED_BLOCKS = 8
MARKER = ".dcgan_faces_cache"  # marks a cache folder, so that a data scan never reads it as images
OWN_KEYS = {"source", "res"}  # what every manifest of this project holds: a .npy beside one is a cache


class CacheError(Exception):
    """A cache cannot be written or read; the message says which file and what to do."""


@dataclass(frozen=True)
class CacheFiles:
    tensor: Path
    manifest: Path

    @classmethod
    def of(cls, cache_dir: Path, stem: str, res: int, channels: int = 3) -> CacheFiles:
        base = Path(cache_dir) / f"{stem}_{res}_{res}{'_grey' if channels == 1 else ''}"
        return cls(base.with_suffix(".npy"), base.with_suffix(".json"))

    @classmethod
    def for_source(cls, cache_dir: Path, source: str, name: str, res: int, channels: int = 3) -> CacheFiles:
        """The cache of one source (by its recorded key: a resolved folder path...), `name` making it readable."""
        readable = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:40] or "data"
        digest = hashlib.sha1(source.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        return cls.of(cache_dir, f"{readable}-{digest}", res, channels)

    def read_manifest(self) -> dict | None:
        """The manifest of this project's cache; None when it is missing, damaged or not one (valid JSON of
        another shape, a user's own file)."""
        try:
            manifest = json.loads(self.manifest.read_text())
        except (OSError, ValueError):
            return None
        return manifest if isinstance(manifest, dict) and OWN_KEYS <= manifest.keys() else None


def prepare_folder(cache_dir: Path) -> None:
    """Create the cache folder (with its marker) and clear what killed builds left in it."""
    try:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        (Path(cache_dir) / MARKER).touch()
    except OSError as error:
        raise CacheError(f"--cache-dir {cache_dir}: cannot create or write it ({error.strerror or error}); "
                         "pick a writable folder") from None
    remove_stale(Path(cache_dir))


def block_checksums(path: Path) -> list[int]:
    """CRC-32 of each BLOCK of the file."""
    with open(path, "rb") as file:
        return [zlib.crc32(block) for block in iter(lambda: file.read(BLOCK), b"")]


def damage(path: Path, expected: list[int], blocks: list[int] | None = None) -> str | None:
    """The first of `blocks` (default: all) whose CRC differs from the manifest's, said; None when all match."""
    with open(path, "rb") as file:
        for index in range(len(expected)) if blocks is None else blocks:
            file.seek(index * BLOCK)
            if zlib.crc32(file.read(BLOCK)) != expected[index]:
                return f"MiB {index} does not match its checksum"
    return None


def sample_blocks(count: int) -> list[int]:
    if count <= SAMPLED_BLOCKS:
        return list(range(count))
    middle = np.random.default_rng().choice(np.arange(1, count - 1), SAMPLED_BLOCKS - 2, replace=False)
    return sorted({0, count - 1, *(int(i) for i in middle)})


def why_stale(files: CacheFiles, expected: dict) -> str | None:
    """None when the cache matches `expected` (its manifest entries) and its sampled checksums; else why not."""
    if not files.tensor.exists():
        return "no cache yet"
    manifest = files.read_manifest()
    if manifest is None:
        return f"its manifest {files.manifest.name} is missing or damaged"
    for key, value in expected.items():
        if manifest.get(key) != value:
            if key == "fingerprint":
                return "the images changed (a file renamed, replaced or edited)"
            return f"{key} changed ({_short(manifest.get(key))} → {_short(value)})"
    try:
        images = np.load(files.tensor, mmap_mode="r")
    except (OSError, ValueError) as error:
        return f"{files.tensor.name} is corrupt ({error})"
    want = (manifest.get("images"), expected["res"], expected["res"], expected["channels"])
    if images.dtype != np.uint8 or images.shape != want:
        return f"{files.tensor.name} holds {images.dtype} {images.shape}, expected uint8 {want}"
    sums = manifest.get("crc32")
    if not isinstance(sums, list) or len(sums) != -(-files.tensor.stat().st_size // BLOCK):
        return f"{files.tensor.name} has no checksums or another size than when it was built"
    blocks = None if len(sums) * BLOCK <= FULL_CHECK_UP_TO else sample_blocks(len(sums))
    why = damage(files.tensor, sums, blocks)
    return None if why is None else f"{files.tensor.name} is damaged ({why})"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Check:
    """The full checksum check of a large cache, run in a background thread while training starts.
    `opened`: the file training reads (files.tensor or its local copy)."""

    def __init__(self, files: CacheFiles, opened: Path):
        self.problem: str | None = None
        sums = (files.read_manifest() or {}).get("crc32", [])
        self.thread = threading.Thread(target=self._run, args=(files, opened, sums), daemon=True)
        self.thread.start()

    def _run(self, files: CacheFiles, opened: Path, sums: list[int]) -> None:
        try:
            why = damage(opened, sums)
        except OSError as error:
            why = str(error)
        if why is not None:
            files.manifest.unlink(missing_ok=True)  # the next run rebuilds it
            self.problem = (f"the cached images {files.tensor} are damaged ({why}); stopped so as not to "
                            "train on them. Run the same command again: the cache is rebuilt first")


def verify(files: CacheFiles) -> str | None:
    """Full check of every block (prepare --verify); None when the cache is intact."""
    manifest = files.read_manifest()
    if manifest is None or "crc32" not in manifest:
        return f"{files.manifest} is missing, unreadable or has no checksums; rebuild the cache"
    why = damage(files.tensor, manifest["crc32"])
    return None if why is None else f"{files.tensor} is damaged ({why})"


def adopt_moved(files: CacheFiles, expected: dict, log: Callable[[str], None]) -> None:
    """When `files` has no cache yet but another cache in its folder holds the same images (a moved
    folder: same fingerprint and settings), give that cache the new name instead of decoding again."""
    if files.tensor.exists() or "fingerprint" not in expected:
        return
    same = {key: value for key, value in expected.items() if key != "source"}
    for manifest_path in files.manifest.parent.glob("[!.]*.json"):  # not a build's temporary files (.NAME.tmp-...)
        other = CacheFiles(manifest_path.with_suffix(".npy"), manifest_path)
        manifest = other.read_manifest()
        if manifest and other.tensor.exists() and all(manifest.get(k) == v for k, v in same.items()):
            os.replace(other.tensor, files.tensor)
            write_json(files.manifest, {**manifest, "source": expected["source"]})
            other.manifest.unlink(missing_ok=True)
            log(f"{expected['source']} holds the same images as {manifest.get('source')}: reusing its cache")
            return


def write(files: CacheFiles, shape: tuple[int, ...], fill: Callable[[np.ndarray], tuple[int, dict]],
          manifest: dict) -> dict:
    """Build the tensor (at most `shape`; `fill(out)` writes the rows, returns (rows kept, manifest entries)) and its
    manifest, both in full under temporary names before either is renamed: a failure keeps any earlier cache."""
    tmp, tmp_manifest = temporary_path(files.tensor), temporary_path(files.manifest)
    try:
        out = _allocate(tmp, shape)
        kept, extra = fill(out)
        out.flush()
        del out
        if kept < shape[0]:
            _shrink_npy(tmp, kept)
        manifest = {**manifest, **extra, "images": kept, "crc32": block_checksums(tmp)}
        tmp_manifest.write_text(json.dumps(manifest, indent=2))
        for written in (tmp, tmp_manifest):
            with open(written, "rb+") as file:
                os.fsync(file.fileno())
        os.replace(tmp, files.tensor)
        os.replace(tmp_manifest, files.manifest)
    except OSError as error:
        raise CacheError(f"could not write the cache {files.tensor} ({error.strerror or error}); any earlier "
                         "cache there is kept; free some space or pass --cache-dir on another disk") from None
    finally:
        tmp.unlink(missing_ok=True)
        tmp_manifest.unlink(missing_ok=True)
    return manifest


def _allocate(path: Path, shape: tuple[int, ...]) -> np.memmap:
    """A new .npy file of `shape`, memory-mapped, its blocks reserved on disk so that a full disk fails here."""
    size = 128 + int(np.prod(shape))  # np.lib.format's header for a 4-d uint8 array fits in 128 bytes
    free = shutil.disk_usage(path.parent).free
    if free < size:
        need, have = size_text(size), size_text(free)
        if need == have:  # too close to tell apart when rounded
            need, have = f"{size:,} bytes", f"{free:,} bytes"
        raise OSError(28, f"No space left on device: the cache needs {need}, the disk has {have} free")
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    with open(path, "rb+") as file:
        try:
            os.posix_fallocate(file.fileno(), 0, os.path.getsize(path))
        except (AttributeError, OSError) as error:  # not on every OS and file system; the space check stands
            if getattr(error, "errno", None) == 28:
                raise
    return out


def size_text(size: int) -> str:
    """A byte count as people read it: 0 bytes, 812 bytes, 18.1 KiB, 70.3 MiB, 1.25 GiB."""
    for unit, power, places in (("GiB", 30, 2), ("MiB", 20, 1), ("KiB", 10, 1)):
        if size >= 2**power:
            return f"{size / 2**power:,.{places}f} {unit}"
    return f"{size:,} bytes"


def _shrink_npy(path: Path, rows: int) -> None:
    """Cut a cache's .npy (version 1.0, as open_memmap writes it) to its first `rows` rows in place, header padded."""
    with open(path, "r+b") as file:
        fmt = np.lib.format
        fmt.read_magic(file)
        shape, fortran_order, dtype = fmt.read_array_header_1_0(file)
        data_start = file.tell()
        header = repr({"descr": fmt.dtype_to_descr(dtype), "fortran_order": fortran_order, "shape": (rows, *shape[1:])})
        file.seek(10)  # after the magic and the header's length
        file.write(header.ljust(data_start - 11).encode("latin1") + b"\n")
        file.truncate(data_start + rows * int(np.prod(shape[1:])) * dtype.itemsize)


def list_caches(cache_dir: Path) -> list[dict]:
    """Every cache in `cache_dir` (a .npy beside a manifest of this project): file, source, size in px, images, MiB.
    Any other .npy (a user's own array) is no cache: see `strays`."""
    found = []
    for tensor in _npy_files(cache_dir):
        manifest = CacheFiles(tensor, tensor.with_suffix(".json")).read_manifest()
        if manifest is not None:
            found.append({"file": tensor.name, "source": manifest["source"], "res": manifest["res"],
                          "images": manifest.get("images"), "mib": round(tensor.stat().st_size / 2**20, 1)})
    return found


def strays(cache_dir: Path) -> list[str]:
    """The .npy files in `cache_dir` without a manifest of this project: never listed, checked or removed as caches."""
    listed = {entry["file"] for entry in list_caches(cache_dir)}
    return [tensor.name for tensor in _npy_files(cache_dir) if tensor.name not in listed]


def _npy_files(cache_dir: Path) -> list[Path]:
    return sorted(Path(cache_dir).glob("[!.]*.npy"))  # not the temporary files of a build (.NAME.tmp-...)


def remove(cache_dir: Path, which: str) -> list[Path]:
    """Delete the caches whose file name or source is `which` (a source folder also as a relative path); returns
    the files removed. Only caches: a file without this project's manifest is never touched."""
    named = {which, str(Path(which).expanduser().resolve())}
    removed = []
    for entry in list_caches(cache_dir):
        if named & {entry["file"], Path(entry["file"]).stem, entry["source"]}:
            for path in (Path(cache_dir) / entry["file"], (Path(cache_dir) / entry["file"]).with_suffix(".json")):
                if path.exists():
                    path.unlink()
                    removed.append(path)
    return removed
