"""Throughput of the training loop on 1 vs 2 logical CPU devices (MirroredStrategy), one fresh process each.

    PYTHONPATH=. python experiments/benchmark_distribute.py [--res 32] [--batch-size 8] [--steps 10] [--warmup 3]

--batch-size is per replica, so the 2-device run trains on a global batch twice as large. Prints one JSON
object. On a CPU-only machine both "devices" share the same cores: expect no speed-up; the figures show
the strategy's overhead (images/s is the comparable number).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(devices: int, res: int, batch_size: int, steps: int, warmup: int) -> dict:
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    if devices > 1:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    from dcgan_faces.config import TrainConfig
    from dcgan_faces.distribute import choose_strategy
    from dcgan_faces.trainer import Trainer

    strategy = choose_strategy("mirrored" if devices > 1 else "none")
    images = np.random.default_rng(0).integers(0, 256, (256, res, res, 3), dtype=np.uint8)
    config = TrainConfig(res=res, batch_size=batch_size, precision="float32")
    trainer = Trainer(config, images, strategy)
    for _ in range(warmup):
        trainer.step()
    started = time.perf_counter()
    for _ in range(steps):
        figures = trainer.step()
    seconds = time.perf_counter() - started
    return {"devices": devices, "global_batch": trainer.global_batch, "steps": steps,
            "steps_per_s": round(steps / seconds, 3), "images_per_s": round(steps * trainer.global_batch / seconds, 1),
            "finite": all(np.isfinite(list(figures.values())))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--res", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--devices", type=int, help=argparse.SUPPRESS)  # one measurement, in a child process
    args = p.parse_args()
    if args.devices:
        print(json.dumps(measure(args.devices, args.res, args.batch_size, args.steps, args.warmup)))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)}
    runs = []
    for devices in (1, 2):
        done = subprocess.run([sys.executable, __file__, "--devices", str(devices), "--res", str(args.res),
                               "--batch-size", str(args.batch_size), "--steps", str(args.steps),
                               "--warmup", str(args.warmup)], capture_output=True, text=True, env=env, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(json.dumps({"res": args.res, "per_replica_batch": args.batch_size, "cores": os.cpu_count(),
                      "load_average": os.getloadavg(), "runs": runs,
                      "images_per_s_ratio_2_vs_1": round(runs[1]["images_per_s"] / runs[0]["images_per_s"], 3)},
                     indent=2))


if __name__ == "__main__":
    main()
