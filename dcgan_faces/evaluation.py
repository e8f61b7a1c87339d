"""SWD and face hit rate of a generator against real images, as the evaluate command and a training's
evaluations measure them: equal-sized sets, a fixed-seed real sample and fakes from fixed latents."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dcgan_faces.cli_types import MIN_FLOOR_IMAGES
from dcgan_faces.metrics import evaluate_images
from dcgan_faces.sampling import generate_images, latents


def sample_real(images: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n images drawn without replacement, in random order; a memmap is read in index order."""
    rng = np.random.default_rng(seed)
    picked = np.asarray(images[np.sort(rng.choice(len(images), n, replace=False))])
    return picked[rng.permutation(n)]


def evaluate_generator(generate: Callable[[np.ndarray], np.ndarray], real_images_uint8: np.ndarray, n: int,
                       latent_size: int, seed: int = 0) -> dict:
    """metrics.evaluate_images on min(n, len(real)) real images and as many fakes from fixed latents (`seed`);
    the real-vs-real floor only from MIN_FLOOR_IMAGES real images on (None below).

    `generate` maps latents to images in [-1, 1] (a model's predict_on_batch, or Trainer.generate).
    """
    n = min(n, len(real_images_uint8))
    real = sample_real(real_images_uint8, n, seed)
    fake = generate_images(generate, latents(latent_size, n, seed))
    return evaluate_images(real, fake, seed, floor=n >= MIN_FLOOR_IMAGES)


def floor_text(figures: dict) -> str:
    """The real-vs-real floor of `evaluate_generator`'s figures in words, or that there is none."""
    if figures["swd_real_floor"] is None:
        return f"no real-vs-real floor under {MIN_FLOOR_IMAGES} images"
    return f"real-vs-real {figures['swd_real_floor']:.1f}"
