"""Colab survival: --gdrive through prepare and train, the local copy of a cache on a slow mount, staged checkpoints."""

import shutil

import numpy as np
import pytest

from dcgan_faces import checkpoint, data, prepare, staging
from tests.test_drive import FID, as_drive, make_zip, server  # noqa: F401 (pytest fixtures)


def _zip_of_faces(face_folder):
    return make_zip({p.name: p.read_bytes() for p in face_folder.rglob("*.png")})


def test_gdrive_is_fetched_once_then_served_from_the_cache(as_drive, face_folder, tmp_path, capsys):  # noqa: F811
    as_drive.serve_file("/uc", _zip_of_faces(face_folder), "faces.zip")
    cache = tmp_path / "cache"
    assert prepare.main(["--gdrive", FID, "--res", "16", "--cache-dir", str(cache)]) == 0
    assert as_drive.requests == [f"/uc?id={FID}"]
    assert "12 images" in capsys.readouterr().out

    as_drive.stop()  # a new Colab session: no network needed, and the unpacked download may be gone too
    shutil.rmtree(cache / "downloads")
    assert prepare.main(["--gdrive", f"https://drive.google.com/file/d/{FID}/view", "--res", "16",
                         "--cache-dir", str(cache)]) == 0
    assert "resuming from cached data" in capsys.readouterr().out


def test_gdrive_failure_is_one_line_suggesting_data(as_drive, tmp_path, capsys):  # noqa: F811
    assert prepare.main(["--gdrive", FID, "--res", "16", "--cache-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --gdrive") and "--data" in error and error.count("\n") == 1


def test_cache_on_a_slow_mount_is_read_from_a_checked_local_copy(face_folder, tmp_path, monkeypatch):
    slow = tmp_path / "drive"
    monkeypatch.setenv(staging.SLOW_ENV, str(slow))
    monkeypatch.setattr(staging.tempfile, "gettempdir", lambda: str(tmp_path / "local"))
    first = data.open_dataset(str(face_folder), slow / "cache", 16)
    assert str(first.images.filename).startswith(str(tmp_path / "local"))
    np.testing.assert_array_equal(first.images, np.load(slow / "cache" / first.cache_path.name))
    assert first.cache_path.parent == slow / "cache"

    copies, real_copy = [], shutil.copyfile
    monkeypatch.setattr(staging.shutil, "copyfile", lambda *a: copies.append(a) or real_copy(*a))
    data.open_dataset(str(face_folder), slow / "cache", 16)
    assert copies == [], "an unchanged cache is not copied again"
    (face_folder / "face01.jpg").unlink()
    second = data.open_dataset(str(face_folder), slow / "cache", 16)
    assert len(copies) == 1 and len(second.images) == len(first.images) - 1


def test_local_copy_leaves_fast_disks_alone(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros(3))
    assert staging.local_copy(path) == path


class FlakyMount(Exception):
    pass


def test_a_failed_copy_to_the_mount_never_leaves_a_half_checkpoint(tmp_path, monkeypatch):
    from dcgan_faces.config import TrainConfig
    from dcgan_faces.trainer import Trainer

    trainer = Trainer(TrainConfig(res=16, batch_size=4), np.zeros((8, 16, 16, 3), np.uint8))
    folder, staging = tmp_path / "drive/run/checkpoints", tmp_path / "local"
    staging.mkdir()
    checkpoint.save(folder, trainer.gan, {"iteration": 100}, staging=staging)

    def broken_copy(source, target):
        with open(target, "wb") as half:
            half.write(open(source, "rb").read(1000))
        raise FlakyMount("Transport endpoint is not connected")

    monkeypatch.setattr(checkpoint.shutil, "copyfile", broken_copy)
    with pytest.raises(FlakyMount):
        checkpoint.save(folder, trainer.gan, {"iteration": 200}, staging=staging)
    assert [p.name for p in folder.iterdir()] == ["ckpt-00000100.npz"]
    assert checkpoint.read_latest(folder)[1]["iteration"] == 100


@pytest.mark.slow
def test_colab_advice_is_printed_when_running_on_colab(monkeypatch, capsys, face_folder, tmp_path):
    from dcgan_faces import train

    monkeypatch.setattr(staging, "in_colab", lambda: True)
    assert train.main(["--res", "16", "--steps", "1", "--batch-size", "4", "--data", str(face_folder),
                       "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "run")]) == 0
    assert "/content/drive/MyDrive" in capsys.readouterr().out
    monkeypatch.setenv(staging.SLOW_ENV, str(tmp_path / "drive"))  # a run folder on Drive needs no advice
    assert train.main(["--res", "16", "--steps", "1", "--batch-size", "4", "--data", str(face_folder),
                       "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "drive" / "run")]) == 0
    assert "/content/drive/MyDrive" not in capsys.readouterr().out
