"""Faces from a trained generator, as a grid, one PNG each, or a latent walk.

Example: python -m dcgan_faces.generate --model runs/demo_64 --n 64 --out faces.png

The model is a run folder (its config comes along) or a saved .keras file; the latent size is read from it.
--preview draws the faces of the run's own preview grids, from the same latents.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from dcgan_faces import cli_types, imagefile
from dcgan_faces.animation import MEDIA_INSTALL, check_out, write_animation
from dcgan_faces.cli_types import Parser, UsageError, positive_float, positive_int
from dcgan_faces.preview import grid_shape, image_grid, preview_seeds, square_grid, to_pil
from dcgan_faces.sampling import generate_images, latent_size, latents, walk
from dcgan_faces.trained_model import open_model

MAX_GRID_SIDE = 16_384  # px: a grid wider or taller than this is refused (use --individual)


def save_png(image: Image.Image, path: Path) -> Path:
    return imagefile.save_png(image, path, "generated")


def seed_list(text: str) -> list[int]:
    try:
        numbers = [cli_types.seed(part) for part in text.split(",") if part.strip()]
    except (ValueError, argparse.ArgumentTypeError):
        numbers = []
    if not numbers:
        raise argparse.ArgumentTypeError(f"expected whole numbers from 0 separated by commas, got {text!r}")
    return numbers


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = Parser("dcgan_faces.generate", __doc__, prog)
    p.add_argument("--model", type=Path, required=True, metavar="RUN_OR_FILE",
                   help="run folder (its newest generator: generator.keras or a newer checkpoint) or a .keras file")
    p.add_argument("--n", type=positive_int, default=64, help="number of faces (default 64)")
    p.add_argument("--seed", type=cli_types.seed, default=7, help="random seed for the --n latents (default 7)")
    p.add_argument("--seeds", type=seed_list, metavar="1,5,9",
                   help="one face per listed seed instead of --n/--seed: the same seed gives the same face; with "
                        "--preview, the numbers of preview faces (0 is the grid's top left, 7 the second row's first)")
    p.add_argument("--preview", action="store_true",
                   help="the faces of the run's preview grids, from the same latents: alone, the grid itself (as "
                        "the run saved it); with --seeds, those faces (needs a run folder as --model)")
    p.add_argument("--truncation", type=positive_float, default=1.0, metavar="T",
                   help="multiply every latent by T (default 1.0). A plain scaling of the latent: values below "
                        "1 give more typical, less varied faces. Not StyleGAN's truncation trick")
    p.add_argument("--out", type=Path, help="output file (default faces.png, or faces.gif with --interpolate), "
                                            "or folder with --individual (default faces/)")
    p.add_argument("--individual", action="store_true", help="write one PNG per face into the --out folder")
    p.add_argument("--interpolate", type=positive_int, metavar="K",
                   help="write a looping slerp walk through K faces from --seed (or through the --seeds faces; "
                        "then K must equal their count) as a GIF, and an MP4 beside it with the [media] extra (an "
                        "--out NAME.mp4: the MP4 alone)")
    p.add_argument("--frames-per-step", type=positive_int, default=24,
                   help="frames between two faces of the walk (default 24)")
    p.add_argument("--fps", type=positive_float, default=24, help="frames per second of the walk (default 24)")
    return p


def _check(args: argparse.Namespace) -> None:
    if args.interpolate and args.seeds and len(args.seeds) != args.interpolate:
        raise UsageError(f"--interpolate {args.interpolate} with {len(args.seeds)} --seeds: give K equal to the "
                         "number of seeds, or drop --seeds")
    if args.interpolate and args.individual:
        raise UsageError("--individual and --interpolate cannot be combined; drop one")
    if args.interpolate and args.out:
        check_out(args.out)
    if args.preview and not args.model.is_dir():
        raise UsageError(f"--preview needs a run folder as --model (its config fixes the preview faces), not "
                         f"{args.model}")


def _latents(args: argparse.Namespace, generator, config) -> np.ndarray:
    if args.preview:
        return preview_seeds(config, args.seeds) * np.float32(args.truncation)
    return latents(latent_size(generator), args.n, args.seed, args.seeds, args.truncation)


def _names(args: argparse.Namespace, count: int) -> list[str]:
    if args.seeds:
        return [f"{'preview' if args.preview else 'seed'}-{s}.png" for s in args.seeds]
    return [f"face-{i:04d}.png" for i in range(count)]


def _run(args: argparse.Namespace, generator, config) -> list[Path]:
    z = _latents(args, generator, config)
    if args.interpolate:
        keys = z if args.seeds or args.preview else z[:args.interpolate]
        frames = generate_images(generator.predict_on_batch, walk(keys, args.frames_per_step))
        return write_animation(frames, args.out or Path("faces.gif"), args.fps)
    _check_grid_size(args, len(z), generator)
    images = generate_images(generator.predict_on_batch, z)
    if args.individual:
        folder = args.out or Path("faces")
        folder.mkdir(parents=True, exist_ok=True)
        return [save_png(to_pil(image), folder / name) for image, name in zip(images, _names(args, len(images)),
                                                                              strict=True)]
    out = args.out or Path("faces.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.preview and not args.seeds:
        return [save_png(image_grid(images, config.preview_rows, config.preview_cols), out)]
    return [save_png(square_grid(images), out)]


def _check_grid_size(args: argparse.Namespace, count: int, generator) -> None:
    if args.individual:
        return
    rows, cols = grid_shape(count)
    side = 16 + max(rows, cols) * (generator.output_shape[1] + 16)
    if side > MAX_GRID_SIDE:
        raise UsageError(f"--n {count}: a grid of {count:,} faces would be {side:,} px wide; pass --individual for "
                         "one PNG per face, or a smaller --n")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parser(prog).parse_args(argv)
    try:
        _check(args)
        generator, config = open_model(args.model)
        written = _run(args, generator, config)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: --out {args.out}: cannot write there ({error.strerror or error}); pick another path",
              file=sys.stderr)
        return 2
    if len(written) > 3:
        print(f"wrote {len(written)} faces in {written[0].parent}")
    else:
        gif_alone = args.interpolate and all(path.suffix.lower() == ".gif" for path in written)
        no_mp4 = f"; no MP4: {MEDIA_INSTALL}" if gif_alone else ""
        print("wrote " + ", ".join(str(path) for path in written) + no_mp4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
