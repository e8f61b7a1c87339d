"""Image folder → one cached uint8 tensor (N, res, res, C) plus manifest; batches drawn as float32 in [-1, 1].

The cache is built once (decoding in parallel on every core) and reused, memory-mapped, on every later run
while the manifest still matches the folder: same files, sizes, modification times and settings.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif"})
# Bump when the pixels a given file turns into change, so that old caches are rebuilt.
PREPROCESSING = {"version": 1, "orientation": "exif", "crop": "centre square", "resize": "lanczos"}
DEFAULT_DATA_DIR = Path("face_images")
GDRIVE_PREFIX = "gdrive:"
DEMO_IMAGES = 2_000
SERIAL_BELOW = 256  # folders smaller than this are decoded in-process: a pool costs more than it saves
SKIPPED_NAMED = 5

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


# ---------------------------------------------------------------------------------------------- decoding

def find_images(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, in a stable order: known suffixes, and files with none.

    Symlinked folders are not followed (no loops); hidden files are ignored.
    """
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found.extend(Path(root, f) for f in sorted(files)
                     if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES | {""})
    return found


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

    Smaller images are upscaled, unless their short side is under `min_size`. Raises SkippedImage.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
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
    # spawn: the parent may already run TensorFlow's threads, which a forked child must not inherit
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        yield from pool.map(_decode, jobs, chunksize=32)


# ------------------------------------------------------------------------------------------------- cache

def cache_paths(cache_dir: Path, res: int, stem: str = "training_data") -> tuple[Path, Path]:
    """(tensor, manifest) paths: training_data_{res}_{res}.npy and .json."""
    base = Path(cache_dir) / f"{stem}_{res}_{res}"
    return base.with_suffix(".npy"), base.with_suffix(".json")


def _stat(path: Path) -> tuple[int, float]:
    try:
        info = path.stat()
    except OSError:  # a broken link or a link loop: it is counted as unreadable when decoded
        return 0, 0.0
    return info.st_size, info.st_mtime


def folder_fingerprint(files: list[Path]) -> dict:
    """Cheap identity of a folder's images: count, total bytes, newest modification time."""
    stats = [_stat(path) for path in files]
    return {
        "files": len(files),
        "bytes": sum(size for size, _ in stats),
        "newest_mtime": max((mtime for _, mtime in stats), default=0.0),
    }


def _expected_manifest(source: str, fingerprint: dict, res: int, channels: int, min_size: int = 0) -> dict:
    return {"source": source, **fingerprint, "res": res, "channels": channels,
            "preprocessing": {**PREPROCESSING, "min_size": min_size}}


def _why_stale(manifest_path: Path, tensor_path: Path, expected: dict) -> str | None:
    """None when the cache matches `expected`, else a short reason for rebuilding it."""
    if not tensor_path.exists():
        return "no cache yet"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return f"its manifest {manifest_path.name} is missing or unreadable"
    for key, value in expected.items():
        if manifest.get(key) != value:
            return f"{key} changed ({manifest.get(key)!r} → {value!r})"
    try:
        images = np.load(tensor_path, mmap_mode="r")
    except (OSError, ValueError) as error:
        return f"{tensor_path.name} is corrupt ({error})"
    want = (manifest.get("images"), expected["res"], expected["res"], expected["channels"])
    if images.dtype != np.uint8 or images.shape != want:
        return f"{tensor_path.name} holds {images.dtype} {images.shape}, expected uint8 {want}"
    return None


def _shrink_npy(path: Path, rows: int) -> None:
    """Cut an .npy file to its first `rows` rows in place (the header keeps its length, padded)."""
    with open(path, "r+b") as file:
        version = np.lib.format.read_magic(file)
        fmt = np.lib.format
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran_order, dtype = read_header(file)
        data_start = file.tell()
        header_start = 10 if version == (1, 0) else 12
        header = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran_order,
                       "shape": (rows, *shape[1:])})
        file.seek(header_start)
        file.write(header.ljust(data_start - header_start - 1).encode("latin1") + b"\n")
        file.truncate(data_start + rows * int(np.prod(shape[1:])) * dtype.itemsize)


def write_atomically(path: Path, fill: Callable[[Path], None]) -> None:
    """Let `fill` write a temporary file beside `path`, then rename it into place."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        fill(tmp)
        with open(tmp, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomically(path: Path, value: dict) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(value, indent=2)))


def build_cache(folder: Path, files: list[Path], tensor_path: Path, res: int, channels: int,
                log: Log = print, min_size: int = 0) -> tuple[int, Counter]:
    """Decode `files` into the .npy at `tensor_path`; return (images kept, Counter of skip reasons)."""
    skipped: Counter = Counter()
    first_skipped: list[str] = []
    kept = 0

    def fill(tmp: Path) -> None:
        nonlocal kept
        shape = (len(files), res, res, channels)
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
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
        out.flush()
        del out
        if kept == 0:
            raise DataError(
                f"no usable image in {shown(folder)}: {len(files)} files tried, none decoded "
                f"(e.g. {', '.join(first_skipped)}); point --data at a folder of JPEG/PNG faces"
            )
        if kept < len(files):
            _shrink_npy(tmp, kept)

    write_atomically(tensor_path, fill)
    if first_skipped:
        log(f"skipped {sum(skipped.values())} of {len(files)} files "
              f"({', '.join(f'{n} {why}' for why, n in skipped.items())}), e.g. {'; '.join(first_skipped)}")
    return kept, skipped


def _open_cached(tensor_path: Path, manifest_path: Path, expected: dict, build: Callable[[], dict],
                 log: Log) -> tuple[np.ndarray, dict]:
    """The memory-mapped cache when its manifest matches `expected`; else `build()` it first.

    `build` writes the tensor and returns the manifest's extra entries (image count, skip reasons).
    """
    reason = _why_stale(manifest_path, tensor_path, expected)
    if reason is None:
        log(f"using cached {tensor_path} (built from {expected['source']})")
        manifest = json.loads(manifest_path.read_text())
    else:
        if reason != "no cache yet":
            log(f"rebuilding {tensor_path}: {reason}")
        tensor_path.parent.mkdir(parents=True, exist_ok=True)
        manifest = {**expected, **build()}
        write_json_atomically(manifest_path, manifest)
        log(f"cached {manifest['images']} images in {tensor_path}")
    from dcgan_faces.drive import local_copy

    return np.load(local_copy(tensor_path), mmap_mode="r"), manifest


def _build_from_folder(folder: Path, files: list[Path], tensor_path: Path, res: int, channels: int,
                       log: Log, min_size: int) -> dict:
    try:
        kept, skipped = build_cache(folder, files, tensor_path, res, channels, log, min_size)
    except OSError as error:
        raise DataError(f"could not write the cache {tensor_path} ({error.strerror or error}); any earlier cache "
                        "there is kept; free some space or pass --cache-dir on another disk") from None
    return {"images": kept, "skipped": dict(skipped)}


def _image_files(folder: Path, flag: str = "--data") -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{flag} {shown(folder)}: no such folder; give a folder of face images")
    files = find_images(folder)
    if not files:
        raise DataError(f"{flag} {shown(folder)}: no image files (jpg, jpeg, png, bmp, webp, gif) in or below it")
    return files


def open_folder(folder: Path, cache_dir: Path, res: int, channels: int = 3, log: Log = print,
                min_size: int = 0) -> Dataset:
    """The cached tensor for `folder`, built or rebuilt first when missing or stale."""
    folder = Path(folder).expanduser().resolve()
    files = _image_files(folder)
    tensor_path, manifest_path = cache_paths(cache_dir, res)
    expected = _expected_manifest(shown(folder), folder_fingerprint(files), res, channels, min_size)
    images, manifest = _open_cached(
        tensor_path, manifest_path, expected,
        lambda: _build_from_folder(folder, files, tensor_path, res, channels, log, min_size), log)
    return Dataset(images, str(folder), tensor_path, manifest.get("skipped", {}))


def open_gdrive(id_or_url: str, cache_dir: Path, res: int, channels: int = 3, log: Log = print,
                min_size: int = 0) -> Dataset:
    """Images from a Google Drive file, archive or folder; nothing is downloaded when their cache exists.

    A Drive id names fixed content, so the cache is matched by id alone: a new Colab session with the cache
    on Drive starts training without downloading or unpacking anything.
    """
    from dcgan_faces import drive

    try:
        _, file_id = drive.parse_gdrive(id_or_url)
    except drive.FetchError as error:
        raise DataError(f"--gdrive: {error}") from None
    source = GDRIVE_PREFIX + file_id
    tensor_path, manifest_path = cache_paths(cache_dir, res)
    expected = _expected_manifest(source, {}, res, channels, min_size)

    def download_and_build() -> dict:
        try:
            folder = drive.fetch_gdrive(id_or_url, Path(cache_dir) / "downloads")
        except drive.FetchError as error:
            raise DataError(f"--gdrive: {error}") from None
        files = _image_files(folder, "--gdrive")
        return _build_from_folder(folder, files, tensor_path, res, channels, log, min_size)

    if _why_stale(manifest_path, tensor_path, expected) is None:
        log(f"resuming from cached data: {tensor_path} holds {source}; nothing to download")
    images, manifest = _open_cached(tensor_path, manifest_path, expected, download_and_build, log)
    return Dataset(images, source, tensor_path, manifest.get("skipped", {}))


ARRAY_SUFFIXES = (".npy", ".npz")
ARRAY_CHUNK = 1024


def read_array(path: Path) -> np.ndarray:
    """The image array in a .npy file (memory-mapped) or the largest array in a .npz (e.g. x_train)."""
    try:
        if path.suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False)
        with np.load(path, allow_pickle=False) as archive:
            return max((archive[name] for name in archive.files), key=lambda a: a.size)
    except (OSError, ValueError) as error:
        raise DataError(f"--data {path}: not a readable .npy/.npz array ({error})") from None


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


def open_array(path: Path, cache_dir: Path, res: int, channels: int = 3, log: Log = print) -> Dataset:
    """Images saved as a .npy/.npz array (MNIST, a flowers set...), converted once into the uint8 cache."""
    path = Path(path).expanduser().resolve()
    images = image_layout(read_array(path), path)
    described, offset, scale = value_range(images)
    log(f"{shown(path)}: {len(images):,} images of {images.shape[1]}×{images.shape[2]}×{images.shape[3]}, "
        f"{described}")
    tensor_path, manifest_path = cache_paths(cache_dir, res)
    info = path.stat()
    expected = _expected_manifest(shown(path), {"files": 1, "bytes": info.st_size, "newest_mtime": info.st_mtime},
                                  res, channels)

    def build() -> dict:
        def fill(tmp: Path) -> None:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(images), res, res, channels))
            for start in range(0, len(images), ARRAY_CHUNK):
                chunk = images[start:start + ARRAY_CHUNK]
                out[start:start + len(chunk)] = _to_uint8_images(chunk, offset, scale, res, channels)
            out.flush()

        write_atomically(tensor_path, fill)
        return {"images": len(images), "value_range": described}

    cached, _ = _open_cached(tensor_path, manifest_path, expected, build, log)
    return Dataset(cached, shown(path), tensor_path)


def array_resolution(data: str | None) -> int | None:
    """The image size of a .npy/.npz --data, so that it trains at its own size unless --res says otherwise."""
    if data is None or not data.endswith(ARRAY_SUFFIXES) or not Path(data).is_file():
        return None
    images = image_layout(read_array(Path(data)), Path(data))
    return images.shape[1] if images.shape[1] == images.shape[2] else min(images.shape[1:3])


def open_demo(cache_dir: Path, res: int, channels: int = 3, log: Log = print) -> Dataset:
    """The built-in procedural faces, generated into the cache on first use."""
    from dcgan_faces import synthetic

    tensor_path, manifest_path = cache_paths(cache_dir, res, stem="synthetic")
    expected = {"source": "demo", "images": DEMO_IMAGES, "res": res, "channels": channels,
                "generator_version": getattr(synthetic, "VERSION", 1)}
    reason = _why_stale(manifest_path, tensor_path, {**expected, "preprocessing": None})
    if reason is not None:
        log(f"drawing {DEMO_IMAGES} demo faces at {res} px into {tensor_path} (first use only)")
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        faces = synthetic.make_faces(DEMO_IMAGES, res, seed=0)
        if channels == 1:
            faces = np.asarray([np.asarray(Image.fromarray(f).convert("L")) for f in faces])[..., None]
        write_atomically(tensor_path, lambda tmp: np.save(tmp, faces))
        write_json_atomically(manifest_path, {**expected, "preprocessing": None})
    return Dataset(np.load(tensor_path, mmap_mode="r"), "demo", tensor_path)


def open_dataset(data: str | None, cache_dir: Path, res: int, channels: int = 3, log: Log = print,
                 min_size: int = 0) -> Dataset:
    """`--data` resolved: a folder, "gdrive:ID_OR_URL", or (none given, no ./face_images) the demo faces."""
    if data in (None, "demo"):
        if data is None and DEFAULT_DATA_DIR.is_dir() and find_images(DEFAULT_DATA_DIR):
            return open_folder(DEFAULT_DATA_DIR, cache_dir, res, channels, log, min_size)
        log("no --data given: training on the built-in demo faces. For real faces: --data /path/to/photos")
        return open_demo(cache_dir, res, channels, log)
    if data.startswith(GDRIVE_PREFIX):
        dataset = open_gdrive(data.removeprefix(GDRIVE_PREFIX), cache_dir, res, channels, log, min_size)
        return dataclasses.replace(dataset, source=data)
    if data.endswith(ARRAY_SUFFIXES):
        return open_array(Path(data), cache_dir, res, channels, log)
    return open_folder(Path(data), cache_dir, res, channels, log, min_size)


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
