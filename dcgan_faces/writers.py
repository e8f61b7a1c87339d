"""What a run writes beside the loop, each writer on its own schedule, in the shape of Keras callbacks.

The loop (session.py) calls `on_train_begin`, `on_train_batch_end` after every iteration and
`on_train_end`; a writer acts when its schedule says so. A write that fails (a full disk, a vanished
mount) is reported by `Session.attempt` and training goes on with the previous file kept.
"""

from __future__ import annotations

import hashlib
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dcgan_faces.atomic import write_atomically
from dcgan_faces.cli_types import MIN_EVAL_IMAGES
from dcgan_faces.interrupt import how_to_stop
from dcgan_faces.preview import image_grid, to_uint8
from dcgan_faces.sampling import in_fixed_batches

POSTFIX_EVERY = 10  # iterations between updates of the progress bar's figures
FIRST_STEPS = 5  # the time per iteration is announced after this many (the first ones trace the graphs)


class Diverged(Exception):
    """A loss or the generator's output is NaN or infinite."""


class Writer:
    """One output of a run. `every`: iterations between writes (0: not on a schedule)."""

    every = 0

    def due(self, iteration: int) -> bool:
        return bool(self.every) and iteration % self.every == 0

    def on_train_begin(self, session) -> None:
        pass

    def on_train_batch_end(self, session, iteration: int, logs: dict) -> None:
        if self.due(iteration):
            self.write(session)

    def on_rollback(self, session) -> None:
        pass

    def on_train_end(self, session) -> None:
        pass

    def write(self, session) -> None:
        pass


class MetricsLog(Writer):
    """metrics.jsonl: one row per iteration, appended whenever a grid or a checkpoint is written."""

    def __init__(self):
        self.pending: list[dict] = []

    def on_train_batch_end(self, session, iteration, logs):
        self.pending.append({"iteration": iteration, "epoch": round(session.trainer.epoch, 4), **logs,
                             "seconds": round(session.seconds, 3)})

    def flush(self, session) -> None:
        """Append the pending rows; where that fails (a full disk) they stay pending for the next try."""
        rows = self.pending
        if rows and session.attempt("the metrics log", lambda: session.run_folder.append_metrics(rows)):
            self.pending = []

    def on_rollback(self, session):
        self.pending = []
        session.attempt("the metrics log", lambda: session.run_folder.truncate_metrics(session.trainer.iteration))

    def on_train_end(self, session):
        self.flush(session)


class Evaluation(Writer):
    """SWD and face hit rate of the shown generator, added to this iteration's metrics row."""

    def __init__(self, every: int):
        self.every = every

    def on_train_begin(self, session):
        count = min(session.config.eval_images, len(session.images))
        if self.every and count < MIN_EVAL_IMAGES:  # a run's --eval-images of an earlier version, or one image
            session.say(f"skipping the evaluations: {count} image(s) to compare, at least {MIN_EVAL_IMAGES} are "
                        f"needed; pass --eval-images {MIN_EVAL_IMAGES} or more")
            self.every = 0

    def write(self, session):
        session.attempt("the evaluation", lambda: self._evaluate(session), optional=True)

    @staticmethod
    def _evaluate(session) -> None:
        from dcgan_faces.evaluation import evaluate_generator, floor_text

        config = session.config
        figures = evaluate_generator(session.trainer.generate, session.images, config.eval_images, config.seed_size,
                                     seed=config.seed)
        session.metrics.pending[-1].update(figures)
        session.say(f"iteration {session.trainer.iteration:,}: SWD {figures['swd']:.1f} ({floor_text(figures)}), "
                    f"face rate {figures['face_rate_fake']:.2f} (real {figures['face_rate_real']:.2f})")


class Previews(Writer):
    """previews/iter-NNNNNNNN.png: the fixed preview faces, at the start, every `every` and at the end."""

    def __init__(self, every: int, tensorboard=None):
        self.every, self.tensorboard = every, tensorboard
        self.latest = None

    def on_train_begin(self, session):
        if session.trainer.iteration == 0:
            self.write(session)

    def on_train_end(self, session):
        if not session.run_folder.preview_path(session.trainer.iteration).exists():
            self.write(session)

    def write(self, session):
        generated = in_fixed_batches(session.trainer.generate, session.preview_seeds)
        if not np.isfinite(generated).all():
            raise Diverged("the generator's output is not finite")
        config, k = session.config, session.trainer.iteration
        grid = image_grid(to_uint8(generated), config.preview_rows, config.preview_cols)
        if session.attempt(f"the preview grid of iteration {k:,}", lambda: session.run_folder.save_preview(grid, k)):
            self.latest = session.run_folder.preview_path(k)
        session.metrics.flush(session)
        if self.tensorboard is not None:
            session.attempt("the TensorBoard log", lambda: self._log(k, grid))

    def _log(self, iteration: int, grid) -> None:
        self.tensorboard.image(iteration, "preview", np.asarray(grid))
        self.tensorboard.flush()


class LossPlot(Writer):
    """plots.png: the loss and accuracy curves, redrawn with every preview grid and when training stops."""

    def __init__(self, every: int):
        self.every = every

    def on_train_end(self, session):
        self.write(session)  # after MetricsLog has flushed the last rows (it comes first in the writers)

    def write(self, session):
        from dcgan_faces.curves import save_plot

        session.attempt("the loss plot",
                        lambda: save_plot(session.run_folder.read_metrics(), session.run_folder.plot_path))


class TensorBoard(Writer):
    """tensorboard/: every iteration's figures as scalars (the preview grids come from Previews)."""

    def __init__(self, log):
        self.log = log

    def on_train_batch_end(self, session, iteration, logs):
        session.attempt("the TensorBoard log", lambda: self.log.scalars(iteration, logs))

    def on_train_end(self, session):
        session.attempt("the TensorBoard log", self.log.flush)


class Checkpoints(Writer):
    """checkpoints/ckpt-NNNNNNNN.npz: the whole training state, every `every` iterations and at the end."""

    def __init__(self, every: int):
        self.every = every
        self.failed: int | None = None  # the iteration whose checkpoint, the last one tried, could not be written

    def on_train_end(self, session):
        if not (session.run_folder.checkpoints / f"ckpt-{session.trainer.iteration:08d}.npz").exists():
            self.write(session)

    def write(self, session):
        session.metrics.flush(session)
        k = session.trainer.iteration
        saved = session.attempt(f"the checkpoint of iteration {k:,}", session.save_checkpoint)
        self.failed = None if saved else k


class SavedGenerator(Writer):
    """generator.keras at the end (or when stopped): the shown generator, in stock Keras layers. Where the
    run folder has no room, it goes to the system's temporary folder, and the message says where."""

    def __init__(self):
        self.saved_as: Path | None = None

    def on_train_end(self, session):
        from dcgan_faces.models import stock_generator

        generator = stock_generator(session.trainer.gan.output_generator)
        try:
            self.saved_as = session.run_folder.save_generator(generator)
            return
        except OSError as error:
            problem = f"could not write the generator {session.run_folder.generator_path} ({error.strerror or error})"
        fallback = fallback_path(session.run_folder.path, session.trainer.iteration)
        try:
            self.saved_as = _save_generator(generator, fallback)
        except OSError as error:
            session.say(f"{problem}, nor {fallback} ({error.strerror or error}): the generator of this session is "
                        "not saved anywhere. Free some space and run the same command: it resumes from the newest "
                        "checkpoint")
            return
        session.say(f"{problem}; saved it as {fallback} instead: move it into the run folder once there is room")


def fallback_path(run: Path, iteration: int) -> Path:
    """Where the generator goes when the run folder has no room: the system's temporary folder, under the run's
    name and a short hash of its full path (two runs named alike in different places keep a copy each)."""
    digest = hashlib.sha256(str(Path(run).resolve()).encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"{Path(run).name}-{digest}-generator-{iteration:08d}.keras"


def _save_generator(stock_model, path: Path) -> Path:
    return write_atomically(path, stock_model.save)


class Progress(Writer):
    """A progress bar on a terminal; elsewhere (a log file, nohup, a notebook cell) one line per grid.

    After the first few iterations it says how long one takes and when the run will end.
    """

    def __init__(self, every: int, interactive: bool | None = None):
        self.every = every
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.bar = None
        self.started_at = self.started_iteration = None

    def on_train_begin(self, session):
        from tqdm import tqdm

        k, steps = session.trainer.iteration, session.config.steps
        if self.interactive:
            self.bar = tqdm(total=steps, initial=k, unit="it", dynamic_ncols=True, file=sys.stderr)
        self.started_at, self.started_iteration = time.perf_counter(), k

    def on_train_batch_end(self, session, iteration, logs):
        if iteration - self.started_iteration == 1:  # time from here on: the first step traces the graphs
            self.started_at = time.perf_counter()
        elif iteration - self.started_iteration == FIRST_STEPS + 1:
            session.say(self.forecast(session, iteration))
        if self.bar is not None:
            self.bar.update()
            if iteration % POSTFIX_EVERY == 0:
                self.bar.set_postfix({name: f"{value:.3f}" for name, value in logs.items()}, refresh=False)
        elif self.due(iteration) or iteration == session.config.steps:
            session.say(self.line(session, iteration, logs))

    def seconds_per_iteration(self, iteration: int) -> float | None:
        done = iteration - self.started_iteration - 1
        return (time.perf_counter() - self.started_at) / done if done > 0 else None

    def forecast(self, session, iteration: int) -> str:
        per = self.seconds_per_iteration(iteration)
        left = session.config.steps - iteration
        text = f"{per:.2f} s per iteration ({session.trainer.global_batch / per:.1f} images/s)"
        if left <= 0:
            return text
        text += f"; the {left:,} iterations to go take about {duration(per * left)}"
        if per * left > 3600 and session.trainer.iteration < 2 * FIRST_STEPS:
            text += f". For a first look at faces within minutes, try --res 32 --steps 500 ({how_to_stop()})"
        return text

    def line(self, session, iteration: int, logs: dict) -> str:
        per = self.seconds_per_iteration(iteration)
        speed = f"{session.trainer.global_batch / per:.1f} images/s, ETA " \
                f"{duration(per * (session.config.steps - iteration))}" if per else "timing..."
        figures = " ".join(f"{name} {value:.3f}" for name, value in logs.items())
        grid = session.run_folder.preview_path(iteration)
        where = f"; grid {grid}" if grid.exists() else ""
        return (f"iteration {iteration:,}/{session.config.steps:,} (epoch {session.trainer.epoch:.2f}): {speed}; "
                f"{figures}{where}")

    def on_rollback(self, session):
        if self.bar is not None:
            self.bar.reset(total=session.config.steps)
            self.bar.update(session.trainer.iteration)
        self.started_at, self.started_iteration = time.perf_counter(), session.trainer.iteration

    def on_train_end(self, session):
        if self.bar is not None:
            self.bar.close()

    def clear_line(self) -> None:
        """Before another message: keep it off the bar's line."""
        if self.bar is not None:
            self.bar.clear()


def duration(seconds: float) -> str:
    """3725 → "1 h 2 min"; 95 → "2 min"; 20 → "20 s"."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
