"""The whole program (the idea of pytorch/examples' --dry-run): a few iterations on the built-in demo faces at 16 px
through the real entry point, a resume, and the same weights as a run without the stop. Slow tier: each start
traces the training steps anew, about 7 s on two cores."""

import keras
import numpy as np
import pytest
from PIL import Image

from dcgan_faces import checkpoint
from tests.conftest import train_quietly

RES = 16


def train_demo(tmp_path, run: str, steps: int) -> int:
    return train_quietly(["--data", "demo", "--res", str(RES), "--steps", str(steps), "--batch-size", "8",
                          "--save-every", "2", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / run)])


@pytest.mark.slow
def test_two_iterations_write_the_previews_a_checkpoint_and_the_generator(tmp_path):
    assert train_demo(tmp_path, "run", 2) == 0
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "previews").iterdir()) == ["iter-00000000.png", "iter-00000002.png"]
    margin = 16
    assert Image.open(run / "previews/iter-00000002.png").size == (margin + 7 * (RES + margin),
                                                                  margin + 4 * (RES + margin))
    assert checkpoint.read_latest(run / "checkpoints")[1]["iteration"] == 2
    assert keras.models.load_model(run / "generator.keras").output.shape == (None, RES, RES, 3)


@pytest.mark.slow
def test_two_iterations_then_one_more_equal_three_in_one_go(tmp_path, capsys):
    assert train_demo(tmp_path, "resumed", 2) == 0
    capsys.readouterr()
    assert train_demo(tmp_path, "resumed", 3) == 0
    assert "resuming from iteration 2" in capsys.readouterr().out
    assert train_demo(tmp_path, "straight", 3) == 0

    (_, resumed_state, resumed), (_, straight_state, straight) = (
        checkpoint.read_latest(tmp_path / name / "checkpoints") for name in ("resumed", "straight"))
    assert resumed_state["iteration"] == straight_state["iteration"] == 3
    assert resumed.keys() == straight.keys() and any(key.startswith("generator") for key in resumed)
    for key in resumed:
        np.testing.assert_array_equal(resumed[key], straight[key], err_msg=key)
