"""The trainer never trains on what the package wrote, and a resumed run says when its images changed."""

import shutil

import numpy as np
import pytest
from PIL import Image

from dcgan_faces import data, generate, imagefile, movie
from dcgan_faces.animation import write_animation
from dcgan_faces.curves import save_plot
from dcgan_faces.preview import square_grid, to_pil
from dcgan_faces.runfolder import RunFolder
from dcgan_faces.sources.folder import find_images, identify
from tests.conftest import draw_faces, train_quietly

PIXELS = np.random.default_rng(0).integers(0, 255, (4, 20, 20, 3), dtype=np.uint8)


def marked(path) -> bool:
    with Image.open(path) as image:
        return imagefile.is_marked(image)


def test_every_kind_of_image_the_package_writes_is_marked(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.create()
    written = [
        run.save_preview(Image.fromarray(PIXELS[0]), 2),
        save_plot([{"iteration": 1, "d_loss": 1.0, "g_loss": 2.0, "d_acc": 0.5, "g_acc": 0.5}], run.plot_path),
        generate.save_png(square_grid(PIXELS), tmp_path / "faces.png"),
        *write_animation(list(PIXELS), tmp_path / "walk.gif", fps=4, mp4=False),
    ]
    assert [marked(path) for path in written] == [True] * 4
    with Image.open(written[0]) as grid:
        assert grid.info["Software"].startswith("dcgan_faces ")
    draw_faces(tmp_path / "photos", count=2)
    assert not any(marked(path) for path in find_images(tmp_path / "photos")), "a photo is not taken for ours"


def test_the_data_scan_skips_marked_images_by_their_header_and_counts_them(tmp_path):
    photos = draw_faces(tmp_path / "photos", count=16)
    (photos / "faces").mkdir()
    for i in range(8):
        generate.save_png(to_pil(PIXELS[i % 4]), photos / "faces" / f"face-{i:04d}.png")
    cut = photos / "faces" / "face-0000.png"
    cut.write_bytes(cut.read_bytes()[:200])  # the header with its mark, no pixels: never decoded, so not "unreadable"
    said = []
    dataset = data.open_dataset(str(photos), tmp_path / "cache", 16, log=said.append)
    assert len(dataset.images) == 16
    assert dataset.skipped == {"written by dcgan_faces": 8}
    assert any(line.startswith("skipped 8 of 24 files (8 written by dcgan_faces)") for line in said), said


def _dataset(folder):
    files = find_images(folder)
    fingerprint, listing = identify(folder, files)
    return data.Dataset(np.zeros((len(files), 1, 1, 3), np.uint8), str(folder), None,
                        fingerprint=fingerprint["fingerprint"], listing=listing)


def test_a_changed_data_set_is_counted_as_added_removed_and_edited(tmp_path):
    photos = draw_faces(tmp_path / "photos", count=8)
    before = _dataset(photos)
    state, arrays = {"iteration": 40, "data_fingerprint": before.fingerprint}, {data.LISTING: before.listing}
    assert data.data_change(state, arrays, _dataset(photos)) is None
    draw_faces(tmp_path / "new", count=3, seed=1)
    for path in find_images(tmp_path / "new"):
        shutil.copy(path, photos / f"new-{path.name}")
    (photos / "face01.jpg").unlink()
    edited = photos / "face03.jpg"
    edited.write_bytes(edited.read_bytes() + b"\0")
    assert data.data_change(state, arrays, _dataset(photos)) == (
        "the data changed since the checkpoint of iteration 40: 3 image files added, 1 removed, 1 edited; "
        "training goes on with 10 images")
    assert "does not record which" in data.data_change(state, {}, _dataset(photos)), "an older checkpoint"


@pytest.mark.slow
def test_generated_faces_put_into_the_data_folder_are_not_trained_on(tmp_path, capsys):
    """Reproduction 2: generate --individual into the data folder, then resume on it."""
    photos = draw_faces(tmp_path / "photos", count=16)
    command = ["--res", "16", "--batch-size", "4", "--save-every", "2", "--data", str(photos),
               "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run")]
    assert train_quietly([*command, "--steps", "2"]) == 0
    assert generate.main(["--model", str(tmp_path / "run"), "--n", "8", "--individual",
                          "--out", str(photos / "faces")]) == 0
    capsys.readouterr()
    assert train_quietly([*command, "--steps", "4"]) == 0
    out = capsys.readouterr().out
    assert "skipped 8 of 24 files (8 written by dcgan_faces)" in out
    assert ("the data changed since the checkpoint of iteration 2: 8 image files added, 0 removed; training goes "
            "on with 16 images") in out
    assert train_quietly([*command, "--steps", "5"]) == 0
    assert "the data changed" not in capsys.readouterr().out, "said once, not at every resume"


@pytest.mark.slow
def test_the_outputs_of_a_run_generate_and_movie_are_all_marked(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    assert all(marked(path) for path in [*RunFolder(run).preview_files(), run / "plots.png"])
    assert generate.main(["--model", str(run), "--n", "3", "--individual", "--out", str(tmp_path / "each")]) == 0
    assert generate.main(["--model", str(run), "--interpolate", "2", "--frames-per-step", "2",
                          "--out", str(tmp_path / "walk.gif")]) == 0
    assert movie.main([str(run), "--out", str(tmp_path / "progress.gif")]) == 0
    written = [*(tmp_path / "each").iterdir(), tmp_path / "walk.gif", tmp_path / "progress.gif"]
    assert len(written) == 5 and all(marked(path) for path in written)
