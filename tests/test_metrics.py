"""Tests for dcgan_faces.metrics on synthetic images the tests draw themselves."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

cv2 = pytest.importorskip("cv2")

from dcgan_faces.metrics import (  # noqa: E402
    evaluate_images,
    face_hit_rate,
    pyramid_sizes,
    sliced_wasserstein,
)


def shapes(n: int, res: int, seed: int) -> np.ndarray:
    """Sharp-edged random images: a colour gradient with three random flat-coloured discs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:res, 0:res] / res
    out = np.empty((n, res, res, 3), np.float32)
    for i in range(n):
        c0, c1 = rng.uniform(0, 255, (2, 3))
        img = c0 + (c1 - c0) * (yy * rng.uniform() + xx * rng.uniform())[..., None] / 2
        for _ in range(3):
            cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.3)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
        out[i] = img
    return out.round().astype(np.uint8)


def add_noise(images: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, images.shape)
    return np.clip(images + noise, 0, 255).round().astype(np.uint8)


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    return images.copy() if sigma == 0 else np.stack([cv2.GaussianBlur(im, (0, 0), sigma) for im in images])


def draw_face(res: int, seed: int) -> np.ndarray:
    """A flat cartoon frontal face: skin oval, hair, brows, dark pupils in shaded sockets, nose, mouth."""
    rng = np.random.default_rng(seed)
    s = res * 4  # draw at 4x, blur and downsample for anti-aliasing
    im = Image.new("RGB", (s, s), tuple(int(v) for v in rng.integers(40, 200, 3)))
    d = ImageDraw.Draw(im)
    skin = np.clip(np.array([215, 170, 140]) + rng.integers(-25, 25, 3), 0, 255)
    hair = tuple(int(v) for v in rng.integers(10, 90, 3))
    shade, dark = tuple(int(v) for v in skin * 0.75), tuple(int(v) for v in skin * 0.35)
    cx, cy = s / 2 + rng.uniform(-0.03, 0.03) * s, s * 0.52
    fw, fh = s * rng.uniform(0.36, 0.42), s * rng.uniform(0.46, 0.52)
    d.ellipse([cx - fw * 1.08, cy - fh * 1.1, cx + fw * 1.08, cy + fh * 0.3], fill=hair)
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=tuple(int(v) for v in skin))
    ey = cy - fh * 0.15
    for x in (cx - fw * 0.42, cx + fw * 0.42):
        d.ellipse([x - fw * 0.3, ey - fh * 0.12, x + fw * 0.3, ey + fh * 0.1], fill=shade)
        d.rectangle([x - fw * 0.28, ey - fh * 0.24, x + fw * 0.28, ey - fh * 0.17], fill=hair)
        d.ellipse([x - fw * 0.18, ey - fh * 0.06, x + fw * 0.18, ey + fh * 0.06], fill=(235, 235, 235))
        d.ellipse([x - fw * 0.09, ey - fh * 0.06, x + fw * 0.09, ey + fh * 0.06], fill=(20, 15, 10))
    d.polygon([(cx, ey), (cx - fw * 0.14, cy + fh * 0.28), (cx + fw * 0.14, cy + fh * 0.28)], fill=shade)
    d.ellipse([cx - fw * 0.12, cy + fh * 0.24, cx + fw * 0.12, cy + fh * 0.32], fill=dark)
    my = cy + fh * 0.5
    d.ellipse([cx - fw * 0.38, my - fh * 0.06, cx + fw * 0.38, my + fh * 0.07], fill=(150, 60, 60))
    return np.asarray(im.filter(ImageFilter.GaussianBlur(3.2)).resize((res, res), Image.LANCZOS))


def faces(n: int, res: int, seed: int = 0) -> np.ndarray:
    return np.stack([draw_face(res, seed * 100_000 + i) for i in range(n)])


@pytest.fixture(scope="module")
def real64() -> np.ndarray:
    return shapes(32, 64, seed=0)


# --- sliced Wasserstein distance ---


def test_swd_keys_and_levels(real64):
    out = sliced_wasserstein(real64, shapes(32, 64, seed=1))
    assert list(out["swd_levels"]) == ["64", "32", "16"]
    assert out["swd"] == pytest.approx(np.mean(list(out["swd_levels"].values())))
    assert all(math.isfinite(v) and v >= 0 for v in out["swd_levels"].values())


def test_swd_self_is_near_zero(real64):
    same = sliced_wasserstein(real64, real64.copy())["swd"]
    fresh = sliced_wasserstein(real64, shapes(32, 64, seed=1))["swd"]
    noisy = sliced_wasserstein(real64, add_noise(real64, 30))["swd"]
    # identical sets differ only by which patches were sampled
    assert same < 0.2 * noisy
    assert fresh < 0.5 * noisy


def test_swd_grows_with_noise(real64):
    values = [sliced_wasserstein(real64, add_noise(real64, s))["swd"] for s in (0, 10, 30, 60)]
    assert values == sorted(values) and values[0] < values[-1] / 5, values


def test_swd_grows_with_blur(real64):
    values = [sliced_wasserstein(real64, blur(real64, s))["swd"] for s in (0, 1, 2, 4)]
    assert values == sorted(values) and values[0] < values[-1] / 5, values


def test_swd_seeded_is_reproducible(real64):
    fake = add_noise(real64, 20)
    a = sliced_wasserstein(real64, fake, seed=3)
    assert a == sliced_wasserstein(real64, fake, seed=3)
    assert a != sliced_wasserstein(real64, fake, seed=4)


def test_swd_mismatched_counts_raise(real64):
    with pytest.raises(ValueError, match="equal numbers"):
        sliced_wasserstein(real64, real64[:10])


@pytest.mark.parametrize("bad", [np.zeros((4, 16, 16, 3), np.float32), np.zeros((4, 16, 16, 4), np.uint8)])
def test_swd_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        sliced_wasserstein(bad, bad)


@pytest.mark.parametrize(
    ("res", "levels"), [(28, ["28"]), (32, ["32", "16"]), (64, ["64", "32", "16"]), (96, ["96", "48", "24"])]
)
def test_swd_sizes(res, levels):
    real, fake = shapes(16, res, seed=0), add_noise(shapes(16, res, seed=0), 30)
    out = sliced_wasserstein(real, fake, patches_per_image=32)
    assert list(out["swd_levels"]) == levels
    assert out["swd"] > sliced_wasserstein(real, real, patches_per_image=32)["swd"]


def test_pyramid_sizes():
    assert pyramid_sizes(64) == [64, 32, 16]
    assert pyramid_sizes(33) == [33, 17]
    assert pyramid_sizes(8) == [8]
    with pytest.raises(ValueError):
        pyramid_sizes(6)


def test_swd_one_channel_matches_repeated_gray():
    gray = shapes(16, 32, seed=0)[..., :1]
    noisy = add_noise(gray, 30)
    one = sliced_wasserstein(gray, noisy, patches_per_image=32)
    three = sliced_wasserstein(np.repeat(gray, 3, -1), np.repeat(noisy, 3, -1), patches_per_image=32)
    assert one == three
    assert math.isfinite(one["swd"])


def test_swd_constant_images_are_finite():
    flat = np.full((8, 32, 32, 3), 100, np.uint8)
    assert math.isfinite(sliced_wasserstein(flat, flat, patches_per_image=16)["swd"])


# --- face hit rate ---


def test_face_rate_zero_on_noise_and_flat():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (50, 64, 64, 3), dtype=np.uint8)
    flat = np.repeat(rng.integers(0, 256, (10, 1, 1, 3), dtype=np.uint8), 64, 1).repeat(64, 2)
    assert face_hit_rate(noise) <= 0.02
    assert face_hit_rate(flat) == 0.0


@pytest.mark.parametrize("res", [32, 64])
def test_face_rate_high_on_drawn_faces(res):
    assert face_hit_rate(faces(30, res)) >= 0.9


def test_face_rate_low_on_upside_down_faces():
    assert face_hit_rate(faces(30, 64)[:, ::-1]) <= 0.1


def test_face_rate_accepts_gray():
    gray = faces(10, 64).mean(-1, keepdims=True).round().astype(np.uint8)
    assert face_hit_rate(gray) >= 0.8


# --- evaluate_images ---


def test_evaluate_images_keys_and_finite():
    real, fake = faces(32, 32, seed=0), add_noise(faces(32, 32, seed=1), 20)
    out = evaluate_images(real, fake)
    assert set(out) == {"swd", "swd_levels", "swd_real_floor", "face_rate_fake", "face_rate_real", "n"}
    assert out["n"] == 32
    assert all(math.isfinite(v) for v in [out["swd"], out["swd_real_floor"], *out["swd_levels"].values()])
    assert 0.0 <= out["face_rate_fake"] <= 1.0 and out["face_rate_real"] >= 0.8
    json.dumps(out)


def test_evaluate_images_mismatched_counts_raise():
    with pytest.raises(ValueError, match="equal numbers"):
        evaluate_images(faces(4, 32), faces(3, 32))


def test_missing_cascade_raises(monkeypatch):
    from dcgan_faces import metrics

    monkeypatch.setattr(cv2.data, "haarcascades", "/nonexistent/")
    monkeypatch.setattr(metrics, "_cascade_cache", {})
    with pytest.raises(RuntimeError, match="haarcascade_frontalface_default.xml"):
        face_hit_rate(np.zeros((1, 32, 32, 3), np.uint8))


def test_missing_opencv_raises_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ImportError, match=r"pip install .dcgan_faces\[metrics\]."):
        face_hit_rate(np.zeros((1, 32, 32, 3), np.uint8))
