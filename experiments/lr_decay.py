"""A learning-rate decay over the end of the budget, judged against the default's own runs on the same draws.

    PYTHONPATH=. python experiments/lr_decay.py --res 64 --seed 0 --at 4467 --decay 0.25 --threads 2

One user's run of the default (`python -m dcgan_faces.train`'s main in this process, into --runs) in which both
learning rates fall linearly towards zero over the last --decay of its --at iterations: the step from iteration k
to k + 1 uses the rates times min(1, (at - k) / span), span = round(decay × at), so the last step still moves
(1 / span) and every step before the decay starts is the default's own. The decay is an experiment, not an
option: the run is the default's with the trainer's rates set before each step, so its config.json does not
record it (the result file does).

The run's saved generator (recalibrated as the default's is) is judged as `compare_recipes.py` judges (draw 0:
SWD of --eval-images faces against as many held-out ones, the face rate over --face-images, a 4×7 grid) and on
--draws - 1 more draws, then paired draw by draw with the default's recalibrated run of the same seed in
--baseline (`recalibration_paired.py`'s paired.jsonl), so that the difference can be read beside the judge's
own noise. Writes --out/lr-decay<decay>-seed<N>.json (skipped when it exists) and a grid. A run cut short
starts over; a finished one is judged again without training.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import json
import sys
from pathlib import Path
from unittest import mock

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "experiments"))

import compare_recipes  # noqa: E402
import ema_ramps  # noqa: E402

BASELINE = REPO / "experiments" / "recipes" / "bn-recalibration-64px" / "paired.jsonl"


def rate_factor(k: int, at: int, decay: float) -> float:
    """The factor on both learning rates for the step from iteration k to k + 1."""
    span = max(1, round(decay * at))
    return min(1.0, (at - k) / span)


def train_with_decay(run: Path, seed: int, at: int, decay: float, images: Path, args):
    """The candidate (default: the default) trained from the start to `at` by the trainer's own entry point, its
    rates decayed."""
    from dcgan_faces import trainer as trainer_module

    class DecayingTrainer(trainer_module.Trainer):
        def __init__(self, *given, **named):
            super().__init__(*given, **named)
            self.base_rates = ((self.gan.combined.optimizer, self.config.lr_g or self.config.lr),
                               (self.gan.discriminator.optimizer, self.config.lr_d or self.config.lr))

        def step(self):
            factor = rate_factor(self.iteration, at, decay)
            for optimizer, rate in self.base_rates:
                optimizer.learning_rate.assign(rate * factor)
            return super().step()

    with mock.patch.object(trainer_module, "Trainer", DecayingTrainer):
        compare_recipes.train_to(run, args.candidate, seed, at, images, args, fresh=True)


def finished_run(run: Path, at: int) -> dict | None:
    """The training seconds and final (G, D) learning rates of a run whose newest checkpoint is at iteration `at`,
    else None."""
    from dcgan_faces import checkpoint
    from dcgan_faces.runfolder import RunFolder

    found = checkpoint.read_latest(RunFolder(run).checkpoints) if run.is_dir() else None
    if found is None or found[1]["iteration"] != at:
        return None
    _, state, arrays = found
    rates = {key.split("_")[0]: float(value) for key, value in arrays.items() if key.endswith("/learning_rate")}
    return {"seconds": state["seconds"], "final_learning_rates": [rates["g"], rates["d"]]}


def baseline_draws(path: Path, seed: int, draws: int) -> list[float] | None:
    """The default's recalibrated SWD of seed `seed` on draws 0 .. draws - 1, from a paired.jsonl; None if absent."""
    if not path.exists():
        return None
    found = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row.get("run", "").endswith(f"-seed{seed}"):  # the last row sums the runs up
            found[row["draw"]] = row["recalibrated"]
    return [found[d] for d in range(draws)] if all(d in found for d in range(draws)) else None


def paired(draws: list[float], baseline: list[float] | None) -> dict | None:
    if baseline is None:
        return None
    differences = [a - b for a, b in zip(draws, baseline, strict=True)]
    return {"baseline_draws": baseline, "differences": differences,
            "mean_difference": float(np.mean(differences)), "lower_on": sum(d < 0 for d in differences)}


def decay_of_one_seed(args) -> dict:
    from dcgan_faces.atomic import write_json
    from dcgan_faces.trained_model import load_generator

    name, seed, at = args.candidate, args.seed, args.at
    path = args.out / f"lr-decay{args.decay:g}-seed{seed}.json"
    if path.exists():
        compare_recipes.log(f"{path} exists: skipped")
        return json.loads(path.read_text())
    split = compare_recipes.open_split(args)
    (args.out / "grids").mkdir(parents=True, exist_ok=True)
    compare_recipes.write_floor(args.out / "floor.json", split, args)
    images = compare_recipes.training_images(split, args)
    run = args.runs / f"{name}+lrdecay{args.decay:g}-seed{seed}"
    if finished_run(run, at) is None:  # a finished run is judged again as it is
        train_with_decay(run, seed, at, args.decay, images, args)
    finished = finished_run(run, at)
    generator, config = load_generator(run, log=compare_recipes.log)  # as a user opens it: recalibrated
    n = min(args.eval_images, len(split.heldout))
    grid = args.out / "grids" / f"{name}+lrdecay{args.decay:g}-seed{seed}-{at}.png"
    figures = compare_recipes.judge_and_show(generator.predict_on_batch, config.seed_size, n, args.face_images,
                                             split, grid)
    draws = [figures["swd"], *(ema_ramps.swd_on_draw(generator.predict_on_batch, config.seed_size, split, n, draw)
                               for draw in range(1, args.draws))]
    result = {"candidate": name, "decay": args.decay, "seed": seed, "res": args.res, "iterations": at,
              "train_seconds": round(finished["seconds"], 1), "eval_images": n, "judged_on": split.description,
              "final_learning_rates": finished["final_learning_rates"], **figures, "swd_draws": draws,
              "paired_with_default": paired(draws, baseline_draws(args.baseline, seed, args.draws))}
    write_json(path, result)
    compare_recipes.log(f"lr decay {args.decay:g} seed {seed} at {at}: SWD {figures['swd']:.2f} (draws "
                        f"{', '.join(f'{x:.2f}' for x in draws)}), face rate "
                        f"{figures.get('more_faces', figures)['face_rate']:.4f}")
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidate", choices=list(compare_recipes.CANDIDATES), default=ema_ramps.DEFAULT_CANDIDATE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--at", type=int, default=4467, help="iterations (default: the 64 px equal-time budget)")
    p.add_argument("--decay", type=float, default=0.25, help="the fraction of --at over which the rates decay")
    p.add_argument("--draws", type=int, default=4, help="draws of latents and held-out faces (draw 0: the yardstick)")
    p.add_argument("--baseline", type=Path, default=BASELINE, help="the default's paired.jsonl")
    p.add_argument("--data", type=Path, default=compare_recipes.DEFAULT_FACES)
    p.add_argument("--holdout", type=int, default=1000)
    p.add_argument("--cache-dir", type=Path, default=REPO / "data_cache" / "recipes")
    p.add_argument("--out", type=Path, help="default experiments/recipes/lr-decay-<res>px")
    p.add_argument("--runs", type=Path, help="default runs/recipes/lr-decay-<res>px")
    p.add_argument("--eval-images", type=int, default=1000)
    p.add_argument("--face-images", type=int, default=10000)
    p.add_argument("--threads", type=int, default=0, help="TensorFlow threads (default: all cores)")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    if not 0 < args.decay <= 1:
        raise SystemExit(f"--decay {args.decay:g}: give a fraction of --at in (0, 1]")
    args.out = args.out or REPO / "experiments" / "recipes" / f"lr-decay-{args.res}px"
    args.runs = args.runs or REPO / "runs" / "recipes" / f"lr-decay-{args.res}px"
    args.out.mkdir(parents=True, exist_ok=True)
    compare_recipes.set_threads(args.threads)
    compare_recipes.refuse_emulated_bfloat16([args.candidate], compare_recipes.CPUINFO)
    result = decay_of_one_seed(args)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
