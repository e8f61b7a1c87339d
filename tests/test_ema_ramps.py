"""experiments/ema_ramps.py: one run trains G once and judges one average per ramp, each the average that a run
with that --ema-ramp saves."""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import draw_faces

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import compare_recipes  # noqa: E402
import ema_ramps  # noqa: E402

from dcgan_faces import train  # noqa: E402
from dcgan_faces.trained_model import load_generator  # noqa: E402


@pytest.mark.slow
def test_each_ramps_average_is_the_one_a_run_with_that_ramp_saves_and_is_judged_recalibrated(tmp_path):
    pytest.importorskip("cv2")
    faces = draw_faces(tmp_path / "faces", count=44, size=24)
    common = ["--res", "16", "--data", str(faces), "--holdout", "8", "--cache-dir", str(tmp_path / "cache"),
              "--eval-images", "8", "--face-images", "8", "--at", "3", "--seed", "1"]
    result = ema_ramps.main([*common, "--candidate", "default+gf128+ddrop0+bnr16", "--ramps", "3", "--draws", "2",
                             "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")])

    assert set(result["ramps"]) == {"3", "10"} and result["bn_recalibration"] == 16
    assert result["generator_keras_swd"] == result["ramps"]["10"]["swd"]  # ramp 10's is the run's own, as saved
    assert result["ramps"]["3"]["swd"] != result["ramps"]["10"]["swd"]
    assert all(len(figures["swd_draws"]) == 2 for figures in result["ramps"].values())
    assert result["paired_with_ramp_10"]["10"] == {"mean_difference": 0.0, "lower_on": 0, "draws": 2}
    assert json.loads((tmp_path / "out/ramps-default+gf128+ddrop0+bnr16-seed1.json").read_text()) == result
    assert (tmp_path / "out/grids/default+gf128+ddrop0+bnr16+ramp3-seed1-3.png").is_file()

    # the same run trained alone with --ema-ramp 3 saves the generator that ramp 3 was judged as
    alone, cache = tmp_path / "alone", tmp_path / "cache"
    images = next(cache.glob("*-train-16px-*.npy"))
    flags = compare_recipes.candidate_flags("default+gf128+ddrop0+bnr16", 1, 16)
    assert train.main([*flags, "--ema-ramp", "3", "--data", str(images), "--cache-dir", str(cache),
                       "--out", str(alone), "--steps", "3", "--save-every", "3"]) == 0
    generator, config = load_generator(alone, log=lambda *_: None)
    split = compare_recipes.open_split(SimpleNamespace(data=faces, holdout=8, cache_dir=cache, res=16))
    assert ema_ramps.swd_on_draw(generator.predict_on_batch, config.seed_size, split, 8, 0) == \
        result["ramps"]["3"]["swd"]
