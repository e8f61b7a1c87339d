"""The built-in procedural faces (`--data demo`), and what no --data means: ./face_images if it holds images,
else the demo faces."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from dcgan_faces import synthetic
from dcgan_faces.cache import CacheFiles
from dcgan_faces.sources.base import CacheSettings, Log, Scan, Source
from dcgan_faces.sources.folder import ImageFolder, holds_images

DEMO_IMAGES = 2_000
DEFAULT_DATA_DIR = Path("face_images")


class DemoFaces(Source):
    """Procedural faces drawn into the cache on first use (synthetic.py): no download, no folder."""

    key = "demo"
    run_name = "demo"

    @classmethod
    def from_text(cls, text: str) -> DemoFaces | None:
        return cls() if text == "demo" else None

    def scan(self, wanted: CacheSettings, log: Log = print, exclude: Iterable[Path] = ()) -> Scan:
        files = CacheFiles.of(wanted.cache_dir, "synthetic", wanted.res, wanted.channels)

        def fill(out: np.ndarray) -> tuple[int, dict]:
            log(f"drawing {DEMO_IMAGES} demo faces at {wanted.res} px into {files.tensor} (first use only)")
            out[:] = demo_faces(DEMO_IMAGES, wanted.res, wanted.channels)
            return DEMO_IMAGES, {}

        expected = {"source": "demo", "res": wanted.res, "channels": wanted.channels,
                    "generator_version": synthetic.VERSION, "count": DEMO_IMAGES}
        return Scan("demo", f"the built-in demo faces ({DEMO_IMAGES:,})", files, expected,
                    lambda: (DEMO_IMAGES, fill), files_found=DEMO_IMAGES, quiet=True)


def demo_faces(count: int, res: int, channels: int = 3) -> np.ndarray:
    """The first `count` demo faces as their cache holds them; their pixels change: bump synthetic.VERSION."""
    faces = synthetic.make_faces(count, res, seed=0)
    if channels == 1:
        faces = np.asarray([np.asarray(Image.fromarray(f).convert("L")) for f in faces])[..., None]
    return faces


class DefaultData(Source):
    """No --data given: ./face_images when it holds images, else the demo faces; a new run's folder is named after
    the one used (runs/face_images_RES, runs/demo_RES)."""

    @staticmethod
    def chosen(exclude: Iterable[Path] = ()) -> Source:
        """What no --data means now."""
        return ImageFolder(DEFAULT_DATA_DIR) if holds_images(DEFAULT_DATA_DIR, exclude) else DemoFaces()

    @property
    def run_name(self) -> str:
        return self.chosen().run_name

    def scan(self, wanted: CacheSettings, log: Log = print, exclude: Iterable[Path] = ()) -> Scan:
        source = self.chosen(exclude)
        if isinstance(source, DemoFaces):
            log("no --data given: training on the built-in demo faces. For real faces: --data /path/to/photos")
        else:
            log(f"no --data given: training on the images in ./{DEFAULT_DATA_DIR}")
        return source.scan(wanted, log, exclude)

    def replaces(self, recorded: str | None) -> Source | None:
        """For a run resumed with no --data: what no --data means now, when the run trained on what it meant then
        (the demo faces or a face_images folder) and that is now other images; None when resuming on them is
        what the same command did before."""
        now = self.chosen()
        meant_then = recorded == DemoFaces.key or (recorded is not None
                                                   and Path(recorded).name == DEFAULT_DATA_DIR.name)
        return now if meant_then and now.key != recorded else None
