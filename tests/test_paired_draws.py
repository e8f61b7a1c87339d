"""experiments/paired_draws.py: a run's checkpoint judged on several draws and paired with the default's runs."""

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import paired_draws  # noqa: E402

from dcgan_faces.sampling import latents  # noqa: E402
from dcgan_faces.trained_model import load_generator  # noqa: E402


def faces_of(generator, config) -> np.ndarray:
    return np.asarray(generator.predict_on_batch(latents(config.seed_size, 4, seed=0)), dtype=np.float32)


def test_the_generator_at_an_iteration_is_that_checkpoints_and_the_run_is_left_as_it_was(tiny_run, tmp_path):
    before = sorted((p.relative_to(tiny_run), p.stat().st_mtime_ns) for p in tiny_run.rglob("*"))
    newest, config = paired_draws.generator_at(tiny_run, 4, tmp_path / "a")
    earlier, _ = paired_draws.generator_at(tiny_run, 2, tmp_path / "b")
    saved, _ = load_generator(tiny_run)
    np.testing.assert_allclose(faces_of(newest, config), faces_of(saved, config), atol=1e-5)
    assert not np.allclose(faces_of(earlier, config), faces_of(newest, config), atol=1e-3)
    assert sorted((p.relative_to(tiny_run), p.stat().st_mtime_ns) for p in tiny_run.rglob("*")) == before


def test_an_iteration_without_a_checkpoint_is_refused_naming_the_run_and_what_it_has(tiny_run, tmp_path):
    with pytest.raises(SystemExit, match=r"no checkpoint at iteration 3 \(has ckpt-00000002.npz, ckpt-00000004.npz\)"):
        paired_draws.generator_at(tiny_run, 3, tmp_path)
