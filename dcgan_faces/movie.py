"""The run's preview grids as one animation (GIF or MP4; MP4 with the [media] extra), each stamped with its iteration.

Example: python -m dcgan_faces.movie runs/demo_64
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from dcgan_faces.animation import MEDIA_INSTALL, check_out, mp4_available, write_animation
from dcgan_faces.cli_types import Parser, UsageError, positive_float
from dcgan_faces.runfolder import RunFolder

BAND = 24  # px of white above each grid for the caption
TEXT_SIZE = 14


def iteration_of(preview: Path) -> int:
    """previews/iter-00001200.png → 1200."""
    return int(preview.stem.removeprefix("iter-"))


def stamped(preview: Path) -> np.ndarray:
    """The grid with a white band above it reading "iteration 1,200"."""
    with Image.open(preview) as grid:
        framed = ImageOps.expand(grid.convert("L" if grid.mode == "L" else "RGB"), (0, BAND, 0, 0), fill="white")
    font = ImageFont.load_default(size=TEXT_SIZE)
    ImageDraw.Draw(framed).text((BAND // 2, BAND // 2), f"iteration {iteration_of(preview):,}", fill="black",
                                font=font, anchor="lm")
    return np.asarray(framed)


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = Parser("dcgan_faces.movie", __doc__, prog, usage="%(prog)s RUN [options]")
    p.add_argument("run", type=Path, metavar="RUN", help="run folder with previews/iter-*.png")
    p.add_argument("--out", type=Path, help="animation to write, a .gif or an .mp4 (default RUN/progress.gif)")
    p.add_argument("--fps", type=positive_float, default=8, help="grids per second (default 8)")
    p.add_argument("--mp4", action="store_true",
                   help="also write an MP4 beside the GIF (needs the [media] extra); --out NAME.mp4 writes one alone")
    return p


def output(args: argparse.Namespace) -> Path:
    """The animation to write; UsageError when it cannot be written here."""
    if args.mp4 and not mp4_available():
        raise UsageError(f"--mp4 needs imageio-ffmpeg: {MEDIA_INSTALL} (without --mp4 the GIF alone is written)")
    out = args.out or args.run / "progress.gif"
    check_out(out)
    return out


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parser(prog).parse_args(argv)
    try:
        out = output(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    previews = RunFolder(args.run).preview_files()
    if not previews:
        print(f"error: RUN {args.run}: no preview grids in {args.run / 'previews'}; give a run folder that has "
              "trained past its first grid", file=sys.stderr)
        return 2
    frames, damaged = [], []
    for preview in previews:
        try:
            frames.append(stamped(preview))
        except (OSError, SyntaxError, ValueError):  # a grid cut short (a kill, a full disk, a Drive hiccup)
            damaged.append(preview.name)
    if damaged:
        print(f"note: skipped {len(damaged)} damaged grid(s): {', '.join(damaged[:5])}", file=sys.stderr)
    if not frames:
        print(f"error: RUN {args.run}: none of its preview grids can be read", file=sys.stderr)
        return 2
    try:
        written = write_animation(frames, out, args.fps, mp4=args.mp4)
    except OSError as error:
        print(f"error: --out {out}: cannot write there ({error.strerror or error}); pick another path",
              file=sys.stderr)
        return 2
    print(f"wrote {', '.join(str(path) for path in written)} ({len(frames)} grids)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
