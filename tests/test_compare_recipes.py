"""experiments/compare_recipes.py judges candidates on held-out faces, at budgets counted in the notebook loop's
time, one result file per (candidate, seed) that a second run skips."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import draw_faces

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import compare_recipes  # noqa: E402


def test_the_last_files_by_name_are_held_out():
    images = np.arange(10)[:, None, None, None] * np.ones((1, 2, 2, 3), dtype=np.uint8)
    names = [f"{i:06d}.jpg" for i in range(1, 11)]
    split = compare_recipes.split_by_name(images, names, 3)
    assert split.train[:, 0, 0, 0].tolist() == list(range(7))
    assert split.heldout[:, 0, 0, 0].tolist() == [7, 8, 9]
    assert split.description == ("trained on the first 7 files by name (000001.jpg–000007.jpg), "
                                 "judged on the last 3 (000008.jpg–000010.jpg)")


def test_a_split_refuses_a_cache_that_skipped_files_or_a_holdout_that_leaves_nothing():
    images = np.zeros((4, 2, 2, 3), dtype=np.uint8)
    with pytest.raises(SystemExit, match="holds 4 images for 5 files"):
        compare_recipes.split_by_name(images, list("abcde"), 1)
    for holdout in (0, 4):
        with pytest.raises(SystemExit, match=f"--holdout {holdout}: give a number between 1 and 3"):
            compare_recipes.split_by_name(images, list("abcd"), holdout)


def test_equal_time_is_the_notebook_loops_iterations_times_the_speed_ratio():
    speed = {"ratio_to_notebook_loop": {"default": 1.874}}
    assert compare_recipes.budgets("default", 2000, speed) == {"equal_iterations": 2000, "equal_time": 3748}
    assert compare_recipes.budgets("default+lr3e-4", 2000, speed)["equal_time"] == 3748  # the same work
    with pytest.raises(SystemExit, match="no figure for notebook or any candidate doing the same work"):
        compare_recipes.budgets("notebook", 2000, speed)


@pytest.mark.slow
def test_speed_train_and_report_end_to_end_and_a_second_train_skips_finished_runs(tmp_path, capsys):
    pytest.importorskip("cv2")
    faces = draw_faces(tmp_path / "faces", count=44, size=24)
    common = ["--res", "16", "--data", str(faces), "--holdout", "8", "--cache-dir", str(tmp_path / "cache"),
              "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs"), "--candidates", "notebook", "default",
              "--seeds", "0"]
    compare_recipes.main(["speed", *common, "--rounds", "2"])
    speed = json.loads((tmp_path / "out/speed.json").read_text())
    assert set(speed["ratio_to_notebook_loop"]) == {"notebook loop", "notebook", "default"}
    assert speed["ratio_to_notebook_loop"]["notebook loop"] == 1.0

    compare_recipes.main(["train", *common, "--iterations", "2", "--eval-images", "8", "--face-images", "12"])
    result = json.loads((tmp_path / "out/results/default-seed0.json").read_text())
    assert result["budgets"]["equal_time"]["more_faces"]["images"] == 12
    equal_time = max(1, round(2 * speed["ratio_to_notebook_loop"]["default"]))
    assert {b: f["iterations"] for b, f in result["budgets"].items()} == {"equal_iterations": 2,
                                                                           "equal_time": equal_time}
    assert result["judged_on"].startswith("trained on the first 36 files") and result["eval_images"] == 8
    assert (tmp_path / "out/grids/default-seed0-equal_time.png").is_file()
    run = Path(result["run"])  # a user's run folder: the trainer's own command finds it finished
    from dcgan_faces import train
    from dcgan_faces.config import TrainConfig

    assert TrainConfig.load(run / "config.json").d_dropout == 0.25 and (run / "generator.keras").is_file()
    [images] = (tmp_path / "cache").glob("faces-train-16px-????????.npy")  # the training split, held-out faces left out
    assert len(np.load(images)) == 36
    flags = [*compare_recipes.candidate_flags("default", 0, 16), "--data", str(images), "--cache-dir",
             str(tmp_path / "cache"), "--out", str(run), "--steps", str(equal_time)]
    assert train.main(flags) == 0
    assert "already" in capsys.readouterr().out
    floor = json.loads((tmp_path / "out/floor.json").read_text())
    assert floor["images"] == 8 and floor["swd"] > 0 and floor["more_faces"]["images"] == 12

    written = (tmp_path / "out/results/default-seed0.json").stat().st_mtime_ns
    capsys.readouterr()
    compare_recipes.main(["train", *common, "--iterations", "2", "--eval-images", "8"])
    assert "default-seed0.json exists: skipped" in capsys.readouterr().err
    assert (tmp_path / "out/results/default-seed0.json").stat().st_mtime_ns == written

    compare_recipes.main(["report", "--res", "16", "--out", str(tmp_path / "out")])
    table = json.loads(capsys.readouterr().out)
    assert table["default"]["equal_time"]["iterations"] == equal_time
    assert table["default"]["equal_time"]["more_faces"]["face_rate"]["mean"] == \
        result["budgets"]["equal_time"]["more_faces"]["face_rate"]
    assert table["real training faces"]["swd"] == floor["swd"]
    assert (tmp_path / "out/equal_time.png").is_file()


@pytest.mark.slow
def test_a_curve_judges_one_run_at_each_point_and_a_second_call_goes_on_from_the_last(tmp_path):
    pytest.importorskip("cv2")
    from dcgan_faces.trained_model import model_iteration

    faces = draw_faces(tmp_path / "faces", count=44, size=24)

    def curve(out: str, *at: int) -> None:
        compare_recipes.main(["curve", "--res", "16", "--data", str(faces), "--holdout", "8", "--cache-dir",
                              str(tmp_path / "cache"), "--out", str(tmp_path / out), "--runs", str(tmp_path / "runs"),
                              "--candidates", "default", "--seeds", "1", "--eval-images", "8", "--face-images", "8",
                              "--at", *map(str, at)])

    curve("out", 2, 1)
    path = tmp_path / "out/curve-default-seed1.json"
    first = json.loads(path.read_text())
    assert [point["iterations"] for point in first["points"]] == [1, 2]
    assert (tmp_path / "out/grids/default-seed1-2.png").is_file()

    curve("out", 1, 2, 3)  # only the new point is trained and judged
    second = json.loads(path.read_text())
    assert second["points"][:2] == first["points"] and second["points"][2]["iterations"] == 3
    assert model_iteration(tmp_path / "runs/default-seed1") == 3
    with pytest.raises(SystemExit, match="at iteration 3, past 2"):  # a point the run has passed: refused
        curve("other", 2)


def test_every_candidate_trains_through_the_trainers_own_flags_with_its_own_settings():
    import dataclasses

    from dcgan_faces import train
    from dcgan_faces.config import TrainConfig, recipe_settings

    for name in compare_recipes.CANDIDATES:
        args = train.parser().parse_args(compare_recipes.candidate_flags(name, 3, 48))
        parsed = TrainConfig(**recipe_settings(train.given_settings(args)))
        wanted = compare_recipes.candidate_config(name, 3, 48, "")
        assert parsed == dataclasses.replace(wanted, data=parsed.data), name


def test_the_face_rate_of_more_faces_extends_the_judged_faces_which_stay_as_they_were(tmp_path, monkeypatch):
    import dcgan_faces.metrics
    from dcgan_faces.sampling import generate_images, latents

    def bright_share(images):  # stands in for the Haar cascade: a rate that depends on every face
        return float(np.mean(np.asarray(images).mean(axis=(1, 2, 3)) > 127))

    def generate(z):  # a face's brightness follows its latent
        return np.tanh(z[:, :1, None, None] * np.ones((1, 16, 16, 3), dtype=np.float32))

    monkeypatch.setattr(dcgan_faces.metrics, "face_hit_rate", bright_share)
    heldout = np.random.default_rng(0).integers(0, 256, (20, 16, 16, 3), dtype=np.uint8)
    split = compare_recipes.Split(heldout, heldout, "test")
    figures = compare_recipes.judge_and_show(generate, 5, 8, 200, split, tmp_path / "grid.png")
    assert figures["face_rate"] == bright_share(generate_images(generate, latents(5, 8, seed=0)))
    assert figures["more_faces"] == {"images": 200,
                                     "face_rate": bright_share(generate_images(generate, latents(5, 200, seed=0)))}
    assert figures["more_faces"]["face_rate"] != figures["face_rate"]  # not the same 8 faces again
    assert "more_faces" not in compare_recipes.judge_and_show(generate, 5, 8, 8, split, tmp_path / "grid.png")


def test_an_earlier_floor_gains_the_face_rate_of_more_real_faces_and_keeps_its_figures(tmp_path, monkeypatch):
    import dcgan_faces.metrics

    monkeypatch.setattr(dcgan_faces.metrics, "face_hit_rate", lambda images: len(images) / 100)
    train = np.zeros((30, 16, 16, 3), dtype=np.uint8)
    split = compare_recipes.Split(train, train[:10], "test")
    path = tmp_path / "floor.json"
    earlier = {"judged_on": "earlier", "images": 10, "swd": 9.5, "face_rate": 0.9}
    path.write_text(json.dumps(earlier))
    compare_recipes.write_floor(path, split, compare_recipes.parser().parse_args(["train", "--face-images", "50"]))
    assert json.loads(path.read_text()) == {**earlier, "more_faces": {"images": 30, "face_rate": 0.3}}
    written = path.stat().st_mtime_ns
    compare_recipes.write_floor(path, split, compare_recipes.parser().parse_args(["train", "--face-images", "50"]))
    assert path.stat().st_mtime_ns == written  # nothing new: not written again


def test_candidates_that_do_the_same_work_share_one_speed_figure():
    seconds = {"notebook loop": [1.0, 1.0, 1.0], "default": [0.5, 0.6, 0.7], "default+lr3e-4": [0.4, 0.45, 0.5],
               "default+smooth": [0.8, 0.9, 1.0], "notebook": [0.3, 0.3, 0.3], "default+ramp3": [0.6],
               "default+ddrop0.5": [0.6], "default+ddrop0": [0.2, 0.2], "default+r1_0.1": [0.7, 0.7],
               "default+r1_10": [0.8], "default+ddrop0+beta2_0.99": [0.2], "default+ddrop0+hinge": [0.2],
               "default+ddrop0+sn": [0.25], "default+gf128+ddrop0": [0.3], "default+gf128+ddrop0+mirror": [0.5],
               "default+gf128+ddrop0+bnr16+translation": [0.42],
               "default+gf128+ddrop0+bnr16+translation0.0625": [0.44, 0.46]}
    median = compare_recipes.pooled_medians(seconds)
    assert median["default"] == median["default+lr3e-4"] == median["default+smooth"] == 0.6
    assert median["default+ramp3"] == median["default+ddrop0.5"] == 0.6  # another ramp, another dropout rate
    assert median["notebook"] == 0.3 and median["notebook loop"] == 1.0  # no moving average: other work
    assert median["default+ddrop0"] == median["default+ddrop0+beta2_0.99"] == 0.2  # no dropout layers: other work
    assert median["default+ddrop0+hinge"] == 0.2 and median["default+ddrop0+sn"] == 0.25  # a loss is no work; SN is
    assert median["default+r1_0.1"] == median["default+r1_10"] == 0.7  # R1's extra steps: other work, any weight
    assert median["default+gf128+ddrop0"] == median["default+gf128+ddrop0+mirror"] == 0.4  # a flip is no work
    translations = ("default+gf128+ddrop0+bnr16+translation", "default+gf128+ddrop0+bnr16+translation0.0625")
    assert median[translations[0]] == median[translations[1]] == 0.44  # a shorter shift is no less work


def test_a_speed_round_holds_each_candidates_lazy_r1_step_a_whole_number_of_times():
    every = compare_recipes.candidate_config("default+r1_1", 0, 32, "").r1_every
    assert every > 1
    assert compare_recipes.steps_per_round(["default", "default+bf16+gf128"]) == 1
    assert compare_recipes.steps_per_round(["default", "default+r1_0.1", "default+bf16+gf128+r1_10"]) == every


def test_a_new_speed_measurement_adds_its_contestants_and_keeps_the_others_figures():
    def measurement(ratios: dict) -> dict:
        return {"res": 32, "rounds": 30, "seconds_per_step": {name: 1 / r for name, r in ratios.items()},
                "ratio_to_notebook_loop": ratios, "rounds_seconds": {name: [1 / r] for name, r in ratios.items()}}

    before = measurement({"notebook loop": 1.0, "notebook": 1.7, "default": 1.6})
    merged = compare_recipes.merged_speed(before, measurement({"notebook loop": 1.0, "default+bf16": 2.1}))
    assert merged["ratio_to_notebook_loop"] == {"notebook": 1.7, "default": 1.6, "notebook loop": 1.0,
                                                "default+bf16": 2.1}
    assert merged["earlier_measurements"] == [{"rounds": 30, "seconds_per_step": before["seconds_per_step"]}]
    with pytest.raises(SystemExit, match="speed.json is for 32 px, this measurement for 64 px"):
        compare_recipes.merged_speed(before, {**measurement({"notebook loop": 1.0}), "res": 64})


def test_bfloat16_candidates_are_refused_on_a_cpu_that_would_emulate_bfloat16(tmp_path):
    plain, capable = tmp_path / "plain", tmp_path / "capable"
    plain.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f\n")
    capable.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16\n")
    with pytest.raises(SystemExit, match=r"default\+bf16\+gf128: this CPU has no bfloat16 instructions"):
        compare_recipes.refuse_emulated_bfloat16(["default", "default+bf16+gf128"], plain)
    compare_recipes.refuse_emulated_bfloat16(["default", "default+gf128"], plain)
    compare_recipes.refuse_emulated_bfloat16(["default+bf16+gf128"], capable)


def test_the_report_keeps_the_face_rate_of_more_faces_to_four_digits():
    summarise = compare_recipes.summarise
    equal_time = {"iterations": 5, "swd": summarise([1.0, 2.0]), "face_rate": summarise([0.93, 0.94]),
                  "more_faces": {"images": 10000, "face_rate": summarise([0.9347, 0.9391], 4)}}
    row = {"speed_vs_notebook_loop": None, "seeds": [0, 1], "equal_time": equal_time}
    text = compare_recipes.markdown({"default+bf16": row, compare_recipes.REAL: {"swd": 9.0, "face_rate": 0.95}}, 32)
    assert "0.9369 (0.9347–0.9391) of 10,000" in text


def test_the_searchs_default_keeps_the_notebooks_dropout_and_width_and_the_table_marks_what_train_trains():
    old = compare_recipes.candidate_config("default", 0, 32, "")
    assert (old.d_dropout, old.g_filters) == (0.25, 256)  # old results keep their meaning
    assert compare_recipes.candidate_config("default+gf128+ddrop0+bnr16", 0, 64, "").augment == ""  # at 64 px too
    small, large = "default+gf128+ddrop0+bnr16", "default+gf128+ddrop0+bnr16+translation0.0625"
    assert compare_recipes.is_default(small, 32) and compare_recipes.is_default(large, 64)
    assert not compare_recipes.is_default(large, 32) and not compare_recipes.is_default(small, 64)
    assert not any(compare_recipes.is_default(name, res) for res in (32, 64) for name in (
        "default", "default+ddrop0", "default+gf128+ddrop0", "default+gf128+ddrop0+bnr16+translation", "notebook"))
    full_shift = compare_recipes.candidate_config("default+gf128+ddrop0+bnr16+translation", 0, 64, "")
    assert (full_shift.augment, full_shift.augment_shift) == ("translation", 0.125)  # not the recipe's 0.0625
