"""Shared fixtures: tiny face-like images that the tests draw themselves."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from PIL import Image, ImageDraw


def draw_faces(folder, count=24, size=40, seed=0):
    """`count` small face drawings (JPEG and PNG, a subfolder included) in `folder`; returns the folder."""
    rng = np.random.default_rng(seed)
    (folder / "more").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        skin = tuple(int(v) for v in rng.integers(90, 240, 3))
        image = Image.new("RGB", (size, size + 8 * (i % 3)), tuple(int(v) for v in rng.integers(0, 255, 3)))
        draw = ImageDraw.Draw(image)
        draw.ellipse((6, 6, size - 6, size), fill=skin)
        for x in (size * 0.35, size * 0.65):
            draw.ellipse((x - 3, size * 0.4 - 2, x + 3, size * 0.4 + 2), fill=(20, 20, 20))
        draw.line((size * 0.4, size * 0.72, size * 0.6, size * 0.72), fill=(150, 40, 40), width=2)
        target = folder / "more" if i % 4 == 0 else folder
        image.save(target / (f"face{i:02d}.jpg" if i % 2 else f"face{i:02d}.png"))
    return folder


@pytest.fixture
def face_folder(tmp_path):
    return draw_faces(tmp_path / "faces")
