"""Weight-free quality metrics: sliced Wasserstein distance (Karras et al. 2018) and a Haar face hit rate.

Nothing here downloads anything; the cascade file ships inside opencv-python(-headless) 4.x.
"""

from __future__ import annotations

import numpy as np

INSTALL = "pip install 'dcgan_faces[metrics]'"
_CV2_HINT = f"metrics need OpenCV: {INSTALL}"
_CASCADE_FILE = "haarcascade_frontalface_default.xml"
_NHOOD = 7  # 7x7 neighbourhoods -> 7*7*3 = 147-dim descriptors


def opencv_available() -> bool:
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


def _cv2():
    try:
        import cv2
    except ImportError as exc:
        raise ImportError(_CV2_HINT) from exc
    return cv2


def _as_rgb_batch(images: np.ndarray, name: str) -> np.ndarray:
    """Check a uint8 (N,H,W,C) batch with C in {1,3} (or (N,H,W)) and return it as (N,H,W,3) uint8."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise ValueError(f"{name} must have shape (N, H, W, 3) or (N, H, W, 1), got {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 in [0, 255], got dtype {arr.dtype}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr


def pyramid_sizes(size: int, min_res: int = 16) -> list[int]:
    """Side lengths of the pyramid levels: halve (rounding up, as cv2.pyrDown) while the level is >= min_res.

    As in progressive GAN, a level is kept only if it is at least ``min_res`` px: 64 -> [64, 32, 16],
    96 -> [96, 48, 24], 28 -> [28]. An image smaller than ``min_res`` (but at least 7 px) gets one level.
    """
    if size < _NHOOD:
        raise ValueError(f"images must be at least {_NHOOD} px for 7x7 SWD neighbourhoods, got {size}")
    sizes = [size]
    while (sizes[-1] + 1) // 2 >= min_res:
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def laplacian_pyramid(images: np.ndarray, num_levels: int) -> list[np.ndarray]:
    """Float32 Laplacian pyramid of a (N,H,W,3) batch, finest first; the last level is a Gaussian level."""
    cv2 = _cv2()
    level = images.astype(np.float32)
    pyramid = []
    for _ in range(num_levels - 1):
        down = np.stack([cv2.pyrDown(img) for img in level])
        h, w = level.shape[1:3]
        up = np.stack([cv2.pyrUp(img, dstsize=(w, h)) for img in down])
        pyramid.append(level - up)
        level = down
    pyramid.append(level)
    return pyramid


def _descriptors(level: np.ndarray, per_image: int, rng: np.random.Generator) -> np.ndarray:
    """per_image random 7x7x3 neighbourhoods per image, normalised per colour channel: (N*per_image, 147)."""
    n, h, w, _ = level.shape
    half = _NHOOD // 2
    ys = rng.integers(half, h - half, size=(n, per_image))
    xs = rng.integers(half, w - half, size=(n, per_image))
    off = np.arange(-half, half + 1)
    img_idx = np.arange(n)[:, None, None, None]
    desc = level[img_idx, ys[..., None, None] + off[:, None], xs[..., None, None] + off[None, :]]
    flat = desc.reshape(-1, 3)
    # float64 accumulators: float32 sums over ~10^7 values along a strided axis lose several percent
    flat -= (np.add.reduce(flat, axis=0, dtype=np.float64) / len(flat)).astype(np.float32)
    var = np.add.reduce(np.square(flat), axis=0, dtype=np.float64) / len(flat)
    flat /= np.maximum(np.sqrt(var), 1e-8).astype(np.float32)  # constant channels stay finite (all zeros)
    return desc.reshape(n * per_image, -1)


def _swd_1level(a: np.ndarray, b: np.ndarray, repeats: int, dirs_per: int, rng: np.random.Generator) -> float:
    """Mean over repeats of the mean |sorted proj(a) - sorted proj(b)| over random unit directions."""
    results = []
    for _ in range(repeats):
        dirs = rng.standard_normal((dirs_per, a.shape[1]))
        dirs = (dirs / np.linalg.norm(dirs, axis=1, keepdims=True)).astype(np.float32)
        proj_a = dirs @ a.T  # (direction, neighbourhood): sorting along the contiguous axis is fastest
        proj_b = dirs @ b.T
        proj_a.sort(axis=1)
        proj_b.sort(axis=1)
        proj_a -= proj_b
        results.append(float(np.mean(np.abs(proj_a, out=proj_a), dtype=np.float64)))
    return float(np.mean(results))


def sliced_wasserstein(
    real: np.ndarray,
    fake: np.ndarray,
    seed: int = 0,
    *,
    patches_per_image: int = 128,
    repeats: int = 4,
    directions: int = 128,
    min_res: int = 16,
) -> dict:
    """SWD (Karras et al. 2018) between two uint8 image sets (N,H,W,3) (or (N,H,W,1)) of equal N.

    Protocol of progressive GAN's metrics/sliced_wasserstein.py: Laplacian pyramid (cv2.pyrDown/pyrUp,
    5x5 binomial filter) from full resolution down to the last level >= ``min_res`` px (see
    ``pyramid_sizes``); per level ``patches_per_image`` random 7x7x3 neighbourhoods per image, normalised
    per colour channel over each set; ``repeats`` x ``directions`` random unit projections, sorted, mean
    absolute difference. Returns ``{"swd_levels": {"64": .., "32": .., "16": ..}, "swd": mean over levels}``,
    all x1e3; level keys are the level heights. Seeded: equal inputs and seed give equal results.
    """
    real = _as_rgb_batch(real, "real")
    fake = _as_rgb_batch(fake, "fake")
    if real.shape[0] != fake.shape[0]:
        raise ValueError(f"SWD needs equal numbers of real and fake images, got {len(real)} and {len(fake)}")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"real and fake images differ in size: {real.shape[1:]} vs {fake.shape[1:]}")
    num_levels = len(pyramid_sizes(min(real.shape[1:3]), min_res))
    rng = np.random.default_rng(seed)
    levels = {}
    pyramids = zip(laplacian_pyramid(real, num_levels), laplacian_pyramid(fake, num_levels), strict=True)
    for lvl_real, lvl_fake in pyramids:
        desc_real = _descriptors(lvl_real, patches_per_image, rng)
        desc_fake = _descriptors(lvl_fake, patches_per_image, rng)
        levels[str(lvl_real.shape[1])] = _swd_1level(desc_real, desc_fake, repeats, directions, rng) * 1e3
    return {"swd_levels": levels, "swd": float(np.mean(list(levels.values())))}


_cascade_cache: dict[str, object] = {}


def _face_cascade():
    cv2 = _cv2()
    path = cv2.data.haarcascades + _CASCADE_FILE if hasattr(cv2, "data") else _CASCADE_FILE
    if path not in _cascade_cache:
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise RuntimeError(
                f"OpenCV's Haar cascade {_CASCADE_FILE} was not found at {path!r} "
                '(OpenCV 5.x no longer ships it): pip install "opencv-python-headless<4.13"'
            )
        _cascade_cache[path] = cascade
    return _cascade_cache[path]


def face_hit_rate(images: np.ndarray, upscale_to: int = 128) -> float:
    """Share of uint8 images (N,H,W,3 RGB or N,H,W,1) in which OpenCV's Haar frontal-face cascade finds faces.

    Each image is resized to ``upscale_to`` x ``upscale_to`` (cv2.INTER_CUBIC), converted to grayscale (no
    histogram equalisation: it raised false hits on blurred noise, a stand-in for early GAN samples, from 0 %
    to ~3 % without raising the CelebA rate), then searched with
    ``detectMultiScale(scaleFactor=1.1, minNeighbors=3, minSize=(max(upscale_to // 4, 24),) * 2)``.
    """
    cv2 = _cv2()
    batch = _as_rgb_batch(images, "images")
    cascade = _face_cascade()
    min_side = max(upscale_to // 4, 24)  # the cascade's own window is 24x24
    hits = 0
    for img in batch:
        big = cv2.resize(img, (upscale_to, upscale_to), interpolation=cv2.INTER_CUBIC)
        gray = cv2.cvtColor(big, cv2.COLOR_RGB2GRAY)
        faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=3, minSize=(min_side, min_side))
        hits += len(faces) > 0
    return hits / len(batch)


def evaluate_images(real: np.ndarray, fake: np.ndarray, seed: int = 0, floor: bool = True) -> dict:
    """All figures as one JSON-ready dict: swd, swd_levels, swd_real_floor, face_rate_fake, face_rate_real, n.

    ``swd_real_floor`` is the SWD between two disjoint halves of ``real`` (the noise floor at n/2 images);
    with an odd n the last real image is left out of it; None when not `floor`. Needs equal counts, at least
    2 of each.
    """
    real = _as_rgb_batch(real, "real")
    fake = _as_rgb_batch(fake, "fake")
    n = len(real)
    if n < 2:
        raise ValueError(f"evaluate_images needs at least 2 images per set, got {n}")
    swd = sliced_wasserstein(real, fake, seed)
    half = n // 2
    return {
        "swd": swd["swd"],
        "swd_levels": swd["swd_levels"],
        "swd_real_floor": sliced_wasserstein(real[:half], real[half : 2 * half], seed)["swd"] if floor else None,
        "face_rate_fake": face_hit_rate(fake),
        "face_rate_real": face_hit_rate(real),
        "n": int(n),
    }
