"""scripts/benchmark.py starts anywhere: on a machine without a GPU its GPU section says why it was skipped."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_without_a_gpu_the_gpu_section_is_skipped_and_says_why():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, str(ROOT / "scripts/benchmark.py"), "--skip-train", "--skip-prep"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["gpu"] == {"skipped": "no GPU visible"}
    assert report["machine"]["gpus"] == [] and "training" not in report
    assert "GPU: skipped, no GPU visible" in done.stderr
