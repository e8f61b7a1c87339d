"""A hostile but realistic user: full disks, kills mid-write, two writers at once, files that lie."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from dcgan_faces import cache, data, prepare
from dcgan_faces.movie import main as movie
from tests.conftest import draw_faces, train_quietly

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


def test_a_full_disk_during_training_keeps_every_earlier_file(face_folder, tmp_path, capsys):
    with small_disk(tmp_path / "disk", "64m") as disk:
        out = disk / "run"
        assert _train(face_folder, tmp_path / "cache", out, "--steps", "2") == 0
        kept = {p: p.read_bytes() for pattern in ("previews/*.png", "checkpoints/*.npz", "generator.keras")
                for p in out.glob(pattern)}
        _fill(disk, leave=300_000)  # room for the lock, config, log and grids; not for a checkpoint
        capsys.readouterr()
        assert _train(face_folder, tmp_path / "cache", out, "--steps", "4") == 1  # trained on, generator unsaved
        captured = capsys.readouterr().out
        assert "could not write the checkpoint of iteration 4 (No space left on device)" in captured
        assert "could not write the generator" in captured
        assert len(kept) == 4  # grids 0 and 2, checkpoint 2, the generator
        for path, content in kept.items():
            assert path.read_bytes() == content, f"{path.name} was changed"
        assert _temporaries(out) == []


def _fill(disk: Path, leave: int = 0) -> None:
    """Fill the disk, then give back `leave` bytes."""
    filler = disk / "filler"
    with open(filler, "wb") as file, contextlib.suppress(OSError):
        while True:
            file.write(b"\1" * 65536)
            file.flush()
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
    assert process.returncode == 130, out + err
    assert "interrupted" in err and err.strip().count("\n") == 0
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
    assert err.count("\n") == 1 and lie in err and "not a readable .npy/.npz array" in err


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
