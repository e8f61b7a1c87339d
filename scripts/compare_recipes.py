"""Which recipe gives the best faces for the same compute? Trains candidates, evaluates them, prints JSON.

    PYTHONPATH=. python scripts/compare_recipes.py speed                # steps/s of every candidate
    PYTHONPATH=. python scripts/compare_recipes.py train --candidates notebook default --seeds 0 1
    PYTHONPATH=. python scripts/compare_recipes.py report               # tables and side-by-side grids

Every candidate is the notebook recipe plus the changes listed in CANDIDATES, trained with the project's
own Trainer (the combined-model train_on_batch loop) at 32 px, batch 32, on ../shared/data/faces/celeba_6k.

Two budgets per run:
- equal iterations: the generator after --iterations steps;
- equal wall-clock: the generator after the number of steps the candidate makes in the time the notebook
  recipe needs for --iterations steps. That number comes from `speed`, which times all candidates in one
  process in interleaved rounds, so the ratios hold even on a loaded machine; training runs may then run
  side by side without skewing the budget.
Each budget's generator is evaluated with `evaluate_generator` (SWD against the real images, Haar face
hit rate) on --eval-images images from fixed latents, and a 4×7 grid of fixed latents is saved. Results
go to --out (default docs/recipes/): speed.json, results/<candidate>-seed<N>.json, grids/*.png. A
finished (candidate, seed) is skipped when run again, so the work can be split and resumed.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dcgan_faces.config import TrainConfig, recipe_settings  # noqa: E402

DEFAULT_FACES = REPO / ".." / "shared" / "data" / "faces" / "celeba_6k"
BUDGETS = ("equal_iterations", "equal_time")
GRID_ROWS, GRID_COLS, GRID_SEED = 4, 7, 2024

# Single changes, tried on the notebook recipe (by name) and on --arch dcgan ("dcgan+name"), whose own
# learning rate (2e-4) comes with it.
CHANGES = {
    "ttur": {"lr_g": 1e-4, "lr_d": 4e-4},  # two timescales, as in SAGAN / BigGAN
    "smooth": {"label_smoothing": 0.1},
    "ema": {"ema": 0.999},
    "spectral_norm": {"spectral_norm": True},
    "diffaugment": {"augment": "color,translation,cutout"},
    "mbstd": {"minibatch_stddev": True},
}
DCGAN = {"arch": "dcgan"}
CANDIDATES = {
    "notebook": {},
    "dcgan": DCGAN,
    **CHANGES,
    **{f"dcgan+{name}": {**DCGAN, **change} for name, change in CHANGES.items()},
    "default": {"recipe": "default"},  # what `python -m dcgan_faces.train` uses
    "default+bf16": {"recipe": "default", "precision": "mixed_bfloat16"},  # does bfloat16 keep the quality?
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def candidate_config(name: str, seed: int, res: int, data: str) -> TrainConfig:
    settings = {"recipe": "notebook", **CANDIDATES[name], "res": res, "seed": seed, "data": data}
    return TrainConfig(**recipe_settings({"precision": "float32", **settings}))


def open_images(args) -> np.ndarray:
    from dcgan_faces.data import open_dataset

    return open_dataset(str(args.data), args.cache_dir, args.res, 3, log=log).images


def set_threads(threads: int) -> None:
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


# ------------------------------------------------------------------------------------------------ speed

def measure_speed(args) -> dict:
    """Steps/s of each candidate: warm-up, then interleaved rounds of --speed-steps steps each; medians."""
    from dcgan_faces.trainer import Trainer

    images = open_images(args)
    trainers = {name: Trainer(candidate_config(name, 0, args.res, str(args.data)), images)
                for name in args.candidates}
    for trainer in trainers.values():
        for _ in range(3):
            trainer.step()
    rates = {name: [] for name in trainers}
    for round_ in range(args.rounds):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            for _ in range(args.speed_steps):
                trainer.step()
            rates[name].append(args.speed_steps / (time.perf_counter() - start))
        if (round_ + 1) % 10 == 0:
            log(f"round {round_ + 1}/{args.rounds}: " + ", ".join(f"{n} {r[-1]:.2f}" for n, r in rates.items()))
    base = statistics.median(rates["notebook"])
    return {
        "res": args.res, "batch_size": 32, "rounds": args.rounds, "steps_per_round": args.speed_steps,
        "steps_per_second": {name: round(statistics.median(r), 3) for name, r in rates.items()},
        "ratio_to_notebook": {name: round(statistics.median(r) / base, 3) for name, r in rates.items()},
    }


# ------------------------------------------------------------------------------------------------ train

def budgets(name: str, iterations: int, speed: dict | None) -> dict[str, int]:
    if speed is None:
        return {"equal_iterations": iterations}
    ratio = speed["ratio_to_notebook"].get(name)
    if ratio is None:
        raise SystemExit(f"speed.json has no figure for {name}: run `compare_recipes.py speed` with it first")
    return {"equal_iterations": iterations, "equal_time": max(1, round(iterations * ratio))}


def train_one(name: str, seed: int, args, speed: dict, images: np.ndarray) -> dict:
    from dcgan_faces.evaluation import evaluate_generator
    from dcgan_faces.preview import image_grid
    from dcgan_faces.sampling import generate_images, latents
    from dcgan_faces.trainer import Trainer

    config = candidate_config(name, seed, args.res, str(args.data))
    targets = budgets(name, args.iterations, speed)
    trainer = Trainer(config, images)
    result = {"candidate": name, "seed": seed, "changes": CANDIDATES[name], "res": args.res,
              "eval_images": args.eval_images, "budgets": {}}
    seconds = 0.0
    for budget, steps in sorted(targets.items(), key=lambda item: item[1]):
        start = time.perf_counter()
        while trainer.iteration < steps:
            trainer.step()
        seconds += time.perf_counter() - start
        figures = evaluate_generator(trainer.generate, images, args.eval_images, config.seed_size, seed=0)
        faces = generate_images(trainer.generate, latents(config.seed_size, GRID_ROWS * GRID_COLS, seed=GRID_SEED))
        grid = image_grid(faces, GRID_ROWS, GRID_COLS, margin=2)
        grid.save(args.out / "grids" / f"{name}-seed{seed}-{budget}.png")
        result["budgets"][budget] = {"iterations": steps, "train_seconds": round(seconds, 1),
                                     "swd": figures["swd"], "face_rate": figures["face_rate_fake"],
                                     "swd_real_floor": figures["swd_real_floor"],
                                     "face_rate_real": figures["face_rate_real"]}
        log(f"{name} seed {seed} {budget} ({steps} it): SWD {figures['swd']:.1f}, "
            f"face rate {figures['face_rate_fake']:.3f}")
    return result


def train(args) -> list[dict]:
    speed = json.loads((args.out / "speed.json").read_text()) if args.budget == "both" else None
    images = np.asarray(open_images(args))  # in memory: runs side by side do not share a page cache budget
    (args.out / "results").mkdir(parents=True, exist_ok=True)
    (args.out / "grids").mkdir(parents=True, exist_ok=True)
    results = []
    for seed in args.seeds:
        for name in args.candidates:
            path = args.out / "results" / f"{name}-seed{seed}.json"
            if path.exists() and not args.again:
                log(f"{path} exists: skipped")
                continue
            result = train_one(name, seed, args, speed, images)
            path.write_text(json.dumps(result, indent=1))
            results.append(result)
    return results


# ------------------------------------------------------------------------------------------------ report

def summarise(values: list[float]) -> dict:
    return {"mean": round(statistics.fmean(values), 3), "min": round(min(values), 3), "max": round(max(values), 3),
            "n": len(values)}


def report(args) -> dict:
    rows = [json.loads(p.read_text()) for p in sorted((args.out / "results").glob("*.json"))]
    speed_file = args.out / "speed.json"  # absent where only equal iterations were compared
    speed = json.loads(speed_file.read_text()) if speed_file.exists() else {"ratio_to_notebook": {}}
    names = [name for name in CANDIDATES if any(row["candidate"] == name for row in rows)]
    table = {}
    for name in names:
        runs = [row for row in rows if row["candidate"] == name]
        table[name] = {"changes": CANDIDATES[name], "seeds": sorted(row["seed"] for row in runs),
                       "steps_per_second_ratio": speed["ratio_to_notebook"].get(name)}
        for budget in BUDGETS:
            done = [row["budgets"][budget] for row in runs if budget in row["budgets"]]
            if done:
                table[name][budget] = {"iterations": done[0]["iterations"], "seeds": len(done),
                                       "swd": summarise([d["swd"] for d in done]),
                                       "face_rate": summarise([d["face_rate"] for d in done])}
    reference = rows[0]["budgets"]["equal_iterations"]
    table["real images"] = {"swd_floor": round(reference["swd_real_floor"], 3),
                            "face_rate": round(reference["face_rate_real"], 3)}
    for budget in BUDGETS:
        side_by_side(args.out / "grids", names, budget, args.out / f"{budget}.png")
    print(markdown(table), file=sys.stderr)
    return table


def is_default(name: str) -> bool:
    """Whether a candidate trains exactly as `python -m dcgan_faces.train` does (the recipe's name aside)."""
    def settings(candidate):
        return dataclasses.replace(candidate_config(candidate, 0, 32, ""), recipe="")
    return settings(name) == settings("default")


def markdown(table: dict) -> str:
    def spread(figures: dict, digits: int) -> str:
        return f" ({figures['min']:.{digits}f}–{figures['max']:.{digits}f})" if figures["n"] > 1 else ""

    def cells(row: dict, budget: str) -> str:
        if budget not in row:
            return "— | — | —"
        figures = row[budget]
        return (f"{figures['iterations']} | {figures['swd']['mean']:.1f}{spread(figures['swd'], 1)} | "
                f"{figures['face_rate']['mean']:.3f}{spread(figures['face_rate'], 3)}")

    lines = ["| candidate | seeds | steps/s vs notebook | iterations | SWD | face rate | iterations (equal time) "
             "| SWD | face rate |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in table.items():
        if name == "real images":
            continue
        ratio = row["steps_per_second_ratio"]
        label = f"**{name}** (the default)" if is_default(name) else name
        lines.append(f"| {label} | {len(row['seeds'])} | {f'{ratio:.2f}×' if ratio else '—'} | "
                     f"{cells(row, 'equal_iterations')} | {cells(row, 'equal_time')} |")
    real = table["real images"]
    lines.append(f"| real images | | | | {real['swd_floor']:.1f} (floor) | {real['face_rate']:.3f} | | | |")
    return "\n".join(lines)


def side_by_side(grids: Path, names: list[str], budget: str, path: Path) -> None:
    """Seed 0's grid of every candidate in one column, each under its name."""
    from PIL import Image, ImageDraw

    tiles = [(name, grids / f"{name}-seed0-{budget}.png") for name in names]
    tiles = [(name, Image.open(p)) for name, p in tiles if p.exists()]
    if not tiles:
        return
    width, label = max(t.width for _, t in tiles), 14
    canvas = Image.new("RGB", (width, sum(t.height + label for _, t in tiles)), "white")
    top = 0
    for name, tile in tiles:
        ImageDraw.Draw(canvas).text((2, top + 1), name, fill="black")
        canvas.paste(tile, (0, top + label))
        top += tile.height + label
    canvas.save(path)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("speed", "train", "report"))
    p.add_argument("--candidates", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--iterations", type=int, default=1500, help="the equal-iterations budget (default 1500)")
    p.add_argument("--res", type=int, default=32)
    p.add_argument("--data", type=Path, default=DEFAULT_FACES)
    p.add_argument("--cache-dir", type=Path, default=REPO / "data_cache" / "recipes")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "recipes")
    p.add_argument("--eval-images", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=30, help="speed: interleaved rounds (default 30)")
    p.add_argument("--speed-steps", type=int, default=1, help="speed: steps per candidate per round (default 1: "
                   "fine interleaving, so that changes in the machine's load hit every candidate alike)")
    p.add_argument("--threads", type=int, default=0, help="TensorFlow threads (default: all cores)")
    p.add_argument("--budget", choices=("both", "iterations"), default="both",
                   help="train: both budgets (needs speed.json), or equal iterations only")
    p.add_argument("--again", action="store_true", help="train: redo runs whose results exist")
    return p


def main() -> None:
    args = parser().parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    set_threads(args.threads)
    if args.action == "speed":
        result = measure_speed(args)
        (args.out / "speed.json").write_text(json.dumps(result, indent=1))
    elif args.action == "train":
        result = train(args)
    else:
        result = report(args)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
