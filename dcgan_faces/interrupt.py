"""Stop signals: Ctrl-C (SIGINT), SIGTERM (what a Colab disconnect sends) and SIGHUP (a closed terminal, a dropped
SSH connection), all handled alike.

While a command sets up (for example builds a cache), one unwinds like Ctrl-C, removing temporary files on the way,
and the command exits with the signal's own code, 128 + its number, as a stopped training does. While a training
runs, one is a request (StopRequest): the loop finishes its step and saves before it exits.

And how a stop is put to the user: in a terminal Ctrl-C and the same command again, in a notebook the cell's
interrupt and the cell again."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """A stop signal while setting up, or a third one while saving; args[0] is the signal's number. A
    BaseException, as KeyboardInterrupt is: a library's `except Exception` (tqdm's, around starting its monitor
    thread) must not swallow it."""


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Within: SIGTERM and SIGHUP raise Interrupted (Ctrl-C raises KeyboardInterrupt anyway)."""
    ttys = terminals()

    def unwind(signum, frame):
        if signum == signal.SIGHUP:
            _leave_terminal(ttys)
        raise Interrupted(signum)

    previous = _install(unwind, (signal.SIGTERM, signal.SIGHUP))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exit_code(stop: BaseException, doing: str) -> int:
    """Say in one line that `doing` was interrupted and nothing half-written is kept; 128 + the signal's number."""
    signum = stop.args[0] if isinstance(stop, Interrupted) else signal.SIGINT
    _say(f"\n{signal_name(signum)} while {doing}: nothing half-written is kept; {rerun()} again", sys.stderr)
    return 128 + signum


class StopRequest:
    """Turns the stop signals into a flag the training loop checks between steps. A second one while it finishes
    the step and saves does not abort the save; a third stops at once (Interrupted), without it."""

    def __init__(self):
        self.signal: int | None = None
        self.received = 0
        self._previous = {}
        self._terminals: tuple[int, ...] = ()

    def __enter__(self) -> StopRequest:
        self._terminals = terminals()
        self._previous = _install(self._handle, STOP_SIGNALS)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if signum == signal.SIGHUP:
            _leave_terminal(self._terminals)
        self.received += 1
        name = signal_name(signum)
        if self.received == 1:
            self.signal = signum
            _say(f"\n{name}: finishing this step, then saving a checkpoint...")
        elif self.received == 2:
            _say(f"\n{name}: saving, please wait (once more stops at once, without the save)")
        else:
            raise Interrupted(signum)


def _install(handler, signals: tuple[int, ...]) -> dict:
    """`handler` for `signals`; returns the handlers they had. A SIGHUP ignored (nohup) stays ignored: that training
    is meant to outlive its terminal."""
    return {sig: signal.signal(sig, handler) for sig in signals
            if not (sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN)}


def _say(text: str, stream=None) -> None:
    """Print, where a terminal that is gone (EIO) or a closed pipe cannot stop what follows."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=stream or sys.stdout, flush=True)


def terminals() -> tuple[int, ...]:
    """Which of stdout and stderr are a terminal (asked before a hang-up: after it they no longer say so)."""
    return tuple(descriptor for descriptor in (1, 2) if os.isatty(descriptor))


def _leave_terminal(descriptors: tuple[int, ...]) -> None:
    """After SIGHUP the terminal is gone and writing to it fails (EIO): what the stop still prints goes nowhere
    instead of failing the save."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        for descriptor in descriptors:
            os.dup2(null, descriptor)
        os.close(null)


def in_kernel() -> bool:
    """True inside a Jupyter kernel (Colab's included), where a cell's output can show images. IPython is never
    imported here unless the process has already loaded it: a terminal run is unchanged."""
    if "IPython" not in sys.modules:
        return False
    shell = sys.modules["IPython"].get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def rerun() -> str:
    """How to carry on after a stop, to be followed by "again": in a notebook its cell, in a terminal the command."""
    return "run this cell" if in_kernel() else "run the same command"


def how_to_stop() -> str:
    return ("interrupting this cell stops cleanly; running it again resumes" if in_kernel()
            else "Ctrl-C here stops cleanly; the same command resumes")


def signal_name(signum: int) -> str:
    """SIGINT in a notebook is its interrupt (Runtime → Interrupt execution); elsewhere the signal's own name."""
    return "interrupted" if signum == signal.SIGINT and in_kernel() else signal.Signals(signum).name
