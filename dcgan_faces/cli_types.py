"""Argument types shared by the command-line tools: bad values fail at parse time with exit code 2."""

from __future__ import annotations

import argparse
import math

from dcgan_faces.config import parse_policy, upsampling_plan


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


def _from_zero_below(text: str, upper: float, complaint: str) -> float:
    value = float(text)
    if not 0 <= value < upper:
        raise argparse.ArgumentTypeError(complaint.format(text=text))
    return value


def fraction(text: str) -> float:
    return _from_zero_below(text, 0.5, "must be from 0 up to 0.5, got {text}")


def resolution(text: str) -> int:
    value = int(text)
    try:
        upsampling_plan(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix(f"--res {value} ")) from None
    return value


def ema_decay(text: str) -> float:
    return _from_zero_below(text, 1.0, "{text} is not in [0, 1): use e.g. 0.999, or 0 for no average")


def augment_policy(text: str) -> str:
    if text == "none":
        return ""
    try:
        return ",".join(parse_policy(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--augment: ")) from None
