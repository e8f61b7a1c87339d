"""Writes every measured figure the user's pages show, from the result files committed under experiments/:
docs/results.md, docs/performance.md and the README's marked parts (the top image's caption and "what to
expect"). A figure is written in one place here and nowhere by hand, so two pages cannot disagree.

    python scripts/make_docs.py          # rewrite the generated files
    python scripts/make_docs.py --check  # exit 1 naming every generated file that is out of date
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dcgan_faces.atomic import write_text  # noqa: E402
from dcgan_faces.config import DEFAULT_RECIPE, recipe_at  # noqa: E402

RECIPES = REPO / "experiments" / "recipes"
BENCHMARKS = REPO / "experiments" / "benchmarks"
BF16_VM = "a 2-core AMD EPYC VM with AVX-512 and bfloat16 instructions (TensorFlow 2.21 CPU)"
AVX2_VM = "a 2-core AMD EPYC VM with AVX2 and no bfloat16 instructions (TensorFlow 2.21 CPU)"
THIRD = "default+bf16+gf128+ddrop0"  # the third default: no dropout in D, a generator half as wide (issue 37)
THIRD_FLOAT32 = "default+gf128+ddrop0"
RECALIBRATED = f"{THIRD}+bnr16"  # the fourth: the third's trainings judged with --bn-recalibration 16
SHIFTED = f"{RECALIBRATED}+translation0.0625"  # the fourth, every image D sees shifted by up to 1/16 of its size
SHIFTED_FLOAT32 = f"{THIRD_FLOAT32}+bnr16+translation0.0625"
FORMER = "default+bf16+ddrop0"  # the default before issue 37: the notebook's generator width
HELDOUT = "5,000 CelebA photos, judged against 1,000 others that no model trained on"


def load(path: Path) -> dict:
    return json.loads(path.read_text())


# ------------------------------------------------------------------------------------------------ figures

@dataclass(frozen=True)
class Row:
    """One line of a results table: a candidate's runs in one results folder, judged at one budget."""

    label: str
    folder: str  # under experiments/recipes
    candidate: str
    budget: str = "equal_time"  # or "equal_iterations": the notebook loop's own count
    at: int | None = None  # the iterations judged, for a row judged by curves at a budget of its own


def runs(row: Row, iterations: int | None = None) -> list[dict]:
    """The row's result of each seed: from results/, or where a seed has none there, the point of its curve
    (`compare_recipes.py curve`, one longer run judged on the way) at the budget's iterations (those of its
    results, else `iterations`, else each curve's last point)."""
    folder = RECIPES / row.folder
    iterations = iterations or row.at
    results = {load(path)["seed"]: load(path)["budgets"][row.budget]
               for path in sorted((folder / "results").glob(f"{row.candidate}-seed*.json"))}
    if results:
        iterations = next(iter(results.values()))["iterations"]
    for path in sorted(folder.glob(f"curve-{row.candidate}-seed*.json")):
        curve = load(path)
        at = [point for point in curve["points"] if point["iterations"] == iterations] if iterations else \
            curve["points"][-1:]
        if curve["seed"] not in results and at:
            results[curve["seed"]] = at[0]
    if not results:
        raise SystemExit(f"make_docs: no results for {row.candidate} in experiments/recipes/{row.folder}")
    return [results[seed] for seed in sorted(results)]


def spread(values: list[float], digits: int) -> str:
    mean = f"{statistics.fmean(values):.{digits}f}"
    return mean if len(values) == 1 else f"{mean} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def figures(row: Row, iterations: int | None = None) -> dict:
    done = runs(row, iterations)
    more = [run.get("more_faces") for run in done]
    return {"seeds": len(done), "iterations": done[0]["iterations"],
            "swd": spread([run["swd"] for run in done], 1),
            "swd_mean": statistics.fmean(run["swd"] for run in done),
            "face_rate": spread([run["face_rate"] for run in done], 3),
            "more_faces": spread([m["face_rate"] for m in more], 4) if all(more) else "—"}


def floor(folder: str) -> dict:
    real = load(RECIPES / folder / "floor.json")
    return {"swd": f"{real['swd']:.1f}", "face_rate": f"{real['face_rate']:.3f}",
            "more_faces": f"{real['more_faces']['face_rate']:.4f} of {real['more_faces']['images']:,}"}


def speed(folder: str) -> dict:
    return load(RECIPES / folder / "speed.json")


def minutes(seconds: float) -> str:
    return f"{round(seconds / 60):,} minutes"


FOURTH = "the fourth default (the third, its average's BatchNorm statistics recomputed), bfloat16"
SHIFTED_LABEL = ("the fourth, every image D sees shifted by up to 1/16 of its size (`--augment translation "
                 "--augment-shift 0.0625`), bfloat16")


def default_row(res: int) -> Row:
    """The row of what `python -m dcgan_faces.train --res {res}` trains: from 64 px its recipe shifts what D sees."""
    shifts = recipe_at(DEFAULT_RECIPE, res).get("augment") == "translation"
    return SIZES[res]["rows"][SHIFTED_ROW if shifts else FOURTH_ROW]


def default_speed_names(res: int) -> tuple[str, str]:
    """The default's contestants in a size's speed measurement, bfloat16 and float32."""
    return (SHIFTED, SHIFTED_FLOAT32) if default_row(res).candidate == SHIFTED else (THIRD, THIRD_FLOAT32)


# The quality tables: at each size, the course notebook against this project's recipes at equal time.
SIZES = {
    32: {"budget": "2,000", "speed": "speed-default-32px", "floor": "heldout-32px", "rows": [
        Row("the course notebook (its own loop, float32)", "heldout-32px", "notebook", "equal_iterations"),
        Row("`--recipe notebook` in this project's loop, float32", "heldout-32px", "notebook"),
        Row("the first default (the notebook's networks, a moving average), float32", "heldout-32px", "default"),
        Row("the first default, bfloat16", "heldout-32px", "default+bf16"),
        Row("the second default (no dropout in D), bfloat16", "heldout-32px", FORMER),
        Row("the third default (no dropout in D, a generator half as wide), bfloat16", "heldout-32px", THIRD),
        Row(FOURTH, "bn-recalibration-32px", RECALIBRATED),
        Row(SHIFTED_LABEL, "translation-32px", SHIFTED, at=6635),
    ]},
    64: {"budget": "1,000", "speed": "speed-default-64px", "floor": "search-64px", "rows": [
        Row("the course notebook (its own loop, float32)", "heldout-64px", "notebook", "equal_iterations"),
        Row("`--recipe notebook` in this project's loop, float32", "heldout-64px", "notebook"),
        Row("the first default (the notebook's networks, a moving average), float32", "heldout-64px", "default"),
        Row("the first default, bfloat16", "heldout-64px", "default+bf16"),
        Row("the second default (no dropout in D), bfloat16", "heldout-64px-recheck", FORMER),
        Row("the third default (no dropout in D, a generator half as wide), bfloat16", "search-64px", THIRD),
        Row(FOURTH, "bn-recalibration-64px", RECALIBRATED),
        Row(SHIFTED_LABEL, "search-64px", SHIFTED, at=4341),
    ]},
}
NOTEBOOK_ROW, FOURTH_ROW, SHIFTED_ROW = 0, 6, 7
# The shift's budget is the fourth's (that of the third's trainings) divided by the two's step ratio, timed side
# by side in one process: these files (tests/test_docs.py checks the rows' `at` against them)
TRANSLATION_SPEED_CHECKS = {32: "translation-32px/speed.json", 64: "search-64px/speed-checks/translation-run1.json"}


def notebook_minutes(res: int) -> str:
    """The budget of a size: the notebook loop's time for its iterations, on the machine of that size's speed file."""
    size = SIZES[res]
    seconds = speed(size["speed"])["seconds_per_step"]["notebook loop"]
    return minutes(seconds * int(size["budget"].replace(",", "")))


def grid_path(row: Row, seed: int) -> str:
    """A seed's grid at the row's budget, from the repository's root: from its results, or from its curve's
    point there."""
    grids = RECIPES / row.folder / "grids"
    path = grids / f"{row.candidate}-seed{seed}-{row.budget}.png"
    if not path.exists():
        path = grids / f"{row.candidate}-seed{seed}-{figures(row)['iterations']}.png"
    return f"experiments/recipes/{row.folder}/grids/{path.name}"


# Full runs at 64 px: one run of `train --res 64`'s default length (10,000 iterations), judged along the way
# (issue 37). Each is a seed of the search, whose point at the budget is that seed's result.
@dataclass(frozen=True)
class Curve:
    folder: str  # under experiments/recipes
    candidate: str
    seed: int


SEARCH_64 = "search-64px"  # the 64 px search: its speed measurement (the budgets), results and the default's run
DEFAULT_RUN = Curve(SEARCH_64, SHIFTED, 0)  # the default's at 64 px
THIRD_RUN = Curve(SEARCH_64, THIRD, 2)  # the third default's
FORMER_RUN = Curve("default-run-64px", FORMER, 0)  # the second default's, stopped at 8,235 (its checkpoint lost)


def curve_points(curve: Curve) -> dict:
    """A curve's judged points by iteration; none where it has not started."""
    path = RECIPES / curve.folder / f"curve-{curve.candidate}-seed{curve.seed}.json"
    return {point["iterations"]: point for point in load(path)["points"]} if path.exists() else {}


def default_run_points() -> tuple[int, ...]:
    """Where the default's run is judged: the notebook loop's own count, the default's budget in its time, the
    end. A point not yet reached is said to be so."""
    return 1000, figures(default_row(64))["iterations"], 10000


def curve_table(curve: Curve, planned: tuple[int, ...] = ()) -> list[str]:
    points = curve_points(curve)
    lines = ["| iterations of the one run | SWD (lower is better) | face rate of 1,000 faces | face rate of 10,000 "
             "faces | faces |", "| --- | --- | --- | --- | --- |"]
    for iterations in sorted({*planned, *points}):
        point = points.get(iterations)
        if point is None:
            lines.append(f"| {iterations:,} | not reached yet | | | |")
            continue
        grid = f"../experiments/recipes/{curve.folder}/grids/{curve.candidate}-seed{curve.seed}-{iterations}.png"
        lines.append(f"| {iterations:,} | {point['swd']:.1f} | {point['face_rate']:.3f} | "
                     f"{point['more_faces']['face_rate']:.4f} | [grid]({grid}) |")
    real = floor(curve.folder)
    lines.append(f"| real training photos (the floor) | {real['swd']} | {real['face_rate']} | {real['more_faces']} | |")
    return lines


# The 64 px search (issue 37): each candidate one change, first on the second default, then on the third it
# chose, each at its own equal-time budget
SEARCH_CANDIDATES = {
    THIRD: "**the third default**: the second with `--g-filters 128` (a generator half as wide)",
    "default+bf16+ddrop0+ttur": "the second default with two timescales, `--lr-g 1e-4 --lr-d 4e-4`",
    "default+bf16+ddrop0+beta2_0.99": "the second default with Adam's `--beta2 0.99`",
    "default+bf16+ddrop0+beta1_0+beta2_0.99": "the second default with `--beta1 0 --beta2 0.99`",
    "default+bf16+ddrop0+hinge": "the second default with `--loss hinge`",
    "default+bf16+ddrop0+sn": "the second default with `--spectral-norm` in D",
    "default+bf16+ddrop0+b64": "the second default with `--batch-size 64 --lr 2.1e-4`",
    f"{THIRD}+beta2_0.99": "the third default with Adam's `--beta2 0.99`",
    f"{THIRD}+lr2e-4": "the third default with both rates 2e-4 (`--lr 2e-4`)",
    f"{THIRD}+hinge": "the third default with `--loss hinge`",
    f"{THIRD}+mirror": "the third default with `--mirror` (real faces flipped at random)",
}  # `--spectral-norm` on the default was timed apart from speed.json: the lab notebook has it


def timed_speed(candidate: str, ratios: dict[str, float]) -> float:
    """A candidate's measured speed, or that of the measured candidate it extends: the changes the search
    leaves untimed (rates, betas, the loss) do the same work as the recipe they change."""
    timed = [name for name in ratios if candidate == name or candidate.startswith(name + "+")]
    return ratios[max(timed, key=len)]


def judged(candidate: str, iterations: int) -> bool:
    """Whether a search candidate has a result: a results file, or a curve judged at its budget."""
    folder = RECIPES / SEARCH_64
    return bool(list((folder / "results").glob(f"{candidate}-seed*.json"))) or any(
        iterations in curve_points(Curve(SEARCH_64, candidate, load(path)["seed"]))
        for path in folder.glob(f"curve-{candidate}-seed*.json"))


def search_table() -> list[str]:
    """The search's candidates that have results, beside the second default's run at the search's budget."""
    ratios = speed(SEARCH_64)["ratio_to_notebook_loop"]
    lines = ["| 64 px, in the notebook loop's time for 1,000 iterations | × the notebook's loop | seeds | iterations | "
             "SWD (lower is better) | face rate of 1,000 faces | face rate of 10,000 faces |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    at = round(1000 * ratios[FORMER])
    point = curve_points(FORMER_RUN).get(at)
    if point:
        lines.append(f"| the second default, seed 0 only (its full run at {at:,}) | {ratios[FORMER]:.2f}× | 1 | "
                     f"{at:,} | {point['swd']:.1f} | {point['face_rate']:.3f} | "
                     f"{point['more_faces']['face_rate']:.4f} |")
    for candidate, label in SEARCH_CANDIDATES.items():
        ratio = timed_speed(candidate, ratios)
        if not judged(candidate, round(1000 * ratio)):
            continue
        got = figures(Row(label, SEARCH_64, candidate), round(1000 * ratio))
        lines.append(f"| {label} | {ratio:.2f}× | {got['seeds']} | {got['iterations']:,} | {got['swd']} | "
                     f"{got['face_rate']} | {got['more_faces']} |")
    real = floor(SEARCH_64)
    lines.append(f"| real training photos (the floor) | | | | {real['swd']} | {real['face_rate']} | "
                 f"{real['more_faces']} |")
    return lines


# --bn-recalibration: the default's own runs judged again, as saved and with the statistics recomputed
RECALIBRATION = {"as saved": "", "16 batches": "+bnr16", "64 batches": "+bnr64"}


def recalibration_table(res: int) -> list[str]:
    """Per seed, the same run's generator as saved and recalibrated; empty where nothing is judged yet."""
    folder = RECIPES / f"bn-recalibration-{res}px"
    curves = {(tag, curve["seed"]): curve["points"][-1]
              for tag, suffix in RECALIBRATION.items()
              for curve in map(load, sorted(folder.glob(f"curve-{THIRD}{suffix}-seed*.json")))}
    tags = [tag for tag in RECALIBRATION if any(judged == tag for judged, _ in curves)]  # 64 batches: 64 px only
    seeds = sorted({seed for tag, seed in curves if all((other, seed) in curves for other in tags)})
    if not seeds:
        return []
    cells = " | ".join(f"{tag}: SWD, face rate of {curves[(tag, seeds[0])]['more_faces']['images']:,}"
                       for tag in tags)
    lines = [f"| {res} px, seed | iterations | {cells} |", "| --- | --- |" + " --- |" * len(tags)]
    for seed in seeds:
        shown = " | ".join(f"{curves[(tag, seed)]['swd']:.1f}, {curves[(tag, seed)]['more_faces']['face_rate']:.4f}"
                           for tag in tags)
        lines.append(f"| {seed} | {curves[(tags[0], seed)]['iterations']:,} | {shown} |")
    means = " | ".join(
        f"{statistics.fmean(curves[(tag, s)]['swd'] for s in seeds):.2f}, "
        f"{statistics.fmean(curves[(tag, s)]['more_faces']['face_rate'] for s in seeds):.4f}" for tag in tags)
    lines.append(f"| mean of {len(seeds)} | | {means} |")
    return lines


def paired_sentence() -> str:
    """The same runs judged paired on several draws (experiments/recalibration_paired.py), where judged."""
    paths = [RECIPES / f"bn-recalibration-{res}px" / "paired.jsonl" for res in (64, 32)]
    summaries = [json.loads(path.read_text().splitlines()[-1]) for path in paths if path.exists()]  # the last line
    if not summaries:
        return ""
    parts = [f"at {s['res']} px recalibrated was better in {s['pairs_better']} of {s['pairs']} (run, draw) pairs, "
             f"its mean SWD {s['mean_recalibrated']:.2f} against {s['mean_as_saved']:.2f} as saved" for s in summaries]
    return (f"One judgement is one draw of 1,000 latents and 1,000 held-out faces; judged on "
            f"{summaries[0]['draws']} draws (the first is the tables'), with {summaries[0]['batches']} batches, "
            f"{'; '.join(parts)} (`experiments/recalibration_paired.py`).")


def recalibration_section() -> list[str]:
    tables = [table for res in (64, 32) if (table := recalibration_table(res))]
    if not tables:
        return []
    paired = paired_sentence()
    return ["## Recomputed BatchNorm statistics (`--bn-recalibration`)", "",
            "The moving average's BatchNorm statistics are themselves an average of G's, measured on other "
            "weights. `--bn-recalibration N` recomputes them from the averaged weights over N batches of fixed "
            "latents before the generator draws or is saved; nothing that trains changes (tested), so each run "
            "below is one training of the default, its generator judged as saved and recalibrated, at the "
            "default's budget in the notebook loop's time. These are new trainings of the same seeds. A training "
            "repeats itself to the last digit only with the same thread settings (the number of threads changes "
            "the order of the arithmetic, and over thousands of iterations a GAN turns that into another run), "
            "and not every run of the tables above was trained with these, so the figures as saved differ from "
            "those tables by as much as the seeds do (32 px seed 2 repeated its own exactly).", "",
            *[line for table in tables for line in (*table, "")], *([paired, ""] if paired else [])]


def ramps_table(results: list[dict], res: int) -> list[str]:
    """experiments/ema_ramps.py's runs: per --ema-ramp, each seed's SWD (the yardstick's draw; "—" where that
    seed's run did not keep the ramp), the mean SWD and face rate over its seeds, and against ramp 10 on every
    (seed, draw) it has: in how many it was lower, by how much on average."""
    faces = results[0]["ramps"]["10"]["more_faces"]["images"]
    lines = [f"| {res} px, `--ema-ramp` (span: about 1/(R−1) of the run) | "
             + "".join(f"seed {result['seed']} | " for result in results)
             + f"mean SWD | face rate of {faces:,} faces | lower SWD than ramp 10 in (seed, draw) pairs | "
             "mean difference |", "| --- |" + " --- |" * (len(results) + 4)]
    for ramp in sorted({ramp for result in results for ramp in result["ramps"]}, key=float):
        kept = [result for result in results if ramp in result["ramps"]]
        judged = [result["ramps"][ramp] for result in kept]
        paired = [result["paired_with_ramp_10"][ramp] for result in kept]
        pairs = sum(p["draws"] for p in paired)
        difference = sum(p["mean_difference"] * p["draws"] for p in paired) / pairs
        seeds = "".join(f"{result['ramps'][ramp]['swd']:.1f} | " if ramp in result["ramps"] else "— | "
                        for result in results)
        against = f"{sum(p['lower_on'] for p in paired)} of {pairs} | {difference:+.2f}" if ramp != "10" else " | "
        lines.append(f"| {f'**{ramp}** (the default)' if ramp == '10' else ramp} | {seeds}"
                     f"{statistics.fmean(one['swd'] for one in judged):.2f} | "
                     f"{statistics.fmean(one['more_faces']['face_rate'] for one in judged):.4f} | {against} |")
    return lines


def ramps_section() -> list[str]:
    results = [load(path) for path in sorted((RECIPES / "ema-ramps-64px").glob(f"ramps-{RECALIBRATED}-seed*.json"))]
    if not results:
        return []
    first, table = results[0], ramps_table(results, 64)
    more_draws = len(first["ramps"]["10"]["swd_draws"]) - 1
    return ["## The average's span, with recomputed statistics (`--ema-ramp`)", "",
            "The average's decay ramps up as (1+k)/(R+k), so it spans about the last 1/(R−1) of a run. The "
            "ramps were first compared before `--bn-recalibration` existed, when a longer span also meant staler "
            "BatchNorm statistics. Here each seed is one training of the default to its budget "
            f"({first['iterations']:,} iterations), which kept one more average per ramp beside its own (the average "
            "never feeds back into training, so each is the average a run with that ramp saves: tested, and "
            "ramp 10's equals the run's own to the last bit), each recalibrated as the default is and judged as "
            f"above, and on {more_draws} more draws of latents and held-out faces to set the differences beside the "
            "judge's own noise (`experiments/ema_ramps.py`).", "", *table, ""]


# ------------------------------------------------------------------------------------------------ README

def readme_caption() -> str:
    """The top image, the default's seed-0 grid at 64 px in the notebook's time, and what it shows."""
    row = default_row(64)
    top = figures(row)
    seed0 = runs(row)[0]
    image = f"![28 faces at 64 px from the default recipe, trained on CelebA photos]({grid_path(row, 0)})"
    return (f"{image}\n\n*28 faces from fixed latents after {seed0['iterations']:,} iterations at 64 px of the default "
            f"recipe (seed 0), trained on {HELDOUT}: about {notebook_minutes(64)} on {BF16_VM}, the "
            f"time the course notebook's loop needs there for {SIZES[64]['budget']} iterations. Over "
            f"{top['seeds']} seeds their SWD against the unseen photos is {top['swd_mean']:.1f} (real photos: "
            f"{floor(SIZES[64]['floor'])['swd']}; lower is better). The first command below trains on "
            "built-in drawn faces instead, so that it needs no download: see "
            "[Train on your photos](#train-on-your-photos).*")


def readme_results() -> str:
    lines = [f"On {BF16_VM}, where `--precision auto` trains in bfloat16; the notebook's own loop beside it, "
             "timed in one process ([docs/performance.md](docs/performance.md)), and faces judged against "
             "photos no model trained on ([docs/results.md](docs/results.md)):", "",
             "| | 32 px | 64 px |", "| --- | --- | --- |"]

    def line(label: str, cells) -> None:
        lines.append(f"| {label} | {' | '.join(cells)} |")

    steps = {res: speed(SIZES[res]["speed"])["seconds_per_step"] for res in SIZES}
    line("seconds per iteration: default recipe (bfloat16 / float32)",
         [" / ".join(f"{steps[res][name]:.2f}" for name in default_speed_names(res)) for res in SIZES])
    line("seconds per iteration: the course notebook's loop", [f"{steps[res]['notebook loop']:.2f}" for res in SIZES])
    line("time compared", [f"the notebook's {SIZES[res]['budget']} iterations, about {notebook_minutes(res)}"
                           for res in SIZES])
    quality = {res: (figures(default_row(res)), figures(SIZES[res]["rows"][NOTEBOOK_ROW]),
                     floor(SIZES[res]["floor"])) for res in SIZES}
    line("iterations in that time: default / notebook",
         [f"{ours['iterations']:,} / {notebook['iterations']:,}" for ours, notebook, _ in quality.values()])
    line("SWD (lower is better): default / notebook / real photos",
         [f"{ours['swd_mean']:.1f} / {notebook['swd_mean']:.1f} / {real['swd']}"
          for ours, notebook, real in quality.values()])
    line("share of faces a face detector finds: default / notebook / real photos",
         [f"{ours['face_rate'].split()[0]} / {notebook['face_rate'].split()[0]} / {real['face_rate']}"
          for ours, notebook, real in quality.values()])
    lines += ["", default_run_sentence()]
    return "\n".join(lines)


def default_run_sentence() -> str:
    """The default's full run's SWD and face share along the way, and its length in time, in one sentence."""
    points = curve_points(DEFAULT_RUN)
    judged = [f"{point['swd']:.1f} at {iterations:,}" for iterations, point in sorted(points.items())]
    shares = [f"{point['face_rate']:.3f}" for _, point in sorted(points.items())]
    missing = [f"{iterations:,}" for iterations in default_run_points() if iterations not in points]
    length = minutes(10000 * speed(SIZES[64]["speed"])["seconds_per_step"][default_speed_names(64)[0]])
    return (f"One full default run at 64 px (10,000 iterations, about {length} at the speed above; seed "
            f"{DEFAULT_RUN.seed}), judged the same way along the way: SWD {', '.join(judged) or 'not judged yet'}"
            + (f" iterations, face share {', '.join(shares)}" if judged else "")
            + (f"; {' and '.join(missing)} not reached yet" if missing and judged else "")
            + " ([docs/results.md](docs/results.md#the-full-default-run-at-64-px)).")


def replace_marked(text: str, name: str, content: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(\n<!-- {name}:end -->)", flags=re.S)
    if not pattern.search(text):
        raise SystemExit(f"make_docs: README.md has no <!-- {name}:start --> ... <!-- {name}:end --> markers")
    return pattern.sub(lambda match: match.group(1) + content + match.group(2), text)


def readme(text: str) -> str:
    return replace_marked(replace_marked(text, "caption", readme_caption()), "results", readme_results())


# ------------------------------------------------------------------------------------------------ results.md

def results_table(res: int) -> list[str]:
    size = SIZES[res]
    lines = [f"| {res} px, in the notebook loop's time for {size['budget']} iterations | seeds | iterations | SWD "
             "(lower is better) | face rate of 1,000 faces | face rate of 10,000 faces |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in size["rows"]:
        got = figures(row)
        label = f"**the default at {res} px**: {row.label}" if row == default_row(res) else row.label
        lines.append(f"| {label} | {got['seeds']} | {got['iterations']:,} | {got['swd']} | {got['face_rate']} | "
                     f"{got['more_faces']} |")
    real = floor(size["floor"])
    lines.append(f"| real training photos (the floor) | | | {real['swd']} | {real['face_rate']} | "
                 f"{real['more_faces']} |")
    return lines


def recalibration_share() -> str:
    """What the default's --bn-recalibration costs a run at 64 px: a share of the iterations between grids."""
    cost = load(BENCHMARKS / "recalibration-64px.json")
    return f"{cost['share_of_preview_interval']:.1%} ({cost['recalibration_seconds']:.2f} s)"


def translation_budget(res: int) -> tuple[int, float]:
    """The shift's equal-time iterations at `res` and its step's ratio to the fourth default's, from the
    speed check that timed the two side by side (the fourth trains as the third does; the check timed the full
    shift, which does the same work as the default's half)."""
    steps = load(RECIPES / TRANSLATION_SPEED_CHECKS[res])["seconds_per_step"]
    ratio = steps[f"{THIRD}+bnr16+translation"] / steps[THIRD]
    return int(figures(SIZES[res]["rows"][FOURTH_ROW])["iterations"] / ratio), ratio


def translation_speeds() -> str:
    return "; ".join(f"{res} px: {ratio:.3f}× the step, {iterations:,} iterations"
                     for res, (iterations, ratio) in ((res, translation_budget(res)) for res in sorted(SIZES)))


def shift_at_32px() -> str:
    """Why the default does not shift below 64 px, from the 32 px table's two rows."""
    fourth, shifted = (figures(SIZES[32]["rows"][index]) for index in (FOURTH_ROW, SHIFTED_ROW))
    return (f"At 32 px the same shift gave an SWD of {shifted['swd_mean']:.1f} against the fourth's "
            f"{fourth['swd_mean']:.1f} and faces a detector finds less often ({shifted['more_faces'].split()[0]} "
            f"of 10,000 against {fourth['more_faces'].split()[0]}), so below 64 px the default does not shift "
            "(StyleGAN2-ADA's `--cfg auto` likewise sets R1's weight by the image size).")


def results_page() -> str:
    default_64 = default_row(64)
    grids = " ".join(f"[seed {n}](../{grid_path(default_64, n)})" for n in range(figures(default_64)["seeds"]))
    ratios = speed(SEARCH_64)["ratio_to_notebook_loop"]
    wider = ratios[THIRD] / ratios[FORMER]
    return "\n".join([
        "<!-- generated by scripts/make_docs.py from experiments/recipes/*/results: do not edit -->",
        "# What the default recipe gives, against the course notebook",
        "",
        f"Every recipe below trained on {HELDOUT} (the file names 000001–005000 of a 6,000-face CelebA "
        "sample), for as many iterations as it makes in the time the course notebook's own loop needs for "
        "2,000 iterations at 32 px and 1,000 at 64 px, each timed beside that loop in one process on "
        f"{BF16_VM}. Then 1,000 faces from fixed latents are judged:",
        "",
        "- **SWD**: the sliced Wasserstein distance of Karras et al. 2018 (×1e3) against the 1,000 unseen photos; "
        "lower is better; 1,000 real training photos judged the same way are the floor;",
        "- **face rate**: the share in which OpenCV's Haar frontal-face detector finds a face (of 10,000 faces "
        "too, where measured: over 1,000, chance alone moves it by about ±0.006).",
        "",
        "Mean over seeds, the range across them in brackets. `python -m dcgan_faces.evaluate` computes both "
        "for any run. \"bfloat16\" is `--precision mixed_bfloat16`, which `--precision auto` picks on a CPU "
        "with bfloat16 instructions; elsewhere the default trains in float32.",
        "",
        *results_table(32),
        "",
        *results_table(64),
        "",
        "The notebook's own row counts its own iterations in the budget; every other row trained with this "
        "project's `Trainer`, the loop `python -m dcgan_faces.train` runs, for the iterations its speed ratio "
        "to the notebook's loop gave when it ran, measured in one process beside that loop "
        "(`experiments/recipes/*/speed.json`; the third default's at 64 px in the 64 px search's measurement, "
        f"below). The generator half as wide makes {wider:.2f}× the iterations of the notebook's width in the "
        "same time (at 64 px, in the search's measurement), and at equal time its faces were better at both "
        "sizes. The fourth default's rows are new trainings of the third default's seeds, each judged with its "
        "average's BatchNorm statistics recomputed, as `train` shows and saves it (the same runs as saved: "
        "[below](#recomputed-batchnorm-statistics---bn-recalibration)). A budget's run recomputes them once, for "
        "the generator judged; `train` does so for every grid too, which costs "
        f"{recalibration_share()} of the iterations between two grids at 64 px. From 64 px up the default "
        "adds `--augment translation --augment-shift 0.0625` (DiffAugment, Zhao et al. 2020, at half its "
        "shift): every real and fake image D sees, G's step included, shifted by up to 1/16 of its size. Its "
        "step is slower, so its budget is the fourth's iterations divided by the ratio of the two's step times, "
        f"timed side by side in one process ({translation_speeds()}). At 64 px its faces are more varied in "
        f"colour and background than the fourth's and about as coherent. {shift_at_32px()} The paper's full "
        "shift (1/8) gave fewer faces at both sizes ([the lab notebook](../experiments/recipes.md)). The "
        "default's grids at 64 px: "
        f"{grids}. These are short runs, not converged models.",
        "",
        "## The full default run at 64 px",
        "",
        "`python -m dcgan_faces.train --res 64` trains 10,000 iterations with the default recipe. One such run "
        f"(seed {DEFAULT_RUN.seed}, bfloat16, on the same {HELDOUT}) was judged as above at points along the "
        "way, the default's budget in the notebook's time among them (that point is the seed's result in the "
        "table above):",
        "",
        *curve_table(DEFAULT_RUN, default_run_points()),
        "",
        f"The third default's run (seed {THIRD_RUN.seed}; its generator as saved, before the default recomputed "
        "its BatchNorm statistics and shifted what D sees), resumed once from its checkpoint (a resumed run is "
        "the run that was not interrupted):",
        "",
        *curve_table(THIRD_RUN),
        "",
        "The second default's run (the notebook's generator width; seed 0), judged the same way until it was "
        "stopped at 8,235 iterations and its checkpoint was lost with the VM:",
        "",
        *curve_table(FORMER_RUN),
        "",
        "## The 64 px search",
        "",
        "Changes to the second default, one at a time, each trained for the iterations it makes in the notebook "
        "loop's time for 1,000 at 64 px as measured in one process beside that loop and the other candidates on "
        "the day of the search, when the VM ran every contestant more slowly than on the days of the tables "
        "above (`experiments/recipes/search-64px/speed.json`), the speed beside each; judged as above:",
        "",
        *search_table(),
        "",
        *recalibration_section(),
        *ramps_section(),
        "How the search reached this default, every other candidate and why each lost, with all grids: "
        "[experiments/recipes.md](../experiments/recipes.md), a lab notebook kept as it was written (its "
        "figures are the history of the search; this page is current).",
        "",
    ])


# ------------------------------------------------------------------------------------------------ performance.md

def speed_table(folder: str, res: int) -> list[str]:
    measured = speed(folder)
    names = {"notebook loop": "the course notebook's loop (float32)",
             "default+ddrop0": "the second default (the notebook's generator width), float32",
             FORMER: "the second default, bfloat16",
             THIRD_FLOAT32: "the third and fourth defaults (a generator half as wide), float32",
             THIRD: "the third and fourth defaults, bfloat16",
             SHIFTED_FLOAT32: "the fourth, shifting every image D sees, float32",
             SHIFTED: "the fourth, shifting every image D sees, bfloat16"}
    default = default_speed_names(res)
    lines = [f"| {res} px, batch 32 ({measured['rounds']} interleaved rounds) | seconds per iteration | "
             "× the notebook's loop |", "| --- | --- | --- |"]
    for name, label in names.items():
        if name in measured["seconds_per_step"]:
            shown = f"**the default at {res} px**: {label}" if name in default else label
            lines.append(f"| {shown} | {measured['seconds_per_step'][name]:.3f} | "
                         f"{measured['ratio_to_notebook_loop'][name]:.2f}× |")
    return lines


def benchmark_table(run: dict) -> list[str]:
    loops, flops = run["training"]["loops"], run["training"]["flops"]
    labels = {"notebook": "the course notebook's loop", "ours, stock layers": "this project's loop, the notebook's "
              "stock layers", "ours, float32": "this project's loop and layers", "ours, auto": "`--precision auto`"}
    lines = ["| 64 px, batch 32, float32, the notebook recipe | seconds per iteration | × the notebook's loop | "
             "share of the CPU's 3×3-convolution peak |", "| --- | --- | --- | --- |"]
    for name, label in labels.items():
        if name in loops:
            lines.append(f"| {label} | {loops[name]['seconds_per_iteration']:.2f} | "
                         f"{loops[name]['ratio_over_notebook']:.2f}× | {flops['fraction_of_float32_peak'][name]:.0%} |")
    return lines


def preprocessing_table(run: dict) -> list[str]:
    folder, large = run["preprocessing"]["folder"], run["preprocessing"]["large_photos"]
    return [
        "| building the cache (64 px) | this project | the notebook's code | ratio |", "| --- | --- | --- | --- |",
        f"| {folder['images']:,} small CelebA JPEGs, images/s | {folder['ours_images_per_s']:,.0f} | "
        f"{folder['notebook_images_per_s']:,.0f} | {folder['ratio_ours_over_notebook']:.2f}× |",
        f"| {large['size_px'][0]:,}×{large['size_px'][1]:,} px photos, images/s | {large['ours_images_per_s']:,.0f} | "
        f"{large['notebook_images_per_s']:,.0f} | {large['ratio_ours_over_notebook']:.2f}× |",
        f"| peak memory while building, MiB | {folder['ours_peak_rss_mib_main']:,.0f} | "
        f"{folder['notebook_peak_rss_mib']:,.0f} | |",
        f"| cache on disk, MiB (uint8 against float64) | {folder['cache_mib_on_disk']:,.0f} | "
        f"{folder['notebook_float64_array_mib']:,.0f} | |",
        f"| opening the existing cache, ms | {folder['reopen_existing_cache_ms']:,.0f} | | |",
    ]


def profile_lines(profile: dict) -> list[str]:
    parts = sorted(profile["parts"].items(), key=lambda item: -item[1]["share"])
    convolutions = sum(op["share"] for name, op in profile["ops"]["op_types"].items() if "Conv2D" in name)
    return [f"Where an iteration's {profile['seconds_per_iteration']:.2f} s go (64 px, `--recipe "
            f"{profile['recipe']}`, {profile['layers']} layers, on the bfloat16 VM in float32; "
            "[raw figures](../experiments/benchmarks/profile-64px-notebook-recipe.json)): "
            + ", ".join(f"{name} {part['share']:.0%}" for name, part in parts)
            + f". Of the op time, {convolutions:.0%} is convolutions: training is limited by arithmetic, not by "
            "the loop."]


def performance_page() -> str:
    older, newer = load(BENCHMARKS / "benchmark-64px-run2.json"), load(BENCHMARKS / "benchmark-64px-run3.json")
    flops = older["training"]["flops"]
    return "\n".join([
        "<!-- generated by scripts/make_docs.py from experiments/recipes/*/speed.json and experiments/benchmarks: "
        "do not edit -->",
        "# Performance",
        "",
        "Absolute speed on a shared VM drifts from day to day, so every table here is one process: "
        "the contestants timed in interleaved rounds, and the ratio to the course notebook's loop (a port of its "
        "`train_on_batch` loop, stock layers, float64 data: `experiments/benchmark.py`) is the figure to compare. "
        "Compare figures within a table, not across tables.",
        "",
        "## Training speed of the recipes",
        "",
        f"On {BF16_VM}:",
        "",
        *speed_table(SIZES[32]["speed"], 32),
        "",
        *speed_table(SIZES[64]["speed"], 64),
        "",
        "bfloat16 is `--precision mixed_bfloat16`, which `--precision auto` trains on a CPU with bfloat16 "
        "instructions (`avx512_bf16` or `amx_bf16` in `/proc/cpuinfo`); at equal time its faces were better there "
        "([results](results.md)). On a CPU without them bfloat16 is emulated and several times slower, so `auto` "
        "trains float32; on a GPU it trains mixed_float16. `--precision float32` keeps the notebook's arithmetic.",
        "",
        "## The same functions with less work",
        "",
        f"On {AVX2_VM}, the notebook recipe in float32 ([raw figures](../experiments/benchmarks/)):",
        "",
        *benchmark_table(older),
        "",
        f"Per iteration this project's layers do {flops['gflop_per_iteration']['folded']:.0f} GFLOP where the "
        f"notebook's do {flops['gflop_per_iteration']['stock']:.0f} (the generator "
        f"{flops['generator_forward_gflop_per_image']['folded']:.1f} against "
        f"{flops['generator_forward_gflop_per_image']['stock']:.1f} GFLOP per face forward). With the notebook's "
        "stock layers this project's loop runs at the notebook's speed: the gain is the layers, "
        "`dcgan_faces/fast_layers.py`, which compute the same functions (same weights, outputs and gradients up "
        "to rounding, tested layer by layer and on whole models):",
        "",
        "- **Upsample + convolve at the low resolution.** `UpSampling2D()` followed by a 3×3 convolution is one "
        "stride-2 transposed convolution whose 4×4 kernel is a fixed fold of the 3×3 one: 4 multiply-adds per "
        "output value and input channel instead of 9, and the upsampled tensor is never made.",
        "- **Input gradients as forward convolutions**, where TensorFlow's CPU kernel for a stride-1 input "
        "gradient was slower than the equal forward convolution with the flipped kernel.",
        "- **The RGB layer as matrix products**, and **fused BatchNorm** for the generator's training step.",
        "",
        f"On {BF16_VM} the same command gave "
        f"{newer['training']['loops']['ours, float32']['seconds_per_iteration']:.2f} s against the notebook "
        f"loop's {newer['training']['loops']['notebook']['seconds_per_iteration']:.2f} s "
        f"({newer['training']['loops']['ours, float32']['ratio_over_notebook']:.2f}×; the notebook's stock layers "
        f"in this project's loop {newer['training']['loops']['ours, stock layers']['ratio_over_notebook']:.2f}×): "
        "the faster the convolutions, the less the fold gains.",
        "",
        *profile_lines(load(BENCHMARKS / "profile-64px-notebook-recipe.json")),
        "",
        "`generator.keras` is saved in the notebook's stock layers, and a checkpoint of either form resumes into "
        "the other. `--layers auto` (the default) takes the fast form on a CPU; on a GPU or TPU, where it was "
        "never measured, the trainer times a few iterations of each form at start-up, keeps the faster and records "
        "both in `config.json` (`layers_chosen`). No GPU was available to this project: on one, "
        "`experiments/benchmark.py` adds a section that times every precision, layer form and `jit_compile` "
        "setting.",
        "",
        "## Preparing the data",
        "",
        f"On {AVX2_VM}:",
        "",
        *preprocessing_table(older),
        "",
        "How these were measured, and the runs' dates: [experiments/benchmarks/](../experiments/benchmarks/README.md).",
        "",
    ])


# ------------------------------------------------------------------------------------------------ main

def generated(root: Path) -> dict[Path, str]:
    """Each generated file under `root` (the repository) and the text it should hold."""
    return {root / "docs" / "results.md": results_page(), root / "docs" / "performance.md": performance_page(),
            root / "README.md": readme((root / "README.md").read_text())}


def main(argv: list[str], root: Path = REPO) -> int:
    wanted = generated(root)
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if argv == ["--check"]:
        for path in stale:
            print(f"{path.relative_to(root)} is out of date: run python scripts/make_docs.py", file=sys.stderr)
        return 1 if stale else 0
    if argv:
        sys.exit(__doc__)
    for path in stale:
        write_text(path, wanted[path])
        print(f"wrote {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
