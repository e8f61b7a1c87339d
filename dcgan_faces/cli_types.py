"""Argument types shared by the command-line tools: bad values fail at parse time with exit code 2."""

from __future__ import annotations

import argparse
import math

from dcgan_faces.config import upsampling_plan


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


def positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 0.5:
        raise argparse.ArgumentTypeError(f"must be from 0 up to 0.5, got {text}")
    return value


def resolution(text: str) -> int:
    value = int(text)
    try:
        upsampling_plan(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix(f"--res {value} ")) from None
    return value
