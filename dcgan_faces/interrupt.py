"""SIGTERM while a command sets up (for example builds a cache) unwinds like Ctrl-C, removing temporary files on
the way, and the command exits with the signal's own code, 128 + its number, as a stopped training does. And how
a stop is put to the user: in a terminal Ctrl-C and the same command again, in a notebook the cell's interrupt
and the cell again."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator


class Interrupted(BaseException):
    """SIGTERM while setting up; args[0] is the signal's number. A BaseException, as KeyboardInterrupt is: a
    library's `except Exception` (tqdm's, around starting its monitor thread) must not swallow it."""


def _raise(signum, frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Within: SIGTERM raises Interrupted (Ctrl-C raises KeyboardInterrupt anyway)."""
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_code(stop: BaseException, doing: str) -> int:
    """Say in one line that `doing` was interrupted and nothing half-written is kept; 128 + the signal's number."""
    signum = stop.args[0] if isinstance(stop, Interrupted) else signal.SIGINT
    print(f"\n{signal_name(signum)} while {doing}: nothing half-written is kept; {rerun()} again", file=sys.stderr)
    return 128 + signum


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
