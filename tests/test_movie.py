"""Tests for dcgan_faces.movie: the preview grids of a tiny run as one stamped animation."""

from __future__ import annotations

import shutil

import numpy as np
from PIL import Image

from dcgan_faces.animation import mp4_available
from dcgan_faces.movie import BAND, iteration_of, main, stamped
from dcgan_faces.runfolder import RunFolder
from tests.conftest import TINY_PREVIEWS as PREVIEWS


def test_iteration_from_file_name(tmp_path):
    assert iteration_of(RunFolder(tmp_path).preview_path(1200)) == 1200


def test_one_frame_per_grid_with_a_band_on_top(tiny_run, tmp_path, capsys):
    previews = RunFolder(tiny_run).preview_files()
    assert len(previews) == PREVIEWS
    width, height = Image.open(previews[0]).size
    out = tmp_path / "progress.gif"
    assert main([str(tiny_run), "--out", str(out), "--fps", "4", *(["--mp4"] if mp4_available() else [])]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == PREVIEWS and gif.size == (width, height + BAND)
    assert (tmp_path / "progress.mp4").exists() == mp4_available()
    assert str(out) in capsys.readouterr().out


def test_caption_is_drawn_in_the_band(tiny_run):
    frame = stamped(RunFolder(tiny_run).preview_files()[-1])
    band = frame[:BAND]
    assert band.min() < 100 and (band == 255).mean() > 0.8  # dark text on white
    grid = np.asarray(Image.open(RunFolder(tiny_run).preview_files()[-1]).convert("RGB"))
    np.testing.assert_array_equal(frame[BAND:], grid)


def test_default_output_is_in_the_run(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run / "previews", tmp_path / "run" / "previews").parent
    assert main([str(run)]) == 0
    assert (run / "progress.gif").exists() and not (run / "progress.mp4").exists()


def test_run_without_previews_is_an_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path) in err and "previews" in err
