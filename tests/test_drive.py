"""Tests of the Google Drive source (sources/gdrive.py, sources/unpack.py) against a local HTTP server standing in for
Google Drive (no internet)."""

from __future__ import annotations

import io
import json
import random
import socket
import sys
import tarfile
import threading
import types
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import gdown
import pytest
import requests
from PIL import Image

from dcgan_faces.sources import gdrive
from dcgan_faces.sources.gdrive import FetchError, GoogleDrive, parse_gdrive
from dcgan_faces.sources.unpack import safe_extract
from dcgan_faces.staging import colab_advice, in_colab

FID = "1AbCdEfGhIjKlMnOpQrStUvWxYz012345"  # shaped like a Drive id (33 chars)
NOT_FOUND = (404, {"Content-Type": "text/html; charset=utf-8"}, b"<!DOCTYPE html><html>Not Found</html>")
QUOTA_HTML = (
    b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>\n"
    b'<p class="uc-error-caption">Sorry, you can&#39;t view or download this file at this time.</p>'
    b'<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently. Please '
    b"try accessing the file again later. If the file you are trying to access is particularly large or is "
    b"shared with many people, it may take up to 24 hours to be able to view or download the file.</p>\n"
    b"</body></html>\n"
)
SIGN_IN_HTML = b"<!DOCTYPE html><html><head><title>Google Drive: Sign-in</title></head><body>Sign in</body>"


# ---------------------------------------------------------------- helpers


def fetch(link: str, dest_dir: Path, **options) -> Path:
    """The image folder of a Drive link, downloaded by its source (a link is parsed once, when it is made)."""
    return GoogleDrive(link).fetch(dest_dir, **options)


def png(color: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (color, 255 - color, 7)).save(buf, format="PNG")
    return buf.getvalue()


IMAGES = {"a.png": png(10), "b.png": png(120), "sub/c.png": png(240)}


def make_zip(files: dict[str, bytes], prefix: str = "faces/") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        if prefix:
            zf.writestr(prefix, b"")  # explicit directory entry, as most zip tools write
        for name, data in files.items():
            zf.writestr(prefix + name, data)
    return buf.getvalue()


def make_tar(files: dict[str, bytes], mode: str = "w:gz", prefix: str = "./faces/") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def hostile_zip(kind: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("faces/ok.png", png(1))
        if kind == "dotdot":
            zf.writestr("faces/../../evil.png", png(2))
        elif kind == "absolute":
            zf.writestr("/abs.png", png(2))
        elif kind == "symlink":
            info = zipfile.ZipInfo("faces/link.png")
            info.external_attr = (0o120777 << 16)  # S_IFLNK | 0777
            zf.writestr(info, "/etc/passwd")
        elif kind == "oversize":
            zf.writestr("faces/big.bin", b"\0" * 5000)
    return buf.getvalue()


def hostile_tar(kind: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        ok = png(1)
        info = tarfile.TarInfo("faces/ok.png")
        info.size = len(ok)
        tf.addfile(info, io.BytesIO(ok))
        bad = tarfile.TarInfo({"dotdot": "faces/../../evil.png", "absolute": "/abs.png"}.get(kind, "faces/x"))
        if kind in ("dotdot", "absolute", "oversize"):
            data = b"\0" * (5000 if kind == "oversize" else 10)
            bad.size = len(data)
            tf.addfile(bad, io.BytesIO(data))
        else:
            types_ = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "device": tarfile.CHRTYPE}
            bad.type = types_[kind]
            bad.linkname = "/etc/passwd" if kind != "device" else ""
            tf.addfile(bad)
    return buf.getvalue()


def assert_helpful(err: pytest.ExceptionInfo[FetchError], *words: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg and "--data" in msg, msg
    for word in words:
        assert word.lower() in msg.lower(), msg


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- local "Drive" server


class LocalDrive:
    """Serves canned answers by URL path on 127.0.0.1 and records the requests it got."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                outer.requests.append(self.path)
                status, headers, body = outer.routes.get(urlsplit(self.path).path, NOT_FOUND)
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def serve_file(self, path: str, body: bytes, filename: str) -> None:
        """Answer like Drive does for a small public file: the bytes, named by Content-Disposition."""
        self.routes[path] = (200, {
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{filename}",
        }, body)

    def serve_html(self, path: str, body: bytes, status: int = 200) -> None:
        self.routes[path] = (status, {"Content-Type": "text/html; charset=utf-8"}, body)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()


@pytest.fixture
def server():
    srv = LocalDrive()
    yield srv
    srv.stop()


@pytest.fixture
def as_drive(server: LocalDrive, monkeypatch: pytest.MonkeyPatch) -> LocalDrive:
    """gdown asks the real https://drive.google.com URLs, but every https request lands on the local server.

    gdown only runs its Drive logic (Content-Disposition names, the large-file confirm form, the quota page)
    for drive.google.com URLs, so rather than changing the base URL the sessions gdown opens get a transport
    adapter that rewrites https://<any host>/path?query to http://127.0.0.1:PORT/path?query.
    """
    real_session = requests.session

    class ToLocal(requests.adapters.HTTPAdapter):
        def send(self, request: requests.PreparedRequest, **kwargs):  # type: ignore[override]
            parts = urlsplit(request.url)
            request.url = urlunsplit(("http", f"127.0.0.1:{server.port}", parts.path, parts.query, ""))
            return super().send(request, **kwargs)

    def session() -> requests.Session:
        sess = real_session()
        sess.mount("https://", ToLocal())
        return sess

    monkeypatch.setattr(requests, "session", session)
    monkeypatch.delenv(gdrive.BASE_ENV, raising=False)
    monkeypatch.setattr(gdrive, "RETRIES", 0)
    return server


@pytest.fixture
def local_base(server: LocalDrive, monkeypatch: pytest.MonkeyPatch) -> LocalDrive:
    """Points the module at the local server through DCGAN_FACES_GDRIVE_BASE (gdown then does a plain GET)."""
    monkeypatch.setenv(gdrive.BASE_ENV, server.url)
    monkeypatch.setattr(gdrive, "RETRIES", 0)
    return server


# ---------------------------------------------------------------- parse_gdrive


@pytest.mark.parametrize("text, expected", [
    (FID, ("file", FID)),
    (f"  {FID}\n", ("file", FID)),
    (f"https://drive.google.com/file/d/{FID}/view?usp=sharing", ("file", FID)),
    (f"https://drive.google.com/file/d/{FID}", ("file", FID)),
    (f"https://drive.google.com/file/u/1/d/{FID}/view", ("file", FID)),
    (f"https://drive.google.com/open?id={FID}", ("file", FID)),
    (f"https://drive.google.com/uc?id={FID}&export=download", ("file", FID)),
    (f"https://drive.usercontent.google.com/download?id={FID}&export=download", ("file", FID)),
    (f"https://drive.google.com/drive/folders/{FID}?usp=sharing", ("folder", FID)),
    (f"https://drive.google.com/drive/u/0/folders/{FID}", ("folder", FID)),
])
def test_parse_gdrive(text: str, expected: tuple[str, str]) -> None:
    assert parse_gdrive(text) == expected


@pytest.mark.parametrize("text", ["", "faces", "https://example.com/faces.zip",
                                  "/content/drive/MyDrive/faces", "https://drive.google.com/drive/my-drive"])
def test_parse_gdrive_rejects(text: str) -> None:
    with pytest.raises(FetchError) as err:
        parse_gdrive(text)
    assert_helpful(err, "Google Drive")


# ---------------------------------------------------------------- safe_extract


def check_images(folder: Path) -> None:
    for name, data in IMAGES.items():
        assert (folder / name).read_bytes() == data


def test_safe_extract_zip(tmp_path: Path) -> None:
    archive = tmp_path / "faces.zip"
    archive.write_bytes(make_zip(IMAGES))
    out = safe_extract(archive, tmp_path / "out", max_bytes=10**6)
    assert out == tmp_path / "out"
    check_images(out / "faces")
    assert leftovers(tmp_path) == ["faces.zip", "out"]


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz", "w"])
def test_safe_extract_tar(tmp_path: Path, mode: str) -> None:
    archive = tmp_path / "faces.bin"  # detected by content, not by extension
    archive.write_bytes(make_tar(IMAGES, mode))
    (tmp_path / "out").mkdir()  # an existing empty folder is fine
    check_images(safe_extract(archive, tmp_path / "out", max_bytes=10**6) / "faces")
    assert leftovers(tmp_path) == ["faces.bin", "out"]


@pytest.mark.parametrize("make, kind, words", [
    (hostile_zip, "dotdot", ["outside"]),
    (hostile_zip, "absolute", ["absolute"]),
    (hostile_zip, "symlink", ["symlink"]),
    (hostile_zip, "oversize", ["more than"]),
    (hostile_tar, "dotdot", ["outside"]),
    (hostile_tar, "absolute", ["absolute"]),
    (hostile_tar, "symlink", ["symlink"]),
    (hostile_tar, "hardlink", ["hard link"]),
    (hostile_tar, "device", ["special file"]),
    (hostile_tar, "oversize", ["more than"]),
])
def test_safe_extract_refuses_hostile(tmp_path: Path, make, kind: str, words: list[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    archive = work / "evil.archive"
    archive.write_bytes(make(kind))
    with pytest.raises(FetchError) as err:
        safe_extract(archive, work / "out", max_bytes=2000)
    assert_helpful(err, "refused", "evil.archive", *words)
    assert leftovers(work) == ["evil.archive"]  # no target, no temporary folder
    assert leftovers(tmp_path) == ["work"]  # nothing escaped upwards


def test_safe_extract_refuses_nonempty_target(tmp_path: Path) -> None:
    archive = tmp_path / "faces.zip"
    archive.write_bytes(make_zip(IMAGES))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(FetchError, match="not empty"):
        safe_extract(archive, tmp_path / "out", max_bytes=10**6)
    assert leftovers(tmp_path / "out") == ["keep.txt"]


@pytest.mark.parametrize("make", [make_zip, make_tar])
def test_safe_extract_damaged_leaves_nothing(tmp_path: Path, make) -> None:
    data = make({**IMAGES, "noise.bin": random.Random(0).randbytes(50_000)})
    archive = tmp_path / "cut.archive"
    middle = len(data) * 2 // 3
    # a tar.gz cut short; a zip with a flipped byte inside the noise (a CRC error half way through)
    archive.write_bytes(data[:middle] if make is make_tar else data[:middle] + b"?" + data[middle + 1:])
    with pytest.raises(FetchError) as err:
        safe_extract(archive, tmp_path / "out", max_bytes=10**6)
    assert_helpful(err)
    assert leftovers(tmp_path) == ["cut.archive"]


# ---------------------------------------------------------------- fetching through gdown


def test_fetch_file_as_drive_then_reuse_offline(as_drive: LocalDrive, tmp_path: Path) -> None:
    as_drive.serve_file("/uc", make_zip(IMAGES), "faces.zip")
    url = f"https://drive.google.com/file/d/{FID}/view?usp=sharing"
    data = fetch(url, tmp_path / "cache", quiet=True)
    assert data == tmp_path / "cache" / FID / "faces"  # the wrapper folder inside the zip is stepped into
    check_images(data)
    assert as_drive.requests == [f"/uc?id={FID}"]
    marker = json.loads((tmp_path / "cache" / f".complete-{FID}.json").read_text())
    assert marker["file"] == "faces.zip" and marker["size"] == len(make_zip(IMAGES))
    assert leftovers(tmp_path / "cache") == [f".complete-{FID}.json", FID]  # archive and staging gone

    as_drive.stop()
    assert fetch(FID, tmp_path / "cache", quiet=True) == data


def test_fetch_large_file_follows_confirm_form(as_drive: LocalDrive, tmp_path: Path) -> None:
    form = (
        '<!DOCTYPE html><html><body><form id="download-form" action="https://drive.usercontent.google.com/download"'
        ' method="get"><input type="submit" value="Download anyway"/>'
        f'<input type="hidden" name="id" value="{FID}"><input type="hidden" name="export" value="download">'
        '<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="u-1"></form>'
        "</body></html>\n"
    ).encode()
    as_drive.serve_html("/uc", form)
    as_drive.serve_file("/download", make_tar(IMAGES, prefix=""), "faces.tar.gz")
    data = fetch(FID, tmp_path, quiet=True)
    assert data == tmp_path / FID
    check_images(data)
    assert as_drive.requests[0] == f"/uc?id={FID}"
    assert as_drive.requests[1].startswith("/download?") and "confirm=t" in as_drive.requests[1]


@pytest.mark.parametrize("page, words", [(QUOTA_HTML, ["quota", "later"]),
                                         (SIGN_IN_HTML, ["anyone with the link"])])
def test_fetch_drive_refusals(as_drive: LocalDrive, tmp_path: Path, page: bytes, words: list[str]) -> None:
    as_drive.serve_html("/uc", page)
    with pytest.raises(FetchError) as err:
        fetch(FID, tmp_path, quiet=True)
    assert_helpful(err, FID, *words)
    assert leftovers(tmp_path) == []


def test_fetch_damaged_archive(as_drive: LocalDrive, tmp_path: Path) -> None:
    as_drive.serve_file("/uc", b"PK\x03\x04 not really a zip", "faces.zip")
    with pytest.raises(FetchError) as err:
        fetch(FID, tmp_path, quiet=True)
    assert_helpful(err, FID, "faces.zip", "damaged")
    assert leftovers(tmp_path) == []


def test_fetch_single_image_via_base_env(local_base: LocalDrive, tmp_path: Path) -> None:
    local_base.serve_file("/uc", IMAGES["a.png"], "a.png")
    data = fetch(f"{local_base.url}/uc?id={FID}", tmp_path, quiet=True)
    assert data == tmp_path / FID
    [image] = data.iterdir()
    assert image.read_bytes() == IMAGES["a.png"]
    assert local_base.requests == [f"/uc?id={FID}"]


@pytest.mark.parametrize("status, body, words", [
    (404, b"<html>Not Found</html>", ["anyone with the link"]),
    (403, b"<html>Forbidden</html>", ["anyone with the link"]),
    (429, b"<html>Slow down</html>", ["quota"]),
    (200, QUOTA_HTML, ["quota"]),
    (503, b"<html>Unavailable</html>", ["503"]),
])
def test_fetch_http_errors_via_base_env(local_base: LocalDrive, tmp_path: Path, status: int, body: bytes,
                                        words: list[str]) -> None:
    local_base.serve_html("/uc", body, status)
    with pytest.raises(FetchError) as err:
        fetch(FID, tmp_path, quiet=True)
    assert_helpful(err, FID, *words)
    assert leftovers(tmp_path) == []


def test_fetch_no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: connecting is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(gdrive.BASE_ENV, f"http://127.0.0.1:{port}")
    monkeypatch.setattr(gdrive, "RETRIES", 0)
    with pytest.raises(FetchError) as err:
        fetch(FID, tmp_path, quiet=True)
    assert_helpful(err, FID, "network")
    assert leftovers(tmp_path) == []


def test_network_error_after_gdown_retries_is_explained() -> None:
    err = gdown.exceptions.DownloadError("Download failed after 3 retries: boom")
    err.__cause__ = requests.ConnectionError("boom")
    msg = str(gdrive._explain(err, FID))
    assert "network" in msg and FID in msg and "--data" in msg


def test_fetch_stops_past_max_bytes(as_drive: LocalDrive, tmp_path: Path) -> None:
    as_drive.serve_file("/uc", b"\0" * 10_000, "huge.zip")
    with pytest.raises(FetchError) as err:
        fetch(FID, tmp_path, quiet=True, max_bytes=1000)
    assert_helpful(err, FID, "larger than")
    assert leftovers(tmp_path) == []


def test_fetch_clears_leftovers_of_interrupted_attempt(as_drive: LocalDrive, tmp_path: Path) -> None:
    (tmp_path / f".staging-{FID}").mkdir()
    (tmp_path / f".staging-{FID}" / "faces.zipXXXXXXXX.part").write_bytes(b"half")
    (tmp_path / FID).mkdir()  # renamed into place, but the marker was never written
    (tmp_path / FID / "stale.png").write_bytes(b"x")
    (tmp_path / f".{FID}.extract-abc").mkdir()
    as_drive.serve_file("/uc", make_zip(IMAGES, prefix=""), "faces.zip")
    data = fetch(FID, tmp_path, quiet=True)
    check_images(data)
    assert not (data / "stale.png").exists()
    assert leftovers(tmp_path) == [f".complete-{FID}.json", FID]


def test_fetch_folder_wiring(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # gdown's folder download scrapes Drive's folder page at fixed https://drive.google.com URLs,
    # so here only the call into gdown is faked; parsing, placement and reuse are real.
    calls: list[dict] = []

    def fake_download_folder(**kwargs) -> list[str]:
        calls.append(kwargs)
        root = Path(kwargs["output"])
        for name, data in IMAGES.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        return [str(root / name) for name in IMAGES]

    monkeypatch.setattr(gdown, "download_folder", fake_download_folder)
    monkeypatch.delenv(gdrive.BASE_ENV, raising=False)
    url = f"https://drive.google.com/drive/folders/{FID}?usp=sharing"
    data = fetch(url, tmp_path, quiet=True)
    assert data == tmp_path / FID
    check_images(data)
    assert calls[0]["url"] == f"https://drive.google.com/drive/folders/{FID}"
    assert calls[0]["output"] == str(tmp_path / f".staging-{FID}")
    assert fetch(url, tmp_path, quiet=True) == data and len(calls) == 1


# ---------------------------------------------------------------- Colab


def test_in_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert in_colab() is False  # google.colab is not installed here
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert in_colab() is True


def test_colab_advice() -> None:
    text = colab_advice()
    for flag in ("--data '/content/drive/MyDrive/faces'", "--cache-dir '/content/drive/MyDrive/dcgan_cache'",
                 "--out '/content/drive/MyDrive/dcgan_runs/faces64'", "drive.mount('/content/drive')"):
        assert flag in text
