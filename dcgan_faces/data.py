"""Image folder → one cached uint8 tensor (N, res, res, C) (cache.py); batches drawn as float32 in [-1, 1].

The cache is built once (decoding in parallel on every core) and reused, memory-mapped, on every later run
while its manifest still matches the folder: the same file names, sizes and modification times (and, off
slow mounts, the same last bytes of every file) and the same settings.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import threading
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from dcgan_faces import cache
from dcgan_faces.atomic import write_json
from dcgan_faces.cache import CacheError, CacheFiles
from dcgan_faces.imagefile import is_marked
from dcgan_faces.runfolder import is_run_folder

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif"})
# Bump when the pixels a given file turns into change, so that old caches are rebuilt.
PREPROCESSING = {"version": 1, "orientation": "exif", "crop": "centre square", "resize": "lanczos"}
DEFAULT_DATA_DIR = Path("face_images")
GDRIVE_PREFIX = "gdrive:"
DEMO_IMAGES = 2_000
SERIAL_BELOW = 256  # folders smaller than this are decoded in-process: a pool costs more than it saves
SKIPPED_NAMED = 5
OWN_OUTPUT = "written by dcgan_faces"  # the reason an image marked by imagefile is skipped
LISTING = "data_listing"  # the checkpoint array that holds the data's listing (see _identify)
TAIL_BYTES = 256  # the end of each file enters the fingerprint: an image replaced by another of equal size shows

Log = Callable[[str], None]


class DataError(Exception):
    """The training data cannot be used; the message says which path and what to do."""


class SkippedImage(Exception):
    """One file cannot become a training image; args[0] is the reason (a short key)."""


@dataclass
class Dataset:
    images: np.ndarray  # uint8 (N, res, res, C), usually a read-only memmap
    source: str
    cache_path: Path | None
    skipped: dict[str, int] = field(default_factory=dict)
    fingerprint: str | None = None  # of the source's files (folders only): the same images after a move
    check: cache.Check | None = None  # the background check of a large cache's checksums
    listing: np.ndarray | None = None  # see _identify (folders only): saved with checkpoints, see data_change


# ---------------------------------------------------------------------------------------------- decoding

def find_images(folder: Path, exclude: Iterable[Path] = ()) -> list[Path]:
    """Image files under `folder`, recursively, in a stable order: known suffixes, and files with none.

    Skipped: hidden files; FIFOs, sockets and devices (opening one would hang or fail); folders in
    `exclude`; and this project's own outputs, run folders and caches, which may sit inside the data folder
    (`cd photos; ... --data .`) and would otherwise become training images. Symlinked folders are not
    followed (no loops); a broken link stays in the list and is counted as unreadable when decoded.
    """
    excluded = {Path(p).resolve() for p in exclude}
    found, folders = [], [Path(folder)]
    while folders:
        with os.scandir(folders.pop()) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        subfolders = []
        for entry in entries:
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                if path.resolve() not in excluded and not _is_output_folder(path):
                    subfolders.append(path)
            elif not entry.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES | {""} \
                    and _regular_or_broken(entry):
                found.append(path)
        folders.extend(reversed(subfolders))  # depth first, in name order
    return found


def _regular_or_broken(entry: os.DirEntry) -> bool:
    """A regular file (links followed), or a link to nothing or a loop: kept, to be counted as unreadable.
    A FIFO, socket or device, or a link to one, is not."""
    try:
        return entry.is_file() or (entry.is_symlink() and not os.path.exists(entry.path))
    except OSError:  # a link loop
        return True


def _is_output_folder(folder: Path) -> bool:
    """A run folder (its mark, or an earlier version's run) or a cache folder (its marker file)."""
    return is_run_folder(folder) or (folder / cache.MARKER).exists()


def shown(path: Path) -> str:
    """A path as printable text, even when its name is not valid UTF-8."""
    return os.fsencode(path).decode("utf-8", "replace")


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB with transparent areas on white and 16-bit or float modes scaled to 8 bits."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode != "F" else max(float(pixels.max()), 1e-12)
        image = Image.fromarray(np.clip(pixels / top * 255.0, 0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


def _centre_square(image: Image.Image) -> Image.Image:
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side))


def load_image(path: Path, res: int, channels: int = 3, min_size: int = 0) -> np.ndarray:
    """One file → uint8 (res, res, channels): EXIF-oriented, RGB, centre-cropped square, Lanczos-resized.

    Smaller images are upscaled, unless their short side is under `min_size`. Raises SkippedImage, also for
    an image this package wrote (read from its header, before any pixel is decoded).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if is_marked(image):  # a grid, plot or generated face: never train on the model's own output
                    raise SkippedImage(OWN_OUTPUT)
                if min(image.size) < min_size:
                    raise SkippedImage("smaller than --min-size")
                # JPEG draft mode decodes at 1/2, 1/4 or 1/8 size straight from the DCT: much faster on
                # large photos, and still at least twice the target size, so Lanczos does the final step.
                image.draft("RGB", (2 * res, 2 * res))
                image = ImageOps.exif_transpose(image)  # loads the first frame of animated files
                image = _centre_square(_to_rgb(image)).resize((res, res), Image.Resampling.LANCZOS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise SkippedImage("too many pixels") from error
    except (UnidentifiedImageError, SyntaxError) as error:
        raise SkippedImage("not an image") from error
    except (OSError, ValueError, TypeError, MemoryError) as error:
        raise SkippedImage("unreadable") from error
    if channels == 1:
        image = image.convert("L")
    return np.asarray(image, dtype=np.uint8).reshape(res, res, channels)


def _decode(job: tuple[Path, int, int, int]) -> np.ndarray | str:
    """Pool worker: the image, or the reason it was skipped."""
    try:
        return load_image(*job)
    except SkippedImage as skipped:
        return skipped.args[0]


def _decoded(files: list[Path], res: int, channels: int, min_size: int) -> Iterable[np.ndarray | str]:
    jobs = [(path, res, channels, min_size) for path in files]
    workers = os.cpu_count() or 1
    if len(files) < SERIAL_BELOW or workers == 1:
        yield from map(_decode, jobs)
        return
    pool = None
    try:
        with _signals_held():
            # spawn: the parent may already run TensorFlow's threads, which a forked child must not inherit
            pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
            results = pool.map(_decode, jobs, chunksize=32)
        yield from results
    finally:  # on an interrupt, drop the queued work instead of decoding it all first
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _signals_held():
    """Ctrl-C and SIGTERM held back while the decoding workers start (an interrupt in the middle would cut a
    worker's start-up data short, and it would print a traceback), then delivered as they came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            signal.raise_signal(caught[0])


# ------------------------------------------------------------------------------------------ fingerprints

def _stat(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:  # a broken link or a link loop: it is counted as unreadable when decoded
        return 0, 0
    return info.st_size, info.st_mtime_ns


def _tail(path: Path, size: int) -> bytes:
    """The last TAIL_BYTES of the file (one system call where there is pread)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return b""
    try:
        if hasattr(os, "pread"):
            return os.pread(fd, TAIL_BYTES, max(0, size - TAIL_BYTES))
        os.lseek(fd, max(0, size - TAIL_BYTES), os.SEEK_SET)
        return os.read(fd, TAIL_BYTES)
    except OSError:
        return b""
    finally:
        os.close(fd)


def folder_fingerprint(folder: Path, files: list[Path], with_content: bool | None = None) -> dict:
    """The identity of a folder's images: every file's path below `folder`, size and modification time, and
    (`with_content`, default: off slow mounts, where reading costs a round trip per file) its last bytes.

    The digest does not depend on where the folder is, so a moved folder is recognised as the same images.
    """
    return _identify(folder, files, with_content)[0]


def _identify(folder: Path, files: list[Path], with_content: bool | None = None) -> tuple[dict, np.ndarray]:
    """(folder_fingerprint, listing): the listing holds one row per file, uint64 hashes of (its name, its
    name with its size, time and last bytes), so that a later listing tells which files came, went or changed."""
    from dcgan_faces.drive import is_slow_mount

    content = not is_slow_mount(folder) if with_content is None else with_content
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


def data_change(state: dict, arrays: dict, dataset: Dataset) -> str | None:
    """For a resumed run: one line saying how its images changed since the checkpoint (`state`, `arrays`)
    was saved, or None when they did not (or cannot be compared: not a folder)."""
    recorded = state.get("data_fingerprint")
    if recorded is None or dataset.fingerprint is None or recorded == dataset.fingerprint:
        return None
    before = arrays.get(LISTING)
    if before is None or dataset.listing is None:
        what = "image files added, removed or edited (the checkpoint does not record which)"
    else:
        now = dataset.listing
        added = len(np.setdiff1d(now[:, 0], before[:, 0]))
        removed = len(np.setdiff1d(before[:, 0], now[:, 0]))
        edited = len(np.setdiff1d(now[:, 1], before[:, 1])) - added
        what = f"{added:,} image files added, {removed:,} removed" + (f", {edited:,} edited" if edited > 0 else "")
    return (f"the data changed since the checkpoint of iteration {state.get('iteration', 0):,}: {what}; training "
            f"goes on with {len(dataset.images):,} images")


# ------------------------------------------------------------------------------------------------- cache

def _expected_manifest(source: str, fingerprint: dict, res: int, channels: int, min_size: int = 0) -> dict:
    return {"source": source, **fingerprint, "res": res, "channels": channels,
            "preprocessing": {**PREPROCESSING, "min_size": min_size}}


Fill = Callable[[np.ndarray], tuple[int, dict]]  # writes rows of the cache; returns (rows kept, manifest entries)


def _decode_into(folder: Path, files: list[Path], res: int, channels: int, log: Log,
                 min_size: int) -> Fill:
    """The `fill` of cache.write for a folder: decode every file into the rows; skipped files are counted."""
    def fill(out: np.ndarray) -> tuple[int, dict]:
        kept, skipped, first_skipped = 0, Counter(), []
        bar = tqdm(_decoded(files, res, channels, min_size), total=len(files), unit="img", disable=None,
                   desc=f"caching {folder.name} at {res} px")
        for path, result in zip(files, bar, strict=True):
            if isinstance(result, str):
                skipped[result] += 1
                if len(first_skipped) < SKIPPED_NAMED:
                    first_skipped.append(f"{shown(path)} ({result})")
                continue
            out[kept] = result
            kept += 1
        if kept == 0:
            raise DataError(f"no usable image in {shown(folder)}: {len(files)} files tried, none decoded "
                            f"(e.g. {', '.join(first_skipped)}); point --data at a folder of JPEG/PNG faces")
        if first_skipped:
            log(f"skipped {sum(skipped.values())} of {len(files)} files "
                f"({', '.join(f'{n} {why}' for why, n in skipped.items())}), e.g. {'; '.join(first_skipped)}")
        return kept, {"skipped": dict(skipped)}

    return fill


@dataclass
class Source:
    """One --data value resolved, before anything is decoded: its images' origin and the cache that holds them.

    `prepare()` (called only when the cache must be built) returns how many rows the cache may need and
    the `fill` that writes them, downloading first for Google Drive.
    """

    key: str  # what config.json records: a resolved path, "demo" or "gdrive:ID"
    description: str
    files: CacheFiles
    expected: dict  # the manifest entries the cache must match
    prepare: Callable[[], tuple[int, Fill]]
    fingerprint: str | None = None
    listing: np.ndarray | None = None
    files_found: int | None = None  # image files (or array rows) seen before decoding; None until downloaded


def _folder_source(folder: Path, cache_dir: Path, res: int, channels: int, min_size: int, log: Log,
                   exclude: Iterable[Path]) -> Source:
    folder = Path(folder).expanduser().resolve()
    files = _image_files(folder, exclude=(*exclude, cache_dir))
    fingerprint, listing = _identify(folder, files)
    return Source(str(folder), f"folder {shown(folder)} ({len(files):,} image files)",
                  CacheFiles.for_source(cache_dir, shown(folder), folder.name, res, channels),
                  _expected_manifest(shown(folder), fingerprint, res, channels, min_size),
                  lambda: (len(files), _decode_into(folder, files, res, channels, log, min_size)),
                  fingerprint["fingerprint"], listing, len(files))


def _gdrive_source(id_or_url: str, cache_dir: Path, res: int, channels: int, min_size: int, log: Log) -> Source:
    """Images from a Google Drive file, archive or folder, downloaded only when their cache must be built.

    A Drive id names fixed content, so the cache is matched by id alone: a new Colab session with the cache
    on Drive starts training without downloading or unpacking anything.
    """
    from dcgan_faces import drive

    try:
        _, file_id = drive.parse_gdrive(id_or_url)
    except drive.FetchError as error:
        raise DataError(f"--gdrive: {error}") from None

    def download() -> tuple[int, Fill]:
        try:
            folder = drive.fetch_gdrive(id_or_url, Path(cache_dir) / "downloads")
        except drive.FetchError as error:
            raise DataError(f"--gdrive: {error}") from None
        files = _image_files(folder, "--gdrive")
        return len(files), _decode_into(folder, files, res, channels, log, min_size)

    key = GDRIVE_PREFIX + file_id
    return Source(key, f"Google Drive {file_id}", CacheFiles.for_source(cache_dir, key, "gdrive", res, channels),
                  _expected_manifest(key, {}, res, channels, min_size), download)


def _array_source(path: Path, cache_dir: Path, res: int, channels: int, log: Log) -> Source:
    """Images saved as a .npy/.npz array (MNIST, a flowers set...), converted once into the uint8 cache."""
    path = Path(path).expanduser().resolve()
    array, which = read_array(path)
    images = image_layout(array, path)
    described, offset, scale = value_range(images)
    info = path.stat()
    expected = _expected_manifest(shown(path), {"files": 1, "bytes": info.st_size, "newest_mtime_ns": info.st_mtime_ns},
                                  res, channels)

    def fill(out: np.ndarray) -> tuple[int, dict]:
        for start in range(0, len(images), ARRAY_CHUNK):
            chunk = images[start:start + ARRAY_CHUNK]
            out[start:start + len(chunk)] = _to_uint8_images(chunk, offset, scale, res, channels)
        return len(images), {}

    shape = "×".join(str(n) for n in images.shape[1:])
    log(f"{shown(path)}: {len(images):,} images of {shape}, {described}" + (f"; training on {which}" if which else ""))
    return Source(shown(path), f"array {shown(path)} ({len(images):,} images of {shape}, {described})",
                  CacheFiles.for_source(cache_dir, shown(path), path.stem, res, channels),
                  {**expected, "value_range": described}, lambda: (len(images), fill), files_found=len(images))


def _demo_source(cache_dir: Path, res: int, channels: int, log: Log) -> Source:
    """The built-in procedural faces, drawn into the cache on first use."""
    from dcgan_faces import synthetic

    files = CacheFiles.of(cache_dir, "synthetic", res, channels)

    def fill(out: np.ndarray) -> tuple[int, dict]:
        log(f"drawing {DEMO_IMAGES} demo faces at {res} px into {files.tensor} (first use only)")
        faces = synthetic.make_faces(DEMO_IMAGES, res, seed=0)
        if channels == 1:
            faces = np.asarray([np.asarray(Image.fromarray(f).convert("L")) for f in faces])[..., None]
        out[:] = faces
        return DEMO_IMAGES, {}

    expected = {"source": "demo", "res": res, "channels": channels,
                "generator_version": getattr(synthetic, "VERSION", 1), "count": DEMO_IMAGES}
    return Source("demo", f"the built-in demo faces ({DEMO_IMAGES:,})", files, expected, lambda: (DEMO_IMAGES, fill),
                  files_found=DEMO_IMAGES)


def source_of(data: str | None, cache_dir: Path, res: int, channels: int = 3, min_size: int = 0, log: Log = print,
              exclude: Iterable[Path] = ()) -> Source:
    """`--data` resolved: a folder, "gdrive:ID_OR_URL", an array, or (none given, no ./face_images with
    images) the demo faces. `exclude`: folders never read as images (the run folder)."""
    if data is None and DEFAULT_DATA_DIR.is_dir() and find_images(DEFAULT_DATA_DIR, exclude):
        data = str(DEFAULT_DATA_DIR)
    if data in (None, "demo"):
        return _demo_source(cache_dir, res, channels, log)
    if data.startswith(GDRIVE_PREFIX):
        return _gdrive_source(data.removeprefix(GDRIVE_PREFIX), cache_dir, res, channels, min_size, log)
    if data.endswith(ARRAY_SUFFIXES):
        return _array_source(Path(data), cache_dir, res, channels, log)
    return _folder_source(Path(data), cache_dir, res, channels, min_size, log, exclude)


def open_dataset(data: str | None, cache_dir: Path, res: int, channels: int = 3, log: Log = print,
                 min_size: int = 0, exclude: Iterable[Path] = (), source: Source | None = None) -> Dataset:
    """The images of `data` (see source_of), from their cache, built or rebuilt first when missing or stale.
    `source`: source_of's answer for these arguments when the caller has it already (the folder scanned once)."""
    source = source or source_of(data, cache_dir, res, channels, min_size, log, exclude)
    if source.key == "demo" and data is None:
        log("no --data given: training on the built-in demo faces. For real faces: --data /path/to/photos")
    try:
        cache.prepare_folder(cache_dir)
    except CacheError as error:
        raise DataError(str(error)) from None
    _adopt_moved(source.files, source.expected, log)
    reason = cache.why_stale(source.files, source.expected)
    if reason is None and source.key.startswith(GDRIVE_PREFIX):
        log(f"resuming from cached data: {source.files.tensor} holds {source.key}; nothing to download")
    elif reason is None:
        if source.key != "demo":
            log(f"using cached {source.files.tensor} (built from {source.key})")
    else:
        if reason != "no cache yet":
            log(f"rebuilding {source.files.tensor}: {reason}")
        rows, fill = source.prepare()
        shape = (rows, source.expected["res"], source.expected["res"], source.expected["channels"])
        try:
            manifest = cache.write(source.files, shape, fill, source.expected)
        except CacheError as error:
            raise DataError(str(error)) from None
        if source.key != "demo":
            log(f"cached {manifest['images']} images in {source.files.tensor}")
    from dcgan_faces.drive import local_copy

    manifest = source.files.read_manifest() or {}
    opened = local_copy(source.files.tensor)
    large = opened.stat().st_size > cache.FULL_CHECK_UP_TO and reason is None  # a new build was checked whole
    return Dataset(np.load(opened, mmap_mode="r"), source.key, source.files.tensor, manifest.get("skipped", {}),
                   source.fingerprint, cache.Check(source.files, opened) if large else None, source.listing)


def describe_source(data: str | None, cache_dir: Path, res: int, channels: int = 3, min_size: int = 0,
                    exclude: Iterable[Path] = ()) -> str:
    """For --dry-run: the images `data` names and the state of their cache; nothing is built or fetched."""
    try:
        source = source_of(data, cache_dir, res, channels, min_size, lambda text: None, exclude)
    except DataError as error:
        return f"cannot be used: {error}"
    reason = cache.why_stale(source.files, source.expected)
    if reason is None:
        state = f"up to date, {(source.files.read_manifest() or {}).get('images', '?'):,} images"
    elif reason == "no cache yet":
        state = "not built yet: built first (downloaded first)" if source.key.startswith(GDRIVE_PREFIX) \
            else "not built yet: built first"
    else:
        state = f"stale ({reason}): rebuilt first"
    return f"{source.description}; cache {source.files.tensor}: {state}"


def _adopt_moved(files: CacheFiles, expected: dict, log: Log) -> None:
    """When `files` has no cache yet but another cache in its folder holds the same images (a moved
    folder: same fingerprint and settings), give that cache the new name instead of decoding again."""
    if files.tensor.exists() or "fingerprint" not in expected:
        return
    same = {key: value for key, value in expected.items() if key != "source"}
    for manifest_path in files.manifest.parent.glob("*.json"):
        other = CacheFiles(manifest_path.with_suffix(".npy"), manifest_path)
        manifest = other.read_manifest()
        if manifest and other.tensor.exists() and all(manifest.get(k) == v for k, v in same.items()):
            os.replace(other.tensor, files.tensor)
            write_json(files.manifest, {**manifest, "source": expected["source"]})
            other.manifest.unlink(missing_ok=True)
            log(f"{expected['source']} holds the same images as {manifest.get('source')}: reusing its cache")
            return


def _image_files(folder: Path, flag: str = "--data", exclude: Iterable[Path] = ()) -> list[Path]:
    if folder.is_file():
        raise DataError(f"{flag} {shown(folder)} is a file, not a folder: give the folder that holds the images "
                        "(or a .npy/.npz array of them)")
    if not folder.is_dir():
        raise DataError(f"{flag} {shown(folder)}: no such folder; give a folder of face images")
    files = find_images(folder, exclude)
    if not files:
        raise DataError(f"{flag} {shown(folder)}: no image files (jpg, jpeg, png, bmp, webp, gif) in or below it")
    return files


ARRAY_SUFFIXES = (".npy", ".npz")
ARRAY_CHUNK = 1024


def read_array(path: Path) -> tuple[np.ndarray, str]:
    """(images, which) of a .npy file (memory-mapped) or a .npz archive. From a .npz: its largest array of
    images (N, H, W[, C]), e.g. x_train beside x_test, and `which` names it when there are several; two of the
    same size are refused, naming them. Other arrays (labels) are ignored."""
    try:
        if path.suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False), ""
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"--data {path}: not a readable .npy/.npz array ({error or type(error).__name__})") from None
    if not arrays:
        raise DataError(f"--data {path}: the archive holds no array")
    images = sorted((name for name in arrays if _is_image_stack(arrays[name].shape)), key=lambda n: -arrays[n].size)
    if len(images) < 2:
        return arrays[images[0]] if images else max(arrays.values(), key=lambda a: a.size), ""
    named = ", ".join(f"{name} {'×'.join(f'{n:,}' for n in arrays[name].shape)}" for name in images)
    if arrays[images[0]].size == arrays[images[1]].size:
        raise DataError(f"--data {path}: holds {len(images)} arrays of images of the same size ({named}); save the "
                        f"one to train on alone, e.g. np.save('{images[0]}.npy', np.load('{path.name}')"
                        f"['{images[0]}']), and pass that .npy")
    return arrays[images[0]], f"{images[0]}, the largest of its arrays of images ({named})"


def _is_image_stack(shape: tuple[int, ...]) -> bool:
    """(N, H, W), or (N, H, W, C) / (N, C, H, W) with 1, 3 or 4 channels: what image_layout accepts."""
    return len(shape) == 3 or (len(shape) == 4 and (shape[-1] in (1, 3, 4) or shape[1] in (1, 3, 4)))


def image_layout(array: np.ndarray, path: Path) -> np.ndarray:
    """(N, H, W, C) view of an array of images given as (N, H, W), (N, H, W, C) or channels-first (N, C, H, W)."""
    if array.ndim == 3:
        return array[..., None]
    if array.ndim == 4 and array.shape[-1] in (1, 3, 4):
        return array
    if array.ndim == 4 and array.shape[1] in (1, 3, 4):
        return array.transpose(0, 2, 3, 1)
    raise DataError(f"--data {path}: shape {array.shape} is not a stack of images (N, H, W[, C])")


def value_range(array: np.ndarray) -> tuple[str, float, float]:
    """(description, offset, scale) that map the array's values onto 0..255."""
    if array.dtype == np.uint8:
        return "uint8 0..255", 0.0, 1.0
    sample = np.asarray(array[:ARRAY_CHUNK], dtype=np.float64)
    low, high = float(np.nanmin(sample)), float(np.nanmax(sample))
    if low < -1e-3 and low >= -1.001 and high <= 1.001:
        return "floats in [-1, 1]", 1.0, 127.5
    if low >= -1e-3 and high <= 1.001:
        return "floats in [0, 1]", 0.0, 255.0
    return f"values in [{low:g}, {high:g}], taken as 0..255", 0.0, 1.0


def _to_uint8_images(chunk: np.ndarray, offset: float, scale: float, res: int, channels: int) -> np.ndarray:
    pixels = np.clip(np.rint((np.asarray(chunk, dtype=np.float32) + offset) * scale), 0, 255).astype(np.uint8)
    if pixels.shape[-1] == 4:
        pixels = pixels[..., :3]
    out = np.empty((len(pixels), res, res, channels), dtype=np.uint8)
    for i, image in enumerate(pixels):
        picture = _centre_square(Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image))
        if picture.size != (res, res):
            picture = picture.resize((res, res), Image.Resampling.LANCZOS)
        picture = picture.convert("L" if channels == 1 else "RGB")
        out[i] = np.asarray(picture).reshape(res, res, channels)
    return out


def array_resolution(data: str | None) -> int | None:
    """The image size of a .npy/.npz --data, so that it trains at its own size unless --res says otherwise."""
    if data is None or not data.endswith(ARRAY_SUFFIXES) or not Path(data).is_file():
        return None
    images = image_layout(read_array(Path(data))[0], Path(data))
    return images.shape[1] if images.shape[1] == images.shape[2] else min(images.shape[1:3])


# ----------------------------------------------------------------------------------------------- batches

class BatchSampler:
    """Batch k holds positions [k·B, (k+1)·B) of an endless run of shuffled passes over the images.

    Each pass's order comes from (seed, pass number), so a batch depends only on k: resuming needs the
    iteration count and nothing else. Pixels become float32 in [-1, 1] only here, one batch at a time.

    shard=(index, count): a multi-worker run's worker `index` of `count` gathers only its contiguous share
    of each global batch of `batch_size` (np.array_split order, as distribute.Feed deals out the rest).
    """

    def __init__(self, images: np.ndarray, batch_size: int, seed: int, shard: tuple[int, int] = (0, 1)):
        self.images, self.batch_size, self.seed, self.shard = images, batch_size, seed, shard
        self._order_pass, self._order = -1, np.empty(0, dtype=np.int64)

    def _pass_order(self, number: int) -> np.ndarray:
        if number != self._order_pass:
            self._order = np.random.default_rng([self.seed, number]).permutation(len(self.images))
            self._order_pass = number
        return self._order

    def indices(self, k: int) -> np.ndarray:
        n = len(self.images)
        positions = np.arange(k * self.batch_size, (k + 1) * self.batch_size)
        return np.concatenate([self._pass_order(p)[positions[positions // n == p] % n]
                               for p in np.unique(positions // n)])

    def batch(self, k: int) -> np.ndarray:
        index, count = self.shard
        rows = self.indices(k) if count == 1 else np.array_split(self.indices(k), count)[index]
        picked = self.images[np.sort(rows)]  # sorted: sequential reads from the memmap
        return picked.astype(np.float32) / np.float32(127.5) - np.float32(1.0)

    def epoch(self, k: int) -> float:
        """Passes over the images completed after k batches."""
        return k * self.batch_size / len(self.images)
