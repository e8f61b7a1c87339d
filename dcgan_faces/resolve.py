"""One place decides a run: the command line and the run folder → the settings it trains with and the
checkpoint it resumes. No TensorFlow here; the precision choice and the number of images come in as values.

A new run's settings are its recipe's, overridden by the flags given (and an array's own image size). A
resumed run keeps its fixed settings (a flag that contradicts one is refused) and takes the changeable
ones given (config.py says which is which).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dcgan_faces import checkpoint
from dcgan_faces.config import (
    CHANGEABLE,
    FIXED,
    TrainConfig,
    fields_that_are,
    flag_name,
    recipe_settings,
    upsampling_plan,
)
from dcgan_faces.data import GDRIVE_PREFIX, DataError, array_resolution, source_of
from dcgan_faces.runfolder import RunFolder


class SetupError(Exception):
    """The run cannot start; one line naming the flag or path and what to do."""


@dataclass
class Request:
    """What the command line asks for."""

    given: dict = field(default_factory=dict)  # TrainConfig fields set by flags
    epochs: float | None = None
    out: Path | None = None
    fresh: bool = False
    resume: Path | None = None
    cache_dir: Path = Path("data_cache")


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
    """A resolved run: its settings, its folder and (when resuming) the checkpoint and what changes."""

    config: TrainConfig
    run: RunFolder
    resumed: Resumed | None = None
    changes: dict[str, tuple] = field(default_factory=dict)  # {setting: (the run's value, this session's)}
    epochs: float | None = None
    fresh: bool = False
    damaged: list[Path] = field(default_factory=list)  # unreadable checkpoints found in the run folder

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
    given = dict(request.given)
    if "data" in given:
        given["data"] = data_key(given["data"])
    settings = new_run_settings(given)
    run = RunFolder(request.out or default_out(given.get("data"), settings.get("res", TrainConfig.res)))
    if request.fresh:
        refuse_to_move(run)
        return Plan(new_config(settings, choose_precision), run, epochs=request.epochs, fresh=True)
    damaged: list[Path] = []
    resumed = find_checkpoint(request.resume, run, log, damaged)
    if resumed is None:
        refuse_to_start_over(run, damaged)
        return Plan(new_config(settings, choose_precision), run, epochs=request.epochs, damaged=damaged)
    if request.resume is not None:
        refuse_other_run(run, resumed)
    saved = TrainConfig.from_dict(resumed.state["config"])
    changes = {}
    if "data" in given and given["data"] != saved.data:
        changes["data"] = (saved.data, moved_data(saved, given["data"], resumed, run, request.cache_dir))
        given.pop("data")
    refuse_conflicts(saved, given, request.resume is not None, str(resumed.path))
    changes.update({name: (getattr(saved, name), given[name]) for name in fields_that_are(CHANGEABLE)
                    if name in given and given[name] != getattr(saved, name)})
    config = dataclasses.replace(saved, **{name: new for name, (_, new) in changes.items()})
    if "data" not in request.given:
        refuse_gone_data(config)
    return Plan(config, run, resumed, changes, epochs=request.epochs, damaged=damaged)


def new_config(settings: dict, choose_precision: Callable[[TrainConfig], str]) -> TrainConfig:
    """A new run's config; data None means ./face_images if it holds images, else the demo faces."""
    config = TrainConfig(**{"data": None, **settings})
    return dataclasses.replace(config, precision=choose_precision(config))


def new_run_settings(given: dict) -> dict:
    """Settings of a new run: the --recipe's and an array's own size, overridden by the user's flags."""
    try:
        res = array_resolution(given.get("data"))
    except DataError as error:
        raise SetupError(str(error)) from None
    if res and "res" not in given:
        try:
            upsampling_plan(res)
        except ValueError:
            raise SetupError(f"--data {given['data']} holds {res}×{res} images, a size the generator cannot make; "
                             "pass --res with a multiple of 4 from 16 (e.g. 32) and they are resized") from None
    return recipe_settings({"res": res, **given} if res else given)


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
    except checkpoint.CheckpointError as error:
        raise SetupError(f"--resume: {error}") from None


def refuse_to_start_over(run: RunFolder, damaged: list[Path]) -> None:
    """A folder that logged training but has no readable checkpoint is not silently restarted at 0."""
    rows = run.read_metrics()
    if not rows:
        return
    why = f"its {len(damaged)} checkpoint(s) are damaged" if damaged else "it has no checkpoint"
    raise SetupError(f"{run.path} holds a run logged up to iteration {rows[-1]['iteration']:,} but {why}; pass "
                     "--fresh to start over (the earlier run is moved aside, nothing is deleted), --resume a "
                     "checkpoint, or pick another --out")


def refuse_other_run(run: RunFolder, resumed: Resumed) -> None:
    """--resume FILE into a folder that holds another run would mix two runs' files."""
    if not run.is_run() or resumed.path.resolve().parent == run.checkpoints.resolve():
        return
    own = checkpoint.read_latest(run.checkpoints, log=lambda text: None)
    if own is None or own[1].get("run_id") is None or own[1].get("run_id") != resumed.state.get("run_id"):
        raise SetupError(f"--resume {resumed.path} is a checkpoint of another run than the one in {run.path}; "
                         "resume it into a new --out (or into its own run folder)")


def refuse_to_move(run: RunFolder) -> None:
    """--fresh moves an earlier run aside: only a run folder, never any other folder."""
    if run.path.exists() and any(run.path.iterdir()) and not run.is_run():
        raise SetupError(f"--fresh --out {run.path}: that folder is not a run folder (no config.json, metrics or "
                         "checkpoints), so it is not moved; pick another --out")


def move_aside(run: RunFolder) -> Path | None:
    """The earlier run in `run`'s folder renamed to FOLDER-YYYYMMDD-HHMMSS; None when there is none."""
    if not run.is_run():
        return None
    aside = run.path.with_name(f"{run.path.name}-{datetime.now():%Y%m%d-%H%M%S}")
    run.path.rename(aside)
    return aside


def moved_data(saved: TrainConfig, new: str, resumed: Resumed, run: RunFolder, cache_dir: Path) -> str:
    """A resumed run may read its images from a new path when they are the same files (by fingerprint)."""
    recorded = resumed.state.get("data_fingerprint")
    try:
        source = source_of(new, cache_dir, saved.res, saved.channels, saved.min_size, lambda text: None, (run.path,))
    except DataError as error:
        raise SetupError(str(error)) from None
    if recorded is None or source.fingerprint != recorded:
        raise SetupError(f"--data {new} (the run has {saved.data}) conflicts with the run being resumed from "
                         f"{resumed.path}: {'they are not the same images' if recorded else 'it is another path'}; "
                         "drop the flag, pick another --out, or pass --fresh")
    return new


def refuse_gone_data(config: TrainConfig) -> None:
    if config.data in (None, "demo") or config.data.startswith(GDRIVE_PREFIX) or Path(config.data).exists():
        return
    raise SetupError(f"the run's images were in {config.data}, which is gone; if they moved, pass --data with their "
                     "new place (the same files are recognised and the run goes on)")


def data_key(data: str | None) -> str | None:
    """--data as recorded: an absolute path, "demo", or "gdrive:ID" for any form of a Drive link."""
    if data in (None, "demo"):
        return data
    if data.startswith(GDRIVE_PREFIX):
        from dcgan_faces.drive import FetchError, parse_gdrive

        try:
            return GDRIVE_PREFIX + parse_gdrive(data.removeprefix(GDRIVE_PREFIX))[1]
        except FetchError as error:
            raise SetupError(f"--gdrive: {error}") from None
    return str(Path(data).expanduser().resolve())


def default_out(data: str | None, res: int) -> Path:
    if data in (None, "demo"):
        name = "demo"
    elif data.startswith(GDRIVE_PREFIX):
        name = "gdrive"
    else:
        name = Path(data).name
    return Path("runs") / f"{name}_{res}"
