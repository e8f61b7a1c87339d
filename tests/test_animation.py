"""Tests for dcgan_faces.animation: GIFs always, MP4s beside them where imageio-ffmpeg is installed."""

from __future__ import annotations

import numpy as np
import pytest

from dcgan_faces import animation
from dcgan_faces.animation import mp4_available


def test_mp4_is_skipped_quietly_without_imageio(tmp_path, monkeypatch):
    monkeypatch.setattr(animation, "mp4_available", lambda: False)
    frames = np.zeros((3, 9, 7, 1), np.uint8)
    assert animation.write_animation(frames, tmp_path / "a.gif", 5) == [tmp_path / "a.gif"]


@pytest.mark.skipif(not mp4_available(), reason="imageio-ffmpeg not installed")
def test_mp4_accepts_odd_sizes_and_grey(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (4, 9, 7, 1), dtype=np.uint8)
    assert animation.write_animation(frames, tmp_path / "a.gif", 5)[-1].stat().st_size > 0
