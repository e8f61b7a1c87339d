"""Argument types and the parser shared by the command-line tools: bad values fail at parse time, in one line.

config.py declares every training setting's flag with these types; the two types that check a setting's
own rules (--res, --augment) live there, beside those rules.
"""

from __future__ import annotations

import argparse
import math
import sys

SEED_LIMIT = 2**32  # NumPy and Keras seeds are unsigned 32-bit integers
MAX_RES = 1024  # beyond this a generator of this family does not fit in memory anyway
MIN_EVAL_IMAGES = 2  # an evaluation compares sets of at least this many real and generated images
# Real images for an evaluation's real-vs-real SWD floor (two halves of half as many). From fewer, the floor is
# mostly the luck of the draw: on the demo faces at 32 px it falls from 240 (1 vs 1 image) and 104 (10 vs 10) to
# 63 (25 vs 25) and 37 (128 vs 128).
MIN_FLOOR_IMAGES = 50


class CommandError(Exception):
    """What stops a command before its work: one line naming the flag or path and what to do, and the command's
    exit code (2: bad input, or a refusal that loses nothing)."""

    exit_code = 2

    def report(self) -> int:
        """Say it (an error on stderr; with exit code 0, on stdout) and return the exit code."""
        if self.exit_code:
            print(f"error: {self}", file=sys.stderr)
        else:
            print(self)
        return self.exit_code


class UsageError(CommandError):
    """Bad input: one line naming the flag or path and what to do."""


class Parser(argparse.ArgumentParser):
    """argparse for a tool of the package: --help opens with what it does and an example (the usage comes
    after), under the name the user typed, and a bad flag is one line (the error and where to look).

    `doc` is the tool module's docstring; "python -m MODULE" in it is shown as `prog` (e.g. "dcgan-faces
    train" when the installed command started the tool).
    """

    def __init__(self, module: str, doc: str, prog: str | None = None, usage: str = "%(prog)s [options]",
                 **kwargs):
        typed = f"python -m {module}"
        prog = prog or typed
        super().__init__(prog=prog, description=doc.replace(typed, prog), usage=usage,
                         formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)

    def format_help(self) -> str:
        formatter = self._get_formatter()
        formatter.add_text(self.description)
        formatter.add_usage(self.usage, self._actions, self._mutually_exclusive_groups)
        for group in self._action_groups:
            formatter.start_section(group.title)
            formatter.add_text(group.description)
            formatter.add_arguments(group._group_actions)
            formatter.end_section()
        formatter.add_text(self.epilog)
        return formatter.format_help()

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def evaluation_images(text: str) -> int:
    value = int(text)
    if value < MIN_EVAL_IMAGES:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_EVAL_IMAGES} (an evaluation compares two sets of "
                                         f"images), got {text}")
    return value


def seed(text: str) -> int:
    value = int(text)
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {SEED_LIMIT - 1}, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _from_zero_below(text: str, upper: float, complaint: str) -> float:
    value = float(text)
    if not 0 <= value < upper:
        raise argparse.ArgumentTypeError(complaint.format(text=text))
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive number, got {text}")
    return value


def fraction(text: str) -> float:
    return _from_zero_below(text, 0.5, "must be from 0 up to 0.5, got {text}")


def shift(text: str) -> float:
    value = float(text)
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 0.5 (a share of the image's size), got {text}")
    return value


def beta(text: str) -> float:
    return _from_zero_below(text, 1.0, "{text} is not in [0, 1): Adam's betas are decays (the notebook's: 0.5 and "
                            "0.999)")


def dropout(text: str) -> float:
    return _from_zero_below(text, 1.0, "{text} is not in [0, 1): a share of activations dropped (0: none)")


def ema_decay(text: str) -> float:
    return _from_zero_below(text, 1.0, "{text} is not in [0, 1): use e.g. 0.999, or 0 for no average")


def ema_ramp(text: str) -> float:
    value = float(text)
    if not 1 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number above 1, got {text}: the average spans about the "
                                         "last 1/(ramp - 1) of the run")
    return value
