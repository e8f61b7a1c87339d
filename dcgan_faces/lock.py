"""A run folder is owned by one trainer at a time: RUN/.lock names its host and process, and its
modification time is a heartbeat, refreshed every HEARTBEAT seconds while the trainer lives.

A second trainer on the same folder is refused in one line. A lock left by a process that is gone (this
machine's dead process, or a heartbeat older than STALE_AFTER, e.g. a Colab VM that disconnected) is
taken over, with a message.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from dcgan_faces.atomic import HOST, alive

NAME = ".lock"
HEARTBEAT = 30.0  # seconds
STALE_AFTER = 300.0  # seconds without a heartbeat: the holder is gone


class LockedError(Exception):
    """Another live trainer owns the run folder."""


class RunLock:
    def __init__(self, folder: Path):
        self.path = Path(folder) / NAME
        self.mine = json.dumps({"host": HOST, "pid": os.getpid()})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> str | None:
        """Take the lock; returns a message when a stale lock was taken over. LockedError when held."""
        message = None
        if self.path.exists():
            holder, age = self._holder()
            if not self._stale(holder, age):
                raise LockedError(
                    f"--out {self.path.parent} is in use by another training ({self._who(holder)}, active "
                    f"{age:.0f} s ago); let it finish or stop it, or pick another --out. If it is gone, wait "
                    f"{STALE_AFTER / 60:.0f} minutes or delete {self.path}")
            self.path.unlink(missing_ok=True)
            message = f"taking over the run folder from a training that is gone ({self._who(holder)})"
        try:
            with open(self.path, "x") as file:
                file.write(self.mine)
        except FileExistsError:
            raise LockedError(f"--out {self.path.parent} was just taken by another training; pick another "
                              "--out or wait for it to finish") from None
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()
        return message

    def follow(self, folder: Path) -> None:
        """The folder (with this lock in it) was renamed to `folder`."""
        self.path = Path(folder) / NAME

    def release(self) -> None:
        self._stop.set()
        try:
            if self.path.read_text() == self.mine:
                self.path.unlink()
        except OSError:
            pass

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            try:
                os.utime(self.path)
            except OSError:
                pass

    def _holder(self) -> tuple[dict, float]:
        try:
            age = time.time() - self.path.stat().st_mtime
            return json.loads(self.path.read_text() or "{}"), age
        except (OSError, ValueError):
            return {}, STALE_AFTER + 1  # unreadable or vanished: nobody keeps it alive

    @staticmethod
    def _stale(holder: dict, age: float) -> bool:
        if age > STALE_AFTER:
            return True
        return holder.get("host") == HOST and isinstance(holder.get("pid"), int) and not alive(holder["pid"])

    @staticmethod
    def _who(holder: dict) -> str:
        return f"host {holder.get('host', '?')}, process {holder.get('pid', '?')}"
