"""The tools around training (generate, evaluate, plots, movie, preview grids): impossible counts, damaged run files,
full disks, animation formats, evaluations from few images, a quick refusal before TensorFlow, grid shapes and
the preview grid's tiles (issues 38 and 39)."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from dcgan_faces import animation, curves, evaluate, generate, movie, plots, quiet
from dcgan_faces.cli_types import MIN_FLOOR_IMAGES
from dcgan_faces.config import TrainConfig
from dcgan_faces.preview import grid_shape, image_grid, square_grid, to_uint8
from dcgan_faces.runfolder import RunFolder
from dcgan_faces.writers import Evaluation
from tests.conftest import TINY_RES, train_quietly

MARGIN = 16  # preview.image_grid's default


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def no_tensorflow(monkeypatch) -> None:
    """Fail the test where a tool would import TensorFlow (it takes seconds) before refusing."""
    monkeypatch.setattr(quiet, "import_tensorflow", lambda *a, **k: pytest.fail("TensorFlow was imported"))


# --- 1. impossible evaluation counts are refused up front ---


def test_train_refuses_eval_images_1_up_front(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_quietly(["--eval-images", "1", "--eval-every", "2", "--dry-run", "--out", str(tmp_path / "run")])
    err = one_line_error(capsys)
    assert exit_info.value.code == 2 and "--eval-images" in err and "at least 2" in err


def test_evaluate_refuses_n_1_up_front(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--model", str(tmp_path / "run"), "--n", "1"])
    err = one_line_error(capsys)
    assert exit_info.value.code == 2 and "--n" in err and "at least 2" in err


def test_a_runs_saved_eval_images_1_skips_the_evaluations_instead_of_crashing():
    said = []
    session = SimpleNamespace(config=TrainConfig(eval_images=1, eval_every=2), images=np.zeros((24, 4, 4, 3)),
                              say=said.append)
    writer = Evaluation(2)
    writer.on_train_begin(session)
    assert writer.every == 0 and not writer.due(2)
    assert len(said) == 1 and "--eval-images 2" in said[0]


# --- 2. a damaged config.json ---


@pytest.mark.parametrize("text", ["{bad", "[]"])
def test_config_json_that_is_not_settings_is_a_value_error(text, tmp_path):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ValueError):
        TrainConfig.load(tmp_path / "config.json")


def test_train_takes_a_config_json_that_is_a_list_for_unreadable(tmp_path):
    from dcgan_faces.resolve import first_checkpoint

    run = RunFolder(tmp_path)
    run.config_path.write_text("[]")
    assert first_checkpoint(run) == 0  # was an AttributeError: a traceback from train before any checkpoint


@pytest.mark.parametrize("tool", [generate, evaluate])
@pytest.mark.parametrize("text", ["{bad", "[]"])
def test_a_damaged_config_json_without_a_checkpoint_is_one_line(tool, text, tmp_path, monkeypatch, capsys):
    run = RunFolder(tmp_path / "run")
    run.create()
    run.config_path.write_text(text)
    run.generator_path.write_text("not loaded: the settings are missing first")
    no_tensorflow(monkeypatch)
    assert tool.main(["--model", str(run.path), *(["--real", "demo"] if tool is evaluate else [])]) == 2
    err = one_line_error(capsys)
    assert "config.json" in err and str(run.generator_path) in err


@pytest.mark.parametrize("text", ["{bad", "[]"])
def test_generate_takes_a_damaged_runs_settings_from_its_checkpoint(text, tiny_run, tmp_path, capsys):
    copy = RunFolder(shutil.copytree(tiny_run, tmp_path / "run"))
    copy.config_path.write_text(text)
    for run, out in ((tiny_run, "intact"), (copy.path, "damaged")):
        assert generate.main(["--model", str(run), "--preview", "--out", str(tmp_path / f"{out}.png")]) == 0
    assert "config.json cannot be read" in capsys.readouterr().err
    with Image.open(tmp_path / "intact.png") as intact, Image.open(tmp_path / "damaged.png") as damaged:
        np.testing.assert_array_equal(np.asarray(intact), np.asarray(damaged))


def test_evaluate_takes_a_damaged_runs_settings_from_its_checkpoint(tiny_run, tmp_path, capsys):
    pytest.importorskip("cv2")
    copy = RunFolder(shutil.copytree(tiny_run, tmp_path / "run"))
    copy.config_path.write_text("[]")
    assert evaluate.main(["--model", str(copy.path), "--n", "4", "--cache-dir", str(tmp_path / "cache")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 4 and result["real"] == str(tiny_run.parent / "faces")  # the data from the checkpoint


# --- 3. plots on a full disk or a read-only folder ---


def metrics_run(folder: Path) -> RunFolder:
    run = RunFolder(folder)
    run.path.mkdir(parents=True)
    run.append_metrics([{"iteration": i, "d_loss": 0.7, "d_acc": 0.5, "g_loss": 1.0, "g_acc": 0.1} for i in (1, 2)])
    return run


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "No space left"), (errno.EROFS, "Read-only")])
def test_plots_that_cannot_be_written_are_one_line(code, words, tmp_path, monkeypatch, capsys):
    run = metrics_run(tmp_path / "run")

    def cannot_write(path, fill):
        raise OSError(code, f"{words} (simulated)")

    monkeypatch.setattr(curves, "write_atomically", cannot_write)
    assert plots.main([str(run.path)]) != 0
    err = one_line_error(capsys)
    assert str(run.plot_path) in err and words in err


def test_plots_without_matplotlib_is_one_line(tmp_path, monkeypatch, capsys):
    run = metrics_run(tmp_path / "run")

    def no_matplotlib(*args, **kwargs):
        raise ImportError("plots need matplotlib: pip install matplotlib")

    monkeypatch.setattr(plots, "save_plot", no_matplotlib)
    assert plots.main([str(run.path)]) == 2
    assert "pip install matplotlib" in one_line_error(capsys)


# --- 4. the animation's extension is honoured, or refused ---


def previews_run(folder: Path) -> Path:
    run = RunFolder(folder)
    run.create()
    for iteration in (0, 10, 20):
        run.save_preview(Image.new("RGB", (40, 30), (iteration * 10, 90, 120)), iteration)
    return run.path


@pytest.mark.skipif(not animation.mp4_available(), reason="imageio-ffmpeg not installed")
def test_movie_out_mp4_writes_the_mp4(tmp_path, capsys):
    run = previews_run(tmp_path / "run")
    assert movie.main([str(run), "--out", str(tmp_path / "n7.mp4")]) == 0
    assert (tmp_path / "n7.mp4").stat().st_size > 0 and not (tmp_path / "n7.gif").exists()
    assert str(tmp_path / "n7.mp4") in capsys.readouterr().out


@pytest.mark.parametrize("name", ["m3.png", "m3", "m3.avi"])
def test_movie_refuses_an_extension_it_cannot_write(name, tmp_path, capsys):
    run = previews_run(tmp_path / "run")
    assert movie.main([str(run), "--out", str(tmp_path / name)]) == 2
    err = one_line_error(capsys)
    assert "--out" in err and ".gif" in err and ".mp4" in err
    assert not list(tmp_path.glob("m3*"))


def test_movie_refuses_an_mp4_without_the_media_extra(tmp_path, monkeypatch, capsys):
    run = previews_run(tmp_path / "run")
    monkeypatch.setattr(animation, "mp4_available", lambda: False)
    assert movie.main([str(run), "--out", str(tmp_path / "n7.mp4")]) == 2
    assert "pip install 'dcgan_faces[media]'" in one_line_error(capsys)
    assert not list(tmp_path.glob("n7*"))


def test_a_walk_to_a_png_is_refused_before_the_model_is_loaded(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(generate, "open_model", lambda path: pytest.fail("the model was loaded"))
    assert generate.main(["--model", str(tmp_path), "--interpolate", "3", "--out", str(tmp_path / "walk.png")]) == 2
    assert "walk.gif" in one_line_error(capsys)


# --- 5. an evaluation from few images says so, and gives no floor from too few ---


def fake_generator(z: np.ndarray) -> np.ndarray:
    return np.tanh(np.resize(z, (len(z), 16, 16, 3)))


def test_too_few_real_images_give_no_real_vs_real_floor(monkeypatch):
    pytest.importorskip("cv2")
    from dcgan_faces import metrics
    from dcgan_faces.evaluation import evaluate_generator

    monkeypatch.setattr(metrics, "face_hit_rate", lambda images: 0.0)  # not what is tested, and slow
    faces = np.random.default_rng(0).integers(0, 255, (MIN_FLOOR_IMAGES, 16, 16, 3), dtype=np.uint8)
    few = evaluate_generator(fake_generator, faces[:3], 100, 8)
    assert few["n"] == 3 and few["swd_real_floor"] is None and np.isfinite(few["swd"])
    enough = evaluate_generator(fake_generator, faces, 100, 8)
    assert enough["n"] == MIN_FLOOR_IMAGES and enough["swd_real_floor"] > 0


def test_evaluate_says_how_many_images_it_used_and_why_there_is_no_floor(tiny_run, tmp_path, capsys):
    pytest.importorskip("cv2")
    cache = next((tiny_run.parent / "cache").glob(f"faces-*_{TINY_RES}_{TINY_RES}.npy"))
    np.save(tmp_path / "three.npy", np.load(cache)[:3])
    assert evaluate.main(["--model", str(tiny_run), "--real", str(tmp_path / "three.npy"), "--n", "100"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["n"] == 3 and result["swd_real_floor"] is None
    assert "evaluated 3 real and 3 generated, not --n 100" in captured.err
    assert f"at least {MIN_FLOOR_IMAGES} real images" in captured.err


# --- 6. a missing model is refused before TensorFlow is imported ---


@pytest.mark.parametrize("tool, extra", [(generate, []), (evaluate, ["--real", "demo"])])
def test_a_missing_model_is_refused_before_tensorflow(tool, extra, tmp_path, monkeypatch, capsys):
    no_tensorflow(monkeypatch)
    assert tool.main(["--model", str(tmp_path / "no_such_run"), *extra]) == 2
    assert "--model" in one_line_error(capsys)


# --- 7. grid shapes ---


def test_a_count_with_a_good_factorisation_fills_its_grid():
    assert grid_shape(28) == (4, 7)  # the preview grid's shape
    assert [grid_shape(n) for n in (6, 12, 32, 48, 72)] == [(2, 3), (3, 4), (4, 8), (6, 8), (8, 9)]
    assert [grid_shape(n) for n in (7, 10, 65)] == [(3, 3), (3, 4), (8, 9)]  # primes and long shapes: near-square


def test_28_faces_leave_no_white_cell():
    faces = np.zeros((28, 8, 8, 3), np.uint8)
    grid = np.asarray(square_grid(faces))
    assert grid.shape[:2] == (MARGIN + 4 * (8 + MARGIN), MARGIN + 7 * (8 + MARGIN))
    assert (grid == 0).all(axis=-1).sum() == 28 * 8 * 8


# --- 8. the preview grid's tiles are the generator's images, edges included ---


def test_every_tile_edge_is_the_generators_own_pixels():
    """A grid adds nothing at the tiles' edges: its left and right columns are the images' first and last ones,
    and -1 / 1 map to 0 / 255 exactly (an early grid's coloured left stripe comes from the generator itself)."""
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (28, 12, 10, 3)).astype(np.float32)
    images[:, :, 0], images[:, :, -1] = -1.0, 1.0
    tiles = to_uint8(images)
    grid = np.asarray(image_grid(tiles, 4, 7))
    for index, tile in enumerate(tiles):
        top, left = MARGIN + (index // 7) * (12 + MARGIN), MARGIN + (index % 7) * (10 + MARGIN)
        np.testing.assert_array_equal(grid[top:top + 12, left:left + 10], tile)
        assert (grid[top:top + 12, left - 1] == 255).all() and (grid[top:top + 12, left + 10] == 255).all()
    assert (tiles[:, :, 0] == 0).all() and (tiles[:, :, -1] == 255).all()


@pytest.mark.parametrize("fast", [True, False], ids=["fast layers", "stock layers"])
def test_the_generator_favours_neither_edge(fast):
    """The generator with every kernel mirrored left-right draws the mirror image: nothing in its layers (padding,
    the fast layers' phases) treats the left edge unlike the right one. The left-edge stripe of early grids comes
    from the discriminator, whose stride-2 'same' convolutions pad at the right only, so it sees the leftmost
    columns least and corrects them last."""
    import keras

    from dcgan_faces.models import build_generator

    keras.utils.set_random_seed(0)
    generator = build_generator(res=16, seed_size=8, fast=fast, filters=8)
    mirrored = build_generator(res=16, seed_size=8, fast=fast, filters=8)
    start = generator.get_layer(index=2).output.shape[1]  # the square the Dense layer's units are reshaped to
    weights = []
    for weight in generator.get_weights():
        if weight.ndim == 4:  # a convolution's kernel: (rows, cols, in, out)
            weight = weight[:, ::-1]
        elif weight.shape[-1] == start * start * 8:  # the Dense layer's units in (row, col, filter) order
            weight = weight.reshape(*weight.shape[:-1], start, start, 8)[..., ::-1, :].reshape(weight.shape)
        weights.append(weight)
    mirrored.set_weights(weights)
    z = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(mirrored(z))[:, :, ::-1], np.asarray(generator(z)), atol=1e-5)
