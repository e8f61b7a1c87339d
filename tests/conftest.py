"""Shared fixtures: tiny face-like images that the tests draw themselves, and a tiny trained run."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

TINY_RES = 32
TINY_STEPS = 4
TINY_PREVIEWS = 3  # iterations 0, 2, 4


def draw_faces(folder: Path, count: int = 24, size: int = 40, seed: int = 0) -> Path:
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


def train_quietly(argv: list[str]) -> int:
    """train.main, with the process's signal handlers as they were (train installs its own)."""
    from dcgan_faces import train

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return train.main(argv)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def pytest_collection_modifyitems(items):
    """A test that needs the trained `tiny_run` is slow, like one that trains a model itself."""
    for item in items:
        if "tiny_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def float32_after_each_test():
    """A training run leaves its precision as the process's dtype policy (a bfloat16 one, where `auto` picks
    it): the next test starts from Keras's float32 again."""
    yield
    import sys

    if "keras" in sys.modules:
        sys.modules["keras"].mixed_precision.set_global_policy("float32")


@pytest.fixture
def face_folder(tmp_path):
    return draw_faces(tmp_path / "faces")


def train_tiny_run(base: Path, *extra: str) -> Path:
    """A finished run folder under `base` (32 px, 4 iterations, grids at 0, 2 and 4), trained with `extra` flags."""
    faces = draw_faces(base / "faces")
    code = train_quietly(["--res", str(TINY_RES), "--steps", str(TINY_STEPS), "--save-every", "2", "--batch-size",
                          "8", "--data", str(faces), "--cache-dir", str(base / "cache"), "--out", str(base / "run"),
                          *extra])
    assert code == 0
    return base / "run"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """Path of a finished run folder (32 px, 4 iterations, grids at 0, 2 and 4): config, metrics, previews,
    checkpoints, generator.keras. Tests must not change it (copy it first)."""
    return train_tiny_run(tmp_path_factory.mktemp("tiny_run"))
