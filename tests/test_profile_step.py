"""experiments/profile_step.py splits an iteration's wall time into its parts and reads the op types of a trace."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import profile_step  # noqa: E402


@pytest.mark.slow
def test_the_parts_add_up_to_the_iteration_and_the_trace_names_op_types(capsys):
    result = profile_step.main(["--res", "16", "--recipe", "default", "--steps", "2", "--warmup", "1"])
    parts = result["parts"]
    assert set(parts) == {"G forward (predict)", "D step, real batch", "D step, fake batch", "G step (combined)",
                          "moving average", "rest (batches, labels, Python)"}
    assert sum(part["seconds"] for part in parts.values()) == pytest.approx(result["seconds_per_iteration"], abs=2e-3)
    ops = result["ops"]
    if "skipped" not in ops:
        assert "Process" not in ops["op_types"]
        assert any("Conv2D" in name for name in ops["op_types"])
        assert sum(op["share"] for op in ops["op_types"].values()) <= 1.001


def test_it_profiles_the_precision_it_is_given():
    import argparse

    def policy(precision: str) -> str:
        args = argparse.Namespace(res=16, recipe="default", precision=precision, layers="fast")
        return profile_step.make_trainer(args).gan.generator.dtype_policy.name

    assert policy("float32") == "float32"
    assert policy("mixed_bfloat16") == "mixed_bfloat16"
