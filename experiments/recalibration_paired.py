"""--bn-recalibration judged paired: each trained run's generator as saved and with its BatchNorm statistics
recomputed, on the same latents and held-out faces, for several draws of both. Prints one JSON line per run
and draw, then a summary; the judge's own draw-to-draw noise shows beside the difference.

    PYTHONPATH=. python experiments/recalibration_paired.py --res 64 RUN_FOLDER... [--batches 16] [--draws 4]

Draw 0 is the draw `compare_recipes.py` judges with (latents seed 0, held-out sample seed 0), so its line
repeats a run's committed figure; the other draws are the same judgement with other seeds.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "experiments"))


def judged_pairs(generator, config, split, batches: int, draws: int, images: int = 1000) -> list[dict]:
    """SWD of `images` faces of the generator as saved and recalibrated against as many held-out faces, per
    draw of both; the generator is given back as it came."""
    from compare_recipes import heldout_swd

    from dcgan_faces.ema import recalibrate_batch_norm, recalibration_latents
    from dcgan_faces.sampling import generate_images, latents

    def every_draw() -> list:
        return [generate_images(generator.predict_on_batch, latents(config.seed_size, images, seed=draw))
                for draw in range(draws)]

    saved = generator.get_weights()
    faces = {"as saved": every_draw()}
    recalibrate_batch_norm(generator, recalibration_latents(dataclasses.replace(config, bn_recalibration=batches)),
                           config.batch_size)
    faces["recalibrated"] = every_draw()
    generator.set_weights(saved)
    pairs = []
    for draw in range(draws):
        swd = {tag: heldout_swd(shown[draw], split, draw) for tag, shown in faces.items()}
        pairs.append({"draw": draw, **swd, "difference": swd["recalibrated"] - swd["as saved"]})
    return pairs


def average_as_trained(run: Path):
    """(generator, config) of a run folder's newest checkpoint with the average's own BatchNorm statistics,
    whatever --bn-recalibration the run showed its faces with (its generator.keras is saved recalibrated)."""
    from dcgan_faces.trained_model import build_generator, find_generator

    found = find_generator(run, log=lambda *_: None)
    if found.checkpoint is None:
        raise SystemExit(f"{run}: not a run folder with a checkpoint; give a run folder of `train`")
    config = dataclasses.replace(found.config, bn_recalibration=0)
    return build_generator(dataclasses.replace(found, config=config, keras_file=None)), config


def main(argv: list[str] | None = None) -> dict:
    import compare_recipes

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--batches", type=int, default=16)
    p.add_argument("--draws", type=int, default=4)
    p.add_argument("--data", type=Path, default=compare_recipes.DEFAULT_FACES)
    p.add_argument("--cache-dir", type=Path, default=REPO / "data_cache" / "recipes")
    args = p.parse_args(argv)
    split = compare_recipes.open_split(argparse.Namespace(data=args.data, cache_dir=args.cache_dir, res=args.res,
                                                          holdout=1000))
    lines = []
    for run in args.runs:
        generator, config = average_as_trained(run)
        for pair in judged_pairs(generator, config, split, args.batches, args.draws):
            lines.append({"run": run.name, **pair})
            print(json.dumps(lines[-1]), flush=True)
    differences = [line["difference"] for line in lines]
    summary = {"res": args.res, "batches": args.batches, "runs": len(args.runs), "draws": args.draws,
               "mean_difference": round(statistics.fmean(differences), 3),
               "pairs_better": sum(d < 0 for d in differences), "pairs": len(differences),
               "mean_as_saved": round(statistics.fmean(line["as saved"] for line in lines), 3),
               "mean_recalibrated": round(statistics.fmean(line["recalibrated"] for line in lines), 3)}
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()
