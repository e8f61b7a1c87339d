"""The run folder's lock: a live trainer on this machine keeps it however old its heartbeat; the heartbeat
decides for other machines and across a reboot; a heartbeat from the future counts as fresh."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dcgan_faces import lock
from dcgan_faces.atomic import HOST, alive
from dcgan_faces.lock import LockedError, RunLock

HOUR = 3600


def forge(folder: Path, age: float, **holder) -> Path:
    """A lock as another trainer left it, its heartbeat `age` seconds ago (negative: in the future)."""
    path = folder / lock.NAME
    path.write_text(json.dumps(holder))
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def dead_pid() -> int:
    return next(pid for pid in range(4_000_000, 4_100_000) if not alive(pid))


def test_a_live_trainer_on_this_machine_keeps_its_lock_however_old_its_heartbeat(tmp_path):
    forge(tmp_path, age=10 * HOUR, host=HOST, boot=lock.BOOT, pid=os.getpid())
    with pytest.raises(LockedError) as refused:
        RunLock(tmp_path).acquire()
    message = str(refused.value)
    assert f"process {os.getpid()}, alive" in message and f"kill -CONT {os.getpid()}" in message
    assert "36,000 s ago" in message and "\n" not in message


def test_a_lock_from_before_boot_ids_were_recorded_is_judged_by_its_process(tmp_path):
    forge(tmp_path, age=10 * HOUR, host=HOST, pid=os.getpid())
    with pytest.raises(LockedError):
        RunLock(tmp_path).acquire()
    forge(tmp_path, age=0, host=HOST, pid=dead_pid())
    with RunLock(tmp_path) as taken:
        assert "a training that is gone" in taken.acquire()


def test_a_dead_trainers_lock_on_this_machine_is_taken_over_at_once(tmp_path):
    pid = dead_pid()
    forge(tmp_path, age=0, host=HOST, boot=lock.BOOT, pid=pid)
    with RunLock(tmp_path) as taken:
        message = taken.acquire()
        assert message == f"taking over the run folder from a training that is gone (host {HOST}, process {pid})"
        assert json.loads((tmp_path / lock.NAME).read_text()) == {"host": HOST, "boot": lock.BOOT, "pid": os.getpid()}


def test_after_a_reboot_the_process_number_means_nothing_and_the_heartbeat_decides(tmp_path):
    forge(tmp_path, age=60, host=HOST, boot="an-earlier-boot", pid=os.getpid())  # the number is alive, reused
    with pytest.raises(LockedError, match="60 s ago.*wait 5 minutes"):
        RunLock(tmp_path).acquire()
    forge(tmp_path, age=lock.STALE_AFTER + 60, host=HOST, boot="an-earlier-boot", pid=os.getpid())
    with RunLock(tmp_path) as taken:
        assert "a training that is gone" in taken.acquire()


def test_another_machines_lock_is_judged_by_its_heartbeat(tmp_path):
    forge(tmp_path, age=60, host="colab-vm", boot="x", pid=12)
    with pytest.raises(LockedError, match=r"host colab-vm, process 12, last heartbeat 60 s ago"):
        RunLock(tmp_path).acquire()
    forge(tmp_path, age=lock.STALE_AFTER + 1, host="colab-vm", boot="x", pid=12)
    with RunLock(tmp_path) as taken:
        assert "host colab-vm, process 12" in taken.acquire()


def test_a_heartbeat_dated_in_the_future_counts_as_fresh_and_says_so(tmp_path):
    forge(tmp_path, age=-86_382, host="colab-vm", boot="x", pid=12)
    with pytest.raises(LockedError) as refused:
        RunLock(tmp_path).acquire()
    message = str(refused.value)
    assert "dated 86,382 s ahead of this machine's clock" in message and "-86" not in message


def test_boot_id_is_read_from_the_system_or_none(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "BOOT_ID_FILE", tmp_path / "missing")
    assert lock.boot_id() is None
    (tmp_path / "boot_id").write_text("1234-abcd\n")
    monkeypatch.setattr(lock, "BOOT_ID_FILE", tmp_path / "boot_id")
    assert lock.boot_id() == "1234-abcd"


@pytest.mark.slow
def test_a_stopped_trainer_with_an_old_heartbeat_is_not_taken_over(tmp_path):
    """Reproduction 5: kill -STOP the lock's holder, let its heartbeat age, start another."""
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from dcgan_faces.lock import RunLock; "
                               "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(600)",
                               str(tmp_path)], env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        holder.send_signal(signal.SIGSTOP)
        old = time.time() - 2 * HOUR
        os.utime(tmp_path / lock.NAME, (old, old))
        with pytest.raises(LockedError, match=f"process {holder.pid}, alive"):
            RunLock(tmp_path).acquire()
        assert json.loads((tmp_path / lock.NAME).read_text())["pid"] == holder.pid, "the lock is left as it was"
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path) as taken:
        assert "a training that is gone" in taken.acquire()
