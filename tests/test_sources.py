"""Where the images come from, said once: `sources.parse` makes one Source per kind of data, each owning its recorded
key, its default run folder, its description and its "still there?" check; Drive stays inside its own module."""

import re
from pathlib import Path

import numpy as np
import pytest

import dcgan_faces
from dcgan_faces import sources
from dcgan_faces.resolve import Request, SetupError, resolve_run
from dcgan_faces.sources import CacheSettings, DataError, gdrive
from dcgan_faces.sources.array import ArrayFile
from dcgan_faces.sources.demo import DefaultData, DemoFaces
from dcgan_faces.sources.folder import ImageFolder
from dcgan_faces.sources.gdrive import GoogleDrive
from tests.conftest import draw_faces

FID = "1AbCdEfGhIjKlMnOpQrStUvWxYz012345"
PACKAGE = Path(dcgan_faces.__file__).parent


def _described(source, tmp_path, res=16):
    return source.scan(CacheSettings(tmp_path / "cache", res), log=lambda text: None).description


def test_a_folder_is_recorded_by_its_absolute_path_and_named_after_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    draw_faces(tmp_path / "photos", count=3)
    source = sources.parse("photos")
    assert isinstance(source, ImageFolder)
    assert (source.key, source.run_name) == (str(tmp_path / "photos"), "photos")
    assert _described(source, tmp_path) == f"folder {tmp_path / 'photos'} (3 image files)"
    assert source.gone() is None and source.image_size() is None
    (tmp_path / "photos").rename(tmp_path / "moved")
    assert source.gone().startswith(f"the run's images were in {tmp_path / 'photos'}, which is gone; if they moved")


def test_an_array_is_recorded_by_its_path_and_knows_its_image_size(tmp_path):
    np.save(tmp_path / "digits.npy", np.zeros((5, 28, 28), np.uint8))
    source = sources.parse(str(tmp_path / "digits.npy"))
    assert isinstance(source, ArrayFile)
    assert (source.key, source.run_name, source.image_size()) == (str(tmp_path / "digits.npy"), "digits.npy", 28)
    assert _described(source, tmp_path, 28) == f"array {tmp_path / 'digits.npy'} (5 images of 28×28×1, uint8 0..255)"


def test_the_demo_faces_and_no_data_at_all(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    demo = sources.parse("demo")
    assert isinstance(demo, DemoFaces) and (demo.key, demo.run_name) == ("demo", "demo")
    assert _described(demo, tmp_path) == "the built-in demo faces (2,000)"
    default = sources.parse(None)
    assert isinstance(default, DefaultData) and (default.key, default.run_name) == (None, "demo")
    said = []
    assert default.scan(CacheSettings(tmp_path / "cache", 16), said.append).key == "demo"
    assert said == ["no --data given: training on the built-in demo faces. For real faces: --data /path/to/photos"]
    draw_faces(tmp_path / "face_images", count=3)
    assert default.scan(CacheSettings(tmp_path / "cache", 16)).key == str(tmp_path / "face_images")


@pytest.mark.parametrize("link, kind", [(FID, "file"), (f"https://drive.google.com/file/d/{FID}/view", "file"),
                                        (f"https://drive.google.com/drive/folders/{FID}", "folder")])
def test_a_drive_link_is_recorded_by_its_id_and_parsed_once(link, kind, tmp_path, monkeypatch):
    parsed = []
    real = gdrive.parse_gdrive
    monkeypatch.setattr(gdrive, "parse_gdrive", lambda text: parsed.append(text) or real(text))
    source = sources.parse(None, link)
    assert isinstance(source, GoogleDrive) and (source.kind, source.id) == (kind, FID)
    assert (source.key, source.run_name) == (f"gdrive:{FID}", "gdrive")
    scan = source.scan(CacheSettings(tmp_path / "cache", 16))
    assert (scan.description, scan.downloads, scan.files_found) == (f"Google Drive {FID}", True, None)
    assert source.gone() is None and parsed == [link], "the link is parsed when the source is made, and only then"
    assert not (tmp_path / "cache").exists(), "scanning a Drive source fetches nothing"


def test_every_recorded_key_parses_back_to_the_same_source(tmp_path):
    draw_faces(tmp_path / "photos", count=2)
    np.save(tmp_path / "x.npz", np.zeros((2, 16, 16), np.uint8))
    for source in (sources.parse(str(tmp_path / "photos")), sources.parse(str(tmp_path / "x.npz")),
                   sources.parse("demo"), sources.parse(None, FID)):
        again = sources.parse(source.key)
        assert (type(again), again.key) == (type(source), source.key)


def test_a_link_that_is_no_drive_link_is_one_line_naming_the_flag():
    with pytest.raises(DataError, match=r"^--gdrive: Not a Google Drive file id or share link: 'faces'\. "):
        sources.parse(None, "faces")
    with pytest.raises(DataError, match="^--gdrive: "):
        sources.parse("gdrive:nope")


def test_a_new_runs_default_folder_is_its_sources_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    draw_faces(tmp_path / "photos", count=2)
    for given, folder in ((None, "demo_32"), ("demo", "demo_32"), ("photos", "photos_32")):
        assert resolve_run(Request({"res": 32}, source=sources.parse(given))).run.path == Path("runs") / folder
    assert resolve_run(Request({"res": 32}, source=sources.parse(None, FID))).run.path == Path("runs/gdrive_32")


def test_a_resumed_runs_gone_images_are_refused_by_its_source(tmp_path):
    from dcgan_faces.runfolder import RunFolder
    from tests.test_resolve import _checkpoint

    run = RunFolder(tmp_path / "run")
    path = _checkpoint(run, 4)
    state = np.load(path)["state"]
    np.savez(path, state=np.array(str(state).replace('"data": "demo"', f'"data": "{tmp_path / "gone"}"')))
    with pytest.raises(SetupError, match=f"the run's images were in {tmp_path / 'gone'}, which is gone"):
        resolve_run(Request({}, out=run.path))


def _package_files():
    return sorted(PACKAGE.rglob("*.py"))


DRIVE_HOME = {PACKAGE / "sources" / "gdrive.py"}  # the Drive source itself
MAY_SAY_DRIVE = {
    PACKAGE / "sources" / "__init__.py": "the parser, which names every kind",
    PACKAGE / "staging.py": "Colab's Drive mount is the slow mount that staging copies from",
    PACKAGE / "notebook.py": "the notebook mounts Drive on Colab",
}
# the CLI's --gdrive flag, whose value goes straight to the parser
FLAG_HAND_OFF = re.compile(r'"--gdrive"|sources\.parse\(args\.data, args\.gdrive\)')


def test_no_module_outside_the_drive_source_mentions_drive():
    mentions = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
                for path in _package_files() if path not in DRIVE_HOME | set(MAY_SAY_DRIVE)
                for number, line in enumerate(path.read_text().splitlines(), 1)
                if re.search(r"gdrive|GDRIVE|drive\.", line) and not FLAG_HAND_OFF.search(line)]
    assert mentions == []


def test_only_the_parser_imports_the_drive_source_and_only_the_drive_source_imports_gdown():
    importers = {path.relative_to(PACKAGE).as_posix() for path in _package_files()
                 if re.search(r"^\s*(from dcgan_faces\.sources(\.gdrive)? import .*\b(gdrive|GoogleDrive)\b"
                              r"|import dcgan_faces\.sources\.gdrive)", path.read_text(), re.M)}
    assert importers == {"sources/__init__.py"}
    gdown = {path.relative_to(PACKAGE).as_posix() for path in _package_files()
             if re.search(r"^\s*(import gdown|from gdown)", path.read_text(), re.M)}
    assert gdown == {"sources/gdrive.py"}


def test_the_cache_knows_no_source():
    imports = re.findall(r"^\s*(?:from|import) (dcgan_faces[\w.]*)", (PACKAGE / "cache.py").read_text(), re.M)
    assert imports == ["dcgan_faces.atomic"]
