"""Folder → cache → batches: caches keyed by source, checked by fingerprint and checksum."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from dcgan_faces import cache, data, prepare, runfolder
from dcgan_faces.batches import BatchSampler
from dcgan_faces.sources import demo, images
from dcgan_faces.sources.folder import find_images
from tests.conftest import draw_faces


def _open(folder, cache_dir, res=32, **kwargs):
    return data.open_dataset(str(folder), cache_dir, res, **kwargs)


def test_cache_is_built_with_the_right_shape_dtype_and_manifest(face_folder, tmp_path):
    dataset = _open(face_folder, tmp_path / "cache")
    assert dataset.images.shape == (24, 32, 32, 3)
    assert dataset.images.dtype == np.uint8
    assert dataset.cache_path.name.startswith("faces-") and dataset.cache_path.name.endswith("_32_32.npy")
    recorded = json.loads(dataset.cache_path.with_suffix(".json").read_text())
    assert recorded["files"] == 24 and recorded["images"] == 24 and recorded["res"] == 32
    assert recorded["source"] == str(face_folder.resolve())
    assert recorded["crc32"] == cache.block_checksums(dataset.cache_path)
    assert not [p for p in (tmp_path / "cache").iterdir() if ".tmp-" in p.name], "no temporary file left behind"


def test_matching_cache_is_reused_without_decoding(face_folder, tmp_path, monkeypatch):
    first = _open(face_folder, tmp_path / "cache")
    monkeypatch.setattr(images, "load_image", lambda *a: pytest.fail("a matching cache must not decode images"))
    monkeypatch.setattr(images, "_decode", lambda *a: pytest.fail("a matching cache must not decode images"))
    again = _open(face_folder, tmp_path / "cache")
    assert isinstance(again.images, np.memmap)
    np.testing.assert_array_equal(first.images, again.images)


def test_cache_is_rebuilt_with_a_reason_when_the_folder_changes(face_folder, tmp_path):
    _open(face_folder, tmp_path / "cache")
    Image.new("RGB", (50, 50), (200, 10, 10)).save(face_folder / "added.png")
    messages = []
    dataset = _open(face_folder, tmp_path / "cache", log=messages.append)
    assert len(dataset.images) == 25
    assert any("rebuilding" in m and "files changed (24 → 25)" in m for m in messages)


def test_touching_a_file_makes_the_cache_stale(face_folder, tmp_path):
    _open(face_folder, tmp_path / "cache")
    some = next(face_folder.glob("*.png"))
    os.utime(some, (some.stat().st_atime, some.stat().st_mtime + 100))
    messages = []
    _open(face_folder, tmp_path / "cache", log=messages.append)
    assert any("newest_mtime_ns changed" in m for m in messages)


def test_an_image_replaced_by_another_of_the_same_size_and_date_is_noticed(face_folder, tmp_path):
    first = np.array(_open(face_folder, tmp_path / "cache").images)
    target = face_folder / "face02.png"
    stamp = target.stat()
    original = target.read_bytes()
    replacement = bytearray(original)
    replacement[-40:-20] = bytes(reversed(replacement[-40:-20]))  # same size, other bytes near the end
    target.write_bytes(bytes(replacement))
    os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # the date restored, as a copy tool would
    messages = []
    _open(face_folder, tmp_path / "cache", log=messages.append)
    assert any("the images changed" in m for m in messages), messages
    target.write_bytes(original)
    os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    np.testing.assert_array_equal(_open(face_folder, tmp_path / "cache").images, first)


def test_flipped_bytes_in_the_cache_are_caught_and_rebuilt(face_folder, tmp_path):
    dataset = _open(face_folder, tmp_path / "cache")
    good = np.array(dataset.images)
    with open(dataset.cache_path, "r+b") as file:
        file.seek(dataset.cache_path.stat().st_size // 2)
        file.write(b"\xff\x00\xff\x00")
    messages = []
    again = _open(face_folder, tmp_path / "cache", log=messages.append)
    assert any("rebuilding" in m and "does not match its checksum" in m for m in messages), messages
    np.testing.assert_array_equal(again.images, good)


def test_prepare_verify_checks_every_block(face_folder, tmp_path, capsys):
    dataset = _open(face_folder, tmp_path / "cache")
    assert prepare.main(["--verify", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert f"{dataset.cache_path.name}: intact" in capsys.readouterr().out
    with open(dataset.cache_path, "r+b") as file:
        file.seek(dataset.cache_path.stat().st_size - 10)
        file.write(b"\x01")
    assert prepare.main(["--verify", "--cache-dir", str(tmp_path / "cache")]) == 1
    assert "does not match its checksum" in capsys.readouterr().out


def test_a_large_cache_is_sampled_at_open_and_checked_whole_in_the_background(face_folder, tmp_path, monkeypatch):
    dataset = _open(face_folder, tmp_path / "cache")
    monkeypatch.setattr(cache, "FULL_CHECK_UP_TO", 0)  # every cache counts as large
    monkeypatch.setattr(cache, "sample_blocks", lambda count: [])  # the sample at open misses the damage
    intact = _open(face_folder, tmp_path / "cache")
    intact.check.thread.join(30)
    assert intact.check.problem is None
    with open(dataset.cache_path, "r+b") as file:
        file.seek(200)
        file.write(b"\x07\x07")
    damaged = _open(face_folder, tmp_path / "cache")
    damaged.check.thread.join(30)
    assert "damaged" in damaged.check.problem and not dataset.cache_path.with_suffix(".json").exists()


def test_two_data_sets_share_one_cache_dir_without_rebuilding_each_other(tmp_path, monkeypatch):
    first, second = draw_faces(tmp_path / "faces"), draw_faces(tmp_path / "others" / "faces", count=12, seed=1)
    a = np.array(_open(first, tmp_path / "cache").images)
    b = np.array(_open(second, tmp_path / "cache").images)
    assert len(a) == 24 and len(b) == 12
    monkeypatch.setattr(images, "_decode", lambda *args: pytest.fail("each data set's cache is still there"))
    np.testing.assert_array_equal(_open(first, tmp_path / "cache").images, a)
    np.testing.assert_array_equal(_open(second, tmp_path / "cache").images, b)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2


def test_a_moved_folder_reuses_its_cache(face_folder, tmp_path, monkeypatch):
    before = np.array(_open(face_folder, tmp_path / "cache").images)
    moved = shutil.move(face_folder, tmp_path / "elsewhere")
    monkeypatch.setattr(images, "_decode", lambda *args: pytest.fail("the same images are not decoded again"))
    messages = []
    after = _open(moved, tmp_path / "cache", log=messages.append)
    np.testing.assert_array_equal(after.images, before)
    assert any("holds the same images" in m for m in messages)


def test_another_builders_temporary_files_are_never_taken_for_a_moved_cache(face_folder, tmp_path):
    from dcgan_faces.atomic import HOST

    built = _open(face_folder, tmp_path / "cache").cache_path
    busy = {}  # the same cache as another live builder has it half-renamed: its two temporary files, complete
    for path in (built, built.with_suffix(".json")):
        busy[path] = path.with_name(f".{path.stem}.tmp-{HOST}-{os.getppid()}{path.suffix}")
        path.rename(busy[path])
    reopened = _open(face_folder, tmp_path / "cache")
    assert reopened.cache_path == built and built.exists()
    assert all(temporary.exists() for temporary in busy.values()), "the other builder's files are left alone"


def test_an_array_file_that_is_not_one_says_so_without_numpys_unpickling_advice(face_folder, tmp_path):
    from dcgan_faces.sources import DataError
    from dcgan_faces.sources.array import read_array

    (tmp_path / "notes.npy").write_text("hello")
    shutil.copy(next(face_folder.glob("*.jpg")), tmp_path / "photo.npz")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object))
    for name, says in (("notes.npy", "not a NumPy .npy file"), ("photo.npz", "not a NumPy .npz file"),
                       ("objects.npy", "holds Python objects, not numbers")):
        with pytest.raises(DataError) as error:
            read_array(tmp_path / name)
        message = str(error.value)
        assert says in message and "pickle" not in message and "\n" not in message, message


def test_caches_are_listed_and_removed(face_folder, tmp_path, capsys):
    dataset = _open(face_folder, tmp_path / "cache")
    assert prepare.main(["--list", "--cache-dir", str(tmp_path / "cache")]) == 0
    listing = capsys.readouterr().out
    assert dataset.cache_path.name in listing and str(face_folder.resolve()) in listing and "24 images" in listing
    assert prepare.main(["--remove", str(face_folder.resolve()), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert not dataset.cache_path.exists() and not dataset.cache_path.with_suffix(".json").exists()
    assert prepare.main(["--remove", "nothing.npy", "--cache-dir", str(tmp_path / "cache")]) == 2


def test_a_killed_builds_temporary_files_are_no_cache_and_are_cleared(face_folder, tmp_path, capsys):
    from dcgan_faces.atomic import HOST

    cache_dir = tmp_path / "cache"
    dataset = _open(face_folder, cache_dir)
    killed = [cache_dir / f".{dataset.cache_path.stem}.tmp-{HOST}-999999999{suffix}" for suffix in (".npy", ".json")]
    building = cache_dir / f".other_32_32.tmp-{HOST}-{os.getpid()}.npy"  # a live build's
    for path in (*killed, building):
        path.write_bytes(b"\x93NUMPY half a tensor")
    capsys.readouterr()
    assert prepare.main(["--list", "--cache-dir", str(cache_dir)]) == 0
    listing = capsys.readouterr().out
    assert listing.count("\n") == 1 and "None" not in listing and dataset.cache_path.name in listing
    assert not any(path.exists() for path in killed) and building.exists()


def test_an_npz_trains_on_its_largest_array_of_images_and_names_it(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_test=np.zeros((3, 28, 28), np.uint8), x_train=np.zeros((5, 28, 28), np.uint8),
             y_train=np.arange(5))
    said = []
    dataset = data.open_dataset(str(tmp_path / "mnist.npz"), tmp_path / "c", 28, channels=1, log=said.append)
    assert len(dataset.images) == 5
    assert "training on x_train, the largest of its arrays of images (x_train 5×28×28, x_test 3×28×28)" in said[0]


def test_an_npz_with_two_arrays_of_images_of_one_size_is_refused_naming_them(tmp_path):
    np.savez(tmp_path / "two.npz", faces=np.zeros((4, 16, 16, 3), np.uint8), masks=np.ones((4, 16, 16, 3), np.uint8))
    with pytest.raises(data.DataError) as refused:
        data.open_dataset(str(tmp_path / "two.npz"), tmp_path / "c", 16)
    message = str(refused.value)
    assert "two.npz: holds 2 arrays of images of the same size (faces 4×16×16×3, masks 4×16×16×3)" in message
    assert "np.save('faces.npy', np.load('two.npz')['faces'])" in message and "\n" not in message


def test_another_resolution_gets_its_own_cache(face_folder, tmp_path):
    _open(face_folder, tmp_path / "cache")
    assert _open(face_folder, tmp_path / "cache", 16).images.shape[1:] == (16, 16, 3)
    assert _open(face_folder, tmp_path / "cache").images.shape[1:] == (32, 32, 3)


def test_bad_files_are_skipped_counted_and_named(face_folder, tmp_path):
    (face_folder / "notes.jpg").write_text("this is text, not a JPEG")
    (face_folder / "empty.png").write_bytes(b"")
    good = (face_folder / "face01.jpg").read_bytes()
    (face_folder / "cut.jpg").write_bytes(good[: len(good) // 3])
    messages = []
    dataset = _open(face_folder, tmp_path / "cache", log=messages.append)
    assert dataset.skipped == {"not an image": 2, "unreadable": 1}
    assert len(dataset.images) == 24
    report = next(m for m in messages if m.startswith("skipped"))
    assert "notes.jpg" in report and "empty.png" in report and "cut.jpg" in report
    np.load(dataset.cache_path)  # the shrunk .npy is a valid file


def test_run_folders_caches_and_special_files_inside_the_data_folder_are_not_images(face_folder, tmp_path):
    run = face_folder / "runs" / "faces_32"
    (run / "previews").mkdir(parents=True)
    (run / runfolder.MARK).write_text("{}")  # a run folder is known by its mark (see test_runfolder.py)
    Image.new("RGB", (40, 40)).save(run / "previews" / "iter-00000100.png")
    (face_folder / "data_cache").mkdir()
    (face_folder / "data_cache" / cache.MARKER).touch()
    Image.new("RGB", (40, 40)).save(face_folder / "data_cache" / "stray.png")
    os.mkfifo(face_folder / "pipe.jpg")  # opening a FIFO would wait forever
    os.symlink(face_folder / "pipe.jpg", face_folder / "link_to_pipe.jpg")
    found = find_images(face_folder)
    assert len(found) == 24 and all("runs" not in p.parts and "data_cache" not in p.parts for p in found)
    assert len(_open(face_folder, face_folder / "data_cache").images) == 24


def test_folder_without_images_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataError, match="no image files"):
        _open(tmp_path / "empty", tmp_path / "cache")
    with pytest.raises(data.DataError, match="no such folder"):
        _open(tmp_path / "missing", tmp_path / "cache")
    Image.new("RGB", (8, 8)).save(tmp_path / "one.jpg")
    with pytest.raises(data.DataError, match="is a file, not a folder"):
        _open(tmp_path / "one.jpg", tmp_path / "cache")


def test_folder_of_only_broken_images_is_a_clear_error(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_text("nope")
    with pytest.raises(data.DataError, match="no usable image"):
        _open(tmp_path / "bad", tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [cache.MARKER], "nothing half-written is left"


def test_preprocessing_centre_crops_converts_and_orients(tmp_path):
    wide = np.zeros((20, 60, 3), dtype=np.uint8)
    wide[:, 20:40] = 255  # white centre square, black sides
    Image.fromarray(wide).save(tmp_path / "wide.png")
    assert images.load_image(tmp_path / "wide.png", 16).min() > 200, "the centre square is kept"
    Image.new("L", (30, 30), 77).save(tmp_path / "grey.png")
    assert images.load_image(tmp_path / "grey.png", 16).shape == (16, 16, 3)
    Image.new("RGBA", (30, 30), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert images.load_image(tmp_path / "clear.png", 16).min() == 255, "transparency lands on white"
    square = np.zeros((40, 40, 3), dtype=np.uint8)
    square[:10] = 255  # white top
    image = Image.fromarray(square)
    exif = image.getexif()
    exif[0x0112] = 3  # rotated 180°: the white band must end up at the bottom
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    loaded = images.load_image(tmp_path / "rotated.jpg", 20)
    assert loaded[-1].mean() > loaded[0].mean() + 100


def test_demo_faces_are_cached_once(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_IMAGES", 40)
    first = data.open_dataset(None, tmp_path / "cache", 32, log=lambda m: None)
    assert first.source == "demo" and first.images.shape == (40, 32, 32, 3)
    from dcgan_faces import synthetic
    monkeypatch.setattr(synthetic, "make_faces", lambda *a, **k: pytest.fail("cached demo faces are reused"))
    np.testing.assert_array_equal(data.open_dataset(None, tmp_path / "cache", 32).images, first.images)


def test_sampler_walks_shuffled_passes_and_scales_only_drawn_batches():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1).repeat(3, axis=3)
    sampler = BatchSampler(images, batch_size=4, seed=3)
    first_pass = np.concatenate([sampler.indices(k) for k in range(3)])[:10]
    assert sorted(first_pass) == list(range(10)), "a pass visits every image once"
    assert not np.array_equal(first_pass, np.arange(10)), "in a shuffled order"
    np.testing.assert_array_equal(sampler.indices(7), BatchSampler(images, 4, 3).indices(7))
    batch = sampler.batch(0)
    assert batch.dtype == np.float32 and batch.shape == (4, 1, 1, 3)
    expected = np.sort(images[sampler.indices(0), 0, 0, 0]).astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(np.sort(batch[:, 0, 0, 0]), expected)
    assert sampler.epoch(5) == pytest.approx(2.0)


def test_mirror_flips_about_half_of_each_batch_the_same_way_for_the_same_batch():
    images = np.random.default_rng(0).integers(0, 256, (64, 4, 6, 3), dtype=np.uint8)
    plain, mirrored = BatchSampler(images, 32, seed=3), BatchSampler(images, 32, seed=3, mirror=True)
    flips = []
    for k in range(4):
        originals = plain.batch(k)
        batch = mirrored.batch(k)
        flipped = [not np.array_equal(m, o) for m, o in zip(batch, originals)]
        np.testing.assert_array_equal(batch[flipped], originals[flipped][:, :, ::-1])  # left to right, nothing else
        np.testing.assert_array_equal(BatchSampler(images, 32, seed=3, mirror=True).batch(k), batch)  # resumable
        flips.append(sum(flipped))
    assert 32 < sum(flips) < 96, flips  # a fair coin per image over 128 images
    assert len(set(flips)) > 1, "each batch draws its own coins"
