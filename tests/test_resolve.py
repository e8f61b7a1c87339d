"""One place decides a run (resolve.py): settings declared once, resumes, refusals; no TensorFlow needed."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from dcgan_faces import config as settings
from dcgan_faces import sources
from dcgan_faces.config import CHANGEABLE, FIXED, TrainConfig
from dcgan_faces.resolve import Request, SetupError, resolve_run
from dcgan_faces.runfolder import RunFolder
from dcgan_faces.train import given_settings as train_flags
from dcgan_faces.train import parser
from tests.conftest import draw_faces


def _checkpoint(run, iteration, **state):
    """A checkpoint file with the state only: what resolve_run reads (weights are the trainer's business), in a
    run folder marked as this version marks it."""
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    if not run.is_marked():
        run.write_mark(state.get("run_id", "run"))
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
    assert (plan.config.g_filters, plan.config.d_dropout, plan.config.bn_recalibration) == (128, 0.0, 16)
    assert plan.config.augment == ""  # below 64 px the default does not shift what D sees
    assert plan.config.precision == "float32" and plan.resumed is None and plan.run.path == tmp_path / "run"
    large = resolve_run(Request({}, out=tmp_path / "64"), lambda config: "float32").config  # --res 64, the default
    assert (large.res, large.augment, large.augment_shift, large.g_filters) == (64, "translation", 0.0625, 128)
    plain = resolve_run(Request({"augment": ""}, out=tmp_path / "plain"))  # --augment none
    assert (plain.config.augment, plain.config.g_filters) == ("", 128)
    notebook = resolve_run(Request({"recipe": "notebook", "arch": "dcgan"}, out=tmp_path / "run"))
    assert (notebook.config.ema, notebook.config.lr) == (0.0, 2e-4)


@pytest.mark.parametrize("res", [32, 64])
def test_the_recipe_help_gives_the_default_as_flags_that_make_the_notebook_recipe_train_as_the_default(res, tmp_path):
    recipe_help = next(f.metadata["help"] for f in dataclasses.fields(TrainConfig) if f.name == "recipe")
    assert settings.recipe_flags(settings.DEFAULT_RECIPE) in recipe_help
    flags = [word for name, value in settings.recipe_at(settings.DEFAULT_RECIPE, res).items()
             for word in (settings.flag_name(name), str(value))]
    assert " ".join(flags) in recipe_help.replace(", and from 64 px", "")
    given = train_flags(parser().parse_args(["--recipe", "notebook", "--res", str(res), *flags]))
    by_flags = resolve_run(Request(given, out=tmp_path / "flags"), lambda config: "float32").config
    default = resolve_run(Request({"res": res}, out=tmp_path / "default"), lambda config: "float32").config
    assert dataclasses.replace(by_flags, recipe="") == dataclasses.replace(default, recipe="")


def test_a_run_of_the_former_default_keeps_ds_dropout_when_resumed_and_a_new_run_has_none(tmp_path):
    run = RunFolder(tmp_path / "run")
    path = _checkpoint(run, 4)
    state = json.loads(np.load(path)["state"].item())
    state["config"].update(recipe="default", ema=0.999, d_dropout=0.25)  # as the default was before issue 23
    del state["config"]["bn_recalibration"]  # written before the option existed
    np.savez(path, state=np.array(json.dumps(state)))
    resumed = resolve_run(Request({}, out=run.path))
    assert resumed.resumed.iteration == 4 and (resumed.config.recipe, resumed.config.d_dropout) == ("default", 0.25)
    assert resumed.config.bn_recalibration == 0  # it goes on showing the faces it showed
    assert (resumed.config.augment, resumed.config.augment_shift) == ("", 0.125)  # and training as it trained
    assert resolve_run(Request({"res": 32}, out=tmp_path / "new"), lambda config: "float32").config.d_dropout == 0


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
    run.write_mark("r")
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
    from dcgan_faces.sources.folder import find_images, identify

    faces = draw_faces(tmp_path / "faces", count=6)
    run = RunFolder(tmp_path / "run")
    fingerprint = identify(faces, find_images(faces))[0]["fingerprint"]
    path = _checkpoint(run, 4, data_fingerprint=fingerprint)
    state = json.loads(str(np.load(path)["state"]))
    state["config"]["data"] = str(faces)
    np.savez(path, state=np.array(json.dumps(state)))
    moved = faces.rename(tmp_path / "moved")
    with pytest.raises(SetupError, match="which is gone; if they moved, pass --data"):
        resolve_run(Request({}, out=run.path))
    plan = resolve_run(Request({}, out=run.path, cache_dir=tmp_path / "cache", source=sources.parse(str(moved))))
    assert plan.config.data == str(moved) and plan.changes["data"] == (str(faces), str(moved))
    (moved / "face01.jpg").unlink()
    with pytest.raises(SetupError, match="not the same images"):
        resolve_run(Request({}, out=run.path, cache_dir=tmp_path / "cache", source=sources.parse(str(moved))))


def test_an_array_of_a_size_the_generator_cannot_make_is_refused_before_caching(tmp_path):
    np.save(tmp_path / "odd.npy", np.zeros((4, 30, 30), np.uint8))
    with pytest.raises(SetupError, match="holds 30×30 images.*pass --res"):
        resolve_run(Request({}, out=tmp_path / "run", source=sources.parse(str(tmp_path / "odd.npy"))))
    plan = resolve_run(Request({"res": 32}, out=tmp_path / "run", source=sources.parse(str(tmp_path / "odd.npy"))))
    assert plan.config.res == 32


def test_deciding_a_run_needs_no_tensorflow(tmp_path):
    probe = ("import sys; from pathlib import Path; from dcgan_faces.resolve import Request, resolve_run; "
             f"plan = resolve_run(Request({{'res': 32}}, out=Path({str(tmp_path / 'run')!r}))); "
             "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, sorted(sys.modules); "
             "print(plan.config.res)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "32", done.stderr[-2000:]


def _killed_run(tmp_path, rows=(), interval=4):
    """A marked run folder as a start leaves it: config.json (checkpoints every `interval`), logged `rows`."""
    run = RunFolder(tmp_path / "run")
    run.create()
    run.write_mark("k")
    run.write_config(TrainConfig(res=32, save_every=interval, data="demo"))
    if rows:
        run.append_metrics([{"iteration": k} for k in rows])
    return run


def _listing(folder):
    return {p.relative_to(folder): p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


def test_a_photo_folder_with_a_config_json_is_neither_run_into_nor_moved(tmp_path):
    photos = draw_faces(tmp_path / "phc", count=3)
    (photos / "config.json").write_text('{"album": "holidays"}')
    before = _listing(photos)
    with pytest.raises(SetupError, match=r"--out .*phc holds files but is not a run folder of dcgan_faces \(no "
                                         r"\.dcgan_faces_run file\), so nothing there is touched"):
        resolve_run(Request({}, out=photos))
    with pytest.raises(SetupError, match="not a run folder .* so it is not moved"):
        resolve_run(Request({}, out=photos, fresh=True))
    with pytest.raises(SetupError, match="not a run folder"):
        resolve_run(Request({}, out=photos, resume=_checkpoint(RunFolder(tmp_path / "other"), 2)))
    assert _listing(photos) == before


def test_an_empty_folder_or_one_with_only_what_a_start_writes_before_its_mark_is_a_new_run(tmp_path):
    from dcgan_faces.atomic import HOST

    (tmp_path / "empty").mkdir()
    assert resolve_run(Request({}, out=tmp_path / "empty")).resumed is None
    (tmp_path / "empty" / f".dcgan_faces_run.tmp-{HOST}-999999999").write_text("{")  # killed while marking
    (tmp_path / "empty" / ".lock").write_text('{"host": "other", "pid": 1}')  # another worker is starting
    assert resolve_run(Request({}, out=tmp_path / "empty")).resumed is None
    (tmp_path / "empty" / "notes.txt").write_text("mine")
    with pytest.raises(SetupError, match="holds files but is not a run folder"):
        resolve_run(Request({}, out=tmp_path / "empty"))


def test_truncated_checkpoints_and_an_emptied_log_refuse_a_start_over_that_would_overwrite_the_generator(tmp_path):
    run = _killed_run(tmp_path, rows=range(1, 9))
    for k in (4, 8):
        _checkpoint(run, k).write_bytes(b"PK\x03\x04 cut short")
    run.generator_path.write_bytes(b"the only intact weights")
    run.metrics_path.write_bytes(b"")
    with pytest.raises(SetupError, match="holds a run that saved generator.keras but its 2 checkpoint.* damaged; "
                                         "pass --fresh"):
        resolve_run(Request({}, out=run.path), log=lambda text: None)
    run.generator_path.unlink()
    with pytest.raises(SetupError, match="metrics.jsonl is empty or damaged but its 2 checkpoint"):
        resolve_run(Request({}, out=run.path), log=lambda text: None)
    run.metrics_path.unlink()
    with pytest.raises(SetupError, match=r"holds a run but its 2 checkpoint\(s\) are damaged"):
        resolve_run(Request({}, out=run.path), log=lambda text: None)


def test_a_log_with_nul_bytes_and_no_checkpoints_folder_is_not_started_over(tmp_path):
    run = _killed_run(tmp_path, rows=range(1, 9))
    run.metrics_path.write_bytes(b"\0\0\0\0" + run.metrics_path.read_bytes())
    run.checkpoints.rmdir()
    with pytest.raises(SetupError, match="logged up to iteration 8 but it has no checkpoint; pass --fresh"):
        resolve_run(Request({}, out=run.path))
    run.metrics_path.write_bytes(b"\0\0\0\0")
    with pytest.raises(SetupError, match="metrics.jsonl is empty or damaged but it has no checkpoint"):
        resolve_run(Request({}, out=run.path))


def test_a_run_killed_before_its_first_checkpoint_starts_again_from_0_and_says_so(tmp_path):
    run = _killed_run(tmp_path, rows=range(1, 5), interval=4)  # killed while writing ckpt-00000004.npz
    with open(run.metrics_path, "a") as log:
        log.write('{"iteration": 5, "d_lo')  # and in the middle of the next append: a torn tail is no damage
    said = []
    plan = resolve_run(Request({"res": 32}, out=run.path), log=said.append)
    assert plan.resumed is None and plan.run_id == "k", "the folder's run starts again"
    assert said == [f"{run.path}: the run there stopped before its first checkpoint; it starts again from iteration 0"]
    run.append_metrics([{"iteration": 6}])  # rows after the first checkpoint's iteration: that one was written
    with pytest.raises(SetupError, match="logged up to iteration 6 but it has no checkpoint"):
        resolve_run(Request({}, out=run.path))


def test_a_photo_or_a_foreign_npz_given_to_resume_is_not_a_checkpoint_and_a_cut_one_is_damaged(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "photo.jpg")
    np.savez(tmp_path / "foreign.npz", images=np.zeros((2, 8, 8, 3), np.uint8))
    np.savez(tmp_path / "other_state.npz", state=np.array("not a training state"))
    np.save(tmp_path / "array.npy", np.zeros(3))
    for name, why in (("photo.jpg", "not an .npz archive"), ("foreign.npz", "an .npz without a training state"),
                      ("other_state.npz", "its state entry is not a training state"),
                      ("array.npy", "not an .npz archive")):
        with pytest.raises(SetupError) as refused:
            resolve_run(Request({}, out=tmp_path / "run", resume=tmp_path / name))
        assert str(refused.value) == (f"--resume: {tmp_path / name} is not a checkpoint of dcgan_faces ({why}); "
                                      "give a checkpoints/ckpt-NNNNNNNN.npz of a run")
    cut = _checkpoint(RunFolder(tmp_path / "other"), 4)
    cut.write_bytes(cut.read_bytes()[:200])
    with pytest.raises(SetupError, match=r"--resume: .*ckpt-00000004.npz is damaged \("):
        resolve_run(Request({}, out=tmp_path / "run", resume=cut))
