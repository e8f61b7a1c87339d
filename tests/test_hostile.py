"""A hostile but realistic user: full disks, kills mid-write, two writers at once, files that lie."""

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from dcgan_faces import cache, data, prepare
from dcgan_faces.atomic import HOST
from dcgan_faces.movie import main as movie
from dcgan_faces.runfolder import MARK, RunFolder
from dcgan_faces.writers import fallback_path
from tests.conftest import TINY_RES, TINY_STEPS, draw_faces, train_quietly

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


@contextlib.contextmanager
def small_disk(folder: Path, size: str, read_only: bool = False):
    """A tmpfs of `size` at `folder` (a real full disk); the test is skipped where it cannot be mounted."""
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command here to make a small file system")
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small file system here (mount: {done.stderr.decode().strip()[:80]})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _train(face_folder, cache_dir, out, *extra):
    return train_quietly(["--res", "16", "--batch-size", "4", "--save-every", "2", "--data", str(face_folder),
                          "--cache-dir", str(cache_dir), "--out", str(out), *extra])


def _temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".tmp-" in p.name]


def test_a_full_disk_while_caching_is_one_line_and_leaves_nothing(tmp_path, capsys):
    faces = draw_faces(tmp_path / "faces")  # 24 faces: 295 KB at 64 px
    with small_disk(tmp_path / "disk", "200k") as disk:
        assert train_quietly(["--res", "64", "--batch-size", "8", "--data", str(faces), "--cache-dir",
                              str(disk / "cache"), "--out", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "No space left on device" in err and "--cache-dir" in err
        assert _temporaries(disk) == []


def test_space_that_the_disk_only_claims_to_have_is_still_a_clean_error(tmp_path, monkeypatch):
    faces = draw_faces(tmp_path / "faces")
    with small_disk(tmp_path / "disk", "200k") as disk:
        monkeypatch.setattr(cache.shutil, "disk_usage", lambda path: SimpleNamespace(free=1 << 40))
        with pytest.raises(data.DataError, match="No space left on device"):  # allocation fails, no bus error
            data.open_dataset(str(faces), disk / "cache", 64)
        assert _temporaries(disk) == []


@pytest.mark.slow
def test_a_full_disk_during_training_keeps_every_earlier_file(face_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the generator goes when the run has no room
    with small_disk(tmp_path / "disk", "64m") as disk:
        out = disk / "run"
        assert _train(face_folder, tmp_path / "cache", out, "--steps", "2") == 0
        kept = {p: p.read_bytes() for pattern in ("previews/*.png", "checkpoints/*.npz", "generator.keras")
                for p in out.glob(pattern)}
        _fill(disk, leave=300_000)  # room for the lock, config, log and grids; not for a checkpoint
        capsys.readouterr()
        assert _train(face_folder, tmp_path / "cache", out, "--steps", "4") == 1  # trained on, not all saved
        captured = capsys.readouterr().out
        assert "could not write the checkpoint of iteration 4 (No space left on device)" in captured
        assert f"could not write the generator {out / 'generator.keras'} (No space left on device); saved it as " \
               f"{fallback_path(out, 4)} instead" in captured
        assert fallback_path(out, 4).stat().st_size > 0
        assert len(kept) == 4  # grids 0 and 2, checkpoint 2, the generator
        for path, content in kept.items():
            assert path.read_bytes() == content, f"{path.name} was changed"
        assert _temporaries(out) == []


def _fill(disk: Path, leave: int = 0) -> None:
    """Fill the disk, then give back `leave` bytes."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as file, contextlib.suppress(OSError):  # unbuffered: nothing left
        while True:                                                                # to fail again on close
            file.write(b"\1" * 65536)
    os.truncate(filler, max(0, filler.stat().st_size - leave))


def test_a_cache_dir_that_cannot_be_created_is_one_line(face_folder, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    assert _train(face_folder, tmp_path / "a_file" / "cache", tmp_path / "run", "--steps", "1") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--cache-dir" in err
    with small_disk(tmp_path / "readonly", "1m", read_only=True) as disk:
        assert _train(face_folder, disk / "cache", tmp_path / "run2", "--steps", "1") == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--cache-dir" in err and "Read-only" in err


@pytest.mark.slow
def test_sigterm_while_caching_unwinds_and_leaves_no_temporary_file(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(400):  # enough for the decoding pool, and for a signal to land mid-build
        Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    cache_dir = tmp_path / "cache"
    process = subprocess.Popen([sys.executable, "-m", "dcgan_faces.prepare", "--data", str(folder), "--res", "64",
                                "--cache-dir", str(cache_dir)], env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (cache_dir.is_dir() and _temporaries(cache_dir)) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, out + err  # its own code, as a stopped training's
    assert "SIGTERM while building the cache: nothing half-written is kept" in err and err.strip().count("\n") == 0
    assert _temporaries(cache_dir) == [] and not list(cache_dir.glob("*.npy"))


def test_two_preparations_at_once_leave_one_intact_cache(face_folder, tmp_path):
    command = [sys.executable, "-m", "dcgan_faces.prepare", "--data", str(face_folder), "--res", "32",
               "--cache-dir", str(tmp_path / "cache")]
    processes = [subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, out + err
    assert prepare.verify(tmp_path / "cache") == 0
    assert len(data.open_dataset(str(face_folder), tmp_path / "cache", 32).images) == 24
    assert _temporaries(tmp_path / "cache") == []


@pytest.mark.parametrize("lie", ["text.npy", "empty.npz", "zip.npz"])
def test_data_that_lies_about_its_type_is_one_line(lie, tmp_path, capsys):
    (tmp_path / lie).write_bytes({"text.npy": b"I am not an array", "empty.npz": b"",
                                  "zip.npz": b"PK\x03\x04 a zip cut short"}[lie])
    assert train_quietly(["--data", str(tmp_path / lie), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    says = "not a readable .npy/.npz array" if lie == "zip.npz" else f"not a NumPy {lie[-4:]} file"
    assert err.count("\n") == 1 and lie in err and says in err


@pytest.mark.slow
def test_a_checkpoint_that_lies_is_set_aside_and_resume_of_it_refused(face_folder, tmp_path, capsys):
    assert _train(face_folder, tmp_path / "cache", tmp_path / "run", "--steps", "2") == 0
    liar = tmp_path / "run/checkpoints/ckpt-00000009.npz"
    liar.write_text("not a zip")
    assert _train(face_folder, tmp_path / "cache", tmp_path / "run", "--resume", str(liar)) == 2
    assert capsys.readouterr().err.startswith("error: --resume:")
    assert _train(face_folder, tmp_path / "cache", tmp_path / "run", "--steps", "3") == 0
    assert "resuming from iteration 2" in capsys.readouterr().out
    assert (tmp_path / "run/checkpoints/damaged/ckpt-00000009.npz").read_text() == "not a zip"


def test_movie_skips_a_truncated_grid(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    damaged = sorted((run / "previews").glob("iter-*.png"))[1]
    damaged.write_bytes(damaged.read_bytes()[:100])
    assert movie([str(run), "--out", str(tmp_path / "m.gif")]) == 0
    assert f"skipped 1 damaged grid(s): {damaged.name}" in capsys.readouterr().err
    with Image.open(tmp_path / "m.gif") as gif:
        assert gif.n_frames == 2


# ------------------------------------------------------------------ a run folder knows itself (issue 21, part A)

def _listing(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


def _tiny_command(tiny_run: Path, out: Path, cache_dir: Path, *extra) -> int:
    """The command that made `tiny_run` (conftest), into `out`."""
    return train_quietly(["--res", str(TINY_RES), "--steps", str(TINY_STEPS), "--save-every", "2", "--batch-size",
                          "8", "--data", str(tiny_run.parent / "faces"), "--cache-dir", str(cache_dir),
                          "--out", str(out), *extra])


@pytest.mark.slow
def test_a_photo_folder_with_a_config_json_is_refused_as_out_and_not_moved(tmp_path, capsys):
    photos = draw_faces(tmp_path / "phc", count=8)
    (photos / "config.json").write_text('{"album": "holidays"}')
    before = _listing(photos)
    for extra in ([], ["--fresh"]):
        assert _train(photos, tmp_path / "cache", photos, "--steps", "2", *extra) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is not a run folder" in err and MARK in err
        assert _listing(photos) == before, "nothing written, nothing renamed"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["phc"]


@pytest.mark.slow
def test_truncated_checkpoints_and_an_emptied_log_are_refused_and_the_generator_kept(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    for path in run.glob("checkpoints/ckpt-*.npz"):
        path.write_bytes(path.read_bytes()[:300])
    log = (run / "metrics.jsonl").read_bytes()
    (run / "metrics.jsonl").write_bytes(b"")
    before = _listing(run)
    assert _tiny_command(tiny_run, run, tmp_path / "cache") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "saved generator.keras but its 2 checkpoint(s) are damaged; pass --fresh" in err
    assert _listing(run) == before, "generator.keras, grids and log untouched"

    shutil.rmtree(run / "checkpoints")
    (run / "metrics.jsonl").write_bytes(b"\0\0\0\0" + log)
    (run / "generator.keras").unlink()
    before = _listing(run)
    assert _tiny_command(tiny_run, run, tmp_path / "cache") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"logged up to iteration {TINY_STEPS} but it has no checkpoint" in err
    assert _listing(run) == before


@pytest.mark.slow
def test_a_run_killed_while_writing_its_first_checkpoint_starts_again_and_its_temporary_file_goes(tiny_run, tmp_path,
                                                                                               capsys):
    run = RunFolder(shutil.copytree(tiny_run, tmp_path / "run"))
    for path in [*run.checkpoints.iterdir(), run.generator_path]:
        path.unlink()
    rows = run.read_metrics()[:2]
    run.metrics_path.unlink()
    run.append_metrics(rows)  # logged up to 2, then SIGKILL while ckpt-00000002.npz was written
    half = run.checkpoints / f".ckpt-00000002.tmp-{HOST}-999999999.npz"
    half.write_bytes(b"PK\x03\x04 half a checkpoint")
    assert _tiny_command(tiny_run, run.path, tmp_path / "cache", "--steps", "2") == 0
    out = capsys.readouterr().out
    assert "the run there stopped before its first checkpoint; it starts again from iteration 0" in out
    assert not half.exists() and [p.name for p in run.checkpoints.iterdir()] == ["ckpt-00000002.npz"]
    assert [row["iteration"] for row in run.read_metrics()] == [1, 2]


@pytest.mark.slow
def test_a_torn_log_line_hides_no_row_logged_after_a_resume(tiny_run, tmp_path, capsys):
    run = RunFolder(shutil.copytree(tiny_run, tmp_path / "run"))
    with open(run.metrics_path, "a") as log:
        log.write('{"iteration": 5, "d_lo')  # killed in the middle of an append
    assert _tiny_command(tiny_run, run.path, tmp_path / "cache", "--steps", "6") == 0
    assert "skipped 1 line(s) that cannot be read" in capsys.readouterr().out
    log = run.read_metrics_log()
    assert [row["iteration"] for row in log.rows] == [1, 2, 3, 4, 5, 6] and log.unreadable == 1


@pytest.mark.slow
def test_a_run_of_an_earlier_version_is_recognised_and_marked_once(tiny_run, tmp_path, capsys):
    run = RunFolder(shutil.copytree(tiny_run, tmp_path / "run"))
    run_id = run.mark()["run_id"]
    run.mark_path.unlink()  # as version 0.2 left its runs
    assert _tiny_command(tiny_run, run.path, tmp_path / "cache", "--steps", str(TINY_STEPS + 1)) == 0
    out = capsys.readouterr().out
    assert out.count("a run made by an earlier version of dcgan_faces; marked as a run folder") == 1
    assert f"resuming from iteration {TINY_STEPS}" in out
    assert run.mark()["run_id"] == run_id and run.mark()["made_by_an_earlier_version"]


@pytest.mark.slow
def test_a_start_that_fails_before_training_leaves_no_folder_behind(face_folder, tmp_path, capsys):
    assert train_quietly(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "runs" / "x")]) == 2
    assert "no such folder" in capsys.readouterr().err and not (tmp_path / "runs").exists()
    (tmp_path / "empty").mkdir()
    assert _train(face_folder, tmp_path / "cache", tmp_path / "empty", "--batch-size", "64") == 2
    err = capsys.readouterr().err
    assert "--batch-size 64 is larger than" in err and "(24 image files)" in err
    assert (tmp_path / "empty").is_dir() and not any((tmp_path / "empty").iterdir()), "kept, and kept empty"


@pytest.mark.slow
def test_a_disk_that_fills_mid_run_is_one_line_per_writer_and_the_generator_is_saved_elsewhere(
        face_folder, tmp_path, capsys, monkeypatch):
    """Reproduction 4: every writer fails, TensorBoard's included: one line each, no traceback, exit 1."""
    from dcgan_faces.trainer import Trainer

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    real_step = Trainer.step

    def step_then_fill(trainer):
        figures = real_step(trainer)
        if trainer.iteration == 1:
            _fill(disk)
        return figures

    monkeypatch.setattr(Trainer, "step", step_then_fill)
    with small_disk(tmp_path / "disk", "64m") as disk:
        assert _train(face_folder, tmp_path / "cache", disk / "run", "--steps", "6") == 1
        captured = capsys.readouterr()
        for what in ("the TensorBoard log", "the metrics log", "the preview grid of iteration 2", "the loss plot",
                     "the checkpoint of iteration 6"):
            assert captured.out.count(f"could not write {what} (No space left on device)") == 1, what
        assert "Traceback" not in captured.out + captured.err
        fallback = fallback_path(disk / "run", 6)
        assert f"saved it as {fallback} instead" in captured.out
    import keras

    assert keras.models.load_model(fallback, compile=False).output_shape == (None, 16, 16, 3)


def test_tensorboard_write_errors_are_raised_as_one_os_error(tmp_path, monkeypatch):
    import tensorflow as tf

    from dcgan_faces.tblog import TensorBoardLog

    log = TensorBoardLog(tmp_path / "tensorboard")
    log.scalars(1, {"d_loss": 0.5})

    def full(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "events.out.tfevents; No space left on device")

    monkeypatch.setattr(tf.summary, "write", full)
    with pytest.raises(OSError) as raised:
        log.scalars(2, {"d_loss": 0.5})
    assert raised.value.errno == errno.ENOSPC and raised.value.strerror == "No space left on device"
    monkeypatch.setattr(tf.summary, "write", lambda *a, **k: (_ for _ in ()).throw(
        tf.errors.UnavailableError(None, None, "{{function_node x}} /mnt/drive/events; Transport endpoint is gone")))
    with pytest.raises(OSError, match="Transport endpoint is gone"):
        log.image(2, "preview", np.zeros((4, 4, 3), np.uint8))


def _context(tmp_path, said):
    from dcgan_faces.runfolder import RunFolder

    return SimpleNamespace(say=said.append, run=RunFolder(tmp_path))


def test_a_write_that_keeps_failing_is_reported_once(tmp_path, capsys):
    from dcgan_faces.writers import Reporter

    def write():
        raise OSError(errno.ENOSPC, "No space left on device")

    reporter = Reporter(tmp_path)
    assert [reporter.attempt("the TensorBoard log", write) for _ in range(5)] == [False] * 5
    said = capsys.readouterr().out.splitlines()
    assert len(said) == 1 and said[0].startswith("could not write the TensorBoard log (No space left on device)")
    assert not reporter.attempt("the preview grid of iteration 4", write)
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_a_generator_that_fits_nowhere_says_where_it_could_not_go(tmp_path, monkeypatch):
    from dcgan_faces import models, writers

    monkeypatch.setattr(models, "stock_generator", lambda generator: generator)

    def no_room(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    said = []
    context = _context(tmp_path / "run", said)
    context.run.save_generator = no_room
    context.iteration, context.output_generator = 7, lambda: None
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(writers, "_save_generator", no_room)
    saved = writers.SavedGenerator()
    saved.on_train_end(context)
    assert saved.saved_as is None and len(said) == 1
    assert said[0].startswith(f"could not write the generator {tmp_path / 'run/generator.keras'} (No space left on "
                              f"device), nor {fallback_path(tmp_path / 'run', 7)} (No space left on device)")
    monkeypatch.setattr(writers, "_save_generator", lambda generator, path: path)
    saved.on_train_end(context)
    assert saved.saved_as == fallback_path(tmp_path / "run", 7) and "instead" in said[1]


def _no_room_for_json(original):
    def write_text(path, *args, **kwargs):
        if path.suffix == ".json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(path, *args, **kwargs)
    return write_text


def test_no_room_for_the_cache_manifest_is_one_line_and_leaves_no_tensor_without_it(tmp_path, monkeypatch, capsys):
    faces = draw_faces(tmp_path / "faces", count=8)
    cache_dir = tmp_path / "cache"
    earlier = data.open_dataset(str(faces), cache_dir, 16, log=lambda text: None)
    kept = {p.name: p.read_bytes() for p in cache_dir.iterdir()}
    draw_faces(tmp_path / "faces", count=9)  # one more image: the cache is rebuilt
    monkeypatch.setattr(Path, "write_text", _no_room_for_json(Path.write_text))
    assert prepare.main(["--data", str(faces), "--res", "16", "--cache-dir", str(cache_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and str(earlier.cache_path) in err
    assert {p.name: p.read_bytes() for p in cache_dir.iterdir()} == kept, "the earlier cache is kept, nothing added"


@pytest.mark.slow
def test_a_disk_with_room_for_the_tensor_but_not_its_manifest(tmp_path, capsys):
    faces = draw_faces(tmp_path / "faces", count=16)  # 16 × 16 × 16 × 3 bytes + a header: 12,416 bytes
    with small_disk(tmp_path / "disk", "1m") as disk:
        cache.prepare_folder(disk / "cache")
        _fill(disk, leave=4 * 4096)  # four pages: the tensor, and not one more for the manifest
        assert train_quietly(["--res", "16", "--batch-size", "8", "--data", str(faces), "--cache-dir",
                              str(disk / "cache"), "--out", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "could not write the cache" in err and "No space left on device" in err
        assert sorted(p.name for p in (disk / "cache").iterdir()) == [cache.MARKER]


def test_a_full_disk_states_real_figures(tmp_path, monkeypatch):
    faces = draw_faces(tmp_path / "faces", count=16)
    monkeypatch.setattr(cache.shutil, "disk_usage", lambda path: SimpleNamespace(free=0))
    with pytest.raises(data.DataError, match=r"the cache needs 12\.1 KiB, the disk has 0 bytes free"):
        data.open_dataset(str(faces), tmp_path / "cache", 16)
    monkeypatch.setattr(cache.shutil, "disk_usage", lambda path: SimpleNamespace(free=12_400))
    with pytest.raises(data.DataError, match=r"needs 12,416 bytes, the disk has 12,400 bytes free"):
        data.open_dataset(str(faces), tmp_path / "cache", 16)
    assert [cache.size_text(n) for n in (0, 1023, 73_714_483, 3 << 30)] == [
        "0 bytes", "1,023 bytes", "70.3 MiB", "3.00 GiB"]


@pytest.mark.slow
def test_an_exactly_full_disk_says_so_in_figures(tmp_path, capsys):
    faces = draw_faces(tmp_path / "faces", count=16)
    with small_disk(tmp_path / "disk", "1m") as disk:
        cache.prepare_folder(disk / "cache")
        _fill(disk)
        assert prepare.main(["--data", str(faces), "--res", "16", "--cache-dir", str(disk / "cache")]) == 2
        assert "the cache needs 12.1 KiB, the disk has 0 bytes free" in capsys.readouterr().err
