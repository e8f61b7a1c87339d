"""Tests for dcgan_faces.evaluate: SWD and face rate of the tiny run's generator, as JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("cv2")

from dcgan_faces.cli_types import MIN_FLOOR_IMAGES  # noqa: E402
from dcgan_faces.evaluate import main  # noqa: E402
from tests.conftest import TINY_RES as RES  # noqa: E402
from tests.conftest import TINY_STEPS as STEPS  # noqa: E402

KEYS = {"swd", "swd_levels", "swd_real_floor", "face_rate_fake", "face_rate_real", "n", "model", "real", "iteration"}


def finite_numbers(result: dict) -> bool:
    """Every figure finite; the real-vs-real floor absent (None) as from fewer than MIN_FLOOR_IMAGES images."""
    assert result["swd_real_floor"] is None and result["n"] < MIN_FLOOR_IMAGES
    numbers = [v for k, v in result.items() if k not in ("model", "real", "iteration", "swd_levels", "swd_real_floor")]
    return all(math.isfinite(v) for v in [*numbers, *result["swd_levels"].values()])


@pytest.mark.slow
def test_run_folder_evaluated_against_its_own_data(tiny_run, tmp_path, capsys):
    assert main(["--model", str(tiny_run), "--n", "8", "--cache-dir", str(tmp_path / "cache")]) == 0
    result = json.loads(capsys.readouterr().out)  # progress lines go to stderr: stdout is pure JSON
    assert set(result) == KEYS and finite_numbers(result)
    assert result["n"] == 8 and result["iteration"] == STEPS and result["real"] == str(tiny_run.parent / "faces")


def test_npy_cache_as_real_images(tiny_run, capsys):
    cache = next((tiny_run.parent / "cache").glob(f"faces-*_{RES}_{RES}.npy"))
    assert main(["--model", str(tiny_run / "generator.keras"), "--real", str(cache)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == KEYS and finite_numbers(result)
    assert result["n"] == 24 and result["iteration"] is None  # fewer real images than --n; a bare model file


@pytest.mark.parametrize("args, flag", [
    (["--model", "no/such/run", "--real", "x"], "--model"),
    (["--real", "no/such/folder"], "--real"),
    (["--real", "WRONG.npy"], "--real"),
])
def test_bad_input_is_one_line_and_exit_2(args, flag, tiny_run, tmp_path, capsys):
    np.save(tmp_path / "WRONG.npy", np.zeros((4, 16, 16, 3), np.uint8))
    args = [str(tmp_path / a) if a == "WRONG.npy" else a for a in args]
    if "--model" not in args:
        args = ["--model", str(tiny_run), *args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and flag in err
