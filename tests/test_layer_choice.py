"""--layers: the fast and stock forms of the notebook models, and the start-up probe that picks the faster."""

import json

import numpy as np
import pytest

from dcgan_faces import layer_choice
from dcgan_faces.config import TrainConfig
from dcgan_faces.trainer import Trainer
from tests.conftest import train_quietly


def _train(face_folder, tmp_path, out: str, *extra):
    return train_quietly(["--res", "16", "--batch-size", "4", "--steps", "2", "--save-every", "2", "--data",
                          str(face_folder), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / out),
                          *extra])


def _checkpoint(run) -> dict[str, np.ndarray]:
    with np.load(run / "checkpoints/ckpt-00000002.npz") as archive:
        return {name: archive[name] for name in archive.files if name != "state"}


@pytest.mark.slow
def test_a_forced_probe_times_both_forms_keeps_the_faster_and_leaves_the_run_as_without_it(face_folder, tmp_path,
                                                                                          monkeypatch, capsys):
    monkeypatch.setenv(layer_choice.PROBE_ENV, "1")
    monkeypatch.setattr(layer_choice, "WARMUP_STEPS", 1)
    monkeypatch.setattr(layer_choice, "TIMED_STEPS", 2)
    steps, step = [], Trainer.step
    monkeypatch.setattr(Trainer, "step", lambda trainer: steps.append(trainer) or step(trainer))
    assert _train(face_folder, tmp_path, "probed") == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("layers "))
    chosen = json.loads((tmp_path / "probed/config.json").read_text())["layers_chosen"]
    assert chosen["form"] in ("fast", "stock") and line.startswith(f"layers {chosen['form']} (the faster in a "
                                                                    "start-up probe on this CPU, forced by")
    figures = chosen["seconds_per_iteration"]
    assert set(figures) == {"fast", "stock"} and all(seconds > 0 for seconds in figures.values())
    assert f"fast {figures['fast']:.4f} s, stock {figures['stock']:.4f} s per iteration" in line
    assert figures[chosen["form"]] == min(figures.values())
    probe_trainers = {id(trainer) for trainer in steps[:-2]}
    assert len(steps) == 2 * (1 + 2) + 2 and len(probe_trainers) == 2, "1 + 2 steps of each form, then the run's 2"
    assert id(steps[-1]) not in probe_trainers, "the run trains models of its own"

    monkeypatch.delenv(layer_choice.PROBE_ENV)
    assert _train(face_folder, tmp_path, "asked", "--layers", chosen["form"]) == 0
    assert f"layers {chosen['form']} (as asked)" in capsys.readouterr().out
    probed, asked = _checkpoint(tmp_path / "probed"), _checkpoint(tmp_path / "asked")
    assert probed.keys() == asked.keys()
    for name in probed:  # the probe neither trained the run's models nor moved a random stream
        np.testing.assert_array_equal(probed[name], asked[name], err_msg=name)
    losses = [(tmp_path / run / "metrics.jsonl").read_text().splitlines() for run in ("probed", "asked")]
    assert [json.loads(row)["g_loss"] for row in losses[0]] == [json.loads(row)["g_loss"] for row in losses[1]]


def test_auto_takes_the_fast_form_on_a_cpu_without_a_probe_and_explicit_forms_as_asked(monkeypatch):
    monkeypatch.delenv(layer_choice.PROBE_ENV, raising=False)
    monkeypatch.setattr(layer_choice, "probe", lambda *args, **kwargs: pytest.fail("probed on a CPU"))
    images = np.zeros((8, 16, 16, 3), np.uint8)
    assert layer_choice.choose(TrainConfig(res=16), images).form == "fast"
    assert layer_choice.choose(TrainConfig(res=16, layers="stock"), images) == layer_choice.Choice("stock", "as asked")
    assert layer_choice.choose(TrainConfig(res=16, arch="dcgan"), images).form == "stock"


def test_an_unmeasured_device_is_probed(monkeypatch):
    monkeypatch.delenv(layer_choice.PROBE_ENV, raising=False)
    monkeypatch.setattr(layer_choice, "accelerator", lambda: "GPU")
    monkeypatch.setattr(layer_choice, "probe", lambda config, images, strategy, device: device)
    assert layer_choice.choose(TrainConfig(res=16), np.zeros((8, 16, 16, 3), np.uint8)) == "GPU"

