"""A tiny trained run (32 px, 4 iterations, grids at 0, 2 and 4), made once per test session."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

RES = 32
STEPS = 4
PREVIEWS = 3  # iterations 0, 2, 4


def draw_faces(folder: Path, count: int = 24, size: int = 32) -> Path:
    """`count` small PNG face drawings: skin-coloured oval, two eyes and a mouth on a random background."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        background, skin = (tuple(int(v) for v in rng.integers(lo, 250, 3)) for lo in (0, 90))
        image = Image.new("RGB", (size, size), background)
        draw = ImageDraw.Draw(image)
        draw.ellipse((5, 3, size - 5, size - 2), fill=skin)
        for x in (size * 0.36, size * 0.64):
            draw.ellipse((x - 2, size * 0.4 - 1, x + 2, size * 0.4 + 2), fill=(20, 20, 20))
        draw.line((size * 0.4, size * 0.72, size * 0.6, size * 0.72), fill=(150, 40, 40), width=2)
        image.save(folder / f"face{i:02d}.png")
    return folder


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """Path of a finished run folder: config, metrics, 3 preview grids, checkpoints, generator.keras.

    Each test module that imports this fixture gets a fixture definition of its own, so the run is kept at a
    fixed place in the session's temporary folder and trained only by the first of them.
    """
    from dcgan_faces import train

    base = tmp_path_factory.getbasetemp() / "tiny_run"
    if (base / "run" / "generator.keras").exists():
        return base / "run"
    faces = draw_faces(base / "faces")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = train.main(["--res", str(RES), "--steps", str(STEPS), "--save-every", "2", "--batch-size", "8",
                           "--data", str(faces), "--cache-dir", str(base / "cache"), "--out", str(base / "run")])
    finally:
        for sig, handler in handlers.items():  # train installs its own Ctrl-C handling
            signal.signal(sig, handler)
    assert code == 0
    return base / "run"
