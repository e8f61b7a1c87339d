"""`python -m dcgan_faces.prepare`: build (or check) the cached training tensor without training."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dcgan_faces.config import upsampling_plan
from dcgan_faces.data import GDRIVE_PREFIX, DataError, open_dataset


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dcgan_faces.prepare", description=__doc__)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", help="folder of face images (default ./face_images, else the built-in demo faces)")
    source.add_argument("--gdrive", metavar="ID_OR_URL", help="Google Drive file id, share URL or folder URL")
    p.add_argument("--res", type=int, default=64, help="image size in px (default 64)")
    p.add_argument("--cache-dir", type=Path, default=Path("data_cache"), help="default data_cache/")
    p.add_argument("--min-size", type=int, default=0, help="skip images whose short side is below this (default 0: "
                                                          "upscale them)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        upsampling_plan(args.res)
        data = GDRIVE_PREFIX + args.gdrive if args.gdrive else args.data
        dataset = open_dataset(data, args.cache_dir, args.res, min_size=args.min_size)
    except (ValueError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    images = dataset.images
    skipped = ", ".join(f"{n} {why}" for why, n in dataset.skipped.items()) or "none"
    print(f"{dataset.cache_path}: {len(images):,} images of {images.shape[1]}×{images.shape[2]} px, "
          f"{images.nbytes / 2**20:,.1f} MiB; files skipped: {skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
