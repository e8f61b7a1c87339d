"""The moving average's ramp (--ema-ramp) judged as the default now shows its faces, with the average's BatchNorm
statistics recomputed (--bn-recalibration). Ramps were screened before recalibration existed, when a longer span
also carried staler statistics.

    PYTHONPATH=. python experiments/ema_ramps.py --res 64 --seed 0 --at 4467 --ramps 3 5 20 --threads 2

One user's run of a candidate (default: the default, `python -m dcgan_faces.train`'s main in this process, into
--runs) trains G once, and beside the run's own average keeps one more per ramp, ramp 10 among them: the average
never feeds back into training, so each is the average that run would have saved with that --ema-ramp. Ramp 10's
must equal the run's own to the last bit, or nothing is written. Each average is recalibrated as the run's
generator is, then judged as `compare_recipes.py` judges (draw 0: SWD of --eval-images faces against as many
held-out ones, the face rate over --face-images, a 4×7 grid) and on --draws - 1 more draws of latents and held-out
faces, SWD only, so that a ramp's difference from ramp 10 can be read beside the judge's own noise.
Writes --out/ramps-<candidate>-seed<N>.json (skipped when it exists) and grids. The extra averages live only in
memory: a run cut short starts over.
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

from dcgan_faces.ema import RAMP  # noqa: E402

DEFAULT_CANDIDATE = "default+bf16+gf128+ddrop0+bnr16"  # what `python -m dcgan_faces.train` trains


def train_with_ramps(run: Path, name: str, seed: int, steps: int, images: Path, ramps: list[float], args):
    """The run trained from the start to `steps` by the trainer's own entry point, with one more average per ramp
    (RAMP included); (trainer, {ramp: average model}, seconds)."""
    from dcgan_faces import trainer as trainer_module
    from dcgan_faces.ema import GeneratorAverage

    made = []

    class TrainerWithRamps(trainer_module.Trainer):
        def __init__(self, *given, **named):
            super().__init__(*given, **named)
            self.ramp_averages = {ramp: GeneratorAverage(self.gan.generator, self.config.ema, ramp)
                                  for ramp in sorted({RAMP, *ramps})}
            made.append(self)

        def step(self):
            logs = super().step()
            for average in self.ramp_averages.values():
                average.update(self.iteration)
            return logs

    with mock.patch.object(trainer_module, "Trainer", TrainerWithRamps):
        seconds = compare_recipes.train_to(run, name, seed, steps, images, args, fresh=True)
    (trainer,) = made
    own, control = trainer.gan.average.model.get_weights(), trainer.ramp_averages[RAMP].model.get_weights()
    if not all(np.array_equal(a, b) for a, b in zip(own, control, strict=True)):
        raise SystemExit(f"{run}: the extra ramp-{RAMP:g} average differs from the run's own: the run did not "
                         "train straight through (a rollback?); nothing written")
    return trainer, {ramp: average.model for ramp, average in trainer.ramp_averages.items()}, seconds


def swd_on_draw(generate, seed_size: int, split, images: int, draw: int) -> float:
    """compare_recipes.judge's SWD with latents and held-out sample drawn with seed `draw` (0: the yardstick's)."""
    from dcgan_faces.sampling import generate_images, latents

    faces = generate_images(generate, latents(seed_size, images, seed=draw))
    return compare_recipes.heldout_swd(faces, split, draw)


def judge_average(model, config, split, n: int, args, grid: Path) -> dict:
    """An average recalibrated as the run's generator is (a copy: the average stays), its n faces judged on every
    draw."""
    from dcgan_faces.ema import Recalibrated

    shown = model
    if config.bn_recalibration:
        recalibrated = Recalibrated(model, config)
        recalibrated.refresh()
        shown = recalibrated.model
    figures = compare_recipes.judge_and_show(shown.predict_on_batch, config.seed_size, n, args.face_images, split,
                                             grid)
    draws = [figures["swd"], *(swd_on_draw(shown.predict_on_batch, config.seed_size, split, n, draw)
                               for draw in range(1, args.draws))]
    return {**figures, "swd_draws": draws}


def paired_with_default_ramp(judged: dict) -> dict:
    """Per ramp: its SWD minus ramp 10's on each draw, and on how many draws it is lower."""
    base = judged[f"{RAMP:g}"]["swd_draws"]
    paired = {}
    for ramp, figures in judged.items():
        differences = [a - b for a, b in zip(figures["swd_draws"], base, strict=True)]
        paired[ramp] = {"mean_difference": float(np.mean(differences)), "lower_on": sum(d < 0 for d in differences),
                        "draws": len(differences)}
    return paired


def ramps_of_one_seed(args) -> dict:
    from dcgan_faces.atomic import write_json
    from dcgan_faces.trained_model import load_generator

    name, seed, steps = args.candidate, args.seed, args.at
    path = args.out / f"ramps-{name}-seed{seed}.json"
    if path.exists():
        compare_recipes.log(f"{path} exists: skipped")
        return json.loads(path.read_text())
    split = compare_recipes.open_split(args)
    (args.out / "grids").mkdir(parents=True, exist_ok=True)
    compare_recipes.write_floor(args.out / "floor.json", split, args)
    images = compare_recipes.training_images(split, args)
    run = args.runs / f"{name}-seed{seed}"
    trainer, averages, seconds = train_with_ramps(run, name, seed, steps, images, args.ramps, args)
    config, n = trainer.config, min(args.eval_images, len(split.heldout))
    judged = {f"{ramp:g}": judge_average(model, config, split, n, args,
                                         args.out / "grids" / f"{name}+ramp{ramp:g}-seed{seed}-{steps}.png")
              for ramp, model in averages.items()}
    saved, _ = load_generator(run, log=compare_recipes.log)  # the run's generator.keras, as a user opens it
    result = {"candidate": name, "seed": seed, "res": args.res, "iterations": steps, "train_seconds": round(seconds, 1),
              "eval_images": n, "judged_on": split.description, "bn_recalibration": config.bn_recalibration,
              "ramps": judged, "paired_with_ramp_10": paired_with_default_ramp(judged),
              "generator_keras_swd": swd_on_draw(saved.predict_on_batch, config.seed_size, split, n, 0)}
    write_json(path, result)
    for ramp, figures in judged.items():
        compare_recipes.log(f"{name} seed {seed} ramp {ramp} at {steps}: SWD {figures['swd']:.2f} "
                            f"(draws {', '.join(f'{x:.2f}' for x in figures['swd_draws'])}), "
                            f"face rate {figures.get('more_faces', figures)['face_rate']:.4f}")
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidate", choices=list(compare_recipes.CANDIDATES), default=DEFAULT_CANDIDATE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--at", type=int, default=4467, help="iterations (default: the 64 px equal-time budget)")
    p.add_argument("--ramps", nargs="+", type=float, default=[3.0, 5.0, 20.0],
                   help="ramps judged beside the default's 10")
    p.add_argument("--draws", type=int, default=4, help="draws of latents and held-out faces (draw 0: the yardstick)")
    p.add_argument("--data", type=Path, default=compare_recipes.DEFAULT_FACES)
    p.add_argument("--holdout", type=int, default=1000)
    p.add_argument("--cache-dir", type=Path, default=REPO / "data_cache" / "recipes")
    p.add_argument("--out", type=Path, help="default experiments/recipes/ema-ramps-<res>px")
    p.add_argument("--runs", type=Path, help="default runs/recipes/ema-ramps-<res>px")
    p.add_argument("--eval-images", type=int, default=1000)
    p.add_argument("--face-images", type=int, default=10000)
    p.add_argument("--threads", type=int, default=0, help="TensorFlow threads (default: all cores)")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    args.out = args.out or REPO / "experiments" / "recipes" / f"ema-ramps-{args.res}px"
    args.runs = args.runs or REPO / "runs" / "recipes" / f"ema-ramps-{args.res}px"
    args.out.mkdir(parents=True, exist_ok=True)
    compare_recipes.set_threads(args.threads)
    compare_recipes.refuse_emulated_bfloat16([args.candidate], compare_recipes.CPUINFO)
    result = ramps_of_one_seed(args)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
