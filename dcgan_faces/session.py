"""One training session: start or resume a run, run the loop, save previews, checkpoints and the generator."""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dcgan_faces import __version__, checkpoint, distribute, drive
from dcgan_faces.config import IDENTITY_FIELDS, TrainConfig, recipe_settings
from dcgan_faces.data import GDRIVE_PREFIX, DataError, Dataset, array_resolution, open_dataset
from dcgan_faces.preview import image_grid, to_uint8
from dcgan_faces.runfolder import RunFolder
from dcgan_faces.tblog import TensorBoardLog
from dcgan_faces.trainer import Trainer, preview_seeds, resolve_precision

HARMLESS_FIELDS = ("steps", "save_every", "checkpoint_every", "keep_checkpoints", "on_nan", "min_size", "eval_every",
                   "eval_images", "strategy")
POSTFIX_EVERY = 10
MAX_ROLLBACKS = 3
DIVERGED_EXIT = 3


class SetupError(Exception):
    """The run cannot start; one line naming the flag or path and what to do."""


class Diverged(Exception):
    """A loss or the generator's output is NaN or infinite."""


def _default_out(data: str | None, res: int) -> Path:
    if data in (None, "demo"):
        name = "demo"
    elif data.startswith(GDRIVE_PREFIX):
        name = "gdrive"
    else:
        name = Path(data).expanduser().resolve().name
    return Path("runs") / f"{name}_{res}"


def _move_aside(run: RunFolder) -> None:
    if run.path.exists() and any(run.path.iterdir()):
        aside = run.path.with_name(f"{run.path.name}-{datetime.now():%Y%m%d-%H%M%S}")
        run.path.rename(aside)
        print(f"--fresh: moved the earlier run to {aside}")


def _check_writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise SetupError(f"--out {path} is not writable ({error.strerror}); choose another folder") from None


def _resumed_config(state: dict, given: dict, source: str) -> TrainConfig:
    """The checkpoint's config with the harmless command-line changes applied; conflicts are errors."""
    saved = TrainConfig.from_dict(state["config"])
    wanted = {**given}
    if "data" in wanted:
        wanted["data"] = _data_key(wanted["data"])
    conflicts = [f"--{k.replace('_', '-')} {wanted[k]} (the run has {getattr(saved, k)})"
                 for k in IDENTITY_FIELDS if k in wanted and wanted[k] != getattr(saved, k)]
    if conflicts:
        raise SetupError(f"{', '.join(conflicts)} conflicts with the run being resumed from {source}; "
                         "drop the flag, pick another --out, or pass --fresh")
    changes = {k: wanted[k] for k in HARMLESS_FIELDS if k in wanted and wanted[k] != getattr(saved, k)}
    if changes:
        print("changed for this session: " + ", ".join(f"{k} {getattr(saved, k)} → {v}" for k, v in changes.items()))
    return dataclasses.replace(saved, **changes)


def _data_key(data: str | None) -> str | None:
    if data in (None, "demo") or data.startswith(GDRIVE_PREFIX):
        return data
    return str(Path(data).expanduser().resolve())


class Session:
    def __init__(self, config: TrainConfig, run: RunFolder, dataset: Dataset, trainer: Trainer, seconds: float):
        self.config, self.run_folder, self.dataset, self.trainer = config, run, dataset, trainer
        self.seconds = seconds
        self.rollbacks = 0
        self.previews = preview_seeds(config)
        # on a multi-worker run only the chief writes files; the other workers run every step alike
        self.chief = distribute.is_chief(trainer.strategy)
        self.tensorboard = TensorBoardLog(run.path / "tensorboard") if self.chief else None
        self._unavailable: set[str] = set()
        self._pending: list[dict] = []

    # ------------------------------------------------------------------------------------------ set-up

    @classmethod
    def start(cls, args, given: dict) -> Session:
        settings = cls._new_run_settings(given)  # for a new run only: a resumed one keeps its own
        res = settings.get("res", TrainConfig.res)
        run = RunFolder(args.out or _default_out(given.get("data"), res))
        if drive.in_colab() and not drive.is_slow_mount(run.path):
            print(drive.colab_advice())
        other_worker = given.get("strategy") == "multiworker" and not distribute.is_chief_by_env()
        if args.fresh and not other_worker:
            _move_aside(run)
        _check_writable(run.path)
        found = None if args.fresh and other_worker else cls._find_checkpoint(args.resume, run)
        if found:
            path, state, arrays = found
            config = _resumed_config(state, given, str(path))
        else:
            config = TrainConfig(**{**settings, "data": _data_key(given.get("data"))})
            # fixed for the run's life: optimizer slots (loss scaling) differ between precisions
            config = dataclasses.replace(config, precision=resolve_precision(config.precision))
        try:
            dataset = open_dataset(config.data, args.cache_dir, config.res, config.channels, min_size=config.min_size)
        except DataError as error:
            raise SetupError(str(error)) from None
        try:  # before any TensorFlow operation: a multi-worker strategy configures the runtime
            strategy = distribute.choose_strategy(config.strategy)
        except (ValueError, RuntimeError) as error:
            raise SetupError(f"--strategy {config.strategy}: {error}") from None
        config = cls._fit_to_data(config, dataset, args.epochs if not found else None, distribute.replicas(strategy))
        trainer = Trainer(config, dataset.images, strategy)
        seconds = 0.0
        if found:
            checkpoint.restore(trainer.gan, arrays)
            trainer.iteration, seconds = state["iteration"], state["seconds"]
            print(f"resuming from iteration {trainer.iteration:,} ({path})")
        if distribute.is_chief(strategy):
            run.create()
            run.write_config(config)
            run.truncate_metrics(trainer.iteration)
        return cls(config, run, dataset, trainer, seconds)

    @staticmethod
    def _new_run_settings(given: dict) -> dict:
        """Settings of a new run: the --recipe's and an array's own size, overridden by the user's flags."""
        try:
            res = array_resolution(given.get("data"))
        except DataError as error:
            raise SetupError(str(error)) from None
        return recipe_settings({"res": res, **given} if res else given)

    @staticmethod
    def _find_checkpoint(resume: Path | None, run: RunFolder):
        if resume is None:
            return checkpoint.read_latest(run.checkpoints)
        if not resume.is_file():
            raise SetupError(f"--resume {resume}: no such checkpoint file")
        try:
            return (resume, *checkpoint.read(resume))
        except checkpoint.CheckpointError as error:
            raise SetupError(f"--resume: {error}") from None

    @staticmethod
    def _fit_to_data(config: TrainConfig, dataset: Dataset, epochs: float | None, replicas: int = 1) -> TrainConfig:
        n = len(dataset.images)
        if config.batch_size * replicas > n:
            per_replica = f" × {replicas} replicas" if replicas > 1 else ""
            raise SetupError(f"--batch-size {config.batch_size}{per_replica} is larger than the {n} images; "
                             f"use at most {n // replicas}")
        steps = math.ceil(epochs * n / (config.batch_size * replicas)) if epochs else config.steps
        return dataclasses.replace(config, data=dataset.source, steps=steps)

    # ------------------------------------------------------------------------------------------- loop

    def run(self, stop) -> int:
        """Train up to config.steps or until `stop.signal`; returns the process exit code."""
        trainer, config = self.trainer, self.config
        if trainer.iteration == 0:
            self._write("the first preview grid", self.save_preview)
        bar = tqdm(total=config.steps, initial=trainer.iteration, unit="it", dynamic_ncols=True, disable=None)
        started = time.perf_counter() - self.seconds
        while trainer.iteration < config.steps and stop.signal is None:
            figures = trainer.step()
            k = trainer.iteration
            self.seconds = time.perf_counter() - started
            self._pending.append({"iteration": k, "epoch": round(trainer.epoch, 4), **figures,
                                  "seconds": round(self.seconds, 3)})
            bar.update()
            try:
                if not all(math.isfinite(value) for value in figures.values()):
                    raise Diverged(", ".join(f"{name} {value:.4g}" for name, value in figures.items()))
                if k % POSTFIX_EVERY == 0:
                    bar.set_postfix({name: f"{value:.3f}" for name, value in figures.items()}, refresh=False)
                if config.eval_every and self.chief and k % config.eval_every == 0:
                    self._optional("evaluation", self.evaluate)
                if k % config.save_every == 0:
                    self._write(f"the preview grid of iteration {k:,}", self.save_preview)
                if k % config.checkpoint_interval == 0:
                    self._write(f"the checkpoint of iteration {k:,}", self.save_checkpoint)
            except Diverged as error:
                if not self.rollback(k, str(error)):
                    bar.close()
                    return DIVERGED_EXIT
                bar.reset(total=config.steps)
                bar.update(trainer.iteration)
        bar.close()
        return self.finish(stop.signal)

    def rollback(self, k: int, figures: str) -> bool:
        """After a NaN or inf: reload the newest checkpoint with halved learning rates, when allowed."""
        self.flush_metrics()
        found = checkpoint.read_latest(self.run_folder.checkpoints)
        last = f"the last good checkpoint (iteration {found[1]['iteration']:,}) is kept" if found else "no checkpoint"
        print(f"\ntraining diverged at iteration {k:,} ({figures}); {last}.")
        if self.config.on_nan != "rollback" or found is None or self.rollbacks >= MAX_ROLLBACKS:
            print(f"Lower the learning rate (e.g. --lr {self.config.lr / 2:.3g} with --fresh), or pass "
                  "--on-nan rollback to reload the last checkpoint with halved learning rates and go on.")
            return False
        _, state, arrays = found
        checkpoint.restore(self.trainer.gan, arrays)
        self.trainer.iteration = state["iteration"]
        self.rollbacks += 1
        self.config = dataclasses.replace(self.config, lr=self.config.lr / 2)
        self.trainer.set_learning_rate(self.config.lr)
        self.run_folder.truncate_metrics(self.trainer.iteration)
        print(f"--on-nan rollback: back to iteration {self.trainer.iteration:,}, learning rate now "
              f"{self.config.lr:.3g} ({self.rollbacks} of {MAX_ROLLBACKS} rollbacks)")
        return True

    def finish(self, stopped_by: int | None) -> int:
        k = self.trainer.iteration
        if not self.run_folder.preview_path(k).exists():
            self._write(f"the preview grid of iteration {k:,}", self.save_preview)
        if not (self.run_folder.checkpoints / f"ckpt-{k:08d}.npz").exists():
            self._write(f"the checkpoint of iteration {k:,}", self.save_checkpoint)
        if not self._write("the generator", lambda: self.run_folder.save_generator(self.trainer.gan.output_generator)):
            return 1
        where = self.run_folder.path
        if stopped_by is not None:
            print(f"stopped at iteration {k:,}: checkpoint, grid and generator saved in {where}. "
                  "Run the same command to resume.")
            return 128 + stopped_by
        print(f"done: {k:,} iterations; generator saved as {self.run_folder.generator_path}")
        return 0

    # ---------------------------------------------------------------------------------------- outputs

    def _write(self, what: str, write) -> bool:
        """Run a writer; a write error (disk full, a vanished mount) is reported and training goes on."""
        if not self.chief:
            return True
        try:
            write()
        except OSError as error:
            print(f"\ncould not write {what} ({error.strerror or error}); the previous file is kept. "
                  f"Free some space in {self.run_folder.path} or fix the mount, and training continues.")
            return False
        return True

    def flush_metrics(self) -> None:
        if not self.chief:
            self._pending = []
        if self._pending:
            self.run_folder.append_metrics(self._pending)
            for row in self._pending:
                self.tensorboard.scalars(row["iteration"], {k: v for k, v in row.items() if k != "iteration"})
            self._pending = []

    def save_preview(self) -> None:
        generated = self.trainer.generate(self.previews)
        if not np.isfinite(generated).all():
            raise Diverged("the generator's output is not finite")
        grid = image_grid(to_uint8(generated), self.config.preview_rows, self.config.preview_cols)
        self.run_folder.save_preview(grid, self.trainer.iteration)
        self.flush_metrics()
        self.tensorboard.image(self.trainer.iteration, "preview", np.asarray(grid))
        self.tensorboard.flush()
        self._optional("the loss plot", self.save_plot)

    def save_plot(self) -> None:
        from dcgan_faces.plots import save_plot

        save_plot(self.run_folder.read_metrics(), self.run_folder.path / "plots.png")

    def evaluate(self) -> None:
        """SWD and face hit rate of the generator now, added to this iteration's metrics row."""
        from dcgan_faces.evaluate import evaluate_generator

        figures = evaluate_generator(self.trainer.gan.output_generator, self.dataset.images, self.config.eval_images,
                                     seed=self.config.seed)
        self._pending[-1].update(figures)
        print(f"\niteration {self.trainer.iteration:,}: SWD {figures['swd']:.1f} (real-vs-real "
              f"{figures['swd_real_floor']:.1f}), face rate {figures['face_rate_fake']:.2f} "
              f"(real {figures['face_rate_real']:.2f})")

    def _optional(self, what: str, action) -> None:
        """Run an extra that needs an optional package; without it, say so once and stop trying."""
        if what in self._unavailable:
            return
        try:
            action()
        except ImportError as error:
            self._unavailable.add(what)
            print(f"\nskipping {what}: {error}")

    def save_checkpoint(self) -> None:
        self.flush_metrics()
        state = {
            "iteration": self.trainer.iteration,
            "epoch": self.trainer.epoch,
            "seconds": self.seconds,
            "config": dataclasses.asdict(self.config),
            "version": __version__,
        }
        folder = self.run_folder.checkpoints
        staging = Path(tempfile.gettempdir()) if drive.is_slow_mount(folder) else None
        checkpoint.save(folder, self.trainer.gan, state, self.config.keep_checkpoints,
                        extra={"preview_seeds": self.previews}, staging=staging)
