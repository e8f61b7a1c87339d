"""Every image this package writes carries a mark in its metadata, so that a data scan never trains on it.

PNG: text chunks `Software: dcgan_faces VERSION` and `dcgan_faces: WHAT` (before the pixels, so reading the
header finds them). GIF: a comment extension `dcgan_faces VERSION: WHAT`. The mark survives a copy or a
move of the file, wherever it lands (`generate --out photos/`, a grid dragged into the data folder).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, PngImagePlugin

from dcgan_faces import __version__
from dcgan_faces.atomic import write_atomically

KEY = "dcgan_faces"
SOFTWARE = f"dcgan_faces {__version__}"


def png_metadata(what: str) -> dict[str, str]:
    """The PNG text entries that mark an image as written by this package (`what`: grid, plot, face...)."""
    return {"Software": SOFTWARE, KEY: what}


def save_png(image: Image.Image, path: Path, what: str) -> Path:
    """`image` as a marked PNG at `path`, atomically."""
    info = PngImagePlugin.PngInfo()
    for key, value in png_metadata(what).items():
        info.add_text(key, value)
    return write_atomically(path, lambda tmp: image.save(tmp, format="PNG", pnginfo=info))


def save_gif(frames: list[Image.Image], path: Path, what: str, duration: float) -> Path:
    """`frames` as a marked, looping GIF at `path`, atomically; `duration`: ms per frame."""
    comment = f"{SOFTWARE}: {what}".encode()
    return write_atomically(path, lambda tmp: frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                                                             duration=duration, loop=0, comment=comment))


def is_marked(image: Image.Image) -> bool:
    """Whether an opened image (its header read, pixels not yet decoded) was written by this package."""
    if KEY in image.info:
        return True
    comment = image.info.get("comment", b"")
    return isinstance(comment, bytes) and comment.startswith(KEY.encode() + b" ")
