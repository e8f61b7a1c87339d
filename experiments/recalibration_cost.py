"""What --bn-recalibration costs a run: the seconds of one recalibration (the average copied, its BatchNorm
statistics recomputed over the batches) against those of the iterations between two preview grids, timed
in turn in one process. Prints JSON.

    PYTHONPATH=. python experiments/recalibration_cost.py [--res 64] [--batches 16] [--precision auto] [--rounds 5]

A run recalibrates once per grid (every --save-every iterations, 100 by default) and once at the end; the
figure that matters is `share_of_preview_interval`: recalibration seconds / (save_every × iteration seconds).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def seconds(action, repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        action()
    return (time.perf_counter() - start) / repeat


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--batches", type=int, default=16)
    p.add_argument("--precision", default="auto")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=10, help="iterations timed per round")
    p.add_argument("--save-every", type=int, default=100)
    args = p.parse_args(argv)

    from dcgan_faces.config import TrainConfig, recipe_settings
    from dcgan_faces.precision import choose
    from dcgan_faces.trainer import Trainer

    settings = recipe_settings({"res": args.res, "bn_recalibration": args.batches})
    config = TrainConfig(**{**settings, "precision": choose(TrainConfig(precision=args.precision)).policy})
    images = np.random.default_rng(0).integers(0, 256, (512, args.res, args.res, 3), dtype=np.uint8)
    trainer = Trainer(config, images)
    trainer.step(), trainer.gan.recalibrated.refresh()  # warm-up: the functions traced
    iteration, recalibration = [], []
    for _ in range(args.rounds):
        iteration.append(seconds(trainer.step, args.steps))
        recalibration.append(seconds(trainer.gan.recalibrated.refresh))
    result = {"res": args.res, "batches": args.batches, "batch_size": config.batch_size,
              "precision": config.precision, "rounds": args.rounds,
              "iteration_seconds": round(statistics.median(iteration), 4),
              "recalibration_seconds": round(statistics.median(recalibration), 4),
              "save_every": args.save_every}
    result["share_of_preview_interval"] = round(
        result["recalibration_seconds"] / (args.save_every * result["iteration_seconds"]), 4)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
