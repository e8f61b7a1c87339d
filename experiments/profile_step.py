"""Where one training iteration's time goes: the wall time of each part of Trainer.step, and the op time
of each TensorFlow op type. Prints JSON.

    PYTHONPATH=. python experiments/profile_step.py [--res 64] [--recipe notebook] [--precision auto] [--steps 8]
        [--no-ops]

Parts (medians over --steps iterations after --warmup): G's forward for the fake batch (predict), D's
step on the real batch, D's step on the fake batch, G's step through the combined model, the moving
average's update, and the rest (batch assembly and Python). Op types come from a TensorFlow profiler trace
of the same iterations: the op time summed over TensorFlow's threads, which run ops side by side, so it
adds up to more than the wall time and an op off the critical path can be removed without saving any of it.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def timed(record: list[float], method):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            record.append(time.perf_counter() - start)
    return wrapper


def make_trainer(args):
    from dcgan_faces.config import TrainConfig, recipe_settings
    from dcgan_faces.trainer import Trainer

    config = TrainConfig(**recipe_settings({"res": args.res, "recipe": args.recipe, "precision": args.precision}))
    images = np.random.default_rng(0).integers(0, 256, (512, args.res, args.res, 3), dtype=np.uint8)
    return Trainer(config, images, fast=args.layers == "fast")


def part_times(trainer, steps: int) -> dict:
    """Median seconds of each part of an iteration; D's two steps told apart by their order."""
    gan, record = trainer.gan, collections.defaultdict(list)
    gan.generator.predict_on_batch = timed(record["G forward (predict)"], gan.generator.predict_on_batch)
    gan.discriminator.train_on_batch = timed(record["D steps"], gan.discriminator.train_on_batch)
    gan.combined.train_on_batch = timed(record["G step (combined)"], gan.combined.train_on_batch)
    if gan.average:
        gan.average.update = timed(record["moving average"], gan.average.update)
    whole = []
    for _ in range(steps):
        timed(whole, trainer.step)()
    d_steps = record.pop("D steps")
    record["D step, real batch"], record["D step, fake batch"] = d_steps[0::2], d_steps[1::2]
    parts = {name: statistics.median(values) for name, values in record.items()}
    total = statistics.median(whole)
    parts["rest (batches, labels, Python)"] = max(0.0, total - sum(parts.values()))
    return {"seconds_per_iteration": round(total, 4),
            "parts": {name: {"seconds": round(value, 4), "share": round(value / total, 3)}
                      for name, value in sorted(parts.items(), key=lambda item: -item[1])}}


def op_times(trainer, steps: int, top: int = 25) -> dict:
    """Op time per op type over `steps` iterations from a profiler trace, per iteration."""
    import tensorflow as tf

    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError as error:
        return {"skipped": f"cannot read TensorFlow's trace format here ({error})"}
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            trainer.step()
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    per_type: collections.Counter = collections.Counter()
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" in name and "::" not in name:  # "scope/op:OpType"; not the executor's own events
                    per_type[name.rsplit(":", 1)[1]] += event.duration_ps / 1e12 / steps
    total = sum(per_type.values())
    return {"op_seconds_per_iteration": round(total, 4),
            "op_types": {name: {"seconds": round(value, 4), "share": round(value / total, 3)}
                         for name, value in per_type.most_common(top)}}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--recipe", choices=("notebook", "default"), default="notebook")
    p.add_argument("--layers", choices=("fast", "stock"), default="fast")
    p.add_argument("--precision", choices=("float32", "auto", "mixed_bfloat16"), default="float32",
                   help="auto: bfloat16 where the CPU has its instructions, as train's default")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--no-ops", action="store_true", help="skip the profiler trace")
    args = p.parse_args(argv)
    trainer = make_trainer(args)
    for _ in range(args.warmup):
        trainer.step()
    result = {"res": args.res, "recipe": args.recipe, "layers": args.layers, "precision": args.precision,
              "batch_size": 32, "steps": args.steps,
              **part_times(trainer, args.steps)}
    if not args.no_ops:
        result["ops"] = op_times(trainer, args.steps)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
