"""A cache's version is tied to its preprocessing: fixed synthetic images go through it and the pixels that come
out are compared with hashes recorded here, per version. A change to the pixels fails these tests until the
version each cache records is bumped (so that old caches are rebuilt, not silently reused)."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcgan_faces import cache, synthetic
from dcgan_faces.sources import ArrayFile, CacheSettings, DemoFaces, ImageFolder, pixels
from dcgan_faces.sources.demo import demo_faces

# Per PREPROCESS_VERSION: what each case below turns into. A new version adds its own line.
PIXEL_HASHES = {
    1: {"rgba_exif": "d3bd548348921ca6", "grey": "8fc12848b049face", "deep16": "a3f1d8e5b18d6054",
        "palette_upsized": "2c1ca721c46f13d1", "float_array": "e8e110f1359fb75b"},
}
DEMO_HASHES = {  # per synthetic.VERSION
    1: {"rgb": "381354ff8f8076de", "grey": "2ceb1bf8d9e5027a"},
}
BUMP_PIXELS = ("the pixels a file becomes changed: bump PREPROCESS_VERSION in dcgan_faces/sources/pixels.py (old "
               "caches are then rebuilt) and record the new hashes under the new version in PIXEL_HASHES")
BUMP_DEMO = ("the demo faces changed: bump VERSION in dcgan_faces/synthetic.py (old demo caches are then redrawn) "
             "and record the new hashes under the new version in DEMO_HASHES")


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(str(array.shape).encode() + np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def _pattern(height: int, width: int, channels: int) -> np.ndarray:
    """A deterministic image with detail everywhere, so that any change in cropping or filtering shows."""
    y, x, c = np.ogrid[:height, :width, :channels]
    return ((x * 37 + y * 11 + c * 85 + (x * y) % 23 * 5) % 256).astype(np.uint8)


def _files(folder: Path) -> dict[str, tuple[Path, int, int]]:
    """case → (file, res, channels)."""
    rgba = Image.fromarray(_pattern(30, 44, 4))  # wide, half transparent in places, rotated by EXIF
    exif = Image.Exif()
    exif[0x0112] = 6
    rgba.save(folder / "rgba_exif.png", exif=exif)
    Image.fromarray(_pattern(41, 26, 1)[..., 0]).save(folder / "grey.png")  # tall
    Image.fromarray(_pattern(24, 24, 1)[..., 0].astype(np.uint16) * 257).save(folder / "deep16.png")
    palette = Image.fromarray(_pattern(9, 7, 3)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 3
    palette.save(folder / "palette_upsized.png", transparency=3)
    return {"rgba_exif": (folder / "rgba_exif.png", 16, 3), "grey": (folder / "grey.png", 12, 1),
            "deep16": (folder / "deep16.png", 16, 3), "palette_upsized": (folder / "palette_upsized.png", 16, 3)}


def _array_pixels(tmp_path: Path) -> np.ndarray:
    """What --data FILE.npy of floats in [-1, 1] becomes, through ArrayFile's own fill."""
    floats = _pattern(10, 14, 3)[None].repeat(2, axis=0).astype(np.float32) / 127.5 - 1.0
    np.save(tmp_path / "faces.npy", floats)
    scan = ArrayFile(tmp_path / "faces.npy").scan(CacheSettings(tmp_path / "cache", 8), log=lambda _: None)
    count, fill = scan.prepare()
    out = np.zeros((count, 8, 8, 3), np.uint8)
    fill(out)
    return out


def test_the_pixels_of_preprocessing_match_those_recorded_for_its_version(tmp_path):
    got = {case: _digest(pixels.load_image(path, res, channels)) for case, (path, res, channels)
           in _files(tmp_path).items()}
    got["float_array"] = _digest(_array_pixels(tmp_path))
    assert pixels.PREPROCESS_VERSION in PIXEL_HASHES, BUMP_PIXELS
    assert got == PIXEL_HASHES[pixels.PREPROCESS_VERSION], BUMP_PIXELS


def test_the_demo_faces_match_those_recorded_for_their_version():
    got = {"rgb": _digest(demo_faces(3, 16)), "grey": _digest(demo_faces(2, 16, channels=1))}
    assert synthetic.VERSION in DEMO_HASHES, BUMP_DEMO
    assert got == DEMO_HASHES[synthetic.VERSION], BUMP_DEMO


@pytest.mark.parametrize("kind", ["folder", "demo"])
def test_a_bumped_version_makes_the_cache_stale(kind, tmp_path, monkeypatch):
    settings = CacheSettings(tmp_path / "cache", 16)
    if kind == "folder":
        _files(tmp_path)
        source, module, name, says = ImageFolder(tmp_path), pixels, "PREPROCESS_VERSION", "preprocessing changed"
    else:
        source, module, name, says = DemoFaces(), synthetic, "VERSION", "generator_version changed"
    scan = source.scan(settings, log=lambda _: None)
    scan.files.tensor.parent.mkdir(parents=True)
    cache.write(scan.files, (1, 16, 16, 3), lambda out: (1, {}), scan.expected)
    assert cache.why_stale(scan.files, scan.expected) is None
    monkeypatch.setattr(module, name, getattr(module, name) + 1)
    assert says in cache.why_stale(scan.files, source.scan(settings, log=lambda _: None).expected)
