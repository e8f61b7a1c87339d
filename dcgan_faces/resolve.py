"""One place decides a run: the command line and the run folder → the settings it trains with, the checkpoint it
resumes and the source of its images. It reads (checkpoints, the data's files) and writes nothing; no TensorFlow
here: the precision choice and the number of images come in as values.

A new run's settings are its recipe's, overridden by the flags given (and an array's own image size). A
resumed run keeps its fixed settings (a flag that contradicts one is refused) and takes the changeable
ones given (config.py says which is which).
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dcgan_faces import checkpoint, lock, sources
from dcgan_faces.atomic import TEMPORARY
from dcgan_faces.cli_types import CommandError
from dcgan_faces.config import (
    CHANGEABLE,
    FIXED,
    TrainConfig,
    fields_that_are,
    flag_name,
    recipe_settings,
    upsampling_plan,
)
from dcgan_faces.runfolder import MARK, WRITE_PROBE, RunFolder
from dcgan_faces.sources import CacheSettings, DataError, Source

STARTING = {lock.NAME, WRITE_PROBE}  # what a start writes in the run folder before its mark


class SetupError(CommandError):
    """The run cannot start; one line naming the flag or path and what to do."""


@dataclass
class Request:
    """What the command line asks for."""

    given: dict = field(default_factory=dict)  # TrainConfig fields set by flags, but the data
    epochs: float | None = None
    out: Path | None = None
    fresh: bool = False
    resume: Path | None = None
    cache_dir: Path = Path("data_cache")
    source: Source = field(default_factory=lambda: sources.parse(None))  # the data the command line names


@dataclass
class Resumed:
    path: Path
    state: dict
    arrays: dict

    @property
    def iteration(self) -> int:
        return self.state["iteration"]


@dataclass
class Plan:
    """A resolved run: its settings, its folder, its images and (when resuming) the checkpoint and what changes."""

    config: TrainConfig
    run: RunFolder
    source: Source
    resumed: Resumed | None = None
    changes: dict[str, tuple] = field(default_factory=dict)  # {setting: (the run's value, this session's)}
    epochs: float | None = None
    fresh: bool = False
    damaged: list[Path] = field(default_factory=list)  # unreadable checkpoints found in the run folder
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def fit_to_data(self, source: str, images: int, replicas: int = 1) -> TrainConfig:
        """The settings once the data is open: its source recorded, --epochs turned into steps, the batch
        checked against the number of images."""
        global_batch = self.config.batch_size * replicas
        if global_batch > images:
            per_replica = f" × {replicas} replicas" if replicas > 1 else ""
            raise SetupError(f"--batch-size {self.config.batch_size}{per_replica} is larger than the {images} "
                             f"images; use at most {images // replicas}")
        steps = self.config.steps if self.epochs is None else math.ceil(self.epochs * images / global_batch)
        if self.resumed and steps != self.config.steps:
            self.changes["steps"] = (self.config.steps, steps)
        self.config = dataclasses.replace(self.config, data=source, steps=steps)
        return self.config


def resolve_run(request: Request, choose_precision: Callable[[TrainConfig], str] = lambda config: config.precision,
                log=print) -> Plan:
    """The run that `request` asks for; SetupError when it cannot be. Reads, never writes."""
    source, given = request.source, dict(request.given)
    if source.key is not None:
        given["data"] = source.key
    settings = new_run_settings(given, source)
    run = RunFolder(request.out or Path("runs") / f"{source.run_name}_{settings.get('res', TrainConfig.res)}")
    refuse_other_folder(run, request.fresh)
    if request.fresh:
        return Plan(new_config(settings, choose_precision), run, source, epochs=request.epochs, fresh=True)
    damaged: list[Path] = []
    resumed = find_checkpoint(request.resume, run, log, damaged)
    run_id = (resumed.state.get("run_id") if resumed else None) or run.mark().get("run_id") or uuid.uuid4().hex
    if resumed is None:
        refuse_to_start_over(run, log)
        return Plan(new_config(settings, choose_precision), run, source, epochs=request.epochs, run_id=run_id)
    if request.resume is not None:
        refuse_other_run(run, resumed)
    saved = TrainConfig.from_dict(resumed.state["config"])
    changes = {}
    if "data" in given and given["data"] != saved.data:
        changes["data"] = (saved.data, moved_data(saved, source, resumed, run, request.cache_dir))
        given.pop("data")
    refuse_conflicts(saved, given, request.resume is not None, str(resumed.path))
    changes.update({name: (getattr(saved, name), given[name]) for name in fields_that_are(CHANGEABLE)
                    if name in given and given[name] != getattr(saved, name)})
    config = dataclasses.replace(saved, **{name: new for name, (_, new) in changes.items()})
    if source.key is None:
        refuse_another_default(source, config.data, run)
        source = recorded_source(config.data)
    return Plan(config, run, source, resumed, changes, epochs=request.epochs, damaged=damaged, run_id=run_id)


def new_config(settings: dict, choose_precision: Callable[[TrainConfig], str]) -> TrainConfig:
    """A new run's config; data None means ./face_images if it holds images, else the demo faces."""
    config = TrainConfig(**{"data": None, **settings})
    return dataclasses.replace(config, precision=choose_precision(config))


def new_run_settings(given: dict, source: Source) -> dict:
    """Settings of a new run: the --recipe's and an array's own size, overridden by the user's flags."""
    res = own_image_size(source, "res" in given)
    return recipe_settings({"res": res, **given} if res else given)


def own_image_size(source: Source, res_given: bool = False) -> int | None:
    """The images' own size when known before decoding (an array's), which a new run (and prepare) uses unless
    --res is given; SetupError when the array is unreadable, or of a size the generator cannot make and no --res."""
    try:
        res = source.image_size()
    except DataError as error:
        raise SetupError(str(error)) from None
    if res and not res_given:
        try:
            upsampling_plan(res)
        except ValueError:
            raise SetupError(f"--data {source.key} holds {res}×{res} images, a size the generator cannot make; "
                             "pass --res with a multiple of 4 from 16 (e.g. 32) and they are resized") from None
    return res


def refuse_conflicts(saved: TrainConfig, given: dict, resume_flag: bool, source: str) -> None:
    conflicts = [f"{flag_name(name)} {given[name]} (the run has {getattr(saved, name)})"
                 for name in fields_that_are(FIXED) if name in given and given[name] != getattr(saved, name)]
    if conflicts:
        way_out = "drop the flag or pick another --out" if resume_flag else \
            "drop the flag, pick another --out, or pass --fresh to start over"
        raise SetupError(f"{', '.join(conflicts)} conflicts with the run being resumed from {source}; {way_out}")


def find_checkpoint(resume: Path | None, run: RunFolder, log=print, damaged: list[Path] | None = None):
    if resume is None:
        found = checkpoint.read_latest(run.checkpoints, log, damaged)
        return Resumed(*found) if found else None
    if not resume.is_file():
        raise SetupError(f"--resume {resume}: no such checkpoint file")
    try:
        return Resumed(resume, *checkpoint.read(resume))
    except checkpoint.NotACheckpoint as error:
        raise SetupError(f"--resume: {error}; give a checkpoints/ckpt-NNNNNNNN.npz of a run") from None
    except checkpoint.CheckpointError as error:
        raise SetupError(f"--resume: {error}") from None


def refuse_to_start_over(run: RunFolder, log=print) -> None:
    """Starting over at iteration 0 in a run folder with no readable checkpoint: refused where it would
    overwrite anything of value (see `kept_by`); else said in one line."""
    kept = kept_by(run)
    if kept is None:
        if run.is_run():
            log(f"{run.path}: the run there stopped before its first checkpoint; it starts again from iteration 0")
        return
    files = len(run.checkpoint_files())
    why = f"its {files} checkpoint(s) are damaged" if files else "it has no checkpoint"
    raise SetupError(f"{run.path} holds a run{kept} but {why}; pass --fresh to start over (the earlier run is moved "
                     "aside, nothing is deleted), --resume a checkpoint, or pick another --out")


def kept_by(run: RunFolder) -> str | None:
    """What a start at iteration 0 would overwrite in `run` (as words after "a run"); None when nothing.

    Of value: any checkpoint file, readable or not; generator.keras; a metrics log that is empty or damaged,
    or that goes beyond the run's first checkpoint. Rows up to the first checkpoint (a run killed before it,
    perhaps in the middle of a line) are not: the start at 0 replays those iterations and logs them again.
    """
    metrics = run.read_metrics_log()
    last = max((row["iteration"] for row in metrics.rows), default=0)
    if last > first_checkpoint(run):
        return f" logged up to iteration {last:,}"
    if run.generator_path.exists():
        return " that saved generator.keras"
    if run.metrics_path.exists() and (not metrics.rows or metrics.unreadable > metrics.torn_tail):
        return " whose metrics.jsonl is empty or damaged"  # damaged: more than a torn last line
    return "" if run.checkpoint_files() else None


def first_checkpoint(run: RunFolder) -> int:
    """The iteration of the run's first checkpoint, by its config.json; 0 when that cannot be read."""
    try:
        return TrainConfig.load(run.config_path).checkpoint_interval
    except (OSError, ValueError, TypeError):
        return 0


def refuse_other_run(run: RunFolder, resumed: Resumed) -> None:
    """--resume FILE into a folder that holds another run would mix two runs' files."""
    if not run.is_run() or resumed.path.resolve().parent == run.checkpoints.resolve():
        return
    own = checkpoint.read_latest(run.checkpoints, log=lambda text: None)
    if own is None or own[1].get("run_id") is None or own[1].get("run_id") != resumed.state.get("run_id"):
        raise SetupError(f"--resume {resumed.path} is a checkpoint of another run than the one in {run.path}; "
                         "resume it into a new --out (or into its own run folder)")


def refuse_other_folder(run: RunFolder, fresh: bool) -> None:
    """--out at a folder that holds files but is not a run folder: refused, nothing there touched or moved."""
    if run.is_run() or not holds_files(run.path):
        return
    if fresh:
        raise SetupError(f"--fresh --out {run.path}: that folder is not a run folder (no {MARK} file), so it is "
                         "not moved; pick another --out")
    raise SetupError(f"--out {run.path} holds files but is not a run folder of dcgan_faces (no {MARK} file), so "
                     "nothing there is touched; pick a new or empty --out")


def holds_files(folder: Path) -> bool:
    """Whether `folder` exists and holds anything but what a start writes before its mark (its lock, its write
    probe, temporary files): another worker's start, or one killed in between, is not taken for foreign files."""
    try:
        return any(entry.name not in STARTING and not TEMPORARY.match(entry.name) for entry in folder.iterdir())
    except OSError:  # no such folder, or not a folder
        return False


def moved_data(saved: TrainConfig, new: Source, resumed: Resumed, run: RunFolder, cache_dir: Path) -> str:
    """A resumed run may read its images from a new path when they are the same files (by fingerprint)."""
    recorded = resumed.state.get("data_fingerprint")
    wanted = CacheSettings(cache_dir, saved.res, saved.channels, saved.min_size)
    try:
        scan = new.scan(wanted, lambda text: None, (run.path,))
    except DataError as error:
        raise SetupError(str(error)) from None
    if recorded is None or scan.fingerprint != recorded:
        raise SetupError(f"--data {new.key} (the run has {saved.data}) conflicts with the run being resumed from "
                         f"{resumed.path}: {'they are not the same images' if recorded else 'it is another path'}; "
                         "drop the flag, pick another --out, or pass --fresh")
    return new.key


def refuse_another_default(source: Source, recorded: str | None, run: RunFolder) -> None:
    """No --data, and the run trained on what that meant then (the demo faces, ./face_images) but it now means
    other images: resuming on the old ones, or on the new, would both surprise."""
    now = source.replaces(recorded)
    if now is None:
        return
    raise SetupError(f"{run.path} holds a run on {described(recorded)}, but with no --data the data is now "
                     f"{described(now.key)}; pass --data {recorded} to resume that run, or --fresh (the run is moved "
                     f"aside) or another --out to start one on {described(now.key)}")


def described(key: str | None) -> str:
    return "the built-in demo faces" if key == "demo" else str(key)


def recorded_source(data: str | None) -> Source:
    """The source a resumed run recorded; SetupError when its images are gone."""
    try:
        source = sources.parse(data)
    except DataError as error:
        raise SetupError(str(error)) from None
    if why := source.gone():
        raise SetupError(why)
    return source


