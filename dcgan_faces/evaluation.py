"""SWD and face hit rate of a generator against real images, as the evaluate command and a training's
evaluations measure them: equal-sized sets, a fixed-seed real sample and fakes from fixed latents."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dcgan_faces.sampling import generate_images, latents


def sample_real(images: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n images drawn without replacement, in random order; a memmap is read in index order."""
    rng = np.random.default_rng(seed)
    picked = np.asarray(images[np.sort(rng.choice(len(images), n, replace=False))])
    return picked[rng.permutation(n)]


def evaluate_generator(generate: Callable[[np.ndarray], np.ndarray], real_images_uint8: np.ndarray, n: int,
                       latent_size: int, seed: int = 0) -> dict:
    """metrics.evaluate_images on min(n, len(real)) real images and as many fakes from fixed latents (`seed`).

    `generate` maps latents to images in [-1, 1] (a model's predict_on_batch, or Trainer.generate).
    """
    from dcgan_faces.metrics import evaluate_images

    n = min(n, len(real_images_uint8))
    real = sample_real(real_images_uint8, n, seed)
    fake = generate_images(generate, latents(latent_size, n, seed))
    return evaluate_images(real, fake, seed)
