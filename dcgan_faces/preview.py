"""Faces laid out on white, as the course notebook did: the run's preview grids from fixed seeds, and a
near-square grid of any number of faces."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

TRAINING_SEEDS, PREVIEW_SEEDS, LABEL_NOISE = 1, 2, 3  # independent random streams derived from --seed
MAX_ASPECT = 2  # a grid without gaps may be up to twice as wide as it is tall


def latent_seeds(config, stream: int, index: int, count: int) -> np.ndarray:
    """Normal seeds (count, seed_size) that depend only on (--seed, stream, index)."""
    rng = np.random.default_rng([config.seed, stream, index])
    return rng.standard_normal((count, config.seed_size), dtype=np.float32)


def preview_seeds(config, faces: Sequence[int] | None = None) -> np.ndarray:
    """The fixed latents of the preview grid: the same faces in every grid of every run with this --seed.

    `faces`: only these faces, numbered from 0 in reading order (the grid's first row is 0 to 6); numbers
    beyond the grid continue the same sequence, so more faces of the same kind can be drawn.
    """
    count = config.preview_rows * config.preview_cols
    if faces is None:
        return latent_seeds(config, PREVIEW_SEEDS, 0, count)
    return latent_seeds(config, PREVIEW_SEEDS, 0, max(count, max(faces) + 1))[list(faces)]


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Generator output in [-1, 1] → uint8 in [0, 255]."""
    return np.clip(np.rint((np.asarray(images, dtype=np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray, rows: int, cols: int, margin: int = 16) -> Image.Image:
    """rows × cols uint8 images (N, H, W, C) with `margin` px of white around and between them."""
    n, height, width, channels = images.shape
    if n < rows * cols:
        raise ValueError(f"a {rows}×{cols} grid needs {rows * cols} images, got {n}")
    canvas = np.full((margin + rows * (height + margin), margin + cols * (width + margin), channels), 255,
                     dtype=np.uint8)
    for index in range(rows * cols):
        top = margin + (index // cols) * (height + margin)
        left = margin + (index % cols) * (width + margin)
        canvas[top:top + height, left:left + width] = images[index]
    return to_pil(canvas)


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of a grid of n images: the squarest rows × cols = n with cols at most MAX_ASPECT × rows
    (28 → 4 × 7, the preview grid's shape), else the most nearly square grid, which leaves some cells empty."""
    rows = next(r for r in range(math.isqrt(n), 0, -1) if n % r == 0)  # the squarest factorisation
    if n // rows <= MAX_ASPECT * rows:
        return rows, n // rows
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def square_grid(images: np.ndarray) -> Image.Image:
    """All images on one near-square white grid; empty cells stay white."""
    rows, cols = grid_shape(len(images))
    blanks = np.full((rows * cols - len(images), *images.shape[1:]), 255, dtype=np.uint8)
    return image_grid(np.concatenate([images, blanks]), rows, cols)


def to_pil(image: np.ndarray) -> Image.Image:
    """A uint8 (H, W, C) or (H, W) array as an image; one channel becomes a grey ("L") image."""
    return Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image)
