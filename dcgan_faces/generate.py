"""Faces from a trained generator, as a grid, one PNG each, or a latent walk.

Example: python -m dcgan_faces.generate --model runs/demo_64 --n 64 --out faces.png

The model is a run folder (its config comes along) or a saved .keras file; the latent size is read from it.
--preview draws the faces of the run's own preview grids, from the same latents.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from dcgan_faces import cli_types, imagefile
from dcgan_faces.atomic import write_atomically
from dcgan_faces.cli_types import Parser, positive_float, positive_int
from dcgan_faces.preview import image_grid, to_uint8

BATCH = 64
PROGRESS_FROM = 8 * BATCH  # faces: from this many on, a progress bar
MAX_GRID_SIDE = 16_384  # px: a grid wider or taller than this is refused (use --individual)


# ------------------------------------------------------------------------------------------------ latents

def latent_size(generator) -> int:
    return int(generator.input_shape[-1])


def latents(size: int, n: int = 64, seed: int = 7, seeds: Sequence[int] | None = None,
            truncation: float = 1.0) -> np.ndarray:
    """(count, size) float32 normal latents, scaled by `truncation`.

    With `seeds`, one latent per seed (default_rng(seed).standard_normal(size)), so a face can be found
    again by its number; otherwise `n` latents drawn from default_rng(`seed`).
    """
    if seeds:
        z = np.stack([np.random.default_rng(s).standard_normal(size) for s in seeds])
    else:
        z = np.random.default_rng(seed).standard_normal((n, size))
    return (z * truncation).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation from `a` (t=0) to `b` (t=1): the direction turns along the great circle and
    the length goes linearly from |a| to |b|, so every step keeps the norm of a typical latent."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    unit_a, unit_b = a / norm_a, b / norm_b
    omega = np.arccos(np.clip(np.dot(unit_a, unit_b), -1.0, 1.0))
    if omega < 1e-6:  # (nearly) the same direction
        direction = unit_a
    else:
        direction = (np.sin((1 - t) * omega) * unit_a + np.sin(t * omega) * unit_b) / np.sin(omega)
        direction /= np.linalg.norm(direction)
    return ((1 - t) * norm_a + t * norm_b) * direction


def walk(keys: np.ndarray, frames_per_step: int) -> np.ndarray:
    """A closed slerp walk through the rows of `keys` and back to the first: len(keys)·frames_per_step rows."""
    steps = [slerp(keys[i], keys[(i + 1) % len(keys)], f / frames_per_step)
             for i in range(len(keys)) for f in range(frames_per_step)]
    return np.asarray(steps, dtype=np.float32)


# ------------------------------------------------------------------------------------------------- images

def generate_images(generate: Callable[[np.ndarray], np.ndarray], z: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) faces for latents `z`, BATCH at a time. `generate` maps latents to images in
    [-1, 1] in inference mode: a model's predict_on_batch, or Trainer.generate."""
    from tqdm import tqdm

    starts = range(0, len(z), BATCH)
    bar = tqdm(starts, unit="batch", desc="generating", disable=len(z) < PROGRESS_FROM, file=sys.stderr)
    return to_uint8(np.concatenate([np.asarray(generate(z[i:i + BATCH])) for i in bar]))


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of the most nearly square grid that holds n images."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def grid(images: np.ndarray) -> Image.Image:
    """All images on one near-square white grid; empty cells stay white."""
    rows, cols = grid_shape(len(images))
    blanks = np.full((rows * cols - len(images), *images.shape[1:]), 255, dtype=np.uint8)
    return image_grid(np.concatenate([images, blanks]), rows, cols)


def to_pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image)


def save_png(image: Image.Image, path: Path) -> Path:
    return imagefile.save_png(image, path, "generated")


# ------------------------------------------------------------------------------------------------ writing

MEDIA_INSTALL = "pip install 'dcgan_faces[media]'"  # the extra that writes MP4s


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


def write_animation(frames: Sequence[np.ndarray], path: Path, fps: float, mp4: bool = True) -> list[Path]:
    """`path` as a looping GIF, plus the same name .mp4 when `mp4` and imageio-ffmpeg is installed.

    Frames are uint8 (H, W, C) or (H, W) arrays. Returns the files written.
    """
    path = Path(path).with_suffix(".gif")
    path.parent.mkdir(parents=True, exist_ok=True)
    written = [write_gif(frames, path, fps)]
    if mp4 and mp4_available():
        written.append(write_mp4(frames, path.with_suffix(".mp4"), fps))
    return written


# ---------------------------------------------------------------------------------------------------- CLI

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
                        "then K must equal their count) as a GIF, and an MP4 beside it with the [media] extra")
    p.add_argument("--frames-per-step", type=positive_int, default=24,
                   help="frames between two faces of the walk (default 24)")
    p.add_argument("--fps", type=positive_float, default=24, help="frames per second of the walk (default 24)")
    return p


class UsageError(Exception):
    """Bad input: one line naming the flag or path and what to do."""


def open_model(path: Path):
    """(generator, config or None) of a run folder or model file; UsageError when it cannot be loaded."""
    from dcgan_faces import quiet

    quiet.import_tensorflow()
    from dcgan_faces.runfolder import ModelError, load_generator

    try:
        return load_generator(path, log=lambda text: print(text, file=sys.stderr))
    except ModelError as error:
        raise UsageError(str(error)) from None


def _check(args: argparse.Namespace) -> None:
    if args.interpolate and args.seeds and len(args.seeds) != args.interpolate:
        raise UsageError(f"--interpolate {args.interpolate} with {len(args.seeds)} --seeds: give K equal to the "
                         "number of seeds, or drop --seeds")
    if args.interpolate and args.individual:
        raise UsageError("--individual and --interpolate cannot be combined; drop one")
    if args.interpolate and args.out and args.out.suffix.lower() == ".mp4" and not mp4_available():
        raise UsageError(f"--out {args.out}: an MP4 needs imageio-ffmpeg: {MEDIA_INSTALL} (or write a GIF: --out "
                         f"{args.out.with_suffix('.gif')})")
    if args.preview and not args.model.is_dir():
        raise UsageError(f"--preview needs a run folder as --model (its config fixes the preview faces), not "
                         f"{args.model}")


def _latents(args: argparse.Namespace, generator, config) -> np.ndarray:
    if args.preview:
        from dcgan_faces.preview import preview_seeds

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
    return [save_png(grid(images), out)]


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
        no_mp4 = f"; no MP4: {MEDIA_INSTALL}" if args.interpolate and len(written) == 1 else ""
        print("wrote " + ", ".join(str(path) for path in written) + no_mp4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
