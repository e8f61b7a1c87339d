"""Never lose a run (issue 39): one owner per run folder however the starts race, a failed last checkpoint is an
error, a second signal never aborts the stop-save, SIGHUP stops like SIGTERM."""

import json
import multiprocessing
import os

import pytest

from dcgan_faces import lock
from dcgan_faces.atomic import HOST, alive
from dcgan_faces.lock import LockedError, RunLock

RACES = 200


def _dead_pid() -> int:
    return next(pid for pid in range(4_000_000, 4_100_000) if not alive(pid))


def _race(base: str, rounds: int, barrier, results) -> None:
    """One of two processes: at every round, at the same instant as the other, take over a dead trainer's lock."""
    for round_ in range(rounds):
        barrier.wait()
        try:
            RunLock(os.path.join(base, str(round_))).acquire()
            results.put((round_, os.getpid()))
        except LockedError:
            pass
        barrier.wait()


@pytest.mark.slow  # starts two processes
def test_two_starts_racing_to_take_over_a_dead_trainers_lock_never_both_own_it(tmp_path):
    context = multiprocessing.get_context("spawn")  # the test process may run TensorFlow's threads: no fork
    barrier, results = context.Barrier(3), context.SimpleQueue()
    racers = [context.Process(target=_race, args=(str(tmp_path), RACES, barrier, results)) for _ in range(2)]
    for racer in racers:
        racer.start()
    dead = _dead_pid()
    try:
        for round_ in range(RACES):
            folder = tmp_path / str(round_)
            folder.mkdir()
            (folder / lock.NAME).write_text(json.dumps({"host": HOST, "boot": lock.BOOT, "pid": dead}))
            barrier.wait(timeout=60)  # go
            barrier.wait(timeout=60)  # both done
    finally:
        for racer in racers:
            racer.join(timeout=60)
            racer.kill()
    owners: dict[int, list[int]] = {}
    while not results.empty():
        round_, pid = results.get()
        owners.setdefault(round_, []).append(pid)
    doubles = {round_: pids for round_, pids in owners.items() if len(pids) > 1}
    assert doubles == {}, f"both processes own the folder in {len(doubles)} of {RACES} races"
    assert sorted(owners) == list(range(RACES)), "one of them owns it every time"
    for round_, (pid,) in owners.items():
        assert json.loads((tmp_path / str(round_) / lock.NAME).read_text())["pid"] == pid
