"""Procedural cartoon faces (the built-in training set when no images are given): drawn with Pillow
on a supersampled canvas, framed like aligned face crops, then LANCZOS-downsampled."""

from __future__ import annotations

import itertools

import numpy as np
from PIL import Image, ImageDraw

Color = tuple[int, int, int]
Rng = np.random.Generator

SKIN_TONES: tuple[Color, ...] = (
    (255, 226, 204), (243, 200, 168), (228, 178, 138), (200, 140, 100), (160, 104, 70), (110, 70, 46),
    (78, 50, 34),
)
HAIR_COLORS: tuple[Color, ...] = (
    (22, 18, 16), (48, 32, 24), (86, 56, 34), (130, 90, 52), (196, 158, 96), (146, 66, 32), (150, 148, 146),
)
IRIS_COLORS: tuple[Color, ...] = (
    (70, 42, 24), (40, 26, 18), (60, 110, 160), (70, 120, 80), (120, 90, 50), (110, 120, 130),
)
LIP_BASES: tuple[Color, ...] = ((190, 100, 100), (170, 80, 80), (200, 110, 120), (150, 80, 70))
HAIR_STYLES = ("short", "long", "bald", "fringe")
CANVAS = 128
# Bump it whenever the faces make_faces draws change: the demo faces' cache records it, so an old one is redrawn.
# tests/test_preprocessing.py fails until it is bumped.
VERSION = 1
MARGIN = 0.125  # face layer overhang on each side, so posing never exposes its edges


def _mix(a: Color, b: Color, t: float) -> Color:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))  # type: ignore[return-value]


def _shade(c: Color, f: float) -> Color:
    return tuple(int(min(255, max(0, round(v * f)))) for v in c)  # type: ignore[return-value]


def _jitter(rng: Rng, c: Color, amount: int = 12) -> Color:
    noise = rng.integers(-amount, amount + 1, 3)
    return tuple(min(255, max(0, v + int(e))) for v, e in zip(c, noise))  # type: ignore[return-value]


def _pick(rng: Rng, options: tuple) -> object:
    return options[int(rng.integers(len(options)))]


def _skin(rng: Rng) -> Color:
    """A skin tone interpolated along a light-to-dark palette, with a little hue jitter."""
    t = rng.uniform(0, len(SKIN_TONES) - 1)
    i = min(int(t), len(SKIN_TONES) - 2)
    return _jitter(rng, _mix(SKIN_TONES[i], SKIN_TONES[i + 1], t - i), 6)


def _background(rng: Rng, size: int) -> Image.Image:
    """Flat colour or a vertical/diagonal two-colour gradient (built small, then upsampled)."""
    a = rng.integers(20, 236, 3).astype(np.float32)
    b = np.clip(a + rng.integers(-90, 91, 3), 0, 255) if rng.random() < 0.6 else a
    ramp = np.linspace(0.0, 1.0, 16, dtype=np.float32)
    t = np.repeat(ramp[:, None], 16, axis=1)
    if rng.random() < 0.4:
        t = (t + ramp[None, :]) / 2
    img = a * (1 - t[..., None]) + b * t[..., None]
    return Image.fromarray(img.astype(np.uint8), "RGB").resize((size, size), Image.BILINEAR)


class _Face:
    """Unit-square geometry of one face; `p` and `box` map it to pixels of the (margined) layer."""

    def __init__(self, rng: Rng, size: int) -> None:
        self.rng, self.s, self.off = rng, size, MARGIN * size
        self.cx, self.cy = 0.5, 0.5
        self.hw, self.hh = rng.uniform(0.27, 0.33), rng.uniform(0.36, 0.41)
        self.jaw = rng.uniform(0.45, 0.8)
        self.skin = _skin(rng)
        self.hair = _jitter(rng, _pick(rng, HAIR_COLORS), 10)  # type: ignore[arg-type]
        self.style = _pick(rng, HAIR_STYLES)
        self.eye_y = self.cy + rng.uniform(-0.07, -0.03)
        self.tip_y = self.eye_y + 0.15

    def p(self, x: float, y: float) -> tuple[float, float]:
        return (x * self.s + self.off, y * self.s + self.off)

    def box(self, x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [*self.p(x0, y0), *self.p(x1, y1)]

    def ellipse(self, d: ImageDraw.ImageDraw, x: float, y: float, rx: float, ry: float, fill: Color) -> None:
        d.ellipse(self.box(x - rx, y - ry, x + rx, y + ry), fill=fill)


def _draw_back(f: _Face, d: ImageDraw.ImageDraw) -> None:
    """Long back hair, neck and shoulders: everything behind the face."""
    if f.style == "long":
        top = f.cy - f.hh - 0.05
        box = f.box(f.cx - f.hw - 0.08, top, f.cx + f.hw + 0.08, 1.12)
        d.rounded_rectangle(box, radius=0.2 * f.s, fill=f.hair)
    clothes: Color = tuple(int(v) for v in f.rng.integers(20, 230, 3))  # type: ignore[assignment]
    f.ellipse(d, f.cx, 1.08, 0.48, 0.16, clothes)
    neck = _shade(f.skin, 0.82)
    d.rectangle(f.box(f.cx - f.hw * 0.5, f.cy + f.hh * 0.4, f.cx + f.hw * 0.5, 1.12), fill=neck)


def _draw_head(f: _Face, d: ImageDraw.ImageDraw) -> None:
    """Ears, skull ellipse and a jaw polygon tapering to the chin, with a soft side shadow."""
    ear = _shade(f.skin, 0.9)
    for sx in (-1, 1):
        f.ellipse(d, f.cx + sx * f.hw * 0.98, f.eye_y + 0.05, 0.045, 0.07, ear)
    for col, dx, k in ((_shade(f.skin, 0.86), 0.0, 1.0), (f.skin, -0.012, 0.94)):
        hw = f.hw * k
        f.ellipse(d, f.cx + dx, f.cy - 0.02, hw, f.hh * 0.9 * (k + 1) / 2, col)
        chin = f.cy + f.hh * (0.95 + 0.05 * k) - (1 - k) * 0.02
        jaw_y = f.cy + f.hh * 0.62
        pts = [f.p(f.cx + dx - hw, f.cy - 0.02), f.p(f.cx + dx - hw * (f.jaw + 0.15), jaw_y),
               f.p(f.cx + dx - hw * f.jaw * 0.45, chin), f.p(f.cx + dx + hw * f.jaw * 0.45, chin),
               f.p(f.cx + dx + hw * (f.jaw + 0.15), jaw_y), f.p(f.cx + dx + hw, f.cy - 0.02)]
        d.polygon(pts, fill=col)


def _draw_eyes(f: _Face, d: ImageDraw.ImageDraw) -> None:
    """Shadowed sockets, whites, iris, pupil, upper lid line and brows."""
    rng = f.rng
    gap, rx = rng.uniform(0.1, 0.135), rng.uniform(0.045, 0.062)
    ry = rx * rng.uniform(0.45, 0.65)
    iris = _jitter(rng, _pick(rng, IRIS_COLORS), 10)  # type: ignore[arg-type]
    brow_col = _shade(f.hair, 0.8) if f.style != "bald" or rng.random() < 0.5 else _shade(f.skin, 0.45)
    brow_w = max(1, int(f.s * rng.uniform(0.015, 0.035)))
    brow_lift, brow_tilt = rng.uniform(0.05, 0.08), rng.uniform(-0.02, 0.02)
    socket = _shade(f.skin, 0.8)
    lid = _shade(f.skin, 0.35)
    look = rng.uniform(-0.3, 0.3) * rx
    lid_w = max(1, f.s // 64)
    for sx in (-1, 1):
        ex = f.cx + sx * gap
        f.ellipse(d, ex, f.eye_y - ry * 0.4, rx * 1.45, ry * 2.1, socket)
        f.ellipse(d, ex, f.eye_y, rx, ry, (245, 242, 236))
        ir = ry * 0.95
        f.ellipse(d, ex + look, f.eye_y, ir, ir, iris)
        f.ellipse(d, ex + look, f.eye_y, ir * 0.5, ir * 0.5, (10, 8, 8))
        d.arc(f.box(ex - rx, f.eye_y - ry, ex + rx, f.eye_y + ry), 190, 350, fill=lid, width=lid_w)
        by = f.eye_y - brow_lift
        inner, outer = ex - sx * rx * 1.1, ex + sx * rx * 1.3
        pts = [f.p(inner, by + brow_tilt), f.p(ex, by - 0.012), f.p(outer, by + 0.01 - brow_tilt * 0.3)]
        d.line(pts, fill=brow_col, width=brow_w, joint="curve")


def _draw_nose(f: _Face, d: ImageDraw.ImageDraw) -> None:
    """Bridge shadow on one side, tip shadow and two nostrils."""
    rng = f.rng
    tip_y = f.eye_y + rng.uniform(0.13, 0.17)
    nw = rng.uniform(0.035, 0.055)
    side = -1 if rng.random() < 0.5 else 1
    shadow = _shade(f.skin, 0.72)
    width = max(1, f.s // 64)
    bridge = [f.p(f.cx + side * 0.02, f.eye_y + 0.02), f.p(f.cx + side * nw * 0.9, tip_y - 0.01)]
    d.line(bridge, fill=shadow, width=width)
    f.ellipse(d, f.cx, tip_y + 0.008, nw * 0.9, 0.02, _shade(f.skin, 0.85))
    for sx in (-1, 1):
        f.ellipse(d, f.cx + sx * nw * 0.45, tip_y + 0.012, nw * 0.28, 0.009, _shade(f.skin, 0.45))
    f.tip_y = tip_y


def _curve(f: _Face, x0: float, hw: float, y0: float, curv: float, lift: float, n: int = 9) -> list:
    """Points along a parabola-ish lip line: corners at y0-curv, centre bulging by `lift`."""
    us = np.linspace(-1.0, 1.0, n)
    return [f.p(x0 + hw * u, y0 - curv * u * u + lift * (1 - u * u)) for u in us]


def _draw_mouth(f: _Face, d: ImageDraw.ImageDraw) -> None:
    """Lips shaped by width and smile curvature; sometimes an open smile with teeth."""
    rng = f.rng
    my = f.tip_y + rng.uniform(0.08, 0.11)
    mw, curv = rng.uniform(0.08, 0.13), rng.uniform(-0.012, 0.03)
    lip = _mix(_jitter(rng, _pick(rng, LIP_BASES), 10), f.skin, rng.uniform(0.2, 0.6))  # type: ignore[arg-type]
    up, low = rng.uniform(0.012, 0.022), rng.uniform(0.016, 0.03)
    line = _curve(f, f.cx, mw, my, curv, 0.0)
    if rng.random() < 0.3 and curv > 0.005:
        opening = _curve(f, f.cx, mw, my, curv, rng.uniform(0.015, 0.03))
        d.polygon(line + opening[::-1], fill=(60, 20, 25))
        teeth = _curve(f, f.cx, mw * 0.85, my, curv * 0.8, 0.01)
        d.polygon(_curve(f, f.cx, mw * 0.85, my, curv * 0.8, 0.0) + teeth[::-1], fill=(235, 232, 225))
        line = opening
    d.polygon(_curve(f, f.cx, mw, my, curv, -up) + line[::-1], fill=_shade(lip, 0.9))
    d.polygon(line + _curve(f, f.cx, mw, my, curv, low)[::-1], fill=lip)
    d.line(_curve(f, f.cx, mw, my, curv, 0.0), fill=_shade(lip, 0.45), width=max(1, f.s // 64))
    f.ellipse(d, f.cx, my + low + 0.03, mw * 0.4, 0.01, _shade(f.skin, 0.9))


def _draw_hair(f: _Face, d: ImageDraw.ImageDraw) -> None:
    """Front hair: a cap cut at the hairline, with side locks, a fringe, or almost nothing (bald)."""
    rng = f.rng
    top = f.cy - 0.02 - f.hh * 0.9 - rng.uniform(0.02, 0.05)
    b = f.cy - 0.02 - top
    hx = f.hw + rng.uniform(0.015, 0.035)
    if f.style == "bald":
        for sx in (-1, 1):
            f.ellipse(d, f.cx + sx * f.hw * 0.95, f.eye_y - 0.07, 0.02, 0.06, f.hair)
        return
    hairline = f.eye_y - rng.uniform(0.15, 0.21) if f.style != "fringe" else f.eye_y - rng.uniform(0.09, 0.12)
    alpha = np.degrees(np.arcsin(np.clip((f.cy - 0.02 - hairline) / b, 0.0, 1.0)))
    box = f.box(f.cx - hx, top, f.cx + hx, f.cy - 0.02 + b)
    d.chord(box, 180 + alpha, 360 - alpha, fill=f.hair)
    d.chord(box, 180 - 12, 180 + alpha + 5, fill=f.hair)
    d.chord(box, 360 - alpha - 5, 372, fill=f.hair)
    if f.style == "fringe":
        n = int(rng.integers(5, 9))
        xs = np.linspace(f.cx - f.hw * 0.9, f.cx + f.hw * 0.9, n + 1)
        for x0, x1 in itertools.pairwise(xs):
            tip = f.p((x0 + x1) / 2, hairline + 0.025)
            d.polygon([f.p(x0, hairline - 0.01), f.p(x1, hairline - 0.01), tip], fill=f.hair)
    if f.style == "long":
        for sx in (-1, 1):
            x = f.cx + sx * (f.hw + 0.02)
            d.polygon([f.p(x - sx * 0.07, hairline), f.p(x + sx * 0.05, hairline), f.p(x + sx * 0.06, 0.95),
                       f.p(x - sx * 0.01, 0.95)], fill=f.hair)


def _pose(layer: Image.Image, s: int, rng: Rng) -> Image.Image:
    """Small rotation, scale and shift of the margined face layer, cropped to an s x s canvas."""
    mid = layer.size[0] / 2
    angle, scale = rng.uniform(-6, 6), rng.uniform(0.92, 1.06)
    dx, dy = rng.uniform(-0.03, 0.03) * s, rng.uniform(-0.03, 0.03) * s
    th = np.radians(angle)
    c, si = np.cos(th) / scale, np.sin(th) / scale
    cx = cy = s / 2
    # inverse affine map: output pixel -> input pixel
    coeffs = (c, si, mid - c * (cx + dx) - si * (cy + dy), -si, c, mid + si * (cx + dx) - c * (cy + dy))
    posed = layer.convert("RGBa").transform((s, s), Image.AFFINE, coeffs, resample=Image.BILINEAR)
    return posed.convert("RGBA")


def draw_face(rng: np.random.Generator, res: int) -> Image.Image:
    """Draw one random frontal cartoon face as an RGB image of size res x res."""
    size = max(CANVAS, 2 * res)
    bg = _background(rng, size)
    big = round(size * (1 + 2 * MARGIN))
    layer = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    f = _Face(rng, size)
    for step in (_draw_back, _draw_head, _draw_eyes, _draw_nose, _draw_mouth, _draw_hair):
        step(f, d)
    posed = _pose(layer, size, rng)
    bg.paste(posed, (0, 0), posed)
    return _light(bg.resize((res, res), Image.LANCZOS), rng)


def _light(img: Image.Image, rng: Rng) -> Image.Image:
    """Global brightness change plus a gentle left/right lighting ramp."""
    a = np.asarray(img, dtype=np.float32)
    ramp = 1.0 + rng.uniform(-0.12, 0.12) * np.linspace(-1.0, 1.0, a.shape[1], dtype=np.float32)
    a = a * rng.uniform(0.8, 1.15) * ramp[None, :, None]
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def make_faces(n: int, res: int, seed: int = 0) -> np.ndarray:
    """n procedural faces, uint8 array (n, res, res, 3), deterministic for (n, res, seed)."""
    out = np.empty((n, res, res, 3), dtype=np.uint8)
    for i in range(n):
        out[i] = np.asarray(draw_face(np.random.default_rng([seed, i]), res))
    return out
