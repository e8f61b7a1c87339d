"""Latents and the faces a generator draws from them: seeded normal latents, slerp walks, uint8 images."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import numpy as np

from dcgan_faces.preview import to_uint8

BATCH = 64
PROGRESS_FROM = 8 * BATCH  # faces: from this many on, a progress bar


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


def generate_images(generate: Callable[[np.ndarray], np.ndarray], z: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) faces for latents `z`. `generate` maps latents to images in [-1, 1] in inference
    mode: a model's predict_on_batch, or Trainer.generate."""
    return to_uint8(in_fixed_batches(generate, z))


def in_fixed_batches(generate: Callable[[np.ndarray], np.ndarray], z: np.ndarray) -> np.ndarray:
    """float32 `generate(z)`, BATCH rows at a time, the last batch padded with zero latents. A face then
    does not depend on how many others are drawn with it: bfloat16 kernels round differently by batch size."""
    from tqdm import tqdm

    starts = range(0, len(z), BATCH)
    bar = tqdm(starts, unit="batch", desc="generating", disable=len(z) < PROGRESS_FROM, file=sys.stderr)
    return np.concatenate([_padded(generate, z[i:i + BATCH]) for i in bar])


def _padded(generate: Callable[[np.ndarray], np.ndarray], z: np.ndarray) -> np.ndarray:
    full = np.zeros((BATCH, *z.shape[1:]), dtype=np.float32)
    full[:len(z)] = z
    return np.asarray(generate(full), dtype=np.float32)[:len(z)]
