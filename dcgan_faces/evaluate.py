"""SWD and face hit rate of a generator against real images, printed as JSON.

Example: python -m dcgan_faces.evaluate --model runs/demo_64 --n 1000

Real images are a fixed-seed sample without replacement; fakes come from fixed latents; both sets are equal in
size, so figures from different iterations or runs with the same --n and --seed compare directly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from dcgan_faces import cli_types
from dcgan_faces.cli_types import MIN_EVAL_IMAGES, MIN_FLOOR_IMAGES, Parser, UsageError
from dcgan_faces.data import DataError, open_dataset
from dcgan_faces.evaluation import evaluate_generator
from dcgan_faces.metrics import INSTALL, opencv_available
from dcgan_faces.sampling import latent_size
from dcgan_faces.trained_model import model_iteration, open_model


def load_real(source: str, cache_dir: Path, res: int, channels: int) -> np.ndarray:
    """uint8 (N, res, res, channels) images from a .npy cache file, a folder (cached on first use) or "demo"."""
    path = Path(source)
    if path.is_file() and path.suffix == ".npy":
        images = np.load(path, mmap_mode="r")
        if images.dtype != np.uint8 or images.shape[1:] != (res, res, channels):
            raise UsageError(f"--real {path} holds {images.dtype} {images.shape[1:]} images; the generator "
                             f"makes uint8 {(res, res, channels)}: give a cache built at --res {res}")
        return images
    if source != "demo" and not path.is_dir():
        raise UsageError(f"--real {source}: no such folder or .npy file; give the real face images")
    try:
        return open_dataset(source, cache_dir, res, channels, log=lambda text: print(text, file=sys.stderr)).images
    except DataError as error:
        raise UsageError(str(error).replace("--data", "--real", 1)) from None


def note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)  # stdout is the JSON alone


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = Parser("dcgan_faces.evaluate", __doc__, prog)
    p.add_argument("--model", type=Path, required=True, metavar="RUN_OR_FILE",
                   help="run folder (its newest generator: generator.keras or a newer checkpoint) or a .keras file")
    p.add_argument("--real", metavar="DATA",
                   help="folder of real face images (cached in --cache-dir on first use), a .npy cache file, or "
                        "demo (the built-in faces); default: the data a run folder --model was trained on")
    p.add_argument("--n", type=cli_types.evaluation_images, default=1000,
                   help=f"images per set, at least {MIN_EVAL_IMAGES} (default 1000; fewer when there are fewer real "
                        f"images). The real-vs-real SWD floor needs {MIN_FLOOR_IMAGES} real images")
    p.add_argument("--seed", type=cli_types.seed, default=0,
                   help="fixes the real sample, the latents and SWD (default 0)")
    p.add_argument("--cache-dir", type=Path, default=Path("data_cache"),
                   help="where a --real folder's .npy cache is kept, beside the training caches (default "
                        "data_cache/)")
    return p


def evaluate(args: argparse.Namespace) -> dict:
    generator, config = open_model(args.model)
    source = args.real or (config.data if config else None)
    if source is None:
        raise UsageError(f"--model {args.model} is a model file: give --real, the folder of real faces")
    _, res, _, channels = generator.output_shape
    real = load_real(source, args.cache_dir, res, channels)
    if len(real) < MIN_EVAL_IMAGES:
        raise UsageError(f"--real {source}: {len(real)} image(s); at least {MIN_EVAL_IMAGES} are needed")
    figures = evaluate_generator(generator.predict_on_batch, real, args.n, latent_size(generator), args.seed)
    if figures["n"] < args.n:
        note(f"{source} holds {len(real)} images: evaluated {figures['n']} real and {figures['n']} generated, "
             f"not --n {args.n}")
    if figures["swd_real_floor"] is None:
        note(f"no real-vs-real floor (swd_real_floor null): it needs at least {MIN_FLOOR_IMAGES} real images, "
             f"{MIN_FLOOR_IMAGES // 2} per half; from {figures['n']} it would measure mostly which ones were drawn")
    return {**figures, "model": str(args.model), "real": source, "iteration": model_iteration(args.model)}


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parser(prog).parse_args(argv)
    if not opencv_available():  # before the model and TensorFlow are loaded
        print(f"error: evaluate needs OpenCV: {INSTALL}", file=sys.stderr)
        return 2
    try:
        result = evaluate(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
