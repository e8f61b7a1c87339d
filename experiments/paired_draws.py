"""A candidate's run judged on the yardstick's draw and more, paired draw by draw with the default's own runs.

    PYTHONPATH=. python experiments/paired_draws.py RUN --seed 0 --at 4467 --out result.json

The generator of run folder RUN at checkpoint --at (recalibrated as the run's config asks, as a user opening
that checkpoint would get it) makes --eval-images faces from the latents of each of --draws draws, judged by SWD
against as many held-out faces of the same draw (draw 0: the yardstick's, as `compare_recipes.py` judges), and
paired with the default's recalibrated run of the same seed (`recalibration_paired.py`'s paired.jsonl, judged at
4,467 iterations). Prints the result and writes it to --out atomically.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "experiments"))

import compare_recipes  # noqa: E402
import ema_ramps  # noqa: E402
import lr_decay  # noqa: E402


def generator_at(run: Path, iteration: int, work: Path):
    """(generator, config) of `run`'s checkpoint at `iteration`: a copy of the run holding only that checkpoint,
    opened as any run folder is."""
    from dcgan_faces import checkpoint
    from dcgan_faces.runfolder import RunFolder
    from dcgan_faces.trained_model import load_generator

    source = RunFolder(run)
    wanted = source.checkpoints / checkpoint.file_name(iteration)
    if not wanted.exists():
        raise SystemExit(f"{run}: no checkpoint at iteration {iteration} (has "
                         f"{', '.join(p.name for p in source.checkpoint_files()) or 'none'})")
    copy = RunFolder(work / "run")
    copy.checkpoints.mkdir(parents=True)
    shutil.copy2(source.config_path, copy.config_path)
    shutil.copy2(wanted, copy.checkpoints / wanted.name)
    return load_generator(copy.path, log=compare_recipes.log)


def paired_draws(args) -> dict:
    split = compare_recipes.open_split(args)
    n = min(args.eval_images, len(split.heldout))
    with tempfile.TemporaryDirectory() as work:
        generator, config = generator_at(args.run, args.at, Path(work))
        draws = [ema_ramps.swd_on_draw(generator.predict_on_batch, config.seed_size, split, n, draw)
                 for draw in range(args.draws)]
    return {"run": args.run.name, "seed": args.seed, "iterations": args.at, "eval_images": n,
            "judged_on": split.description, "swd_draws": draws,
            "paired_with_default": lr_decay.paired(draws, lr_decay.baseline_draws(args.baseline, args.seed,
                                                                                  args.draws))}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="the candidate's run folder")
    p.add_argument("--seed", type=int, required=True, help="the run's seed: the default's run it is paired with")
    p.add_argument("--at", type=int, required=True, help="the checkpoint's iteration")
    p.add_argument("--out", type=Path, required=True, help="the result's JSON file")
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--draws", type=int, default=4, help="draws of latents and held-out faces (draw 0: the yardstick)")
    p.add_argument("--baseline", type=Path, default=lr_decay.BASELINE, help="the default's paired.jsonl")
    p.add_argument("--data", type=Path, default=compare_recipes.DEFAULT_FACES)
    p.add_argument("--holdout", type=int, default=1000)
    p.add_argument("--cache-dir", type=Path, default=REPO / "data_cache" / "recipes")
    p.add_argument("--eval-images", type=int, default=1000)
    p.add_argument("--threads", type=int, default=0, help="TensorFlow threads (default: all cores)")
    return p


def main(argv: list[str] | None = None) -> dict:
    from dcgan_faces.atomic import write_json

    args = parser().parse_args(argv)
    compare_recipes.set_threads(args.threads)
    result = paired_draws(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
