"""The start of a training, said in the code: one short sequence (train.start), one error base that carries its
exit code (CommandError, caught once in train.main), and one call that claims the run folder (RunFolder.claim)."""

from __future__ import annotations

import inspect

import pytest

from dcgan_faces import keras_hooks, lock, train
from dcgan_faces.cli_types import CommandError, UsageError
from dcgan_faces.resolve import SetupError
from dcgan_faces.runfolder import MARK, FolderError, RunFolder
from dcgan_faces.sources import DataError


def test_the_start_reads_on_one_screen():
    for function in (train.main, train.start):
        assert len(inspect.getsource(function).splitlines()) <= 40, function.__name__


@pytest.mark.parametrize("error", [SetupError, DataError, lock.LockedError, FolderError, UsageError,
                                   keras_hooks.KerasHookError])
def test_every_refusal_of_a_start_is_a_command_error_with_exit_code_2(error, capsys):
    refused = error("--out runs/x: why; what to do")
    assert isinstance(refused, CommandError) and refused.report() == 2
    assert capsys.readouterr().err == "error: --out runs/x: why; what to do\n"


def test_a_finished_run_is_said_on_stdout_with_exit_code_0(capsys):
    assert train.AlreadyFinished("the run already finished").report() == 0
    assert capsys.readouterr() == ("the run already finished\n", "")


def test_a_claim_holds_the_folder_until_released_and_its_undo_leaves_nothing(tmp_path, capsys):
    run = RunFolder(tmp_path / "runs" / "a")
    claim = run.claim("the-run")
    assert run.mark()["run_id"] == "the-run" and (run.path / lock.NAME).is_file()
    with pytest.raises(lock.LockedError, match="is in use by another training"):
        RunFolder(run.path).claim("another")
    claim.undo()
    assert not (tmp_path / "runs").exists(), "the folders this start made go with it"

    claim = run.claim("the-run")
    claim.release()
    assert sorted(p.name for p in run.path.iterdir()) == [MARK], "released: the mark stays, the lock goes"
    assert capsys.readouterr().out == ""


def test_a_claim_of_a_folder_that_cannot_be_written_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(FolderError, match=f"^--out {blocker / 'run'} is not writable .*; choose another folder$"):
        RunFolder(blocker / "run").claim("x")
