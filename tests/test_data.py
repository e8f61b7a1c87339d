"""Folder → cache → batches."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from dcgan_faces import data


def test_cache_is_built_with_the_right_shape_dtype_and_manifest(face_folder, tmp_path):
    dataset = data.open_folder(face_folder, tmp_path / "cache", 32)
    assert dataset.images.shape == (24, 32, 32, 3)
    assert dataset.images.dtype == np.uint8
    tensor, manifest = data.cache_paths(tmp_path / "cache", 32)
    assert tensor.name == "training_data_32_32.npy"
    recorded = json.loads(manifest.read_text())
    assert recorded["files"] == 24 and recorded["images"] == 24 and recorded["res"] == 32
    assert recorded["source"] == str(face_folder.resolve())
    assert not list((tmp_path / "cache").glob(".*tmp*")), "temporary files must not be left behind"


def test_matching_cache_is_reused_without_decoding(face_folder, tmp_path, monkeypatch):
    first = data.open_folder(face_folder, tmp_path / "cache", 32)
    monkeypatch.setattr(data, "load_image", lambda *a: pytest.fail("a matching cache must not decode images"))
    monkeypatch.setattr(data, "_decode", lambda *a: pytest.fail("a matching cache must not decode images"))
    again = data.open_folder(face_folder, tmp_path / "cache", 32)
    assert isinstance(again.images, np.memmap)
    np.testing.assert_array_equal(first.images, again.images)


def test_cache_is_rebuilt_with_a_reason_when_the_folder_changes(face_folder, tmp_path):
    data.open_folder(face_folder, tmp_path / "cache", 32)
    Image.new("RGB", (50, 50), (200, 10, 10)).save(face_folder / "added.png")
    messages = []
    dataset = data.open_folder(face_folder, tmp_path / "cache", 32, log=messages.append)
    assert len(dataset.images) == 25
    assert any("rebuilding" in m and "files changed" in m for m in messages)


def test_touching_a_file_makes_the_cache_stale(face_folder, tmp_path):
    data.open_folder(face_folder, tmp_path / "cache", 32)
    some = next(face_folder.glob("*.png"))
    os.utime(some, (some.stat().st_atime, some.stat().st_mtime + 100))
    messages = []
    data.open_folder(face_folder, tmp_path / "cache", 32, log=messages.append)
    assert any("newest_mtime changed" in m for m in messages)


def test_another_resolution_gets_its_own_cache(face_folder, tmp_path):
    data.open_folder(face_folder, tmp_path / "cache", 32)
    assert data.open_folder(face_folder, tmp_path / "cache", 16).images.shape[1:] == (16, 16, 3)
    assert data.open_folder(face_folder, tmp_path / "cache", 32).images.shape[1:] == (32, 32, 3)


def test_bad_files_are_skipped_counted_and_named(face_folder, tmp_path):
    (face_folder / "notes.jpg").write_text("this is text, not a JPEG")
    (face_folder / "empty.png").write_bytes(b"")
    good = (face_folder / "face01.jpg").read_bytes()
    (face_folder / "cut.jpg").write_bytes(good[: len(good) // 3])
    messages = []
    dataset = data.open_folder(face_folder, tmp_path / "cache", 32, log=messages.append)
    assert sum(dataset.skipped.values()) >= 2
    assert len(dataset.images) == 27 - sum(dataset.skipped.values())
    report = next(m for m in messages if m.startswith("skipped"))
    assert "notes.jpg" in report and "empty.png" in report
    np.load(dataset.cache_path)  # the shrunk .npy is a valid file


def test_folder_without_images_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataError, match="no image files"):
        data.open_folder(tmp_path / "empty", tmp_path / "cache", 32)
    with pytest.raises(data.DataError, match="no such folder"):
        data.open_folder(tmp_path / "missing", tmp_path / "cache", 32)


def test_folder_of_only_broken_images_is_a_clear_error(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_text("nope")
    with pytest.raises(data.DataError, match="no usable image"):
        data.open_folder(tmp_path / "bad", tmp_path / "cache", 32)


def test_preprocessing_centre_crops_converts_and_orients(tmp_path):
    wide = np.zeros((20, 60, 3), dtype=np.uint8)
    wide[:, 20:40] = 255  # white centre square, black sides
    Image.fromarray(wide).save(tmp_path / "wide.png")
    assert data.load_image(tmp_path / "wide.png", 16).min() > 200, "the centre square is kept"
    Image.new("L", (30, 30), 77).save(tmp_path / "grey.png")
    assert data.load_image(tmp_path / "grey.png", 16).shape == (16, 16, 3)
    Image.new("RGBA", (30, 30), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert data.load_image(tmp_path / "clear.png", 16).min() == 255, "transparency lands on white"
    square = np.zeros((40, 40, 3), dtype=np.uint8)
    square[:10] = 255  # white top
    image = Image.fromarray(square)
    exif = image.getexif()
    exif[0x0112] = 3  # rotated 180°: the white band must end up at the bottom
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    loaded = data.load_image(tmp_path / "rotated.jpg", 20)
    assert loaded[-1].mean() > loaded[0].mean() + 100


def test_demo_faces_are_cached_once(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEMO_IMAGES", 40)
    first = data.open_dataset(None, tmp_path / "cache", 32, log=lambda m: None)
    assert first.source == "demo" and first.images.shape == (40, 32, 32, 3)
    from dcgan_faces import synthetic
    monkeypatch.setattr(synthetic, "make_faces", lambda *a, **k: pytest.fail("cached demo faces are reused"))
    np.testing.assert_array_equal(data.open_dataset(None, tmp_path / "cache", 32).images, first.images)


def test_sampler_walks_shuffled_passes_and_scales_only_drawn_batches():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1).repeat(3, axis=3)
    sampler = data.BatchSampler(images, batch_size=4, seed=3)
    first_pass = np.concatenate([sampler.indices(k) for k in range(3)])[:10]
    assert sorted(first_pass) == list(range(10)), "a pass visits every image once"
    assert not np.array_equal(first_pass, np.arange(10)), "in a shuffled order"
    np.testing.assert_array_equal(sampler.indices(7), data.BatchSampler(images, 4, 3).indices(7))
    batch = sampler.batch(0)
    assert batch.dtype == np.float32 and batch.shape == (4, 1, 1, 3)
    expected = np.sort(images[sampler.indices(0), 0, 0, 0]).astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(np.sort(batch[:, 0, 0, 0]), expected)
    assert sampler.epoch(5) == pytest.approx(2.0)
