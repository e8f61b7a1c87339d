"""Preview grids: faces from the fixed seeds laid out on white, as the course notebook did."""

from __future__ import annotations

import numpy as np
from PIL import Image


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
    return Image.fromarray(canvas[..., 0] if channels == 1 else canvas)
