"""`python -m dcgan_faces.train` end to end on tiny data: outputs, resume, bad flags, signals."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from dcgan_faces import train

TINY = ["--res", "32", "--batch-size", "8", "--save-every", "2"]


def run_train(face_folder, tmp_path, *extra):
    args = [*TINY, "--data", str(face_folder), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run")]
    return train.main([*args, *extra])


def test_help_says_what_an_epoch_is_and_how_to_get_the_notebook_schedule(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--res", "--data", "--cache-dir", "--out", "--epochs", "--steps", "--batch-size", "--save-every",
                 "--seed-size", "--seed", "--lr", "--beta1", "--fresh", "--resume"):
        assert flag in text
    assert "one pass over the cached images" in text and "SAVE_FREQ" in text


@pytest.mark.slow
def test_a_short_run_writes_grids_metrics_config_and_a_reloadable_generator(face_folder, tmp_path):
    assert run_train(face_folder, tmp_path, "--steps", "4") == 0
    run = tmp_path / "run"
    grids = sorted((run / "previews").glob("iter-*.png"))
    assert [g.name for g in grids] == ["iter-00000000.png", "iter-00000002.png", "iter-00000004.png"]
    margin, res = 16, 32
    assert Image.open(grids[-1]).size == (margin + 7 * (res + margin), margin + 4 * (res + margin))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4]
    assert set(rows[0]) >= {"iteration", "epoch", "d_loss", "d_acc", "g_loss", "g_acc", "seconds"}
    assert rows[-1]["epoch"] == pytest.approx(4 * 8 / 24, abs=1e-3)
    config = json.loads((run / "config.json").read_text())
    assert config["res"] == 32 and config["steps"] == 4 and config["data"] == str(face_folder.resolve())
    generator = keras.models.load_model(run / "generator.keras")
    assert generator.output.shape == (None, 32, 32, 3)


@pytest.mark.slow
def test_same_seed_previews_the_same_faces(face_folder, tmp_path):
    assert run_train(face_folder, tmp_path / "a", "--steps", "1", "--seed", "3") == 0
    assert run_train(face_folder, tmp_path / "b", "--steps", "1", "--seed", "3") == 0
    first = np.asarray(Image.open(tmp_path / "a/run/previews/iter-00000000.png"))
    np.testing.assert_array_equal(first, np.asarray(Image.open(tmp_path / "b/run/previews/iter-00000000.png")))


@pytest.mark.slow
def test_rerunning_resumes_and_equals_an_uninterrupted_run(face_folder, tmp_path, capsys):
    assert run_train(face_folder, tmp_path / "once", "--steps", "6") == 0
    assert run_train(face_folder, tmp_path / "twice", "--steps", "4") == 0
    capsys.readouterr()
    assert run_train(face_folder, tmp_path / "twice", "--steps", "6") == 0
    out = capsys.readouterr().out
    assert "resuming from iteration 4" in out and "steps 4 → 6" in out
    once, twice = tmp_path / "once/run", tmp_path / "twice/run"
    rows = [json.loads(line)["iteration"] for line in (twice / "metrics.jsonl").read_text().splitlines()]
    assert rows == [1, 2, 3, 4, 5, 6]
    assert (twice / "previews/iter-00000006.png").exists()
    for a, b in zip(keras.models.load_model(once / "generator.keras").weights,
                    keras.models.load_model(twice / "generator.keras").weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.slow
def test_conflicting_settings_on_resume_are_refused(face_folder, tmp_path, capsys):
    assert run_train(face_folder, tmp_path, "--steps", "2") == 0
    capsys.readouterr()
    assert run_train(face_folder, tmp_path, "--steps", "4", "--seed-size", "50") == 2
    error = capsys.readouterr().err
    assert "--seed-size 50" in error and "(the run has 100)" in error and "--fresh" in error


@pytest.mark.slow
def test_fresh_moves_the_earlier_run_aside_under_its_lock(face_folder, tmp_path, monkeypatch):
    from dcgan_faces import lock
    from dcgan_faces.trainer import Trainer

    assert run_train(face_folder, tmp_path, "--steps", "2") == 0
    held, real_step = [], Trainer.step

    def step(self):  # while the new run trains, its own folder is locked
        held.append((tmp_path / "run" / lock.NAME).exists())
        return real_step(self)

    monkeypatch.setattr(Trainer, "step", step)
    assert run_train(face_folder, tmp_path, "--steps", "2", "--fresh") == 0
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("run-")]
    assert len(moved) == 1 and (moved[0] / "generator.keras").exists()
    assert held == [True, True] and not (moved[0] / lock.NAME).exists() and not (tmp_path / "run" / lock.NAME).exists()


@pytest.mark.slow
def test_damaged_newest_checkpoint_falls_back_to_the_previous_one_and_is_set_aside(face_folder, tmp_path, capsys):
    assert run_train(face_folder, tmp_path, "--steps", "4") == 0
    newest = tmp_path / "run/checkpoints/ckpt-00000004.npz"
    newest.write_bytes(newest.read_bytes()[:1000])
    capsys.readouterr()
    assert run_train(face_folder, tmp_path, "--steps", "4") == 0
    out = capsys.readouterr().out
    assert "ckpt-00000004.npz is damaged" in out and "resuming from iteration 2" in out
    assert (tmp_path / "run/checkpoints/damaged/ckpt-00000004.npz").stat().st_size == 1000, "kept, not deleted"
    assert sorted(p.name for p in (tmp_path / "run/checkpoints").glob("ckpt-*.npz")) == ["ckpt-00000002.npz",
                                                                                         "ckpt-00000004.npz"]


@pytest.mark.parametrize("flags, message", [
    (["--res", "30"], "--res"),
    (["--res", "100000"], "at most 1024"),
    (["--steps", "0"], "--steps"),
    (["--batch-size", "-3"], "--batch-size"),
    (["--lr", "nan"], "--lr"),
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2**32)], "--seed"),
    (["--beta1", "1.0"], "betas are decays"),
    (["--beta2", "1.0"], "--beta2"),
])
def test_impossible_values_fail_fast_in_one_line_with_exit_code_2(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(flags)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("error: ") and "--help" in err


def test_setup_errors_are_one_line_with_exit_code_2(face_folder, tmp_path, capsys):
    assert run_train(face_folder, tmp_path, "--batch-size", "64") == 2
    error = capsys.readouterr().err
    assert "--batch-size 64 is larger than folder" in error and "(24 image files); use at most 24" in error
    assert train.main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")]) == 2
    error = capsys.readouterr().err
    assert "--data" in error and "no such folder" in error and error.count("\n") == 1


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_that_resumes(face_folder, tmp_path, capsys):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "dcgan_faces.train", *TINY, "--steps", "100000", "--data", str(face_folder),
               "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while not list(out.glob("checkpoints/ckpt-*.npz")) and time.monotonic() < deadline:
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, output
    checkpoints = sorted((out / "checkpoints").glob("ckpt-*.npz"))
    stopped_at = int(checkpoints[-1].stem.split("-")[1])
    assert stopped_at >= 2 and f"stopped at iteration {stopped_at:,}" in output
    assert (out / "generator.keras").exists()
    capsys.readouterr()
    assert run_train(face_folder, tmp_path, "--steps", str(stopped_at + 1)) == 0
    assert f"resuming from iteration {stopped_at:,}" in capsys.readouterr().out


@pytest.mark.slow
def test_training_draws_plots_logs_tensorboard_and_evaluates_when_asked(face_folder, tmp_path):
    assert run_train(face_folder, tmp_path, "--steps", "4", "--eval-every", "2", "--eval-images", "8") == 0
    run = tmp_path / "run"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evaluated = [row["iteration"] for row in rows if "swd" in row]
    assert evaluated == [2, 4]
    assert all(np.isfinite(row["swd"]) and 0 <= row["face_rate_fake"] <= 1 for row in rows if "swd" in row)
    plot = np.asarray(Image.open(run / "plots.png").convert("RGB")).reshape(-1, 3).astype(int)
    for colour in ((31, 119, 180), (255, 127, 14)):  # matplotlib's first two line colours: D's and G's curves
        assert (np.abs(plot - colour).sum(axis=1) < 30).sum() > 50, f"no curve drawn in {colour}"
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_epochs_extend_a_resumed_run(face_folder, tmp_path, capsys):
    assert run_train(face_folder, tmp_path, "--epochs", "1") == 0  # 24 images, batch 8: 3 iterations an epoch
    capsys.readouterr()
    assert run_train(face_folder, tmp_path, "--epochs", "2") == 0
    out = capsys.readouterr().out
    assert "steps 3 → 6" in out and "resuming from iteration 3" in out and "done: 6 iterations" in out


@pytest.mark.slow
def test_dry_run_says_what_would_happen_and_writes_nothing(face_folder, tmp_path, capsys):
    assert run_train(face_folder, tmp_path, "--steps", "2") == 0
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    capsys.readouterr()
    assert run_train(face_folder, tmp_path, "--steps", "9", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "resuming from iteration 2" in out and "cache " in out and "up to date, 24 images" in out
    assert "steps              9  (changed for this session: was 2)" in out
    assert "batch_size         8  (kept)" in out
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert run_train(face_folder, tmp_path / "new", "--dry-run") == 0
    assert "a new run" in capsys.readouterr().out and not (tmp_path / "new").exists()


@pytest.mark.slow
def test_a_second_trainer_on_the_same_folder_is_refused_and_a_dead_ones_lock_taken_over(face_folder, tmp_path,
                                                                                      capsys):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "dcgan_faces.train", *TINY, "--steps", "100000", "--data", str(face_folder),
               "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not list(out.glob("checkpoints/ckpt-*.npz")) and time.monotonic() < deadline:
            time.sleep(0.5)
        rows_before = (out / "metrics.jsonl").read_text().count("\n")
        assert run_train(face_folder, tmp_path, "--steps", "100000") == 2
        error = capsys.readouterr().err
        assert "is in use by another training" in error and f"process {first.pid}" in error
        assert (out / "metrics.jsonl").read_text().count("\n") >= rows_before, "nothing of the run was touched"
    finally:
        first.kill()  # SIGKILL: no clean-up, the lock stays behind
        first.wait()
    assert (out / ".lock").exists()
    stopped = max(int(p.stem.split("-")[1]) for p in out.glob("checkpoints/ckpt-*.npz"))
    assert run_train(face_folder, tmp_path, "--steps", str(stopped + 1)) == 0
    assert "taking over the run folder from a training that is gone" in capsys.readouterr().out
    assert not (out / ".lock").exists()


@pytest.mark.slow
def test_temporary_files_of_killed_writers_are_cleared_at_the_next_start(face_folder, tmp_path):
    from dcgan_faces.atomic import HOST

    assert run_train(face_folder, tmp_path, "--steps", "2") == 0
    dead = tmp_path / f"run/checkpoints/.ckpt-00000004.tmp-{HOST}-999999999.npz"
    dead.write_bytes(b"half a checkpoint")
    other_host = tmp_path / "run/checkpoints/.ckpt-00000004.tmp-elsewhere-12.npz"
    other_host.write_bytes(b"maybe still being written")
    assert run_train(face_folder, tmp_path, "--steps", "3") == 0
    assert not dead.exists() and other_host.exists()


def test_a_bad_flag_is_one_line_pointing_at_help():
    done = subprocess.run([sys.executable, "-m", "dcgan_faces.train", "--res", "30"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "--res" in done.stderr and "--help" in done.stderr


@pytest.mark.slow
def test_a_run_whose_checkpoints_are_all_damaged_is_neither_restarted_nor_cut(face_folder, tmp_path, capsys):
    assert run_train(face_folder, tmp_path, "--steps", "4") == 0
    run = tmp_path / "run"
    for path in (run / "checkpoints").glob("ckpt-*.npz"):
        path.write_bytes(path.read_bytes()[:300])  # a Drive sync cut them all short
    before = {p: p.read_bytes() for p in [run / "metrics.jsonl", *run.glob("previews/*.png"), run / "generator.keras"]}
    capsys.readouterr()
    assert run_train(face_folder, tmp_path, "--steps", "8") == 2
    error = capsys.readouterr().err
    assert "logged up to iteration 4 but its 2 checkpoint(s) are damaged; pass --fresh" in error
    assert all(path.read_bytes() == content for path, content in before.items()), "nothing of the run changed"
    assert run_train(face_folder, tmp_path, "--steps", "2", "--fresh") == 0
    moved = next(p for p in tmp_path.iterdir() if p.name.startswith("run-"))
    assert (moved / "metrics.jsonl").read_bytes() == before[run / "metrics.jsonl"]


CHEAP_FAILURES = """
import sys
from dcgan_faces import train
code = train.main(sys.argv[1:])
print("tensorflow imported:", "tensorflow" in sys.modules)
sys.exit(code)
"""


@pytest.mark.slow
@pytest.mark.parametrize("case", ["no such folder", "fewer images than a batch"])
def test_what_can_be_checked_without_tensorflow_fails_before_it_is_imported(case, tmp_path):
    three = tmp_path / "three"
    three.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (i * 80, 0, 0)).save(three / f"face{i}.png")
    data, message = {"no such folder": (tmp_path / "nonexistent", "no such folder"),
                     "fewer images than a batch": (three, "--batch-size 32 is larger than folder")}[case]
    command = [sys.executable, "-c", CHEAP_FAILURES, "--data", str(data), "--batch-size", "32", "--cache-dir",
               str(tmp_path / "cache"), "--out", str(tmp_path / "run")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "tensorflow imported: False" in done.stdout
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir()), "nothing decoded or cached"
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_rerunning_a_finished_run_says_so_and_how_to_train_further(face_folder, tmp_path, capsys):
    assert run_train(face_folder, tmp_path, "--steps", "2") == 0
    before = {path: path.stat().st_mtime_ns for path in (tmp_path / "run").rglob("*") if path.is_file()}
    capsys.readouterr()
    assert run_train(face_folder, tmp_path, "--steps", "2") == 0
    out = capsys.readouterr().out
    assert out == (f"the run in {tmp_path / 'run'} already finished 2 iterations (--steps 2); to train further pass "
                   "a larger --steps (e.g. --steps 4) or --epochs\n")
    assert {path: path.stat().st_mtime_ns for path in (tmp_path / "run").rglob("*") if path.is_file()} == before
    assert run_train(face_folder, tmp_path, "--epochs", "0.5") == 0  # 12 of the 24 images: 2 batches of 8
    assert "already finished 2 iterations (--epochs 0.5: 2 iterations); to train further" in capsys.readouterr().out


@pytest.mark.slow
def test_plots_png_is_drawn_on_every_stop(face_folder, tmp_path, monkeypatch, capsys):
    from dcgan_faces.trainer import Trainer

    step = Trainer.step

    def ctrl_c_at_the_third(trainer):
        if trainer.iteration == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: caught, the step finishes, then the run stops
        return step(trainer)

    monkeypatch.setattr(Trainer, "step", ctrl_c_at_the_third)
    assert run_train(face_folder, tmp_path, "--steps", "50", "--save-every", "40") == 128 + signal.SIGINT
    rows = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [row["iteration"] for row in rows] == [1, 2, 3] and (tmp_path / "run/plots.png").exists()
    monkeypatch.setattr(Trainer, "step", step)
    (tmp_path / "run/plots.png").unlink()
    assert run_train(face_folder, tmp_path, "--steps", "5", "--save-every", "40") == 0
    assert (tmp_path / "run/plots.png").exists(), "at the end of a run shorter than --save-every"
