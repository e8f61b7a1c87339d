"""Where the images come from: one `Source` per kind of data, one module each, made here from --data / --gdrive
(or from the key a run recorded in config.json) by `parse`. A new kind is a module and a line in KINDS."""

from __future__ import annotations

from dcgan_faces.sources.array import ArrayFile
from dcgan_faces.sources.base import CacheSettings, DataError, Scan, Source
from dcgan_faces.sources.demo import DefaultData, DemoFaces
from dcgan_faces.sources.folder import ImageFolder
from dcgan_faces.sources.gdrive import GoogleDrive

KINDS: tuple[type[Source], ...] = (GoogleDrive, DemoFaces, ArrayFile, ImageFolder)  # asked in order; a folder last

__all__ = ["CacheSettings", "DataError", "Scan", "Source", "parse"]


def parse(data: str | None, gdrive: str | None = None) -> Source:
    """The source that --data DATA or --gdrive ID_OR_URL names (at most one is given; a recorded key is a --data);
    neither: the default (./face_images, else the demo faces). DataError for a Drive link that is none."""
    if gdrive is not None:
        return GoogleDrive(gdrive)
    if data is None:
        return DefaultData()
    return next(source for kind in KINDS if (source := kind.from_text(data)) is not None)
