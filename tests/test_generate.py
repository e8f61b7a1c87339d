"""Tests for dcgan_faces.generate: grids, single faces and latent walks from a tiny run."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from dcgan_faces.animation import mp4_available
from dcgan_faces.generate import main
from dcgan_faces.preview import grid_shape
from dcgan_faces.runfolder import RunFolder
from tests.conftest import TINY_RES as RES
from tests.conftest import train_tiny_run

MARGIN = 16  # preview.image_grid's default


def grid_size(n: int) -> tuple[int, int]:
    rows, cols = grid_shape(n)
    return MARGIN + cols * (RES + MARGIN), MARGIN + rows * (RES + MARGIN)


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_run_folder_alone_gives_a_64_face_grid(tiny_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["--model", str(tiny_run)]) == 0
    assert Image.open(tmp_path / "faces.png").size == grid_size(64)


def test_grid_and_individual_faces(tiny_run, tmp_path):
    assert main(["--model", str(tiny_run), "--n", "10", "--out", str(tmp_path / "grid.png")]) == 0
    assert Image.open(tmp_path / "grid.png").size == grid_size(10)
    assert main(["--model", str(tiny_run), "--n", "5", "--individual", "--out", str(tmp_path / "faces")]) == 0
    files = sorted((tmp_path / "faces").glob("*.png"))
    assert len(files) == 5 and all(Image.open(f).size == (RES, RES) for f in files)


def test_seeds_give_one_repeatable_face_each(tiny_run, tmp_path):
    assert main(["--model", str(tiny_run), "--seeds", "1,5,9", "--individual", "--out", str(tmp_path / "a")]) == 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["seed-1.png", "seed-5.png", "seed-9.png"]
    assert main(["--model", str(tiny_run), "--seeds", "5", "--individual", "--out", str(tmp_path / "b")]) == 0
    np.testing.assert_array_equal(pixels(tmp_path / "a/seed-5.png"), pixels(tmp_path / "b/seed-5.png"))
    assert not np.array_equal(pixels(tmp_path / "a/seed-1.png"), pixels(tmp_path / "a/seed-5.png"))
    assert main(["--model", str(tiny_run), "--seeds", "1,5,9", "--out", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size == grid_size(3)


def test_interpolation_writes_gif_and_mp4(tiny_run, tmp_path, capsys):
    out = tmp_path / "walk.gif"
    args = ["--model", str(tiny_run), "--interpolate", "3", "--frames-per-step", "4", "--fps", "8", "--out", str(out)]
    assert main(args) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 12 and gif.size == (RES, RES)
    assert (tmp_path / "walk.mp4").exists() == mp4_available()
    assert str(out) in capsys.readouterr().out


def test_generator_from_checkpoint_when_generator_keras_is_gone(tiny_run, tmp_path):
    copy = shutil.copytree(tiny_run, tmp_path / "run")
    (copy / "generator.keras").unlink()
    for run, out in ((tiny_run, "saved"), (copy, "checkpoint")):
        assert main(["--model", str(run), "--seeds", "2", "--individual", "--out", str(tmp_path / out)]) == 0
    difference = pixels(tmp_path / "saved/seed-2.png").astype(int) - pixels(tmp_path / "checkpoint/seed-2.png")
    assert np.abs(difference).max() <= 1


@pytest.mark.parametrize("args, flag", [
    (["--model", "no/such/run"], "--model"),
    (["--interpolate", "3", "--seeds", "1,2"], "--interpolate"),
    (["--interpolate", "3", "--individual"], "--individual"),
])
def test_bad_input_is_one_line_and_exit_2(args, flag, tiny_run, capsys):
    if "--model" not in args:
        args = ["--model", str(tiny_run), *args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and flag in err


def test_preview_reproduces_the_runs_preview_grid_exactly(tiny_run, tmp_path):
    assert main(["--model", str(tiny_run), "--preview", "--out", str(tmp_path / "grid.png")]) == 0
    final = RunFolder(tiny_run).preview_files()[-1]
    np.testing.assert_array_equal(pixels(tmp_path / "grid.png"), pixels(final))


def test_preview_seeds_are_single_faces_of_the_preview_grid(tiny_run, tmp_path):
    assert main(["--model", str(tiny_run), "--preview", "--seeds", "0,8", "--individual",
                 "--out", str(tmp_path / "faces")]) == 0
    grid = pixels(RunFolder(tiny_run).preview_files()[-1])
    cell = MARGIN + RES  # face k sits at row k // 7, column k % 7 of the 4×7 grid
    for face, (row, col) in ((0, (0, 0)), (8, (1, 1))):
        top, left = MARGIN + row * cell, MARGIN + col * cell
        np.testing.assert_array_equal(pixels(tmp_path / f"faces/preview-{face}.png"),
                                      grid[top:top + RES, left:left + RES])


@pytest.mark.parametrize("args", [["--seeds", ","], ["--seed", "-1"], ["--seeds", "1,-5"]])
def test_bad_seeds_are_one_line_and_exit_2(args, tiny_run, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", str(tiny_run), *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and err.startswith("error: ") and args[0] in err


@pytest.mark.parametrize("args, words", [
    (["--n", "1000000"], "--individual"),
    (["--preview", "--model", "FILE"], "--preview needs a run folder"),
])
@pytest.mark.slow
def test_impossible_requests_are_one_line_and_exit_2(args, words, tiny_run, capsys):
    args = [str(tiny_run / "generator.keras") if a == "FILE" else a for a in args]
    assert main(["--model", str(tiny_run), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and words in err


def test_out_under_a_file_is_one_line_and_exit_2(tiny_run, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    assert main(["--model", str(tiny_run), "--n", "2", "--out", str(tmp_path / "a_file" / "faces.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and "cannot write there" in err


def test_a_damaged_generator_keras_falls_back_to_the_checkpoint(tiny_run, tmp_path, capsys):
    copy = shutil.copytree(tiny_run, tmp_path / "run")
    saved = copy / "generator.keras"
    saved.write_bytes(saved.read_bytes()[:500])
    import os

    newest = max(copy.glob("checkpoints/*.npz"))
    os.utime(newest, (newest.stat().st_atime, saved.stat().st_mtime - 10))  # older than generator.keras
    assert main(["--model", str(copy), "--preview", "--out", str(tmp_path / "grid.png")]) == 0
    assert "using the newest checkpoint instead" in capsys.readouterr().err
    np.testing.assert_array_equal(pixels(tmp_path / "grid.png"), pixels(RunFolder(tiny_run).preview_files()[-1]))


@pytest.fixture(scope="module")
def bfloat16_run(tmp_path_factory):
    """A tiny run trained in mixed_bfloat16, which `--precision auto` picks on a CPU with bfloat16 instructions."""
    run = train_tiny_run(tmp_path_factory.mktemp("bfloat16_run"), "--precision", "mixed_bfloat16")
    import keras

    keras.mixed_precision.set_global_policy("float32")  # as a new `generate` process finds it
    return run


@pytest.fixture(scope="module")
def narrow_run(tmp_path_factory):
    """A tiny run whose generator is narrower than the notebook's (--g-filters)."""
    return train_tiny_run(tmp_path_factory.mktemp("narrow_run"), "--g-filters", "16")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bfloat16_run", "narrow_run"])
def test_a_runs_generator_reproduces_its_preview_grid_from_either_file(kind, request, tmp_path):
    trained = request.getfixturevalue(kind)
    from_checkpoint = shutil.copytree(trained, tmp_path / "run")
    (from_checkpoint / "generator.keras").unlink()
    final = pixels(RunFolder(trained).preview_files()[-1])
    for run, out in ((trained, "saved.png"), (from_checkpoint, "checkpoint.png")):
        assert main(["--model", str(run), "--preview", "--out", str(tmp_path / out)]) == 0
        np.testing.assert_array_equal(pixels(tmp_path / out), final, err_msg=out)


@pytest.mark.slow
def test_a_narrow_generator_is_saved_narrow_in_stock_layers(narrow_run):
    import keras

    saved = keras.models.load_model(narrow_run / "generator.keras", compile=False)
    widths = [layer.filters for layer in saved.layers if isinstance(layer, keras.layers.Conv2D)]
    assert widths == [16, 16, 8, 3]  # 32 px: two blocks of --g-filters, one of half, then the colours


@pytest.mark.slow
def test_a_bfloat16_face_does_not_depend_on_the_faces_drawn_with_it(bfloat16_run, tmp_path):
    for seeds, out in (("1,5,9", "three"), ("5", "one")):
        assert main(["--model", str(bfloat16_run), "--seeds", seeds, "--individual", "--out", str(tmp_path / out)]) == 0
    np.testing.assert_array_equal(pixels(tmp_path / "three/seed-5.png"), pixels(tmp_path / "one/seed-5.png"))
