"""Messy folders, broken caches, full disks and diverging training: nothing crashes, nothing good is lost."""

import errno
import io
import json
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dcgan_faces import data, session, train, writers
from dcgan_faces.config import TrainConfig
from dcgan_faces.sources import images
from dcgan_faces.sources.folder import find_images
from dcgan_faces.trainer import Trainer


def _jpeg(size=(30, 30), mode="RGB", color=(200, 120, 80), **save):
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, "JPEG", **save)
    return buffer.getvalue()


@pytest.fixture
def messy_folder(tmp_path, monkeypatch):
    """One file of each awkward kind, as real face folders have them."""
    folder = tmp_path / "messy"
    folder.mkdir()
    good = _jpeg()
    (folder / "ok.jpg").write_bytes(good)
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "zero.png").write_bytes(b"")
    (folder / "text.jpg").write_text("I am not a picture")
    (folder / "no_extension").write_bytes(good)
    (folder / "cmyk.jpg").write_bytes(_jpeg(mode="CMYK", color=(0, 50, 100, 0)))
    Image.fromarray(np.full((30, 30), 40000, dtype=np.uint16)).save(folder / "deep16.png")
    palette = Image.new("P", (30, 30), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] * 128)
    palette.save(folder / "palette.png", transparency=0)
    Image.new("RGBA", (30, 30), (10, 200, 10, 128)).save(folder / "rgba.png")
    Image.new("L", (30, 30), 90).save(folder / "grey.png")
    frames = [Image.new("RGB", (30, 30), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    rotated = Image.new("RGB", (30, 30), (50, 50, 50))
    exif = rotated.getexif()
    exif[0x0112] = 6
    rotated.save(folder / "rotated.jpg", exif=exif)
    Image.new("RGB", (400, 400), (9, 9, 9)).save(folder / "bomb.png")
    Image.new("RGB", (6, 8), (1, 2, 3)).save(folder / "tiny.png")
    (folder / "locked.png").write_bytes(good)
    os.symlink(folder / "loop_a.jpg", folder / "loop_b.jpg")
    os.symlink(folder / "loop_b.jpg", folder / "loop_a.jpg")
    os.symlink(folder, folder / "self_link_dir")
    (folder / os.fsdecode(b"caf\xe9_latin1.jpg")).write_bytes(good)
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # makes the 400×400 file a decompression bomb
    real_open = Image.open

    def open_or_deny(path, *args, **kwargs):  # root ignores file modes, so a denied read is simulated
        if str(path).endswith("locked.png"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Image, "open", open_or_deny)  # PIL.Image, as pixels.py uses it
    return folder


def test_a_messy_folder_is_prepared_with_counts_per_reason(messy_folder, tmp_path):
    messages = []
    dataset = data.open_dataset(str(messy_folder), tmp_path / "cache", 16, log=messages.append)
    assert dataset.skipped == {"unreadable": 4, "not an image": 2, "too many pixels": 1}
    # unreadable: truncated.jpg, locked.png and the two looping links; not an image: zero.png, text.jpg
    assert len(dataset.images) == 11  # the 11 others: tiny.png upscaled, no_extension sniffed, the Latin-1 name
    report = next(m for m in messages if m.startswith("skipped 7 of 18"))
    assert "1 too many pixels" in report
    assert dataset.images.dtype == np.uint8 and dataset.images.shape[1:] == (16, 16, 3)


def test_min_size_skips_small_images_instead_of_upscaling(messy_folder, tmp_path):
    dataset = data.open_dataset(str(messy_folder), tmp_path / "cache", 16, log=lambda m: None, min_size=10)
    assert dataset.skipped["smaller than --min-size"] == 1
    assert len(dataset.images) == 10


def test_odd_modes_are_converted_sensibly(messy_folder):
    assert images.load_image(messy_folder / "deep16.png", 8).min() > 100, "16-bit scaled to 8 bits, not clipped"
    transparent = images.load_image(messy_folder / "palette.png", 8)
    np.testing.assert_array_equal(transparent, 255)  # the transparent palette entry lands on white
    first_frame = images.load_image(messy_folder / "animated.gif", 8)
    assert first_frame[..., 0].mean() > 200 and first_frame[..., 2].mean() < 50
    assert images.load_image(messy_folder / "cmyk.jpg", 8).shape == (8, 8, 3)


@pytest.mark.parametrize("damage", ["truncate", "dtype", "shape", "no_manifest", "bad_manifest", "other_folder"])
def test_a_damaged_or_foreign_cache_is_rebuilt_with_a_message(face_folder, tmp_path, damage):
    cache = tmp_path / "cache"
    first = data.open_dataset(str(face_folder), cache, 16)
    good = np.array(first.images)
    tensor, manifest = first.cache_path, first.cache_path.with_suffix(".json")
    if damage == "truncate":
        tensor.write_bytes(tensor.read_bytes()[:500])
    elif damage == "dtype":
        np.save(tensor, good.astype(np.float32))
    elif damage == "shape":
        np.save(tensor, good[:, :8])
    elif damage == "no_manifest":
        manifest.unlink()
    elif damage == "bad_manifest":
        manifest.write_text("{ not json")
    else:
        record = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**record, "source": "/somewhere/else"}))
    messages = []
    rebuilt = data.open_dataset(str(face_folder), cache, 16, log=messages.append)
    assert any(m.startswith("rebuilding") for m in messages), messages
    np.testing.assert_array_equal(rebuilt.images, good)


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_caching_keeps_the_old_cache_and_says_so(face_folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = data.open_dataset(str(face_folder), cache, 16)
    old = np.array(first.images)
    Image.new("RGB", (20, 20)).save(face_folder / "new.png")
    monkeypatch.setattr(data.np.lib.format, "open_memmap", _disk_full)
    with pytest.raises(data.DataError, match="No space left on device.*earlier cache there is kept"):
        data.open_dataset(str(face_folder), cache, 16)
    np.testing.assert_array_equal(np.load(first.cache_path), old)
    assert not [p for p in cache.iterdir() if "tmp" in p.name]


def _train(face_folder, tmp_path, *extra):
    return train.main(["--res", "16", "--batch-size", "4", "--save-every", "2", "--data", str(face_folder),
                       "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run"), *extra])


@pytest.mark.slow
def test_disk_full_while_saving_outputs_keeps_the_previous_files(face_folder, tmp_path, monkeypatch, capsys):
    assert _train(face_folder, tmp_path, "--steps", "2") == 0
    checkpoints = tmp_path / "run/checkpoints"
    before = sorted(p.name for p in checkpoints.iterdir())
    monkeypatch.setattr(session.checkpoint.np, "savez", _disk_full)
    monkeypatch.setattr(Image.Image, "save", _disk_full)
    assert _train(face_folder, tmp_path, "--steps", "4") == 1  # its last checkpoint is not written
    out = capsys.readouterr().out
    assert "could not write the checkpoint of iteration 4 (No space left on device)" in out
    assert "could not write the preview grid of iteration 4" in out
    assert sorted(p.name for p in checkpoints.iterdir()) == before
    monkeypatch.setattr(session.RunFolder, "save_generator", _disk_full)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert _train(face_folder, tmp_path, "--steps", "5") == 1
    assert "could not write the generator" in capsys.readouterr().out
    assert writers.fallback_path(tmp_path / "run", 5).exists(), "saved where there is room"


def _nan_at(iteration, times=1):
    real_step, calls = Trainer.step, {"left": times}

    def step(self):
        figures = real_step(self)
        if self.iteration == iteration and calls["left"]:
            calls["left"] -= 1
            figures["g_loss"] = float("nan")
        return figures
    return step


@pytest.mark.slow
def test_divergence_stops_keeping_the_last_good_checkpoint(face_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Trainer, "step", _nan_at(3))
    assert _train(face_folder, tmp_path, "--steps", "6") == session.DIVERGED_EXIT
    out = capsys.readouterr().out
    half_lr = TrainConfig.load(tmp_path / "run/config.json").lr / 2
    assert "diverged at iteration 3" in out and "iteration 2" in out and f"--lr {half_lr:g}" in out
    assert [p.name for p in (tmp_path / "run/checkpoints").iterdir()] == ["ckpt-00000002.npz"]
    assert not (tmp_path / "run/generator.keras").exists()


def _diverging_session(tmp_path, rollbacks=0, checkpoint_at=None):
    """What Session.rollback reads of a session, with --on-nan rollback, and a checkpoint or none."""
    from types import SimpleNamespace

    from dcgan_faces.runfolder import RunFolder

    run, said = RunFolder(tmp_path / "run"), []
    run.create()
    if checkpoint_at is not None:
        np.savez(run.checkpoints / f"ckpt-{checkpoint_at:08d}.npz", state=np.array(json.dumps({"iteration": 2})))
    return SimpleNamespace(run_folder=run, say=said.append, rollbacks=rollbacks,
                           metrics=SimpleNamespace(flush=lambda: None),
                           config=SimpleNamespace(on_nan="rollback", checkpoint_interval=100),
                           trainer=SimpleNamespace(learning_rates=lambda: (2e-4, 2e-4))), said


def test_rollback_that_cannot_roll_back_says_why_instead_of_suggesting_itself(tmp_path):
    fake, said = _diverging_session(tmp_path)
    assert session.Session.rollback(fake, 1, "g_loss nan") is False
    assert said[-1] == ("--on-nan rollback: no checkpoint to go back to yet (the first is written at iteration 100); "
                        "lower the learning rate (e.g. --lr 0.0001 with --fresh).")
    fake, said = _diverging_session(tmp_path, rollbacks=session.MAX_ROLLBACKS, checkpoint_at=2)
    assert session.Session.rollback(fake, 5, "g_loss nan") is False
    assert said[-1].startswith("--on-nan rollback: it diverged again after 3 rollbacks")
    assert not any("pass --on-nan rollback" in line for line in said)


@pytest.mark.slow
def test_a_rollback_run_that_diverges_before_its_first_checkpoint_says_so(face_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Trainer, "step", _nan_at(1))
    assert _train(face_folder, tmp_path, "--steps", "6", "--on-nan", "rollback") == session.DIVERGED_EXIT
    out = capsys.readouterr().out
    assert "no checkpoint to go back to yet (the first is written at iteration 2)" in out
    assert "pass --on-nan rollback" not in out


def _learning_rates(run):
    """(G's, D's) learning rate in the run's newest checkpoint: the optimizers' scalar variables."""
    from dcgan_faces import checkpoint

    arrays = checkpoint.read_latest(run / "checkpoints")[2]
    return tuple(float(arrays[f"{group}/adam/learning_rate"]) for group in ("g_optimizer", "d_optimizer"))


@pytest.mark.slow
def test_rollback_halves_both_learning_rates_and_the_same_command_still_resumes(face_folder, tmp_path, monkeypatch,
                                                                               capsys):
    flags = ["--on-nan", "rollback", "--recipe", "notebook", "--lr-g", "1e-4", "--lr-d", "4e-4"]
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "step", _nan_at(3))
        assert _train(face_folder, tmp_path, "--steps", "6", *flags) == 0
    assert "back to iteration 2, learning rates (G, D) now 5e-05, 0.0002" in capsys.readouterr().out
    rows = [json.loads(line)["iteration"] for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert rows == [1, 2, 3, 4, 5, 6]
    config = json.loads((tmp_path / "run/config.json").read_text())
    assert (config["lr_g"], config["lr_d"]) == (1e-4, 4e-4), "the run's settings are not rewritten"
    assert _learning_rates(tmp_path / "run") == pytest.approx((5e-5, 2e-4)), "the ratio G:D is kept"
    assert _train(face_folder, tmp_path, "--steps", "8", *flags) == 0, "the same command resumes"
    assert "resuming from iteration 6" in capsys.readouterr().out
    assert _learning_rates(tmp_path / "run") == pytest.approx((5e-5, 2e-4)), "the halved rates carry on"


@pytest.mark.parametrize("flags, words", [
    (["--min-size", "-1"], "--min-size"),
    (["--save-every", "0"], "--save-every"),
    (["--epochs", "-2"], "--epochs"),
    (["--res", "100000001"], "--res"),
    (["--ema-ramp", "1"], "--ema-ramp"),  # decay (1+k)/(1+k) = 1: the average would never move
    (["--d-dropout", "1"], "--d-dropout"),
    (["--r1", "-1"], "--r1"),
    (["--r1-every", "0"], "--r1-every"),
    (["--augment-shift", "0"], "--augment-shift"),
    (["--augment-shift", "0.75"], "--augment-shift"),
])
def test_more_impossible_values_fail_with_exit_code_2(flags, words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(flags)
    assert exit_info.value.code == 2 and words in capsys.readouterr().err


def test_unwritable_output_folder_fails_before_any_work(face_folder, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    assert train.main(["--data", str(face_folder), "--batch-size", "8", "--out", str(tmp_path / "a_file" / "run"),
                       "--cache-dir", str(tmp_path / "cache")]) == 2
    assert "--out" in capsys.readouterr().err and not (tmp_path / "cache").exists()


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-. 0123456789é", min_size=1, max_size=12)
suffixes = st.sampled_from([".jpg", ".png", ".gif", ".webp", ".bmp", "", ".JPG"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(st.tuples(names, suffixes, st.one_of(st.binary(max_size=300), st.integers(1, 40))),
                      min_size=1, max_size=12))
def test_fuzz_preparation_never_raises_and_counts_add_up(tmp_path_factory, files):
    folder = tmp_path_factory.mktemp("fuzz")
    for index, (name, suffix, content) in enumerate(files):
        path = folder / f"{index}_{name.strip('.') or 'x'}{suffix}"
        if isinstance(content, int):
            Image.new("RGB", (content, content + 3), (content * 6, 0, 0)).save(path, "PNG")
        else:
            path.write_bytes(content)
    found = find_images(folder)
    try:
        dataset = data.open_dataset(str(folder), tmp_path_factory.mktemp("cache"), 16, log=lambda m: None)
    except data.DataError as error:
        assert "no usable image" in str(error) or "no image files" in str(error)
        return
    assert len(dataset.images) + sum(dataset.skipped.values()) == len(found)
