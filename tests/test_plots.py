"""Tests for dcgan_faces.plots and curves (training curves) and dcgan_faces.tblog (TensorBoard event files)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from PIL import Image

from dcgan_faces.curves import moving_average, save_plot
from dcgan_faces.plots import main


def rows(n: int) -> list[dict]:
    return [{"iteration": i, "epoch": i / 10, "d_loss": 0.7, "d_acc": 0.5, "g_loss": 1.0 + i / n, "g_acc": 0.1,
             "seconds": i * 0.2} for i in range(1, n + 1)]


def assert_png(path):
    with Image.open(path) as image:
        image.verify()
        assert image.format == "PNG"


def test_plot_of_the_tiny_run(tiny_run, capsys):
    assert main([str(tiny_run)]) == 0
    assert_png(tiny_run / "plots.png")
    assert not list(tiny_run.glob(".plots*"))  # no temporary file left behind
    assert "plots.png" in capsys.readouterr().out


@pytest.mark.parametrize("data", [
    rows(1),
    [{**row, "d_loss": math.nan, "g_acc": None} for row in rows(30)],
    [*rows(40), {"iteration": 40, "swd": 120.5, "swd_real_floor": 20.0, "face_rate_fake": 0.1}],
], ids=["single row", "nan and null", "with evaluations"])
def test_save_plot_handles_odd_rows(data, tmp_path):
    save_plot(data, tmp_path / "plots.png", smoothing=5)
    assert_png(tmp_path / "plots.png")


def test_moving_average_skips_nan():
    values = np.array([1.0, math.nan, 3.0, 5.0, math.inf])
    np.testing.assert_allclose(moving_average(values, 2), [1.0, 1.0, 3.0, 4.0, 5.0])
    assert np.isnan(moving_average(np.array([math.nan]), 3)).all()


def test_missing_matplotlib_is_one_line(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        save_plot(rows(3), tmp_path / "plots.png")


def test_run_without_metrics_is_an_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "metrics.jsonl" in err


def test_a_log_with_damaged_lines_is_plotted_from_every_readable_row_and_says_what_it_skipped(tmp_path, capsys):
    text = "".join(json.dumps(row) + "\n" for row in rows(12))
    (tmp_path / "metrics.jsonl").write_text("\0\0\0" + text + '{"iteration": 13, "d_lo')  # Drive NULs, a kill
    assert main([str(tmp_path)]) == 0
    assert "skipped 2 line(s)" in capsys.readouterr().out
    assert_png(tmp_path / "plots.png")


# ------------------------------------------------------------------------------------------------ TensorBoard

def test_tensorboard_scalars_and_image_are_readable(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from dcgan_faces.tblog import TensorBoardLog

    log = TensorBoardLog(tmp_path / "tensorboard")
    for k in (1, 2, 3):
        log.scalars(k, {"d_loss": 0.5 * k, "g_loss": np.float32(1.5), "swd_levels": {"32": 3.0}, "skip": math.nan})
    log.image(3, "preview", np.full((20, 30, 3), 200, np.uint8))
    log.flush()
    log.close()
    found: dict[str, list] = {}
    for event_file in (tmp_path / "tensorboard").iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, value))
    assert set(found) == {"d_loss", "g_loss", "swd_levels/32", "preview"}
    assert [(step, float(tf.make_ndarray(v.tensor))) for step, v in found["d_loss"]] == [(1, 0.5), (2, 1.0), (3, 1.5)]
    assert found["d_loss"][0][1].metadata.plugin_data.plugin_name == "scalars"
    (step, image), = found["preview"]
    width, height, png = tf.make_ndarray(image.tensor)
    assert step == 3 and image.metadata.plugin_data.plugin_name == "images" and (width, height) == (b"30", b"20")
    assert png.startswith(b"\x89PNG")
