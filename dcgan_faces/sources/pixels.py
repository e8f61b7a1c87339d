"""The pixels a file of images becomes: EXIF-oriented, RGB (transparency on white, 16-bit scaled to 8), its centre
square Lanczos-resized. Every cache of images (folders, Drive downloads, arrays) holds this module's output."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dcgan_faces.imagefile import is_marked

# Bump it whenever the pixels a given file or array turns into change (here, or in array.py's value mapping):
# each cache records it, so old caches are rebuilt. tests/test_preprocessing.py fails until it is bumped.
PREPROCESS_VERSION = 1


def preprocessing() -> dict:
    """What a cache's manifest records of how its pixels were made; a cache recorded otherwise is rebuilt."""
    return {"version": PREPROCESS_VERSION, "orientation": "exif", "crop": "centre square", "resize": "lanczos"}


class SkippedImage(Exception):
    """One file cannot become a training image; args[0] is the reason (a short key)."""


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


def fit(image: Image.Image, res: int, channels: int) -> np.ndarray:
    """An RGB or grey image's centre square, Lanczos-resized to `res` (also up): uint8 (res, res, channels)."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side)).resize((res, res), Image.Resampling.LANCZOS)
    return np.asarray(square.convert("L" if channels == 1 else "RGB"), dtype=np.uint8).reshape(res, res, channels)


def load_image(path: Path, res: int, channels: int = 3, min_size: int = 0) -> np.ndarray:
    """One file → uint8 (res, res, channels): EXIF-oriented, RGB, centre-cropped square, Lanczos-resized (also
    up) unless its short side is under `min_size`. SkippedImage, also for an image this package wrote."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if is_marked(image):  # a grid, plot or generated face: never train on the model's own output
                    raise SkippedImage("written by dcgan_faces")
                if min(image.size) < min_size:
                    raise SkippedImage("smaller than --min-size")
                # JPEG draft mode decodes at 1/2, 1/4 or 1/8 size straight from the DCT: much faster on
                # large photos, and still at least twice the target size, so Lanczos does the final step.
                image.draft("RGB", (2 * res, 2 * res))
                return fit(_to_rgb(ImageOps.exif_transpose(image)), res, channels)  # an animation: its first frame
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise SkippedImage("too many pixels") from error
    except (UnidentifiedImageError, SyntaxError) as error:
        raise SkippedImage("not an image") from error
    except (OSError, ValueError, TypeError, MemoryError) as error:
        raise SkippedImage("unreadable") from error
