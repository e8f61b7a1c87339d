"""Images saved as a .npy/.npz array (MNIST, a flowers set...) with `--data FILE.npy`: converted once into the
uint8 cache, at the array's own size unless --res says otherwise."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from dcgan_faces.sources.base import CacheSettings, DataError, Log, PathSource, Scan, shown
from dcgan_faces.sources.pixels import fit

ARRAY_SUFFIXES = (".npy", ".npz")
MAGIC = {".npy": (b"\x93NUMPY",), ".npz": (b"PK\x03\x04", b"PK\x05\x06")}  # an .npz is a zip archive
ARRAY_CHUNK = 1024


class ArrayFile(PathSource):
    """A .npy or .npz file of images; its cache is matched by the file's size and modification time."""

    @classmethod
    def from_text(cls, text: str) -> ArrayFile | None:
        return cls(text) if text.endswith(ARRAY_SUFFIXES) else None

    def image_size(self) -> int | None:
        if not self.path.is_file():
            return None
        return min(image_layout(read_array(self.path)[0], self.path).shape[1:3])

    def scan(self, wanted: CacheSettings, log: Log = print, exclude: Iterable[Path] = ()) -> Scan:
        path, key = self.path, shown(self.path)
        array, which = read_array(path)
        images = image_layout(array, path)
        described, offset, scale = value_range(images)
        info = path.stat()
        identity = {"files": 1, "bytes": info.st_size, "newest_mtime_ns": info.st_mtime_ns}
        expected = {**replace(wanted, min_size=0).expected(key, identity), "value_range": described}

        def fill(out: np.ndarray) -> tuple[int, dict]:  # its pixels change: bump pixels.PREPROCESS_VERSION
            for start in range(0, len(images), ARRAY_CHUNK):
                chunk = np.asarray(images[start:start + ARRAY_CHUNK], dtype=np.float32)
                pixels = np.clip(np.rint((chunk + offset) * scale), 0, 255).astype(np.uint8)
                for row, image in enumerate(pixels[..., 0] if pixels.shape[-1] == 1 else pixels[..., :3], start):
                    out[row] = fit(Image.fromarray(image), wanted.res, wanted.channels)  # [..., :3]: no alpha
            return len(images), {}

        shape = "×".join(str(n) for n in images.shape[1:])
        log(f"{key}: {len(images):,} images of {shape}, {described}" + (f"; training on {which}" if which else ""))
        return Scan(key, f"array {key} ({len(images):,} images of {shape}, {described})", wanted.files(key, path.stem),
                    expected, lambda: (len(images), fill), files_found=len(images))


def read_array(path: Path) -> tuple[np.ndarray, str]:
    """(images, which) of a .npy (memory-mapped) or a .npz: its largest stack of images (x_train beside x_test; labels
    are ignored), `which` naming it among several; two of the same size are refused, naming them."""
    try:
        with open(path, "rb") as file:
            starts_like_one = file.read(6).startswith(MAGIC[path.suffix])
        if not starts_like_one:
            raise DataError(f"--data {path}: not a NumPy {path.suffix} file (it does not start like one); give a "
                            "file saved with np.save / np.savez, or a folder of images")
        if path.suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False), ""
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error) or "Python objects" in str(error):  # not NumPy's advice to unpickle it
            raise DataError(f"--data {path}: holds Python objects, not numbers; save the images as one numeric "
                            "array (np.save(path, images.astype('uint8')))") from None
        raise DataError(f"--data {path}: not a readable .npy/.npz array ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
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
    if not _is_image_stack(array.shape):
        raise DataError(f"--data {path}: shape {array.shape} is not a stack of images (N, H, W[, C])")
    if array.ndim == 3:
        return array[..., None]
    return array if array.shape[-1] in (1, 3, 4) else array.transpose(0, 2, 3, 1)


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

