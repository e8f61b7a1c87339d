"""Which recipe gives the best faces for the same wall-clock time? Trains candidates, judges them on faces
none of them trained on, prints JSON.

    PYTHONPATH=. python experiments/compare_recipes.py speed --res 32   # each candidate's speed vs the notebook loop
    PYTHONPATH=. python experiments/compare_recipes.py train --res 32 --candidates notebook default --seeds 0 1
    PYTHONPATH=. python experiments/compare_recipes.py report --res 32     # the table and side-by-side grids

Data: ../shared/data/faces/celeba_6k, split by file name: the last --holdout files (default 1,000: 005001.jpg
to 006000.jpg) are held out; every candidate trains on the rest, and is judged against the held-out faces
only. The floor beside every figure is the real training faces measured the same way against them.

Budgets, counted in the course notebook's own loop (experiments/benchmark.py's NotebookLoop: stock layers,
generator.predict, float64 data), the way a person running the notebook would spend their time:
- equal iterations: --iterations steps (default 2,000 at 32 px, 1,000 at larger sizes); for the notebook
  recipe that is what the notebook itself trains in the time;
- equal time: the steps a candidate makes with this project's Trainer in the time the notebook loop needs
  for --iterations. The ratio comes from `speed`, which times the loop and all candidates in one process,
  one step each in turn, so that load on the machine hits every contestant alike; training runs may then
  run side by side (one thread each) without skewing the budget.
At each budget the generator (its moving average where the candidate has one) makes --eval-images faces
from fixed latents, scored by SWD against the held-out faces and the Haar face hit rate, and a 4×7 grid.
The face rate is read again over the first --face-images latents (default 10,000; the floor: up to as many
real training faces), as `more_faces`: of 1,000 faces, chance alone moves it by about ±0.006, as much as the
seed spreads it is compared by.
Each run is a user's run: `python -m dcgan_faces.train` (its `main`, in this process) with the candidate's
flags, `--data` the training split saved as an array, into a run folder under --runs (default
runs/recipes/heldout-<res>px/<candidate>-seed<N>); trained to the first budget, judged from the run folder's
generator as `generate` and `evaluate` open it, then resumed to the second and judged again. A run cut short
resumes where it stopped.
Results go to --out (default experiments/recipes/heldout-<res>px/): speed.json, results/<candidate>-seed<N>.json
(written atomically as each run finishes), grids/*.png. A finished (candidate, seed) is skipped when run
again: a long comparison is resumed, one run at a time, across sessions.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dcgan_faces.config import TRANSLATION_SHIFT, TrainConfig, flag_name, recipe_settings  # noqa: E402
from dcgan_faces.ema import RAMP  # noqa: E402

DEFAULT_FACES = REPO / ".." / "shared" / "data" / "faces" / "celeba_6k"
BUDGETS = ("equal_iterations", "equal_time")
GRID_ROWS, GRID_COLS, GRID_SEED = 4, 7, 2024
NOTEBOOK_LOOP = "notebook loop"  # the speed reference: the course notebook's own loop (benchmark.py)
REAL = "real training faces"  # the floor: real faces, judged as the candidates are
CPUINFO = Path("/proc/cpuinfo")  # where this CPU's bfloat16 instructions are looked up

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
# The default the search started from and its tables call "default": the notebook's networks and loop with
# the moving average. `python -m dcgan_faces.train` has since dropped D's dropout (issue 23) and halved the
# generator's width and recomputes the average's BatchNorm statistics (issue 37): it is
# "default+gf128+ddrop0+bnr16", and from 64 px, where it shifts what D sees by up to 1/16 of its size,
# "default+gf128+ddrop0+bnr16+translation0.0625".
DEFAULT = {"recipe": "default", "d_dropout": 0.25, "g_filters": 256, "bn_recalibration": 0, "augment": "",
           "augment_shift": TRANSLATION_SHIFT}
# Changes to the default, searched at equal wall-clock time (issue 23)
DEFAULT_CHANGES = {
    "lr3e-4": {"lr": 3e-4},  # the notebook's 1.5e-4 was never tuned per wall-clock
    "lr2e-4": {"lr": 2e-4},
    "lr1e-4": {"lr": 1e-4},  # higher rates raised the face rate and worsened SWD: the other way
    "lr_d3e-4": {"lr_d": 3e-4},
    "smooth": {"label_smoothing": 0.1},
    # the average's decay ramps up as (1+k)/(10+k), which stays below 0.998 until iteration 4,490: at the
    # 32 px budgets these two train and average exactly as the default does
    "ema0.9995": {"ema": 0.9995},
    "ema0.998": {"ema": 0.998},
    "b64": {"batch_size": 64, "lr": 2.1e-4},  # twice the batch, the rate × √2; other work: timed on its own
    # how much of the run the average spans while it ramps up (about 1/(R-1); the default's R 10: a ninth)
    **{f"ramp{ramp:g}": {"ema_ramp": float(ramp)} for ramp in (3, 5, 20, 50)},
    **{f"ddrop{rate:g}": {"d_dropout": rate} for rate in (0.0, 0.1, 0.5)},  # D's dropout (the notebook's 0.25)
    # a narrower generator (the notebook's 256): G is ~90% of an iteration's arithmetic; other work, timed
    **{f"gf{filters}": {"g_filters": filters} for filters in (96, 128, 192)},
    # the narrower generator, which won SWD at both sizes, with the rate that raised the face rate
    "gf128+lr2e-4": {"g_filters": 128, "lr": 2e-4},
    # the narrower generator with the dropout rate that gave the best single seed at full width
    "gf128+ddrop0.1": {"g_filters": 128, "d_dropout": 0.1},
    # D's dropout 0.1 won SWD at both sizes and face rate at 64 px; 2e-4 raised the face rate at 32 px
    "ddrop0.1+lr2e-4": {"d_dropout": 0.1, "lr": 2e-4},
    # on top of the default since issue 23 (no dropout in D): the narrower generator, and the faster rate
    "gf128+ddrop0": {"g_filters": 128, "d_dropout": 0.0},
    "ddrop0+lr2e-4": {"d_dropout": 0.0, "lr": 2e-4},
    # the 64 px search on top of no dropout in D (issue 37): two timescales, Adam's β2 0.99 (β1 0.5 or 0), the
    # hinge loss, spectral normalisation in D (other work: timed on its own)
    "ddrop0+ttur": {"d_dropout": 0.0, "lr_g": 1e-4, "lr_d": 4e-4},
    "ddrop0+beta2_0.99": {"d_dropout": 0.0, "beta2": 0.99},
    "ddrop0+beta1_0+beta2_0.99": {"d_dropout": 0.0, "beta1": 0.0, "beta2": 0.99},
    "ddrop0+hinge": {"d_dropout": 0.0, "loss": "hinge"},
    "ddrop0+sn": {"d_dropout": 0.0, "spectral_norm": True},
    "ddrop0+b64": {"d_dropout": 0.0, "batch_size": 64, "lr": 2.1e-4},
    # on top of today's default (issue 37, second part): Adam's β2 0.99, and both rates 2e-4 (the fastest
    # learner per iteration at 64 px, the best SWD at 32 px with D's dropout 0.1); both do gf128+ddrop0's work
    "gf128+ddrop0+beta2_0.99": {"g_filters": 128, "d_dropout": 0.0, "beta2": 0.99},
    "gf128+ddrop0+lr2e-4": {"g_filters": 128, "d_dropout": 0.0, "lr": 2e-4},
    # the hinge loss, which stops pushing D on samples it already tells apart by a margin (D's lead grows over the
    # full default run), and spectral normalisation in D: other work, timed beside today's default
    "gf128+ddrop0+hinge": {"g_filters": 128, "d_dropout": 0.0, "loss": "hinge"},
    "gf128+ddrop0+sn": {"g_filters": 128, "d_dropout": 0.0, "spectral_norm": True},
    # a discriminator half as wide (--d-filters 256): D's two steps and its part of G's are over half of an
    # iteration in bfloat16 at 64 px (benchmarks/profile-64px-default-auto.json); the narrower G won by speed
    "gf128+ddrop0+df256": {"g_filters": 128, "d_dropout": 0.0, "d_filters": 256},
    # a still narrower generator, the one change that won by speed with its faces keeping pace per iteration, and
    # on it twice the batch with the rate × √2 (bfloat16 makes the larger batch cheaper per image): other work
    "gf96+ddrop0": {"g_filters": 96, "d_dropout": 0.0},
    "gf96+ddrop0+b64": {"g_filters": 96, "d_dropout": 0.0, "batch_size": 64, "lr": 2.1e-4},
    # real faces flipped at random (--mirror): D's accuracy climbs to 0.97 over the full run on 5,000 faces, and a
    # mirrored face is a face; a flip of the real batch is no work
    "gf128+ddrop0+mirror": {"g_filters": 128, "d_dropout": 0.0, "mirror": True},
    # the average's BatchNorm statistics recomputed for its own weights (--bn-recalibration BATCHES): what the
    # default's run trains is untouched, so these judge the default's own runs again (a run folder copied)
    **{f"gf128+ddrop0+bnr{batches}": {"g_filters": 128, "d_dropout": 0.0, "bn_recalibration": batches}
       for batches in (16, 64)},
    # DiffAugment's translation of every image D sees (--augment translation): D's accuracy climbs to 0.97 over the
    # full run on 5,000 faces, the regime where Zhao et al. 2020 found augmenting D's inputs pays; other work
    "gf128+ddrop0+bnr16+translation": {"g_filters": 128, "d_dropout": 0.0, "bn_recalibration": 16,
                                       "augment": "translation"},
    # the same with half the largest shift (--augment-shift 0.0625): translation lowered SWD at 64 px but cost
    # faces, most at 32 px; the same work, a narrower range of shifts
    "gf128+ddrop0+bnr16+translation0.0625": {"g_filters": 128, "d_dropout": 0.0, "bn_recalibration": 16,
                                             "augment": "translation", "augment_shift": 0.0625},
    # R1 on real images every 16 iterations (--r1 GAMMA); its extra step is other work: timed on its own
    **{f"r1_{gamma:g}": {"r1": gamma} for gamma in (0.1, 1.0, 10.0)},
    **{f"gf128+r1_{gamma:g}": {"g_filters": 128, "r1": gamma} for gamma in (0.1, 1.0, 10.0)},
}
CANDIDATES = {
    "notebook": {},
    "dcgan": DCGAN,
    **CHANGES,
    **{f"dcgan+{name}": {**DCGAN, **change} for name, change in CHANGES.items()},
    "default": DEFAULT,
    "default+bf16": {**DEFAULT, "precision": "mixed_bfloat16"},  # does bfloat16 keep the quality?
    **{f"default+{name}": {**DEFAULT, **change} for name, change in DEFAULT_CHANGES.items()},
    # the same changes on a CPU with bfloat16 instructions, where default+bf16 is the one to beat
    **{f"default+bf16+{name}": {**DEFAULT, "precision": "mixed_bfloat16", **change}
       for name, change in DEFAULT_CHANGES.items()},
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def candidate_settings(name: str) -> dict:
    """The settings a candidate gives on top of its recipe (the notebook's unless it names one), in float32
    unless it names a precision."""
    return {"recipe": "notebook", "precision": "float32", **CANDIDATES[name]}


def candidate_config(name: str, seed: int, res: int, data: str) -> TrainConfig:
    return TrainConfig(**recipe_settings({**candidate_settings(name), "res": res, "seed": seed, "data": data}))


@dataclasses.dataclass
class Split:
    train: np.ndarray  # uint8 (N, res, res, 3): every candidate trains on these
    heldout: np.ndarray  # judged against these only
    description: str


def split_by_name(images: np.ndarray, names: list[str], holdout: int) -> Split:
    """The last `holdout` images by file name held out; the cache must hold every file, in name order."""
    if len(names) != len(images):
        raise SystemExit(f"the cache holds {len(images)} images for {len(names)} files (some were skipped): a split "
                         "by file name needs them all")
    if not 0 < holdout < len(images):
        raise SystemExit(f"--holdout {holdout}: give a number between 1 and {len(images) - 1}")
    cut = len(images) - holdout
    return Split(images[:cut], images[cut:], f"trained on the first {cut:,} files by name ({names[0]}–"
                 f"{names[cut - 1]}), judged on the last {holdout:,} ({names[cut]}–{names[-1]})")


def open_split(args) -> Split:
    from dcgan_faces.data import open_dataset
    from dcgan_faces.sources.folder import find_images

    dataset = open_dataset(str(args.data), args.cache_dir, args.res, 3, log=log)
    # in memory: runs side by side do not share a page-cache budget
    return split_by_name(np.asarray(dataset.images), [p.name for p in find_images(args.data)], args.holdout)


def refuse_emulated_bfloat16(names: list[str], cpuinfo: Path) -> None:
    """A bfloat16 candidate on a CPU without bfloat16 instructions would train emulated, several times
    slower (a 32 px run for hours), and its speed figures would describe the emulation. Where `--precision
    auto` would train float32, bfloat16 is emulated."""
    from dcgan_faces.precision import BFLOAT16_FLAGS, choose

    wanting = [name for name in names if CANDIDATES[name].get("precision") == "mixed_bfloat16"]
    if wanting and choose(TrainConfig(precision="auto"), cpuinfo).policy == "float32":
        raise SystemExit(f"{', '.join(wanting)}: this CPU has no bfloat16 instructions "
                         f"({' or '.join(sorted(BFLOAT16_FLAGS))}), so mixed_bfloat16 would run emulated, several "
                         "times slower: run these candidates on a CPU that has them")


def set_threads(threads: int) -> None:
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def base_iterations(args) -> int:
    """The notebook loop's budget: 2,000 iterations at 32 px and below, 1,000 above (issue 23)."""
    return args.iterations or (2000 if args.res <= 32 else 1000)


# ------------------------------------------------------------------------------------------------ speed

def benchmark():
    """experiments/benchmark.py, for its port of the notebook's loop and its interleaved timing."""
    if str(REPO / "experiments") not in sys.path:
        sys.path.insert(0, str(REPO / "experiments"))
    import benchmark

    return benchmark


def notebook_loop(res: int, images: np.ndarray):
    return benchmark().NotebookLoop(TrainConfig(res=res, recipe="notebook", precision="float32"), images)


def measure_speed(args) -> dict:
    """Seconds per step of the notebook loop and every candidate: warm-up, then interleaved rounds (the order
    reversed every other round); medians. A round is one step, or R1's period where a candidate has R1, so
    that every round holds its lazy penalty step once: a median of single steps would leave it out."""
    from dcgan_faces.trainer import Trainer

    images = open_split(args).train
    loops = {NOTEBOOK_LOOP: notebook_loop(args.res, images)}
    loops.update({name: Trainer(candidate_config(name, 0, args.res, str(args.data)), images)
                  for name in args.candidates})
    for loop in loops.values():
        for _ in range(3):
            loop.step()
    seconds = benchmark().timed_rounds(loops, args.rounds, per_round=steps_per_round(args.candidates))
    median = pooled_medians(seconds)
    return {
        "res": args.res, "rounds": args.rounds, "reference": NOTEBOOK_LOOP,
        "seconds_per_step": {name: round(value, 4) for name, value in median.items()},
        "ratio_to_notebook_loop": {name: round(median[NOTEBOOK_LOOP] / value, 3) for name, value in median.items()},
        "pooled": "candidates that do the same work (they differ only in learning rates, betas, labels, the "
                  "loss, the average's decay or ramp, a dropout rate above 0 or R1's weight above 0) share one "
                  "figure: the median of all their steps",
        "rounds_seconds": {name: [round(x, 4) for x in values] for name, values in seconds.items()},
    }


def steps_per_round(candidates: list[str]) -> int:
    """The fewest steps that hold each candidate's periodic work (R1 every r1_every steps) a whole number of times."""
    configs = [candidate_config(name, 0, 32, "") for name in candidates]
    return math.lcm(1, *(config.r1_every for config in configs if config.r1 > 0))


def same_work(name: str) -> TrainConfig | str:
    """What decides a contestant's time per step: its config without the settings that change no work
    (a dropout rate does not, nor R1's weight, nor the loss: a few ops on D's (batch, 1) output, nor mirroring
    the real batch, nor how far --augment translation shifts; dropping no activations at all does, and R1 at
    all)."""
    if name == NOTEBOOK_LOOP:
        return name
    config = candidate_config(name, 0, 32, "")
    return dataclasses.replace(config, recipe="", lr=0.0, lr_g=None, lr_d=None, beta1=0.0, beta2=0.0,
                               label_smoothing=0.0, loss="", mirror=False, augment_shift=TRANSLATION_SHIFT,
                               label_noise=0.0, ema=float(config.ema > 0), ema_ramp=RAMP,
                               d_dropout=float(config.d_dropout > 0), r1=float(config.r1 > 0))


def pooled_medians(seconds: dict[str, list[float]]) -> dict[str, float]:
    """Each contestant's median step time, pooled over the contestants that do the same work, so that
    noise does not give equal work unequal budgets."""
    return {name: statistics.median([x for other, values in seconds.items() if same_work(other) == same_work(name)
                                     for x in values]) for name in seconds}


def merged_speed(before: dict | None, measured: dict) -> dict:
    """A new measurement added to speed.json: its contestants' figures replace theirs, the others stay, so
    that the budgets of runs already made keep their figures. Only ratios to the notebook loop measured in
    the same process are comparable; seconds from two measurements are not."""
    if before is None:
        return measured
    if before["res"] != measured["res"]:
        raise SystemExit(f"speed.json is for {before['res']} px, this measurement for {measured['res']} px: "
                         "give another --out")
    merged = {**measured, "earlier_measurements": [*before.get("earlier_measurements", []),
                                                   {key: before[key] for key in ("rounds", "seconds_per_step")}]}
    for key in ("seconds_per_step", "ratio_to_notebook_loop", "rounds_seconds"):
        merged[key] = {**{name: value for name, value in before[key].items() if name not in measured[key]},
                       **measured[key]}
    return merged


# ------------------------------------------------------------------------------------------------ train

def speed_ratio(name: str, speed: dict) -> float | None:
    """The candidate's measured speed against the notebook loop, or that of a measured one doing the same work."""
    ratios = speed["ratio_to_notebook_loop"]
    if name in ratios:
        return ratios[name]
    return next((ratio for other, ratio in ratios.items() if same_work(other) == same_work(name)), None)


def budgets(name: str, iterations: int, speed: dict) -> dict[str, int]:
    ratio = speed_ratio(name, speed)
    if ratio is None:
        raise SystemExit(f"speed.json has no figure for {name} or any candidate doing the same work: run "
                         "`compare_recipes.py speed` with it first")
    return {"equal_iterations": iterations, "equal_time": max(1, round(iterations * ratio))}


def heldout_swd(faces: np.ndarray, split: Split, seed: int = 0) -> float:
    """SWD of `faces` against as many held-out faces, both drawn with `seed` (0: the yardstick's draw)."""
    from dcgan_faces.evaluation import sample_real
    from dcgan_faces.metrics import sliced_wasserstein

    return sliced_wasserstein(sample_real(split.heldout, len(faces), seed), faces, seed)["swd"]


def judge(faces: np.ndarray, split: Split, seed: int = 0) -> dict:
    """SWD of `faces` against as many held-out faces, and their face hit rate."""
    from dcgan_faces.metrics import face_hit_rate

    return {"swd": heldout_swd(faces, split, seed), "face_rate": face_hit_rate(faces)}


def floor(split: Split, n: int) -> dict:
    """The real training faces judged as a candidate's faces are: the best any generator can expect."""
    from dcgan_faces.evaluation import sample_real

    n = min(n, len(split.heldout))
    return {"images": n, **judge(sample_real(split.train, n, seed=1), split)}


def more_real_faces(split: Split, n: int) -> dict:
    """The face rate of up to n real training faces: the floor beside a candidate's `more_faces`."""
    from dcgan_faces.evaluation import sample_real
    from dcgan_faces.metrics import face_hit_rate

    n = min(n, len(split.train))
    return {"images": n, "face_rate": face_hit_rate(sample_real(split.train, n, seed=1))}


def judge_and_show(generate: Callable, seed_size: int, n: int, face_images: int, split: Split,
                   grid: Path) -> dict:
    """`generate`'s faces for n fixed latents judged against the held-out faces, and its face rate over the
    first `face_images` latents too (of 1,000 faces, chance alone moves the rate by ±0.006, as much as the
    seed spreads being compared); its 4×7 grid saved."""
    from dcgan_faces.metrics import face_hit_rate
    from dcgan_faces.preview import image_grid
    from dcgan_faces.sampling import generate_images, latents

    faces = generate_images(generate, latents(seed_size, max(n, face_images), seed=0))  # the first n: as before
    figures = judge(faces[:n], split)
    if face_images > n:
        figures["more_faces"] = {"images": face_images, "face_rate": face_hit_rate(faces)}
    faces = generate_images(generate, latents(seed_size, GRID_ROWS * GRID_COLS, seed=GRID_SEED))
    image_grid(faces, GRID_ROWS, GRID_COLS, margin=2).save(grid)
    return figures


def candidate_flags(name: str, seed: int, res: int) -> list[str]:
    """The flags of `python -m dcgan_faces.train` that train candidate `name` as a user's run would."""
    flags = []
    for field, value in {**candidate_settings(name), "res": res, "seed": seed}.items():
        if isinstance(value, bool):
            flags.append(flag_name(field) if value else "--no-" + flag_name(field)[2:])
        else:
            flags += [flag_name(field), str(value)]
    return flags


def training_images(split: Split, args) -> Path:
    """The training split as a uint8 array file: what `--data` gives the trainer (the held-out faces are not in it)."""
    import hashlib

    digest = hashlib.sha1(split.description.encode()).hexdigest()[:8]
    path = Path(args.cache_dir) / f"{Path(args.data).name}-train-{args.res}px-{digest}.npy"
    if not path.exists():
        from dcgan_faces.atomic import write_atomically

        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda temporary: np.save(temporary, split.train))
    return path


def train_to(run: Path, name: str, seed: int, steps: int, images: Path, args, fresh: bool = False) -> float:
    """`python -m dcgan_faces.train` with the candidate's flags, in-process, until iteration `steps` (resuming the
    run in `run`); its wall-clock seconds."""
    from dcgan_faces import train as train_command

    flags = [*candidate_flags(name, seed, args.res), "--data", str(images), "--cache-dir", str(args.cache_dir),
             "--out", str(run), "--steps", str(steps), "--save-every", str(steps), *(["--fresh"] if fresh else [])]
    start = time.perf_counter()
    code = train_command.main(flags)
    if code != 0:
        raise SystemExit(f"{name} seed {seed}: python -m dcgan_faces.train {' '.join(flags)} exited with {code}")
    return time.perf_counter() - start


def train_one(name: str, seed: int, args, speed: dict, split: Split, images: Path) -> dict:
    """One candidate and seed: trained to each budget in turn by the trainer's own entry point, the run's
    generator judged at each."""
    from dcgan_faces.trained_model import load_generator, model_iteration

    run = args.runs / f"{name}-seed{seed}"
    targets = sorted(budgets(name, base_iterations(args), speed).items(), key=lambda item: item[1])
    reached = model_iteration(run) if run.is_dir() else None
    fresh = args.again or (reached is not None and reached > targets[0][1])  # past a budget: its figures are gone
    n = min(args.eval_images, len(split.heldout))
    result = {"candidate": name, "seed": seed, "changes": CANDIDATES[name], "res": args.res, "eval_images": n,
              "judged_on": split.description, "run": str(run), "budgets": {}}
    seconds = 0.0
    for budget, steps in targets:
        seconds += train_to(run, name, seed, steps, images, args, fresh=fresh and not result["budgets"])
        generator, config = load_generator(run, log=log)
        figures = judge_and_show(generator.predict_on_batch, config.seed_size, n, args.face_images, split,
                                 args.out / "grids" / f"{name}-seed{seed}-{budget}.png")
        result["budgets"][budget] = {"iterations": steps, "train_seconds": round(seconds, 1), **figures}
        more = figures.get("more_faces")
        log(f"{name} seed {seed} {budget} ({steps} it): SWD {figures['swd']:.1f}, face rate {figures['face_rate']:.3f}"
            + (f" ({more['face_rate']:.4f} of {more['images']:,})" if more else ""))
    return result


def write_floor(path: Path, split: Split, args) -> None:
    """floor.json, once; a floor written before `more_faces` existed gains it, its other figures kept."""
    from dcgan_faces.atomic import write_json

    known = json.loads(path.read_text()) if path.exists() else {}
    wanted = {**known} if known else {"judged_on": split.description, **floor(split, args.eval_images)}
    if args.face_images > wanted["images"] and "more_faces" not in wanted:
        wanted["more_faces"] = more_real_faces(split, args.face_images)
    if wanted != known:
        write_json(path, wanted)


def train(args) -> list[dict]:
    from dcgan_faces.atomic import write_json

    speed = json.loads((args.out / "speed.json").read_text())
    split = open_split(args)
    (args.out / "results").mkdir(parents=True, exist_ok=True)
    (args.out / "grids").mkdir(parents=True, exist_ok=True)
    write_floor(args.out / "floor.json", split, args)
    images = training_images(split, args)
    results = []
    for seed in args.seeds:
        for name in args.candidates:
            path = args.out / "results" / f"{name}-seed{seed}.json"
            if path.exists() and not args.again:
                log(f"{path.name} exists: skipped")
                continue
            results.append(train_one(name, seed, args, speed, split, images))
            write_json(path, results[-1])
    return results


def curve(args) -> dict:
    """One candidate and seed trained once to the last of --at, judged at each of --at on the way (a run
    resumed is the run it would have been: nothing in a run depends on its planned length). The result file
    is rewritten as each point is judged, so a long run's curve is committed point by point. A point's
    train_seconds are those of the training since the previous call stopped (a session cut short loses its)."""
    from dcgan_faces.atomic import write_json
    from dcgan_faces.trained_model import load_generator, model_iteration

    (name,), seed = args.candidates, args.seeds[0]
    split = open_split(args)
    (args.out / "grids").mkdir(parents=True, exist_ok=True)
    write_floor(args.out / "floor.json", split, args)
    images = training_images(split, args)
    path = args.out / f"curve-{name}-seed{seed}.json"
    run = args.runs / f"{name}-seed{seed}"
    result = json.loads(path.read_text()) if path.exists() and not args.again else {
        "candidate": name, "seed": seed, "changes": CANDIDATES[name], "res": args.res,
        "eval_images": min(args.eval_images, len(split.heldout)), "judged_on": split.description, "points": []}
    judged = {point["iterations"] for point in result["points"]}
    reached = model_iteration(run) if run.is_dir() and not args.again else None
    for steps in sorted(set(args.at) - judged):
        if reached is not None and reached > steps:
            raise SystemExit(f"{run} is at iteration {reached}, past {steps}: give --again to start over")
        seconds = train_to(run, name, seed, steps, images, args, fresh=args.again and not result["points"])
        generator, config = load_generator(run, log=log)
        figures = judge_and_show(generator.predict_on_batch, config.seed_size, result["eval_images"],
                                 args.face_images, split, args.out / "grids" / f"{name}-seed{seed}-{steps}.png")
        result["points"].append({"iterations": steps, "train_seconds": round(seconds, 1), **figures})
        write_json(path, result)
        log(f"{name} seed {seed} at {steps}: SWD {figures['swd']:.1f}, face rate {figures['face_rate']:.3f}")
    return result


# ------------------------------------------------------------------------------------------------ report

def summarise(values: list[float], digits: int = 3) -> dict:
    return {"mean": round(statistics.fmean(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "n": len(values)}


def report(args) -> dict:
    rows = [json.loads(p.read_text()) for p in sorted((args.out / "results").glob("*.json"))]
    if not rows:
        raise SystemExit(f"no results in {args.out / 'results'}: run `compare_recipes.py train` first")
    speed = json.loads((args.out / "speed.json").read_text())
    names = [name for name in CANDIDATES if any(row["candidate"] == name for row in rows)]
    table = {}
    for name in names:
        runs = [row for row in rows if row["candidate"] == name]
        table[name] = {"changes": CANDIDATES[name], "seeds": sorted(row["seed"] for row in runs),
                       "speed_vs_notebook_loop": speed_ratio(name, speed)}
        for budget in BUDGETS:
            done = [row["budgets"][budget] for row in runs if budget in row["budgets"]]
            if done:
                table[name][budget] = {"iterations": done[0]["iterations"], "seeds": len(done),
                                       "swd": summarise([d["swd"] for d in done]),
                                       "face_rate": summarise([d["face_rate"] for d in done])}
                more = [d.get("more_faces") for d in done]
                if all(more) and len({m["images"] for m in more}) == 1:  # only figures that compare
                    table[name][budget]["more_faces"] = {"images": more[0]["images"],
                                                         "face_rate": summarise([m["face_rate"] for m in more], 4)}
    table[REAL] = json.loads((args.out / "floor.json").read_text())
    for budget in BUDGETS:
        side_by_side(args.out / "grids", names, budget, args.out / f"{budget}.png")
    print(markdown(table, args.res), file=sys.stderr)
    return table


def is_default(name: str, res: int) -> bool:
    """Whether a candidate trains exactly as `python -m dcgan_faces.train --res {res}` does in float32 (the
    recipe's name aside)."""
    default = TrainConfig(**recipe_settings({"precision": "float32", "res": res, "seed": 0, "data": ""}))
    candidate = candidate_config(name, 0, res, "")
    return dataclasses.replace(candidate, recipe="") == dataclasses.replace(default, recipe="")


def markdown(table: dict, res: int) -> str:
    def spread(figures: dict, digits: int) -> str:
        return f" ({figures['min']:.{digits}f}–{figures['max']:.{digits}f})" if figures["n"] > 1 else ""

    def cells(row: dict, budget: str) -> str:
        if budget not in row:
            return "— | — | —"
        figures = row[budget]
        return (f"{figures['iterations']} | {figures['swd']['mean']:.1f}{spread(figures['swd'], 1)} | "
                f"{figures['face_rate']['mean']:.3f}{spread(figures['face_rate'], 3)}")

    def more_faces(figures: dict) -> str:
        more = figures.get("more_faces")
        if not more:
            return "—"
        return f"{more['face_rate']['mean']:.4f}{spread(more['face_rate'], 4)} of {more['images']:,}"

    lines = ["| candidate | seeds | speed vs notebook loop | iterations | SWD | face rate | iterations (equal time) "
             "| SWD | face rate | face rate of more faces (equal time) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in table.items():
        if name == REAL:
            continue
        ratio = row["speed_vs_notebook_loop"]
        label = f"**{name}** (the default)" if is_default(name, res) else name
        lines.append(f"| {label} | {len(row['seeds'])} | {f'{ratio:.2f}×' if ratio else '—'} | "
                     f"{cells(row, 'equal_iterations')} | {cells(row, 'equal_time')} | "
                     f"{more_faces(row.get('equal_time', {}))} |")
    real = table[REAL]
    real_more = f"{real['more_faces']['face_rate']:.4f} of {real['more_faces']['images']:,}" \
        if "more_faces" in real else ""
    lines.append(f"| {REAL} (floor) | | | | {real['swd']:.1f} | {real['face_rate']:.3f} | | | | {real_more} |")
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
    p.add_argument("action", choices=("speed", "train", "curve", "report"))
    p.add_argument("--candidates", nargs="+", choices=list(CANDIDATES), default=["notebook", "default"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--res", type=int, default=32)
    p.add_argument("--iterations", type=int, default=0,
                   help="the notebook loop's budget (default 2000 at 32 px and below, 1000 above)")
    p.add_argument("--data", type=Path, default=DEFAULT_FACES)
    p.add_argument("--holdout", type=int, default=1000, help="files held out for judging, the last by name")
    p.add_argument("--cache-dir", type=Path, default=REPO / "data_cache" / "recipes")
    p.add_argument("--out", type=Path, help="default experiments/recipes/heldout-<res>px")
    p.add_argument("--runs", type=Path, help="the candidates' run folders (default runs/recipes/heldout-<res>px)")
    p.add_argument("--eval-images", type=int, default=1000)
    p.add_argument("--face-images", type=int, default=10000,
                   help="the face rate also over this many faces (the first --eval-images of them as judged above)")
    p.add_argument("--rounds", type=int, default=30, help="speed: interleaved rounds (default 30)")
    p.add_argument("--threads", type=int, default=0, help="TensorFlow threads (default: all cores)")
    p.add_argument("--at", nargs="+", type=int, default=[1000, 2245, 5000, 10000],
                   help="curve: the iterations one candidate and seed is judged at, in one run")
    p.add_argument("--again", action="store_true", help="train: redo runs whose results exist, from iteration 0")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.action != "report" and not args.data.is_dir():
        raise SystemExit(f"--data {args.data}: no such folder (the benchmark faces live in ../shared/data/faces)")
    args.out = args.out or REPO / "experiments" / "recipes" / f"heldout-{args.res}px"
    args.runs = args.runs or REPO / "runs" / "recipes" / f"heldout-{args.res}px"
    args.out.mkdir(parents=True, exist_ok=True)
    set_threads(args.threads)
    if args.action != "report":
        refuse_emulated_bfloat16(args.candidates, CPUINFO)
    if args.action == "speed":
        from dcgan_faces.atomic import write_json

        path = args.out / "speed.json"
        result = merged_speed(json.loads(path.read_text()) if path.exists() else None, measure_speed(args))
        write_json(path, result)
    elif args.action == "train":
        result = train(args)
    elif args.action == "curve":
        if len(args.candidates) != 1:
            raise SystemExit("curve: give one candidate (--candidates NAME) and one seed (--seeds N)")
        result = curve(args)
    else:
        result = report(args)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
