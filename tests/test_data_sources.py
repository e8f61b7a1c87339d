"""Where the images come from and where their caches live, as a user meets it: linked folders, what no --data
means, files in the cache folder that are not caches, a killed build's workers, an array's own size (issue 39)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dcgan_faces import data, prepare, sources
from dcgan_faces.resolve import Request, SetupError, resolve_run
from dcgan_faces.runfolder import RunFolder
from dcgan_faces.sources.folder import find_images
from tests.conftest import draw_faces, train_quietly
from tests.test_resolve import _checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_linked_subfolders_are_followed_and_their_images_counted(tmp_path):
    photos = draw_faces(tmp_path / "photos", count=9)
    elsewhere = draw_faces(tmp_path / "elsewhere", count=39, seed=1)
    (photos / "linked").symlink_to(elsewhere, target_is_directory=True)
    said = []
    dataset = data.open_dataset(str(photos), tmp_path / "cache", 16, log=said.append)
    assert len(dataset.images) == 48
    assert f"cached 48 images in {dataset.cache_path}" in said


def test_a_link_back_to_a_folder_already_read_is_skipped_and_said_in_one_line(tmp_path):
    photos = draw_faces(tmp_path / "photos", count=8)
    (photos / "more" / "up").symlink_to(photos, target_is_directory=True)  # a loop through the data folder
    (photos / "again").symlink_to(photos / "more", target_is_directory=True)  # a second way into a folder
    said = []
    found = find_images(photos, log=said.append)
    assert len(found) == len(set(found)) == 8
    assert len(said) == 1 and said[0].startswith("skipped 2 folder(s) reached a second time through a linked folder")


def test_no_data_means_face_images_once_it_holds_images_and_the_run_folder_is_named_after_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_run(Request({"res": 16}, source=sources.parse(None))).run.path == Path("runs/demo_16")
    draw_faces(tmp_path / "face_images", count=3)
    assert resolve_run(Request({"res": 16}, source=sources.parse(None))).run.path == Path("runs/face_images_16")
    said = []
    scan = sources.parse(None).scan(sources.CacheSettings(tmp_path / "cache", 16), said.append)
    assert scan.key == str(tmp_path / "face_images") and said == ["no --data given: training on the images in "
                                                                  "./face_images"]


def _demo_run(tmp_path):
    run = RunFolder(tmp_path / "run")
    _checkpoint(run, 20)  # a run on the demo faces, as no --data meant before ./face_images held images
    return run


def test_a_demo_run_is_not_resumed_on_face_images_that_appeared_since(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = _demo_run(tmp_path)
    assert resolve_run(Request({}, out=run.path, source=sources.parse(None))).resumed.iteration == 20
    draw_faces(tmp_path / "face_images", count=3)
    with pytest.raises(SetupError) as refused:
        resolve_run(Request({}, out=run.path, source=sources.parse(None)))
    message = str(refused.value)
    assert f"{run.path} holds a run on the built-in demo faces, but with no --data the data is now " \
           f"{tmp_path / 'face_images'}; pass --data demo to resume that run, or --fresh" in message
    assert "\n" not in message
    assert resolve_run(Request({}, out=run.path, source=sources.parse("demo"))).resumed.iteration == 20
    fresh = resolve_run(Request({}, out=run.path, fresh=True, source=sources.parse(None)))
    assert fresh.resumed is None and fresh.source.scan(sources.CacheSettings(tmp_path / "c", 32),
                                                        lambda text: None).key == str(tmp_path / "face_images")


def test_a_run_on_face_images_is_not_resumed_on_the_demo_faces_once_they_are_gone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = _demo_run(tmp_path)
    path = run.checkpoints / "ckpt-00000020.npz"
    state = json.loads(np.load(path)["state"].item())
    state["config"]["data"] = str(tmp_path / "face_images")
    np.savez(path, state=np.array(json.dumps(state)))
    (tmp_path / "face_images").mkdir()  # emptied: no --data now means the demo faces
    with pytest.raises(SetupError, match=f"holds a run on {tmp_path / 'face_images'}, but with no --data the data "
                                         "is now the built-in demo faces; pass --data "):
        resolve_run(Request({}, out=run.path, source=sources.parse(None)))


def test_the_refusal_is_one_line_and_exit_2_from_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = _demo_run(tmp_path)
    draw_faces(tmp_path / "face_images", count=3)
    assert train_quietly(["--res", "32", "--batch-size", "8", "--out", str(run.path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "built-in demo faces" in err and "--fresh" in err


def _cache_beside_a_users_array(tmp_path, monkeypatch):
    """In a folder used as --cache-dir: a cache of ./faces and the user's own faces.npy (no manifest)."""
    monkeypatch.chdir(tmp_path)
    draw_faces(tmp_path / "faces", count=4)
    assert prepare.main(["--data", "faces", "--res", "16", "--cache-dir", "."]) == 0
    np.save(tmp_path / "faces.npy", np.zeros((3, 16, 16, 3), np.uint8))
    (cache_file,) = [path for path in tmp_path.glob("faces-*.npy")]
    return cache_file


def test_remove_never_deletes_a_file_that_is_no_cache(tmp_path, monkeypatch, capsys):
    cache_file = _cache_beside_a_users_array(tmp_path, monkeypatch)
    assert prepare.main(["--remove", "faces", "--cache-dir", "."]) == 0
    assert (tmp_path / "faces.npy").exists(), "the user's own array is kept"
    assert not cache_file.exists() and not cache_file.with_suffix(".json").exists(), "the cache of ./faces is gone"
    capsys.readouterr()
    assert prepare.main(["--remove", "faces.npy", "--cache-dir", "."]) == 2
    assert (tmp_path / "faces.npy").exists()
    assert capsys.readouterr().err == ("error: --remove faces.npy in .: is no cache (no manifest of dcgan_faces beside "
                                       "it), so it is left alone\n")


def test_list_and_verify_take_only_files_with_a_manifest_for_caches(tmp_path, monkeypatch, capsys):
    cache_file = _cache_beside_a_users_array(tmp_path, monkeypatch)
    capsys.readouterr()
    assert prepare.main(["--list", "--cache-dir", "."]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].startswith(f"{cache_file.name}  16 px  4 images") and "None" not in "".join(listing)
    assert listing[1:] == ["not caches (no manifest of dcgan_faces beside them), left alone: faces.npy"]
    assert prepare.main(["--verify", "--cache-dir", "."]) == 0
    assert capsys.readouterr().out.startswith(f"{cache_file.name}: intact\n")


def test_a_manifest_that_is_json_but_no_object_is_a_damaged_one(tmp_path, capsys):
    faces = draw_faces(tmp_path / "faces", count=4)
    cache_dir = tmp_path / "cache"
    built = data.open_dataset(str(faces), cache_dir, 16, log=lambda text: None)
    manifest = built.cache_path.with_suffix(".json")
    manifest.write_text("[1, 2]")
    for action in ("--list", "--verify"):
        assert prepare.main([action, "--cache-dir", str(cache_dir)]) == 0
    assert prepare.main(["--remove", built.cache_path.name, "--cache-dir", str(cache_dir)]) == 2  # no cache of ours
    said = []
    rebuilt = data.open_dataset(str(faces), cache_dir, 16, log=said.append)
    assert len(rebuilt.images) == 4 and isinstance(json.loads(manifest.read_text()), dict)
    assert said[0] == f"rebuilding {built.cache_path}: its manifest {manifest.name} is missing or damaged"
    assert prepare.main(["--remove", built.cache_path.name, "--cache-dir", str(cache_dir)]) == 0


KILLED_BUILD = """
import os, sys, time
from dcgan_faces.sources import images

if __name__ != "__main__" and os.environ.get("WORKER_PLATFORM"):  # the workers watch as on another system
    sys.platform = os.environ["WORKER_PLATFORM"]

_load = images.load_image

def slow_load(*args, **kwargs):  # in the workers too: spawn imports this script in each of them
    time.sleep(0.2)
    return _load(*args, **kwargs)

images.load_image = slow_load

if __name__ == "__main__":
    images.SERIAL_BELOW = 1
    from dcgan_faces.data import open_dataset
    open_dataset(sys.argv[1], sys.argv[2], 16)
"""


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("platform", ["", "darwin"])
def test_the_decoding_workers_of_a_killed_cache_build_end_with_it(platform, tmp_path):
    faces = draw_faces(tmp_path / "faces", count=60)
    script = tmp_path / "build.py"
    script.write_text(KILLED_BUILD)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORKER_PLATFORM": platform}
    process = subprocess.Popen([sys.executable, str(script), str(faces), str(tmp_path / "cache")], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(children := _children(process.pid)) < 2 and time.monotonic() < deadline:  # a worker and more
            time.sleep(0.1)
        assert len(children) >= 2, "the build started no decoding workers"
        time.sleep(2)  # the workers are decoding
        process.kill()
        process.wait()
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in children), "a worker outlived the killed build"
    finally:
        process.kill()


def test_prepare_caches_an_array_at_its_own_size_unless_res_is_given(tmp_path, capsys):
    np.save(tmp_path / "faces.npy", np.zeros((5, 16, 16, 3), np.uint8))
    cache_dir = tmp_path / "cache"
    assert prepare.main(["--data", str(tmp_path / "faces.npy"), "--cache-dir", str(cache_dir)]) == 0
    out = capsys.readouterr().out
    assert "cached at its own 16×16 px" in out and [p.name.split("_", 1)[1] for p in cache_dir.glob("*.npy")] == [
        "16_16.npy"]
    assert prepare.main(["--data", str(tmp_path / "faces.npy"), "--res", "32", "--cache-dir", str(cache_dir)]) == 0
    assert sorted(p.name.split("_", 1)[1] for p in cache_dir.glob("*.npy")) == ["16_16.npy", "32_32.npy"]


def test_prepare_refuses_an_array_of_a_size_train_cannot_use_without_res(tmp_path, capsys):
    np.save(tmp_path / "odd.npy", np.zeros((5, 18, 18), np.uint8))
    assert prepare.main(["--data", str(tmp_path / "odd.npy"), "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "18×18" in err and "--res" in err
    assert not (tmp_path / "cache").exists()
