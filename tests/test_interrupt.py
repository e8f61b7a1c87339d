"""SIGTERM while a command sets up unwinds through code that catches every Exception."""

import os
import signal
import time

import pytest

from dcgan_faces.interrupt import Interrupted, exit_code, sigterm_unwinds


def test_sigterm_is_not_swallowed_by_a_library_that_catches_every_exception():
    with pytest.raises(Interrupted) as stopped, sigterm_unwinds():
        try:  # what tqdm does around starting its monitor thread
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        except Exception:
            pass
    assert stopped.value.args[0] == signal.SIGTERM


def test_the_exit_code_is_the_signals_own(capsys):
    assert exit_code(Interrupted(signal.SIGTERM), "building the cache") == 143
    assert exit_code(KeyboardInterrupt(), "starting") == 130
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert [line.split(" while ")[0] for line in lines] == ["SIGTERM", "SIGINT"]
    assert all("nothing half-written is kept" in line for line in lines)
