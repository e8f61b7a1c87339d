"""experiments/recalibration_paired.py: a run judged as saved and recalibrated on the same draws."""

import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import compare_recipes  # noqa: E402
import recalibration_paired  # noqa: E402

from dcgan_faces.config import TrainConfig  # noqa: E402
from dcgan_faces.sampling import generate_images, latents  # noqa: E402
from dcgan_faces.trained_model import load_generator  # noqa: E402


def test_a_run_is_judged_from_its_averages_own_statistics_then_recalibrated_on_the_yardsticks_draws(tiny_run,
                                                                                                    tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert TrainConfig.load(run / "config.json").bn_recalibration == 16  # the default: shown recalibrated
    generator, config = recalibration_paired.average_as_trained(run)
    shown, _ = load_generator(run, log=lambda *_: None)  # generator.keras, saved recalibrated
    z = latents(config.seed_size, 8, seed=3)
    assert config.bn_recalibration == 0 and not np.allclose(generator(z, training=False), shown(z, training=False))
    saved = [w.copy() for w in generator.get_weights()]
    heldout = np.random.default_rng(5).integers(0, 256, (64, config.res, config.res, 3), dtype=np.uint8)
    split = compare_recipes.Split(train=heldout[:0], heldout=heldout, description="test")
    pairs = recalibration_paired.judged_pairs(generator, config, split, batches=2, draws=2, images=64)

    yardstick = compare_recipes.judge(generate_images(generator.predict_on_batch, latents(config.seed_size, 64,
                                                                                           seed=0)), split)
    assert [pair["draw"] for pair in pairs] == [0, 1]
    assert pairs[0]["as saved"] == yardstick["swd"]  # draw 0 is compare_recipes' own judgement
    assert all(pair["difference"] == pair["recalibrated"] - pair["as saved"] != 0 for pair in pairs)
    assert all(np.array_equal(a, b) for a, b in zip(saved, generator.get_weights()))  # the generator given back
