"""Frames as a looping GIF (and an MP4 beside it where the [media] extra, imageio-ffmpeg, is installed), or as
an MP4 alone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dcgan_faces import imagefile
from dcgan_faces.atomic import write_atomically
from dcgan_faces.cli_types import UsageError
from dcgan_faces.preview import to_pil

MEDIA_INSTALL = "pip install 'dcgan_faces[media]'"  # the extra that writes MP4s
FORMATS = (".gif", ".mp4")


def mp4_available() -> bool:
    try:
        import imageio.v2  # noqa: F401
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return False
    return True


def _even(frame: np.ndarray) -> np.ndarray:
    """RGB with even height and width (H.264 in yuv420p needs both), padded by repeating the edge."""
    rgb = np.repeat(frame[..., None], 3, axis=-1) if frame.ndim == 2 else frame
    rgb = np.repeat(rgb, 3, axis=-1) if rgb.shape[-1] == 1 else rgb
    return np.pad(rgb, ((0, rgb.shape[0] % 2), (0, rgb.shape[1] % 2), (0, 0)), mode="edge")


def write_gif(frames: Sequence[np.ndarray], path: Path, fps: float) -> Path:
    return imagefile.save_gif([to_pil(np.asarray(frame)) for frame in frames], path, "animation", 1000 / fps)


def write_mp4(frames: Sequence[np.ndarray], path: Path, fps: float) -> Path:
    import imageio.v2 as imageio

    return write_atomically(path, lambda tmp: imageio.mimwrite(
        tmp, [_even(np.asarray(frame)) for frame in frames], fps=fps, codec="libx264", quality=8,
        macro_block_size=1, ffmpeg_log_level="error"))


def check_out(path: Path, flag: str = "--out") -> None:
    """UsageError unless `path` names an animation that can be written here: a .gif, or an .mp4 with the extra."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"{flag} {path}: an animation is a .gif or an .mp4, not {suffix or 'a name without one'}; "
                         f"e.g. {flag} {path.with_suffix('.gif')}")
    if suffix == ".mp4" and not mp4_available():
        raise UsageError(f"{flag} {path}: an MP4 needs imageio-ffmpeg: {MEDIA_INSTALL} (or write a GIF: {flag} "
                         f"{path.with_suffix('.gif')})")


def write_animation(frames: Sequence[np.ndarray], path: Path, fps: float, mp4: bool = True) -> list[Path]:
    """`path` in the format its extension names (see `check_out`); a GIF also as the same name .mp4 when `mp4`
    and imageio-ffmpeg is installed.

    Frames are uint8 (H, W, C) or (H, W) arrays. Returns the files written.
    """
    path = Path(path)
    check_out(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".mp4":
        return [write_mp4(frames, path, fps)]
    written = [write_gif(frames, path, fps)]
    if mp4 and mp4_available():
        written.append(write_mp4(frames, path.with_suffix(".mp4"), fps))
    return written
