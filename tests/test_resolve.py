"""One place decides a run (resolve.py): settings declared once, resumes, refusals; no TensorFlow needed."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from dcgan_faces import config as settings
from dcgan_faces.config import CHANGEABLE, FIXED, TrainConfig
from dcgan_faces.resolve import Request, SetupError, resolve_run
from dcgan_faces.runfolder import RunFolder
from dcgan_faces.train import parser
from tests.conftest import draw_faces


def _checkpoint(run, iteration, **state):
    """A checkpoint file with the state only: what resolve_run reads (weights are the trainer's business)."""
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    path = run.checkpoints / f"ckpt-{iteration:08d}.npz"
    config = dataclasses.asdict(TrainConfig(res=32, batch_size=8, steps=10, data="demo", precision="float32"))
    np.savez(path, state=np.array(json.dumps({"iteration": iteration, "config": config, "seconds": 1.0, **state})))
    return path


def test_every_setting_is_fixed_or_changeable_and_has_its_flag():
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    fixed, changeable = settings.fields_that_are(FIXED), settings.fields_that_are(CHANGEABLE)
    assert sorted(fixed + changeable) == sorted(names) and not set(fixed) & set(changeable)
    flags = {action.dest: action for action in parser()._actions}
    for name in names:
        if dataclasses.fields(TrainConfig)[names.index(name)].metadata["help"] is None:
            assert name not in flags  # preview_rows, preview_cols
            continue
        assert flags[name].default is None, f"--{name}: a flag not given must be told from its default"
        assert flags[name].help


def test_a_new_run_is_its_recipe_overridden_by_the_flags_given(tmp_path):
    plan = resolve_run(Request({"res": 32, "lr": 3e-4}, out=tmp_path / "run"), lambda config: "float32")
    assert (plan.config.recipe, plan.config.ema, plan.config.res, plan.config.lr) == ("default", 0.999, 32, 3e-4)
    assert plan.config.precision == "float32" and plan.resumed is None and plan.run.path == tmp_path / "run"
    notebook = resolve_run(Request({"recipe": "notebook", "arch": "dcgan"}, out=tmp_path / "run"))
    assert (notebook.config.ema, notebook.config.lr) == (0.0, 2e-4)


def test_a_resume_keeps_fixed_settings_applies_changeable_ones_and_refuses_conflicts(tmp_path):
    run = RunFolder(tmp_path / "run")
    _checkpoint(run, 4)
    plan = resolve_run(Request({"steps": 20, "save_every": 5, "res": 32}, out=run.path))
    assert plan.resumed.iteration == 4 and plan.config.res == 32 and plan.config.batch_size == 8
    assert plan.changes == {"steps": (10, 20), "save_every": (100, 5)}
    with pytest.raises(SetupError, match=r"--batch-size 16 \(the run has 8\).*pass --fresh"):
        resolve_run(Request({"batch_size": 16}, out=run.path))
    with pytest.raises(SetupError, match="drop the flag or pick another --out$"):  # --resume: no --fresh advice
        resolve_run(Request({"batch_size": 16}, out=run.path, resume=run.checkpoints / "ckpt-00000004.npz"))


def test_epochs_set_the_length_of_new_and_resumed_runs(tmp_path):
    run = RunFolder(tmp_path / "run")
    _checkpoint(run, 4)
    plan = resolve_run(Request({}, epochs=4, out=run.path))
    config = plan.fit_to_data("demo", images=40)
    assert config.steps == 20 and plan.changes == {"steps": (10, 20)}  # 4 passes over 40 images, batch 8
    with pytest.raises(SetupError, match=r"--batch-size 8 × 2 replicas is larger than the 10 images"):
        resolve_run(Request({}, out=run.path)).fit_to_data("demo", images=10, replicas=2)


def test_a_run_with_a_log_but_no_readable_checkpoint_is_not_restarted(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.append_metrics([{"iteration": k} for k in range(1, 113)])
    run.checkpoints.mkdir()
    (run.checkpoints / "ckpt-00000100.npz").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(SetupError, match="logged up to iteration 112 but its 1 checkpoint.* damaged; pass --fresh"):
        resolve_run(Request({}, out=run.path), log=lambda text: None)
    assert resolve_run(Request({}, out=run.path, fresh=True)).fresh


def test_resuming_another_runs_checkpoint_into_an_existing_run_is_refused(tmp_path):
    mine, other = RunFolder(tmp_path / "mine"), RunFolder(tmp_path / "other")
    _checkpoint(mine, 4, run_id="a")
    foreign = _checkpoint(other, 8, run_id="b")
    with pytest.raises(SetupError, match="checkpoint of another run"):
        resolve_run(Request({}, out=mine.path, resume=foreign))
    assert resolve_run(Request({}, out=tmp_path / "new", resume=foreign)).resumed.iteration == 8
    assert resolve_run(Request({}, out=mine.path, resume=_checkpoint(mine, 2, run_id="a"))).resumed.iteration == 2


def test_fresh_moves_only_run_folders(tmp_path):
    photos = draw_faces(tmp_path / "photos", count=3)
    with pytest.raises(SetupError, match="not a run folder"):
        resolve_run(Request({}, out=photos, fresh=True))
    assert resolve_run(Request({}, out=tmp_path / "empty", fresh=True)).fresh


def test_moved_images_are_accepted_by_fingerprint_and_other_images_refused(tmp_path):
    from dcgan_faces.data import find_images, folder_fingerprint

    faces = draw_faces(tmp_path / "faces", count=6)
    run = RunFolder(tmp_path / "run")
    fingerprint = folder_fingerprint(faces, find_images(faces))["fingerprint"]
    path = _checkpoint(run, 4, data_fingerprint=fingerprint)
    state = json.loads(str(np.load(path)["state"]))
    state["config"]["data"] = str(faces)
    np.savez(path, state=np.array(json.dumps(state)))
    moved = faces.rename(tmp_path / "moved")
    with pytest.raises(SetupError, match="which is gone; if they moved, pass --data"):
        resolve_run(Request({}, out=run.path))
    plan = resolve_run(Request({"data": str(moved)}, out=run.path, cache_dir=tmp_path / "cache"))
    assert plan.config.data == str(moved) and plan.changes["data"] == (str(faces), str(moved))
    (moved / "face01.jpg").unlink()
    with pytest.raises(SetupError, match="not the same images"):
        resolve_run(Request({"data": str(moved)}, out=run.path, cache_dir=tmp_path / "cache"))


def test_an_array_of_a_size_the_generator_cannot_make_is_refused_before_caching(tmp_path):
    np.save(tmp_path / "odd.npy", np.zeros((4, 30, 30), np.uint8))
    with pytest.raises(SetupError, match="holds 30×30 images.*pass --res"):
        resolve_run(Request({"data": str(tmp_path / "odd.npy")}, out=tmp_path / "run"))
    plan = resolve_run(Request({"data": str(tmp_path / "odd.npy"), "res": 32}, out=tmp_path / "run"))
    assert plan.config.res == 32


def test_deciding_a_run_needs_no_tensorflow(tmp_path):
    probe = ("import sys; from pathlib import Path; from dcgan_faces.resolve import Request, resolve_run; "
             f"plan = resolve_run(Request({{'res': 32}}, out=Path({str(tmp_path / 'run')!r}))); "
             "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, sorted(sys.modules); "
             "print(plan.config.res)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "32", done.stderr[-2000:]
