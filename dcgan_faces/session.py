"""One training session: the loop, and rolling back after a divergence. What the run shows and saves beside the
loop is written by the writers (writers.py), each seeing only a narrow Context of the training."""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path

from dcgan_faces import __version__, checkpoint, interrupt
from dcgan_faces.config import TrainConfig
from dcgan_faces.data import LISTING, Dataset
from dcgan_faces.preview import preview_seeds
from dcgan_faces.runfolder import RunFolder
from dcgan_faces.trainer import Trainer
from dcgan_faces.writers import Context, Diverged, MetricsLog, Reporter, Writers

MAX_ROLLBACKS = 3
DIVERGED_EXIT = 3
DAMAGED_DATA_EXIT = 2


class Session:
    """Trains `trainer` up to config.steps; `chief`: this process writes the run's files."""

    def __init__(self, config: TrainConfig, run: RunFolder, trainer: Trainer, dataset: Dataset,
                 seconds: float = 0.0, chief: bool = True, run_id: str | None = None):
        self.config, self.run_folder, self.trainer, self.dataset = config, run, trainer, dataset
        self.seconds, self.run_id = seconds, run_id
        self.rollbacks = 0
        self.preview_seeds = preview_seeds(config)
        self.writers = Writers.make(config, run, chief, self.save_checkpoint)
        self.reporter = Reporter(run.path, self.writers.progress.clear_line)
        self.say = self.reporter.say
        self.metrics = MetricsLog(run, self.reporter.attempt, kept=chief)

    def context(self, logs: dict | None = None) -> Context:
        """What the writers see of this session now."""
        trainer = self.trainer
        return Context(self.config, self.run_folder, trainer.iteration, trainer.epoch, trainer.generate, self.say,
                       self.reporter.attempt, save_log=self.metrics.flush, logs=logs or {},
                       images=self.dataset.images, preview_seeds=self.preview_seeds,
                       global_batch=trainer.global_batch, output_generator=trainer.output_generator)

    def run(self, stop) -> int:
        """Train until config.steps or until `stop.signal`; returns the process exit code."""
        trainer = self.trainer
        try:
            self._each("on_train_begin", self.context())
        except Diverged as error:
            return self._diverged_at_start(str(error))
        started = time.perf_counter() - self.seconds
        while trainer.iteration < self.config.steps and stop.signal is None:
            if self.dataset.check is not None and self.dataset.check.problem:
                self.writers.progress.close()
                print(f"error: {self.dataset.check.problem}", file=sys.stderr)
                return DAMAGED_DATA_EXIT
            logs = trainer.step()
            self.seconds = time.perf_counter() - started
            try:
                if not all(math.isfinite(value) for value in logs.values()):
                    raise Diverged(", ".join(f"{name} {value:.4g}" for name, value in logs.items()))
                self._after_step(logs)
            except Diverged as error:
                if not self.rollback(trainer.iteration, str(error)):
                    self.writers.progress.close()
                    return DIVERGED_EXIT
                started = time.perf_counter() - self.seconds
        return self.finish(stop.signal)

    def _after_step(self, logs: dict) -> None:
        """The iteration's metrics row logged, with the figures the writers measured, then the writers' turn."""
        context = self.context(logs)
        figures = {}
        for writer in self.writers:
            figures.update(writer.measure(context))
        self.metrics.record({"iteration": context.iteration, "epoch": round(context.epoch, 4), **logs,
                             "seconds": round(self.seconds, 3), **figures})
        self._each("on_train_batch_end", context)

    def _each(self, event: str, context: Context) -> None:
        for writer in self.writers:
            getattr(writer, event)(context)

    def rollback(self, k: int, figures: str) -> bool:
        """After a NaN or inf: reload the newest checkpoint with halved learning rates, when allowed."""
        self.metrics.flush()
        found = checkpoint.read_latest(self.run_folder.checkpoints, self.say)
        last = f"the last good checkpoint (iteration {found[1]['iteration']:,}) is kept" if found else "no checkpoint"
        self.say(f"training diverged at iteration {k:,} ({figures}); {last}.")
        lower = f"--lr {self.trainer.learning_rates()[0] / 2:.3g} with --fresh"
        if self.config.on_nan != "rollback":
            self.say(f"Lower the learning rate (e.g. {lower}), or pass --on-nan rollback to reload the last "
                     "checkpoint with halved learning rates and go on.")
            return False
        if found is None:
            self.say(f"--on-nan rollback: no checkpoint to go back to yet (the first is written at iteration "
                     f"{self.config.checkpoint_interval:,}); lower the learning rate (e.g. {lower}).")
            return False
        if self.rollbacks >= MAX_ROLLBACKS:
            self.say(f"--on-nan rollback: it diverged again after {MAX_ROLLBACKS} rollbacks, each halving the "
                     f"learning rates; stopped. Lower the learning rate further (e.g. {lower}).")
            return False
        _, state, arrays = found
        checkpoint.restore(self.trainer.gan, arrays)
        self.trainer.iteration, self.seconds = state["iteration"], state.get("seconds", self.seconds)
        self.trainer.scale_learning_rates(0.5)
        self.rollbacks += 1
        self.metrics.rollback(self.trainer.iteration)
        self._each("on_rollback", self.context())
        rates = ", ".join(f"{rate:.3g}" for rate in self.trainer.learning_rates())
        self.say(f"--on-nan rollback: back to iteration {self.trainer.iteration:,}, learning rates (G, D) now "
                 f"{rates} ({self.rollbacks} of {MAX_ROLLBACKS} rollbacks)")
        return True

    def _diverged_at_start(self, figures: str) -> int:
        self.say(f"the generator resumed from the checkpoint makes non-finite images ({figures}); "
                 "resume from an earlier checkpoint with --resume, or start over with --fresh")
        return DIVERGED_EXIT

    def finish(self, stopped_by: int | None) -> int:
        self.metrics.flush()
        self._each("on_train_end", self.context())
        checkpoints, generator = self.writers.checkpoints, self.writers.generator
        checkpoint_lost = checkpoints is not None and checkpoints.failed is not None
        if checkpoint_lost:
            print(self._newest_checkpoint(checkpoints.failed), file=sys.stderr, flush=True)
        # the generator elsewhere or nowhere: the message said where it went, or that it could not be saved
        generator_lost = generator is not None and generator.saved_as != self.run_folder.generator_path
        if checkpoint_lost or generator_lost:
            return 1
        k, where = self.trainer.iteration, self.run_folder.path
        if stopped_by is not None:
            self.say(f"stopped at iteration {k:,}: checkpoint, grid and generator saved in {where}. "
                     f"{interrupt.rerun().capitalize()} again to continue.")
            return 128 + stopped_by
        self.say(f"done: {k:,} iterations; generator saved as {self.run_folder.generator_path}")
        return 0

    def _newest_checkpoint(self, failed: int) -> str:
        """Training ends with its last checkpoint not written: what a re-run resumes from."""
        saved = checkpoint.checkpoints(self.run_folder.checkpoints)
        if not saved:
            return (f"error: the checkpoint of iteration {failed:,} could not be written and no checkpoint of this "
                    "run is saved: the same command starts again from iteration 0. Free some space in "
                    f"{self.run_folder.path} first")
        return (f"error: the checkpoint of iteration {failed:,} could not be written; the newest saved one is of "
                f"iteration {checkpoint.iteration_of(saved[0]):,} ({saved[0]}): the same command resumes from "
                f"there. Free some space in {self.run_folder.path} first")

    def save_checkpoint(self, staging: Path | None = None) -> None:
        """The checkpoint of the current iteration: the models, the optimizers and what a resume needs."""
        state = {
            "iteration": self.trainer.iteration,
            "epoch": self.trainer.epoch,
            "seconds": self.seconds,
            "config": dataclasses.asdict(self.config),
            "version": __version__,
            "run_id": self.run_id,
            "data_fingerprint": self.dataset.fingerprint,
        }
        extra = {"preview_seeds": self.preview_seeds}
        if self.dataset.listing is not None:
            extra[LISTING] = self.dataset.listing
        checkpoint.save(self.run_folder.checkpoints, self.trainer.gan, state, self.config.keep_checkpoints,
                        extra=extra, staging=staging)
