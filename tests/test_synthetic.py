"""Tests for the procedural face set in dcgan_faces.synthetic."""

import numpy as np
import pytest
from PIL import Image

from dcgan_faces.synthetic import draw_face, make_faces


@pytest.fixture(scope="module")
def faces50() -> np.ndarray:
    return make_faces(50, 32, seed=3)


@pytest.mark.parametrize("res", [16, 28, 32, 64, 96])
def test_shape_and_dtype(res: int) -> None:
    x = make_faces(3, res, seed=1)
    assert x.shape == (3, res, res, 3)
    assert x.dtype == np.uint8


def test_zero_faces() -> None:
    assert make_faces(0, 32).shape == (0, 32, 32, 3)


def test_draw_face_returns_rgb_image_of_res() -> None:
    img = draw_face(np.random.default_rng(0), 28)
    assert isinstance(img, Image.Image)
    assert img.mode == "RGB" and img.size == (28, 28)


def test_same_seed_is_identical() -> None:
    np.testing.assert_array_equal(make_faces(6, 32, seed=11), make_faces(6, 32, seed=11))


def test_face_i_does_not_depend_on_n() -> None:
    np.testing.assert_array_equal(make_faces(5, 32, seed=2), make_faces(10, 32, seed=2)[:5])


def test_default_seed_is_zero() -> None:
    np.testing.assert_array_equal(make_faces(2, 28), make_faces(2, 28, seed=0))


def test_different_seed_differs() -> None:
    a, b = make_faces(4, 32, seed=0), make_faces(4, 32, seed=1)
    assert all(not np.array_equal(a[i], b[i]) for i in range(4))


def test_no_two_faces_identical(faces50: np.ndarray) -> None:
    flat = faces50.reshape(len(faces50), -1)
    assert len({row.tobytes() for row in flat}) == len(faces50)


def test_mean_pairwise_distance_is_large(faces50: np.ndarray) -> None:
    flat = faces50.reshape(len(faces50), -1).astype(np.float32)
    d = np.abs(flat[:, None, :] - flat[None, :, :]).mean(axis=-1)
    off_diag = d[~np.eye(len(flat), dtype=bool)]
    assert off_diag.mean() > 20.0
    assert off_diag.min() > 2.0


def test_face_colours_spread(faces50: np.ndarray) -> None:
    """Skin tone varies light to dark: the face-centre brightness spans a wide range."""
    c = faces50[:, 12:20, 12:20].astype(np.float32).mean(axis=(1, 2, 3))
    assert c.max() - c.min() > 80
    assert faces50.reshape(50, -1, 3).mean(axis=1).std(axis=0).min() > 10


def test_uses_full_dynamic_range(faces50: np.ndarray) -> None:
    assert faces50.min() < 30 and faces50.max() > 220


def _centre_vs_corners(x: np.ndarray) -> np.ndarray:
    r = x.shape[1]
    q = r // 8
    corners = np.stack([x[:, :q, :q], x[:, :q, -q:]], axis=1).astype(np.float32).mean(axis=(1, 2, 3))
    centre = x[:, 3 * r // 8 : 5 * r // 8, 3 * r // 8 : 5 * r // 8].astype(np.float32).mean(axis=(1, 2))
    return np.abs(centre - corners).sum(axis=-1)


def test_centre_differs_from_background_corners() -> None:
    x = make_faces(40, 64, seed=5)
    diff = _centre_vs_corners(x)
    assert np.median(diff) > 40
    assert (diff > 15).mean() > 0.9


def test_face_has_structure_at_eye_height() -> None:
    """A row through the eyes has dark pupils and bright whites: more contrast than a cheek row."""
    x = make_faces(30, 64, seed=9).astype(np.float32).mean(axis=-1)
    mid = slice(20, 44)
    eye_band = x[:, 24:31, mid].std(axis=(1, 2))
    cheek_band = x[:, 36:40, mid].std(axis=(1, 2))
    assert np.median(eye_band) > np.median(cheek_band)
    assert (eye_band > 15).mean() > 0.9


def test_left_right_roughly_symmetric() -> None:
    """Frontal faces: mirroring changes a face far less than swapping it for another face."""
    x = make_faces(20, 64, seed=4).astype(np.float32)
    mirror = np.abs(x - x[:, :, ::-1]).mean()
    other = np.abs(x - np.roll(x, 1, axis=0)).mean()
    assert mirror < 0.7 * other
