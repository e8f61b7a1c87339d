"""What every kind of data shares: the `Source` the command line names, and the `Scan` of its images (found, not
decoded) with the cache that holds them. Each kind lives in its own module beside this one."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcgan_faces.cache import CacheFiles
from dcgan_faces.cli_types import CommandError
from dcgan_faces.sources import pixels

Log = Callable[[str], None]
Fill = Callable[[np.ndarray], tuple[int, dict]]  # writes rows of the cache; returns (rows kept, manifest entries)


class DataError(CommandError):
    """The training data cannot be used; the message says which path and what to do."""


def shown(path: Path) -> str:
    """A path as printable text, even when its name is not valid UTF-8."""
    return os.fsencode(path).decode("utf-8", "replace")


@dataclass(frozen=True)
class CacheSettings:
    """The cache a run asks for: the folder of caches and the size of the images in it."""

    cache_dir: Path
    res: int
    channels: int = 3
    min_size: int = 0

    def files(self, key: str, name: str) -> CacheFiles:
        """The cache of the source recorded as `key`, `name` making its file name readable."""
        return CacheFiles.for_source(self.cache_dir, key, name, self.res, self.channels)

    def expected(self, key: str, identity: dict) -> dict:
        """The manifest entries a cache of these images (`identity`: of their files) must match."""
        return {"source": key, **identity, "res": self.res, "channels": self.channels,
                "preprocessing": {**pixels.preprocessing(), "min_size": self.min_size}}


@dataclass
class Scan:
    """A source's images found for one cache, nothing decoded. `prepare()`, called only when the cache must be
    built, returns how many rows it may need and the `fill` that writes them, downloading first where need be."""

    key: str  # what config.json records once the data is open: a resolved path, "demo"...
    description: str
    files: CacheFiles
    expected: dict  # the manifest entries the cache must match
    prepare: Callable[[], tuple[int, Fill]]
    fingerprint: str | None = None  # of the image files (folders only): the same images after a move
    listing: np.ndarray | None = None  # (folders only) saved with checkpoints, see data.data_change
    files_found: int | None = None  # image files (or array rows) seen before decoding; None until downloaded
    downloads: bool = False  # building the cache downloads the images first
    quiet: bool = False  # reusing or building the cache goes unsaid


class Source:
    """Where a run's images come from, as the command line names them; one subclass per kind of data."""

    key: str | None = None  # what config.json records as "data"; None: nothing named (see demo.DefaultData)
    run_name = "data"  # a new run's folder is runs/<run_name>_<res> unless --out says otherwise

    @classmethod
    def from_text(cls, text: str) -> Source | None:
        """The source that --data TEXT (or a recorded key) names when it is of this kind; None otherwise."""
        return None

    def gone(self) -> str | None:
        """For a resumed run: None while the images are where it recorded them; else one line saying what to do."""
        return None

    def replaces(self, recorded: str | None) -> Source | None:
        """For a run resumed with nothing named (key None): the source that now stands where the run's recorded
        data did, when resuming on that data would surprise; None when it would not."""
        return None

    def image_size(self) -> int | None:
        """The images' own size when known before decoding (an array), so that a new run trains at it."""
        return None

    def scan(self, wanted: CacheSettings, log: Log = print, exclude: Iterable[Path] = ()) -> Scan:
        """The images found and their cache named, nothing decoded or fetched; DataError when unusable.
        `exclude`: folders never read as images (the run folder)."""
        raise NotImplementedError


class PathSource(Source):
    """A source that is a file or folder on disk, recorded by its absolute path."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser().resolve()
        self.key = str(self.path)
        self.run_name = self.path.name

    def gone(self) -> str | None:
        return None if self.path.exists() else (f"the run's images were in {self.key}, which is gone; if they "
                                                 "moved, pass --data with their new place (the same files are "
                                                 "recognised and the run goes on)")
