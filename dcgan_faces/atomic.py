"""The one way this project writes a file: into a temporary file beside it, then renamed into place.

A reader never sees a half-written file under a real name, a failed write keeps the previous file, and a
temporary file is removed on every exit path the process lives through. Temporary names carry the host
and process id (`.NAME.tmp-HOST-PID.EXT`), so that what a killed process left behind is recognised and
cleared by the next one (`remove_stale`), even in a folder several machines share (Google Drive).
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40] or "host"
TEMPORARY = re.compile(r"^\..+\.tmp-(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)(\.[A-Za-z0-9]+)?$")
FOREIGN_STALE_AFTER = 24 * 3600  # seconds: another machine's temporary file is surely abandoned by then


def temporary_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp-{HOST}-{os.getpid()}{path.suffix}")


def write_atomically(path: Path, fill: Callable[[Path], object]) -> Path:
    """Let `fill` write a temporary file beside `path`, flush it to disk, then rename it into place."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        fill(tmp)
        with open(tmp, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: Path, text: str) -> Path:
    return write_atomically(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, value) -> Path:
    return write_text(path, json.dumps(value, indent=2))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(path: Path) -> bool:
    """A temporary file of a process that is gone: this host's dead pid, or another host's old file."""
    match = TEMPORARY.match(path.name)
    if not match:
        return False
    if match["host"] == HOST:
        return int(match["pid"]) != os.getpid() and not alive(int(match["pid"]))
    try:
        return time.time() - path.stat().st_mtime > FOREIGN_STALE_AFTER
    except OSError:
        return False


def remove_stale(folder: Path) -> list[Path]:
    """Delete the temporary files that killed processes left in `folder` (not below it); returns them."""
    removed = []
    try:
        candidates = [p for p in Path(folder).iterdir() if p.name.startswith(".") and ".tmp-" in p.name]
    except OSError:
        return removed
    for path in candidates:
        if is_stale(path):
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed
