"""Never lose a run (issue 39): one owner per run folder however the starts race, a failed last checkpoint is an
error, a second signal never aborts the stop-save, SIGHUP stops like SIGTERM."""

import errno
import json
import multiprocessing
import os
import pty
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dcgan_faces import checkpoint, lock, runfolder
from dcgan_faces.atomic import HOST, alive
from dcgan_faces.interrupt import Interrupted, StopRequest, sigterm_unwinds
from dcgan_faces.lock import LockedError, RunLock
from dcgan_faces.runfolder import RunFolder
from tests.conftest import train_quietly
from tests.test_hostile import small_disk

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


def _fake_gan(values: int):
    """What checkpoint.save reads of a GAN: four groups of one variable of `values` float32 each."""
    variable = SimpleNamespace(path="dense/kernel", name="kernel",
                               numpy=lambda: np.random.default_rng(0).random(values, np.float32))
    layer = SimpleNamespace(name="dense", variables=[variable])
    model = SimpleNamespace(name="model", layers=[layer], variables=[variable],
                            optimizer=SimpleNamespace(name="adam", variables=[variable]))
    return SimpleNamespace(generator=model, discriminator=model, combined=model, average=None)


def test_a_disk_with_room_for_two_checkpoints_keeps_taking_them(tmp_path):
    gan = _fake_gan(30_000)  # a checkpoint of 480 KB: two fit in 1,200 KB, three do not
    with small_disk(tmp_path / "disk", "1200k") as disk:
        for k in (2, 4, 6, 8):
            checkpoint.save(disk, gan, {"iteration": k}, keep=2)
        assert [p.name for p in checkpoint.checkpoints(disk)] == ["ckpt-00000008.npz", "ckpt-00000006.npz"]


def test_a_checkpoint_that_cannot_be_written_keeps_the_newest_one(tmp_path):
    gan = _fake_gan(30_000)
    with small_disk(tmp_path / "disk", "700k") as disk:  # room for one
        checkpoint.save(disk, gan, {"iteration": 2}, keep=1)
        with pytest.raises(OSError):
            checkpoint.save(disk, gan, {"iteration": 4}, keep=1)
        assert [p.name for p in checkpoint.checkpoints(disk)] == ["ckpt-00000002.npz"]
        assert checkpoint.read(disk / "ckpt-00000002.npz")[0] == {"iteration": 2}


def _room_for(monkeypatch, checkpoints: int) -> None:
    """The run's disk has room for `checkpoints` checkpoints and nothing more."""
    real = checkpoint.write_atomically

    def write(path, fill):
        if len(checkpoint.checkpoints(path.parent)) >= checkpoints:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, fill)

    monkeypatch.setattr(checkpoint, "write_atomically", write)


def _train(faces: Path, out: Path, *extra: str) -> int:
    return train_quietly(["--res", "16", "--batch-size", "8", "--save-every", "2", "--data", str(faces),
                          "--cache-dir", str(out.parent / "cache"), "--out", str(out), *extra])


@pytest.mark.slow
def test_a_run_whose_last_checkpoint_fails_ends_in_error_and_names_the_newest_saved_one(face_folder, tmp_path,
                                                                                        monkeypatch, capsys):
    run = RunFolder(tmp_path / "run")
    _room_for(monkeypatch, 2)
    assert _train(face_folder, run.path, "--steps", "6") == 0
    assert [p.name for p in checkpoint.checkpoints(run.checkpoints)] == ["ckpt-00000006.npz", "ckpt-00000004.npz"]
    _room_for(monkeypatch, 1)
    capsys.readouterr()
    assert _train(face_folder, run.path, "--steps", "10") == 1
    captured = capsys.readouterr()
    assert "could not write the checkpoint of iteration 10 (No space left on device)" in captured.out
    assert "done:" not in captured.out
    assert captured.err.strip() == (
        f"error: the checkpoint of iteration 10 could not be written; the newest saved one is of iteration 6 "
        f"({run.checkpoints / 'ckpt-00000006.npz'}): the same command resumes from there. Free some space in "
        f"{run.path} first")
    assert [p.name for p in checkpoint.checkpoints(run.checkpoints)] == ["ckpt-00000006.npz"]


def test_a_second_stop_signal_says_to_wait_and_a_third_stops_at_once(capsys):
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signal == signal.SIGINT
        os.kill(os.getpid(), signal.SIGTERM)  # no exception: the save goes on
        assert "SIGTERM: saving, please wait" in capsys.readouterr().out and stop.signal == signal.SIGINT
        with pytest.raises(Interrupted) as forced:
            os.kill(os.getpid(), signal.SIGINT)
    assert forced.value.args[0] == signal.SIGINT


def test_sighup_is_a_stop_signal_while_training_and_while_setting_up(monkeypatch):
    monkeypatch.setattr(signal, "getsignal", lambda signum: signal.SIG_DFL)  # as if not started under nohup
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGHUP)
    assert stop.signal == signal.SIGHUP
    with pytest.raises(Interrupted) as stopped, sigterm_unwinds():
        os.kill(os.getpid(), signal.SIGHUP)
    assert stopped.value.args[0] == signal.SIGHUP


def _signal_while_saving(monkeypatch, at: int, *signals: int) -> None:
    """Ctrl-C during the step from iteration `at`, then `signals` while the stop's checkpoint is written."""
    from dcgan_faces.session import Session
    from dcgan_faces.trainer import Trainer

    monkeypatch.undo()
    step, save = Trainer.step, Session.save_checkpoint

    def ctrl_c_during_a_step(trainer):
        if trainer.iteration == at:
            os.kill(os.getpid(), signal.SIGINT)
        return step(trainer)

    def save_under_signals(session, *staging):
        for signum in signals:
            os.kill(os.getpid(), signum)
        save(session, *staging)

    monkeypatch.setattr(Trainer, "step", ctrl_c_during_a_step)
    monkeypatch.setattr(Session, "save_checkpoint", save_under_signals)


@pytest.mark.slow
def test_a_second_signal_during_the_stop_save_does_not_abort_it_and_a_third_forces_the_stop(face_folder, tmp_path,
                                                                                            monkeypatch, capsys):
    run = RunFolder(tmp_path / "run")
    _signal_while_saving(monkeypatch, 2, signal.SIGTERM)
    assert _train(face_folder, run.path, "--steps", "50", "--save-every", "40") == 128 + signal.SIGINT
    captured = capsys.readouterr()
    assert "SIGTERM: saving, please wait" in captured.out and "Traceback" not in captured.out + captured.err
    assert f"stopped at iteration 3: checkpoint, grid and generator saved in {run.path}" in captured.out
    assert [p.name for p in checkpoint.checkpoints(run.checkpoints)] == ["ckpt-00000003.npz"]
    assert run.generator_path.exists() and not (run.path / lock.NAME).exists()

    _signal_while_saving(monkeypatch, 3, signal.SIGTERM, signal.SIGINT)  # resumed from 3, stopped at 4
    assert _train(face_folder, run.path, "--steps", "50", "--save-every", "40") == 128 + signal.SIGINT
    captured = capsys.readouterr()
    assert "SIGINT while stopping: nothing half-written is kept; run the same command again" in captured.err
    assert "Traceback" not in captured.out + captured.err
    assert [p.name for p in checkpoint.checkpoints(run.checkpoints)] == ["ckpt-00000003.npz"]
    assert not (run.path / lock.NAME).exists() and not [p for p in run.path.rglob("*") if ".tmp-" in p.name]


@pytest.mark.slow
def test_a_closed_terminal_stops_the_training_with_a_checkpoint_and_frees_the_folder(face_folder, tmp_path):
    """SIGHUP from a real hang-up: the trainer's terminal (a pty) closes under it; what it prints then fails."""
    out = tmp_path / "run"
    master, terminal = pty.openpty()
    take_the_terminal = "import fcntl, os, signal, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); " \
                        "signal.signal(signal.SIGHUP, signal.SIG_DFL); " \
                        "os.execv(sys.executable, sys.argv[1:])"  # SIGHUP not ignored, even if pytest runs under nohup
    command = [sys.executable, "-c", take_the_terminal, sys.executable, "-m", "dcgan_faces.train", "--res", "16",
               "--batch-size", "8", "--save-every", "2", "--steps", "100000", "--data", str(face_folder),
               "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    process = subprocess.Popen(command, stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    os.close(terminal)
    shown = b""
    try:
        deadline = time.monotonic() + 240
        while not list(out.glob("checkpoints/ckpt-*.npz")) and time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                shown += os.read(master, 65536)  # keep the terminal drained
    finally:
        os.close(master)  # the terminal hangs up: SIGHUP
    assert process.wait(timeout=120) == 128 + signal.SIGHUP, shown.decode(errors="replace")[-2000:]
    run = RunFolder(out)
    stopped_at = run.read_metrics()[-1]["iteration"]
    assert checkpoint.iteration_of(checkpoint.checkpoints(run.checkpoints)[0]) == stopped_at
    assert run.generator_path.exists() and not (out / lock.NAME).exists()


class _Frozen(datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2026, 12, 4, 10, 15, 0, tzinfo=tz)


def _earlier_run(folder: Path) -> RunFolder:
    run = RunFolder(folder)
    run.path.mkdir(parents=True)
    run.write_mark("earlier")
    return run


def test_fresh_moves_the_earlier_run_to_a_free_name_when_its_timestamped_one_is_taken(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runfolder, "datetime", _Frozen)
    run = _earlier_run(tmp_path / "tiny")
    taken = tmp_path / "tiny-20261204-101500"
    taken.mkdir()
    (taken / "kept.txt").write_text("a run moved aside in the same second")
    empty = tmp_path / "tiny-20261204-101500-2"
    empty.mkdir()  # taken all the same
    run.claim("new", fresh=True).undo()
    moved = tmp_path / "tiny-20261204-101500-3"
    assert capsys.readouterr().out == f"--fresh: moved the earlier run to {moved}\n"
    assert RunFolder(moved).mark()["run_id"] == "earlier" and not run.path.exists()
    assert not (moved / lock.NAME).exists()
    assert [p.name for p in taken.iterdir()] == ["kept.txt"] and not any(empty.iterdir())


def test_a_run_that_cannot_be_moved_aside_is_one_line_and_leaves_no_lock(tmp_path, monkeypatch):
    run = _earlier_run(tmp_path / "tiny")

    def refuse(self):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(RunFolder, "move_aside", refuse)
    with pytest.raises(runfolder.FolderError, match=rf"^--fresh: cannot move the earlier run {run.path} aside "
                                                   r"\(Permission denied\); move or rename it yourself, or pick "
                                                   r"another --out$"):
        run.claim("new", fresh=True)
    assert sorted(p.name for p in run.path.iterdir()) == [runfolder.MARK]


def test_a_folder_a_live_training_holds_is_refused_first_and_alone(face_folder, tmp_path, capsys):
    run = _earlier_run(tmp_path / "run")  # stopped before its first checkpoint, as far as the files tell
    (run.path / lock.NAME).write_text(json.dumps({"host": HOST, "boot": lock.BOOT, "pid": os.getpid()}))
    assert _train(face_folder, run.path, "--steps", "4") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: --out {run.path} is in use by another training on this machine")
    assert captured.err.count("\n") == 1


def test_two_runs_named_alike_keep_a_generator_each_where_their_folders_have_no_room(tmp_path, monkeypatch):
    from dcgan_faces import writers

    # the generator as it is, without loading Keras (seconds)
    monkeypatch.setitem(sys.modules, "dcgan_faces.models", SimpleNamespace(stock_generator=lambda generator: generator))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def no_room(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    saved = {}
    for place in ("colab", "laptop"):
        run = RunFolder(tmp_path / place / "tiny")
        run.save_generator = no_room
        said = []
        generator = SimpleNamespace(save=lambda path, p=place: Path(path).write_text(p))
        context = SimpleNamespace(run=run, say=said.append, iteration=4, output_generator=lambda g=generator: g)
        writer = writers.SavedGenerator()
        writer.on_train_end(context)
        saved[place] = writer.saved_as
        assert said == [f"could not write the generator {run.generator_path} (No space left on device); saved it as "
                        f"{writer.saved_as} instead: move it into the run folder once there is room"]
    assert {place: path.read_text() for place, path in saved.items()} == {"colab": "colab", "laptop": "laptop"}
    assert all(re.fullmatch(r"tiny-[0-9a-f]{8}-generator-00000004\.keras", path.name) for path in saved.values())
    assert writers.fallback_path(tmp_path / "colab" / "tiny", 4) == saved["colab"], "the same run: the same name"


def test_a_training_started_with_nohup_keeps_ignoring_sighup():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with StopRequest() as stop:
            os.kill(os.getpid(), signal.SIGHUP)
        with sigterm_unwinds():
            os.kill(os.getpid(), signal.SIGHUP)
        assert stop.signal is None and signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
