"""Build (or list, check, remove) the cached training tensors without training.

Example: python -m dcgan_faces.prepare --data ~/photos/faces --res 64
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dcgan_faces import cache, sources
from dcgan_faces.atomic import remove_stale
from dcgan_faces.cli_types import CommandError, Parser, non_negative_int
from dcgan_faces.config import TrainConfig, resolution
from dcgan_faces.data import open_dataset
from dcgan_faces.interrupt import Interrupted, exit_code, sigterm_unwinds
from dcgan_faces.resolve import own_image_size

DEFAULT_RES = TrainConfig.res  # train's default


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = Parser("dcgan_faces.prepare", __doc__, prog)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", help="folder of face images (default ./face_images, else the built-in demo faces)")
    source.add_argument("--gdrive", metavar="ID_OR_URL", help="Google Drive file id, share URL or folder URL")
    p.add_argument("--res", type=resolution,
                   help=f"image size in px (default: an array's own size, else {DEFAULT_RES})")
    p.add_argument("--cache-dir", type=Path, default=Path("data_cache"), help="default data_cache/")
    p.add_argument("--min-size", type=non_negative_int, default=0,
                   help="skip images whose short side is below this (default 0: upscale them)")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="list the caches in --cache-dir and exit")
    action.add_argument("--remove", metavar="FILE_OR_SOURCE",
                        help="delete the caches with this file name (as --list shows it) or this source folder")
    action.add_argument("--verify", action="store_true",
                        help="check every byte of every cache in --cache-dir against its checksums")
    return p


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parser(prog).parse_args(argv)
    if args.list:
        return list_caches(args.cache_dir)
    if args.remove:
        return remove(args.cache_dir, args.remove)
    if args.verify:
        return verify(args.cache_dir)
    try:
        with sigterm_unwinds():  # a temporary file is removed on the way out
            source = sources.parse(args.data, args.gdrive)
            dataset = open_dataset(source, args.cache_dir, cache_size(source, args.res), min_size=args.min_size)
    except CommandError as refused:  # DataError, SetupError: one line, exit 2
        return refused.report()
    except (Interrupted, KeyboardInterrupt) as stop:
        return exit_code(stop, "building the cache")
    images = dataset.images
    skipped = ", ".join(f"{n} {why}" for why, n in dataset.skipped.items()) or "none"
    print(f"{dataset.cache_path}: {len(images):,} images of {images.shape[1]}×{images.shape[2]} px, "
          f"{images.nbytes / 2**20:,.1f} MiB; files skipped: {skipped}")
    return 0


def cache_size(source: sources.Source, res: int | None) -> int:
    """--res, else an array's own size (the size `train` uses for it), else DEFAULT_RES."""
    if res is not None:
        return res
    own = own_image_size(source)
    if own:
        print(f"{source.key}: cached at its own {own}×{own} px, the size train uses for it (--res for another)")
    return own or DEFAULT_RES


def list_caches(cache_dir: Path) -> int:
    """Print the caches; what killed builds left half-written is removed first (it is no cache)."""
    remove_stale(Path(cache_dir))
    found = cache.list_caches(cache_dir)
    if not found:
        print(f"no caches in {cache_dir}")
    for entry in found:
        print(f"{entry['file']}  {entry['res']} px  {entry['images']} images  {entry['mib']:,.1f} MiB  "
              f"from {entry['source']}")
    say_strays(cache_dir)
    return 0


def say_strays(cache_dir: Path) -> None:
    if strays := cache.strays(cache_dir):
        print(f"not caches (no manifest of dcgan_faces beside them), left alone: {', '.join(strays)}")


def remove(cache_dir: Path, which: str) -> int:
    removed = cache.remove(cache_dir, which)
    if not removed:
        stray = which in {name for found in cache.strays(cache_dir) for name in (found, Path(found).stem)}
        why = "is no cache (no manifest of dcgan_faces beside it), so it is left alone" if stray else \
            "no cache there has that file name or source (see --list)"
        print(f"error: --remove {which} in {cache_dir}: {why}", file=sys.stderr)
        return 2
    print("removed " + ", ".join(str(path) for path in removed))
    return 0


def verify(cache_dir: Path) -> int:
    damaged = 0
    for entry in cache.list_caches(cache_dir):
        tensor = Path(cache_dir) / entry["file"]
        problem = cache.verify(cache.CacheFiles(tensor, tensor.with_suffix(".json")))
        damaged += problem is not None
        print(f"{entry['file']}: {problem or 'intact'}")
    say_strays(cache_dir)
    return 1 if damaged else 0


if __name__ == "__main__":
    sys.exit(main())
