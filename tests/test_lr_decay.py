"""experiments/lr_decay.py: the default's run with both learning rates decayed over the end of its budget, judged
and paired draw by draw with the default's own run."""

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import draw_faces

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import compare_recipes  # noqa: E402
import lr_decay  # noqa: E402

from dcgan_faces import train  # noqa: E402
from dcgan_faces.trained_model import load_generator  # noqa: E402


def test_the_rates_fall_linearly_over_the_last_fraction_and_the_last_step_still_moves():
    factors = [lr_decay.rate_factor(k, 8, 0.5) for k in range(8)]
    assert factors == [1, 1, 1, 1, 1, 0.75, 0.5, 0.25]
    assert lr_decay.rate_factor(0, 10, 1.0) == 1 and lr_decay.rate_factor(9, 10, 1.0) == 0.1


def test_the_baseline_is_the_default_runs_recalibrated_draws_of_the_same_seed(tmp_path):
    rows = [{"run": f"default-seed{seed}", "draw": draw, "as saved": 9.0, "recalibrated": 10.0 * seed + draw}
            for seed in (1, 11) for draw in (0, 1)] + [{"runs": 2, "pairs": 4}]  # the summary row that ends the file
    path = tmp_path / "paired.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert lr_decay.baseline_draws(path, 1, 2) == [10.0, 11.0]
    assert lr_decay.baseline_draws(path, 1, 3) is None  # a draw missing: nothing to pair with
    assert lr_decay.baseline_draws(tmp_path / "absent.jsonl", 1, 2) is None
    assert lr_decay.paired([9.0, 12.0], [10.0, 11.0]) == {"baseline_draws": [10.0, 11.0], "differences": [-1.0, 1.0],
                                                          "mean_difference": 0.0, "lower_on": 1}


@pytest.mark.slow
def test_a_decayed_run_ends_at_the_last_steps_rate_and_differs_from_the_default(tmp_path):
    pytest.importorskip("cv2")
    faces = draw_faces(tmp_path / "faces", count=44, size=24)
    name, cache = "default+gf128+ddrop0+bnr16", tmp_path / "cache"
    baseline = tmp_path / "paired.jsonl"
    baseline.write_text("".join(json.dumps({"run": f"{name}-seed1", "draw": d, "recalibrated": 50.0}) + "\n"
                                for d in (0, 1)))
    flags = ["--res", "16", "--data", str(faces), "--holdout", "8", "--cache-dir", str(cache), "--eval-images", "8",
             "--face-images", "8", "--at", "4", "--decay", "0.5", "--seed", "1", "--candidate", name, "--draws", "2",
             "--baseline", str(baseline), "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")]
    result = lr_decay.main(flags)

    lr = compare_recipes.candidate_config(name, 1, 16, str(faces)).lr
    assert result["final_learning_rates"] == pytest.approx([lr / 2, lr / 2])  # the step from 3 to 4: 1/2
    assert len(result["swd_draws"]) == 2 and result["swd_draws"][0] == result["swd"]
    assert result["paired_with_default"]["baseline_draws"] == [50.0, 50.0]
    assert json.loads((tmp_path / "out/lr-decay0.5-seed1.json").read_text()) == result
    assert (tmp_path / "out/grids/default+gf128+ddrop0+bnr16+lrdecay0.5-seed1-4.png").is_file()

    # without its result file, the finished run is judged again as it is, not trained again
    run = tmp_path / "runs" / f"{name}+lrdecay0.5-seed1"
    written = {path: path.stat().st_mtime_ns for path in (run / "checkpoints").iterdir()}
    (tmp_path / "out/lr-decay0.5-seed1.json").unlink()
    again = lr_decay.main(flags)
    assert again == result
    assert {path: path.stat().st_mtime_ns for path in (run / "checkpoints").iterdir()} == written

    # the default trained alone for the same 4 iterations saves another generator
    images = next(cache.glob("*-train-16px-*.npy"))
    assert train.main([*compare_recipes.candidate_flags(name, 1, 16), "--data", str(images), "--cache-dir",
                       str(cache), "--out", str(tmp_path / "alone"), "--steps", "4", "--save-every", "4"]) == 0
    plain, _ = load_generator(tmp_path / "alone", log=lambda *_: None)
    decayed, _ = load_generator(run, log=lambda *_: None)
    assert any((a != b).any() for a, b in zip(plain.get_weights(), decayed.get_weights(), strict=True))
