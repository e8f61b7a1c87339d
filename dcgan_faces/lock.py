"""A run folder is owned by one trainer at a time: RUN/.lock names its host, the host's boot and its process,
and its modification time is a heartbeat, refreshed every HEARTBEAT seconds while the trainer lives.

A second trainer on the same folder is refused in one line. A lock left by a process that is gone is taken
over, with a message. On this machine (same host name and boot) the process decides: a live one keeps the
lock however old its heartbeat (stopped with SIGSTOP, a closed laptop lid), a dead one loses it. From another
machine, or from this one before a reboot (its process number means nothing now), the heartbeat decides: it
is gone after STALE_AFTER seconds without one (e.g. a Colab VM that disconnected). A heartbeat dated in the
future (another machine's clock ahead) counts as fresh.

Judging a lock and taking it over is one step for every trainer on this machine: it is done holding an flock on
the run folder itself, so that of two starts racing for a dead trainer's folder the loser finds the winner's
fresh lock, never deletes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from pathlib import Path

from dcgan_faces.atomic import HOST, alive
from dcgan_faces.cli_types import CommandError

NAME = ".lock"
HEARTBEAT = 30.0  # seconds
STALE_AFTER = 300.0  # seconds without a heartbeat: the holder is gone
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str | None:
    """This boot of this machine (Linux); None where the system does not tell."""
    try:
        return BOOT_ID_FILE.read_text().strip() or None
    except OSError:
        return None


BOOT = boot_id()


class LockedError(CommandError):
    """Another live trainer owns the run folder."""


class RunLock:
    def __init__(self, folder: Path):
        self.path = Path(folder) / NAME
        self.mine = json.dumps({"host": HOST, "boot": BOOT, "pid": os.getpid()})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> str | None:
        """Take the lock; returns a message when a stale lock was taken over. LockedError when held."""
        with _only_one_at_a_time(self.path.parent):
            message = self._take()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()
        return message

    def refuse_if_held(self) -> dict | None:
        """LockedError when another live training holds the folder; else the holder of a lock that is stale (None:
        no lock). Looks only: nothing is taken or changed."""
        if not self.path.exists():
            return None
        holder, age = self._holder()
        if not _stale(holder, age):
            raise LockedError(_in_use(self.path, holder, age))
        return holder

    def _take(self) -> str | None:
        message = None
        holder = self.refuse_if_held()
        if holder is not None:
            self.path.unlink(missing_ok=True)
            message = f"taking over the run folder from a training that is gone ({_who(holder)})"
        try:
            with open(self.path, "x") as file:
                file.write(self.mine)
        except FileExistsError:  # another machine's start, which our flock does not hold back
            raise LockedError(f"--out {self.path.parent} was just taken by another training; pick another "
                              "--out or wait for it to finish") from None
        return message

    def follow(self, folder: Path) -> None:
        """The folder (with this lock in it) was renamed to `folder`."""
        self.path = Path(folder) / NAME

    def release(self) -> None:
        self._stop.set()
        with _only_one_at_a_time(self.path.parent), contextlib.suppress(OSError):
            if self.path.read_text() == self.mine:
                self.path.unlink()

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


@contextlib.contextmanager
def _only_one_at_a_time(folder: Path):
    """Within: no other process of this machine judges or changes `folder`'s lock (an exclusive flock on the
    folder, released when the process ends however it ends). Where the folder cannot be opened or its file
    system has no flock, unguarded: creating the lock (O_EXCL) still lets one start win."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the flock


def _on_this_machine(holder: dict) -> bool:
    """Whether the lock was taken on this machine since it last booted, so that its process number counts.
    (A lock written before locks recorded the boot counts as this boot's.)"""
    return holder.get("host") == HOST and isinstance(holder.get("pid"), int) and holder.get("boot", BOOT) == BOOT


def _stale(holder: dict, age: float) -> bool:
    if _on_this_machine(holder):
        return not alive(holder["pid"])
    return age > STALE_AFTER


def _in_use(path: Path, holder: dict, age: float) -> str:
    """The one-line refusal: who holds the folder and what to do."""
    if _on_this_machine(holder):
        return (f"--out {path.parent} is in use by another training on this machine (process {holder['pid']}, "
                f"alive; last heartbeat {_ago(age)}: it may be stopped, `kill -CONT {holder['pid']}` resumes it); "
                "let it finish or stop it, or pick another --out")
    return (f"--out {path.parent} is in use by another training ({_who(holder)}, last heartbeat {_ago(age)}); "
            f"let it finish or stop it, or pick another --out. If it is gone, wait {STALE_AFTER / 60:.0f} minutes "
            f"after its last heartbeat or delete {path}")


def _ago(age: float) -> str:
    if age < 0:
        return f"dated {-age:,.0f} s ahead of this machine's clock (the clocks differ), taken as just now"
    return f"{age:,.0f} s ago"


def _who(holder: dict) -> str:
    return f"host {holder.get('host', '?')}, process {holder.get('pid', '?')}"
