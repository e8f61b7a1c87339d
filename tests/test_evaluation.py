"""Tests for dcgan_faces.evaluation: the real sample, and the figures of a generator are repeatable."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

from dcgan_faces.evaluation import evaluate_generator, sample_real  # noqa: E402
from dcgan_faces.trained_model import load_generator  # noqa: E402
from tests.conftest import TINY_RES as RES  # noqa: E402


def test_evaluate_generator_is_repeatable(tiny_run):
    generator, _ = load_generator(tiny_run)
    real = np.load(next((tiny_run.parent / "cache").glob(f"faces-*_{RES}_{RES}.npy")), mmap_mode="r")
    first, second = (evaluate_generator(generator.predict_on_batch, real, 6, 100, seed=3) for _ in range(2))
    assert first == second and first["n"] == 6


def test_sample_real_draws_without_replacement():
    images = np.arange(50, dtype=np.uint8).reshape(50, 1, 1, 1)
    picked = sample_real(images, 20, seed=1)
    assert len(np.unique(picked)) == 20
    np.testing.assert_array_equal(picked, sample_real(images, 20, seed=1))
    assert not np.array_equal(np.sort(picked.ravel()), picked.ravel())  # shuffled, not in file order
