"""Tests for dcgan_faces.sampling (latents and slerp walks) and preview.grid_shape."""

from __future__ import annotations

import numpy as np
import pytest

from dcgan_faces.preview import grid_shape
from dcgan_faces.sampling import latents, slerp, walk


def test_slerp_keeps_endpoints_and_interpolates_the_norm():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(100), 2 * rng.standard_normal(100)
    np.testing.assert_allclose(slerp(a, b, 0.0), a, atol=1e-12)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-12)
    middle = slerp(a, b, 0.5)
    assert np.linalg.norm(middle) == pytest.approx((np.linalg.norm(a) + np.linalg.norm(b)) / 2)
    assert np.linalg.norm(middle) > np.linalg.norm((a + b) / 2)  # a straight line would sag towards 0
    np.testing.assert_allclose(slerp(a, 3 * a, 0.5), 2 * a)  # same direction: no division by sin(0)


def test_walk_loops_through_the_keys():
    keys = latents(8, n=3, seed=1)
    path = walk(keys, 4)
    assert path.shape == (12, 8) and path.dtype == np.float32
    np.testing.assert_allclose(path[::4], keys, rtol=1e-6)


def test_latents_seeds_and_truncation():
    np.testing.assert_array_equal(latents(16, seeds=[5, 9])[1], latents(16, seeds=[9])[0])
    np.testing.assert_allclose(latents(16, n=4, seed=3, truncation=0.5), 0.5 * latents(16, n=4, seed=3), rtol=1e-6)


def test_grid_shape_is_the_most_nearly_square():
    assert [grid_shape(n) for n in (1, 10, 64, 65)] == [(1, 1), (3, 4), (8, 8), (8, 9)]
