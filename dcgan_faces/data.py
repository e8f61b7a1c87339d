"""The training images: a source's cache (cache.py), built or rebuilt first when missing or stale, opened
memory-mapped (from a local copy on a slow mount). Where images come from is the sources' business (sources/)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dcgan_faces import cache, sources
from dcgan_faces.sources.base import CacheSettings, DataError, Log, Scan, Source
from dcgan_faces.staging import local_copy

__all__ = ["DataError", "Dataset", "data_change", "describe", "open_dataset", "open_scanned"]

LISTING = "data_listing"  # the checkpoint array that holds the data's listing (see sources.folder.identify)


@dataclass
class Dataset:
    images: np.ndarray  # uint8 (N, res, res, C), usually a read-only memmap
    source: str
    cache_path: Path | None
    skipped: dict[str, int] = field(default_factory=dict)
    fingerprint: str | None = None  # of the source's files (folders only): the same images after a move
    check: cache.Check | None = None  # the background check of a large cache's checksums
    listing: np.ndarray | None = None  # see sources.folder.identify: saved with checkpoints, see data_change


def open_dataset(data: str | Source | None, cache_dir: Path, res: int, channels: int = 3, log: Log = print,
                 min_size: int = 0, exclude: Iterable[Path] = ()) -> Dataset:
    """The images of `data` (a --data value, see sources.parse, or a source), from their cache.
    `exclude`: folders never read as images (the run folder)."""
    source = data if isinstance(data, Source) else sources.parse(data)
    return open_scanned(source.scan(CacheSettings(cache_dir, res, channels, min_size), log, exclude), log)


def open_scanned(scan: Scan, log: Log = print) -> Dataset:
    """The images of a scanned source, from their cache, built or rebuilt first when missing or stale."""
    files = scan.files
    try:
        cache.prepare_folder(files.tensor.parent)
        cache.adopt_moved(files, scan.expected, log)
        reason = cache.why_stale(files, scan.expected)
        if reason is not None:
            if reason != "no cache yet":
                log(f"rebuilding {files.tensor}: {reason}")
            rows, fill = scan.prepare()
            shape = (rows, scan.expected["res"], scan.expected["res"], scan.expected["channels"])
            built = cache.write(files, shape, fill, scan.expected)
            if not scan.quiet:
                log(f"cached {built['images']} images in {files.tensor}")
        elif scan.downloads:
            log(f"resuming from cached data: {files.tensor} holds {scan.key}; nothing to download")
        elif not scan.quiet:
            log(f"using cached {files.tensor} (built from {scan.key})")
    except cache.CacheError as error:
        raise DataError(str(error)) from None
    manifest = files.read_manifest() or {}
    opened = local_copy(files.tensor)
    large = opened.stat().st_size > cache.FULL_CHECK_UP_TO and reason is None  # a new build was checked whole
    return Dataset(np.load(opened, mmap_mode="r"), scan.key, files.tensor, manifest.get("skipped", {}),
                   scan.fingerprint, cache.Check(files, opened) if large else None, scan.listing)


def describe(source: Source, wanted: CacheSettings, exclude: Iterable[Path] = ()) -> str:
    """For --dry-run: the images `source` names and the state of their cache; nothing is built or fetched."""
    try:
        scan = source.scan(wanted, lambda text: None, exclude)
    except DataError as error:
        return f"cannot be used: {error}"
    reason = cache.why_stale(scan.files, scan.expected)
    if reason is None:
        state = f"up to date, {(scan.files.read_manifest() or {}).get('images', '?'):,} images"
    elif reason == "no cache yet":
        state = "not built yet: built first" + (" (downloaded first)" if scan.downloads else "")
    else:
        state = f"stale ({reason}): rebuilt first"
    return f"{scan.description}; cache {scan.files.tensor}: {state}"


def data_change(state: dict, arrays: dict, dataset: Dataset) -> str | None:
    """For a resumed run: one line saying how its images changed since the checkpoint (`state`, `arrays`)
    was saved, or None when they did not (or cannot be compared: not a folder)."""
    recorded = state.get("data_fingerprint")
    if recorded is None or dataset.fingerprint is None or recorded == dataset.fingerprint:
        return None
    before = arrays.get(LISTING)
    if before is None or dataset.listing is None:
        what = "image files added, removed or edited (the checkpoint does not record which)"
    else:
        now = dataset.listing
        added = len(np.setdiff1d(now[:, 0], before[:, 0]))
        removed = len(np.setdiff1d(before[:, 0], now[:, 0]))
        edited = len(np.setdiff1d(now[:, 1], before[:, 1])) - added
        what = f"{added:,} image files added, {removed:,} removed" + (f", {edited:,} edited" if edited > 0 else "")
    return (f"the data changed since the checkpoint of iteration {state.get('iteration', 0):,}: {what}; training "
            f"goes on with {len(dataset.images):,} images")
