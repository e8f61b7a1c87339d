"""experiments/benchmark.py starts anywhere: on a machine without a GPU its GPU section says why it was skipped;
its FLOP count reads the models through public Keras."""

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
    done = subprocess.run([sys.executable, str(ROOT / "experiments/benchmark.py"), "--skip-train", "--skip-prep"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["gpu"] == {"skipped": "no GPU visible"}
    assert report["machine"]["gpus"] == [] and "training" not in report
    assert "GPU: skipped, no GPU visible" in done.stderr


@pytest.mark.slow
def test_the_gpu_sections_contestants_build_train_and_are_timed(monkeypatch):
    """What a GPU runs, here on the CPU at 16 px and for one precision: every layer form × jit_compile setting."""
    import argparse

    sys.path.insert(0, str(ROOT / "experiments"))
    import benchmark

    monkeypatch.setattr(benchmark, "GPU_PRECISIONS", ("mixed_float16",))
    args = argparse.Namespace(batch_size=4, warmup=1, rounds=1, steps=1)
    result = benchmark.bench_gpu_resolution(args, 16, per_round=1)
    contestants = result["contestants"]
    assert set(contestants) == {f"mixed_float16, {layers}, jit {jit}" for layers in ("stock", "fast")
                                for jit in ("off", "on")}
    assert all(figures["seconds_per_iteration"] > 0 for figures in contestants.values()), contestants
    assert [figures["jit_compile"] for figures in contestants.values()] == [False, True, False, True]
    assert result["fastest"] in contestants


def test_the_flop_count_of_each_model_and_of_a_model_nested_in_another():
    """The figures at 16 px are those of the count before it read public Keras only (Model.layers)."""
    import keras

    sys.path.insert(0, str(ROOT / "experiments"))
    import benchmark

    from dcgan_faces.models import build_discriminator, build_generator

    generator = build_generator(16, benchmark.SEED_SIZE, fast=False)
    assert benchmark.forward_flops(build_discriminator(16)) == 28_578_816
    assert benchmark.forward_flops(generator) == 381_845_504
    assert benchmark.forward_flops(build_generator(16, benchmark.SEED_SIZE, fast=True)) == 172_130_304
    assert benchmark.forward_flops(keras.Sequential([generator])) == 381_845_504
