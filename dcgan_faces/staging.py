"""Colab and slow mounts (its /content/drive): detected, a cache copied to local disk for fast reads, and the
advice on where to keep data and runs so that they survive a disconnect."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from dcgan_faces.atomic import remove_stale, write_atomically, write_json

SLOW_ENV = "DCGAN_FACES_SLOW_DIRS"  # extra folders to treat as slow mounts (os.pathsep-separated), for tests
_SLOW_FS = ("fuse", "nfs", "cifs", "smb", "9p", "sshfs", "davfs")
FINGERPRINT_BYTES = 1 << 20


def _mount_type(path: Path) -> str:
    """File-system type of the mount holding `path` (from /proc/mounts; '' where unknown)."""
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return ""
    best, fs_type = "", ""
    for point, kind in mounts:
        if (str(path) + "/").startswith(point.rstrip("/") + "/") and len(point) > len(best):
            best, fs_type = point, kind
    return fs_type


def is_slow_mount(path: Path) -> bool:
    """True for a network or FUSE mount such as Colab's /content/drive: slow, and it may vanish mid-write."""
    path = Path(path).expanduser().resolve()
    marked = [Path(p).resolve() for p in os.environ.get(SLOW_ENV, "").split(os.pathsep) if p]
    return (str(path).startswith("/content/drive") or any(path.is_relative_to(m) for m in marked)
            or _mount_type(path).startswith(_SLOW_FS))


def fingerprint(path: Path) -> dict:
    """Size, modification time and a hash of the first and last MiB: enough to tell two cache files apart."""
    size = path.stat().st_size
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        digest.update(file.read(FINGERPRINT_BYTES))
        file.seek(max(0, size - FINGERPRINT_BYTES))
        digest.update(file.read(FINGERPRINT_BYTES))
    return {"size": size, "mtime_ns": path.stat().st_mtime_ns, "sha1": digest.hexdigest()}


def local_copy(path: Path) -> Path:
    """`path` itself on a fast disk; on a slow mount (where each of training's random reads is a round trip), a
    copy on local disk, reused while its fingerprint matches; the original when the local disk lacks the room."""
    path = Path(path)
    if not is_slow_mount(path):
        return path
    place = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
    copy = Path(tempfile.gettempdir()) / "dcgan_faces_local" / place / path.name
    record = copy.with_suffix(".fingerprint.json")
    wanted = fingerprint(path)
    with contextlib.suppress(OSError, ValueError):  # no copy yet, or an unreadable record of it
        if copy.exists() and json.loads(record.read_text()) == wanted:
            return copy
    copy.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(copy.parent)
    if shutil.disk_usage(copy.parent).free < wanted["size"] * 1.1:
        print(f"not enough local disk to copy {path}; reading it from the mount (slower)", file=sys.stderr)
        return path
    print(f"copying {path} ({wanted['size'] / 2**20:,.0f} MiB) to local disk {copy} for fast reads", file=sys.stderr)
    write_atomically(copy, lambda tmp: shutil.copyfile(path, tmp))
    write_json(record, wanted)
    return copy


def in_colab() -> bool:
    """True when google.colab is importable."""
    try:
        return "google.colab" in sys.modules or importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):
        return False


def colab_advice() -> str:
    """Where to keep data, cache and runs on Colab so they survive a disconnect."""
    return (
        "Running on Google Colab: local files vanish when the session ends, so keep data and runs on Drive.\n"
        "Mount it first:  from google.colab import drive; drive.mount('/content/drive')\n"
        "then pass, for example:\n"
        "  --data '/content/drive/MyDrive/faces' --cache-dir '/content/drive/MyDrive/dcgan_cache' "
        "--out '/content/drive/MyDrive/dcgan_runs/faces64'\n"
        "A zip of the images downloads and unpacks far faster than a Drive folder of many small files."
    )
