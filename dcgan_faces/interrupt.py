"""SIGTERM while a command sets up (for example builds a cache) unwinds like Ctrl-C, removing temporary files on
the way, and the command exits with the signal's own code, 128 + its number, as a stopped training does."""

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
    print(f"\n{signal.Signals(signum).name} while {doing}: nothing half-written is kept; run the same command again",
          file=sys.stderr)
    return 128 + signum
