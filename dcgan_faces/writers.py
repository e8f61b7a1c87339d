"""What a run writes beside the loop, each writer on its own schedule, in the shape of Keras callbacks.

The loop (session.py) calls `on_train_begin`, then after every iteration `measure` (figures for this iteration's
metrics row) and `on_train_batch_end`, and `on_train_end`; a writer acts when its schedule says so. A writer sees
only a `Context`: the iteration and its losses, a way to make images, the run folder, how to tell the user and
how to report a failed write (`Reporter.attempt`: a full disk or a vanished mount is said once and training goes
on with the previous file kept). No writer reads or changes another's data: the order of the writers (files
first, then what shows them) is fixed in one place, `Writers.make`.
"""

from __future__ import annotations

import hashlib
import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dcgan_faces import checkpoint
from dcgan_faces.atomic import write_atomically
from dcgan_faces.cli_types import MIN_EVAL_IMAGES
from dcgan_faces.config import TrainConfig
from dcgan_faces.curves import save_plot
from dcgan_faces.evaluation import evaluate_generator, floor_text
from dcgan_faces.interrupt import how_to_stop, in_kernel
from dcgan_faces.preview import image_grid, to_uint8
from dcgan_faces.runfolder import RunFolder
from dcgan_faces.sampling import in_fixed_batches
from dcgan_faces.staging import is_slow_mount

POSTFIX_EVERY = 10  # iterations between updates of the progress bar's figures
FIRST_STEPS = 5  # the time per iteration is announced after this many (the first ones trace the graphs)


class Diverged(Exception):
    """A loss or the generator's output is NaN or infinite."""


@dataclass(frozen=True)
class Context:
    """What a writer sees of the training, and all it may do beside writing its own files."""

    config: TrainConfig
    run: RunFolder
    iteration: int
    epoch: float
    generate: Callable[[np.ndarray], np.ndarray]  # latents → images in [-1, 1], of the shown generator
    say: Callable[[str], None]  # a message for the user
    attempt: Callable[..., bool]  # Reporter.attempt: a write whose failure is reported, training going on
    save_log: Callable[[], None] = lambda: None  # the metrics rows logged so far written to metrics.jsonl
    logs: dict = field(default_factory=dict)  # this iteration's losses (after an iteration only)
    images: np.ndarray | None = None  # the real images (the evaluations compare with them)
    preview_seeds: np.ndarray | None = None  # the latents of the preview faces
    global_batch: int = 0  # images per iteration, over every replica
    output_generator: Callable[[], object] | None = None  # the shown generator, a Keras model (saved at the end)


class Reporter:
    """How the run tells the user: a message clear of the progress bar, a failed write said once."""

    def __init__(self, folder: Path, clear_line: Callable[[], None] = lambda: None):
        self.folder, self.clear_line = folder, clear_line
        self._unavailable: set[str] = set()
        self._failed: set[str] = set()  # writes reported as failed, said once (a grid's name holds its iteration)

    def say(self, text: str) -> None:
        self.clear_line()
        print(text, flush=True)

    def attempt(self, what: str, write, optional: bool = False) -> bool:
        """Run a writer's action; a write error (a full disk, a vanished mount) is reported and training goes
        on. `optional`: an action that needs an extra package; without it, say so once and stop trying."""
        if what in self._unavailable:
            return False
        try:
            write()
        except OSError as error:
            if what not in self._failed:  # not again: the TensorBoard log would say it at every iteration
                self._failed.add(what)
                self.say(f"could not write {what} ({error.strerror or error}); the previous file is kept. Free some "
                         f"space in {self.folder} or fix the mount, and training continues.")
            return False
        except ImportError as error:
            if not optional:
                raise
            self._unavailable.add(what)
            self.say(f"skipping {what}: {error}")
            return False
        return True


class Writer:
    """One output of a run. `every`: iterations between writes (0: not on a schedule)."""

    every = 0

    def due(self, iteration: int) -> bool:
        return bool(self.every) and iteration % self.every == 0

    def on_train_begin(self, context: Context) -> None:
        pass

    def measure(self, context: Context) -> dict:
        """Figures to add to this iteration's metrics row (before any writer writes)."""
        return {}

    def on_train_batch_end(self, context: Context) -> None:
        if self.due(context.iteration):
            self.write(context)

    def on_rollback(self, context: Context) -> None:
        pass

    def on_train_end(self, context: Context) -> None:
        pass

    def write(self, context: Context) -> None:
        pass


class MetricsLog:
    """metrics.jsonl: one row per iteration, kept until a grid or a checkpoint is written (`flush`). The loop's
    own record, not a writer: an evaluation's figures come into a row as `Writer.measure`'s return value."""

    def __init__(self, run: RunFolder, attempt: Callable[..., bool], kept: bool = True):
        self.run, self.attempt, self.kept = run, attempt, kept  # kept: the chief's; elsewhere nothing is logged
        self.pending: list[dict] = []

    def record(self, row: dict) -> None:
        if self.kept:
            self.pending.append(row)

    def flush(self) -> None:
        """Append the pending rows; where that fails (a full disk) they stay pending for the next try."""
        rows = self.pending
        if rows and self.attempt("the metrics log", lambda: self.run.append_metrics(rows)):
            self.pending = []

    def rollback(self, iteration: int) -> None:
        """Back to `iteration`: the rows after it go, logged or not."""
        self.pending = []
        if self.kept:
            self.attempt("the metrics log", lambda: self.run.truncate_metrics(iteration))


class Evaluation(Writer):
    """SWD and face hit rate of the shown generator, added to this iteration's metrics row."""

    def __init__(self, every: int):
        self.every = every

    def on_train_begin(self, context):
        count = min(context.config.eval_images, len(context.images))
        if self.every and count < MIN_EVAL_IMAGES:  # a run's --eval-images of an earlier version, or one image
            context.say(f"skipping the evaluations: {count} image(s) to compare, at least {MIN_EVAL_IMAGES} are "
                        f"needed; pass --eval-images {MIN_EVAL_IMAGES} or more")
            self.every = 0

    def measure(self, context):
        figures: dict = {}
        if self.due(context.iteration):
            context.attempt("the evaluation", lambda: figures.update(self._evaluate(context)), optional=True)
        return figures

    @staticmethod
    def _evaluate(context) -> dict:
        config = context.config
        figures = evaluate_generator(context.generate, context.images, config.eval_images, config.seed_size,
                                     seed=config.seed)
        context.say(f"iteration {context.iteration:,}: SWD {figures['swd']:.1f} ({floor_text(figures)}), "
                    f"face rate {figures['face_rate_fake']:.2f} (real {figures['face_rate_real']:.2f})")
        return figures


class Previews(Writer):
    """previews/iter-NNNNNNNN.png: the fixed preview faces, at the start, every `every` and at the end."""

    def __init__(self, every: int, tensorboard=None):
        self.every, self.tensorboard = every, tensorboard

    def on_train_begin(self, context):
        if context.iteration == 0:
            self.write(context)

    def on_train_end(self, context):
        if not context.run.preview_path(context.iteration).exists():
            self.write(context)

    def write(self, context):
        generated = in_fixed_batches(context.generate, context.preview_seeds)
        if not np.isfinite(generated).all():
            raise Diverged("the generator's output is not finite")
        config, k = context.config, context.iteration
        grid = image_grid(to_uint8(generated), config.preview_rows, config.preview_cols)
        context.attempt(f"the preview grid of iteration {k:,}", lambda: context.run.save_preview(grid, k))
        context.save_log()  # the log on disk as far as the grids go
        if self.tensorboard is not None:
            context.attempt("the TensorBoard log", lambda: self._log(k, grid))

    def _log(self, iteration: int, grid) -> None:
        self.tensorboard.image(iteration, "preview", np.asarray(grid))
        self.tensorboard.flush()


class LossPlot(Writer):
    """plots.png: the loss and accuracy curves, redrawn with every preview grid and when training stops."""

    def __init__(self, every: int):
        self.every = every

    def on_train_end(self, context):
        self.write(context)

    def write(self, context):
        context.save_log()  # the curves are drawn from metrics.jsonl: every row logged so far in it first
        context.attempt("the loss plot", lambda: save_plot(context.run.read_metrics(), context.run.plot_path))


class TensorBoard(Writer):
    """tensorboard/: every iteration's figures as scalars (the preview grids come from Previews)."""

    def __init__(self, log):
        self.log = log

    def on_train_batch_end(self, context):
        context.attempt("the TensorBoard log", lambda: self.log.scalars(context.iteration, context.logs))

    def on_train_end(self, context):
        context.attempt("the TensorBoard log", self.log.flush)


class Checkpoints(Writer):
    """checkpoints/ckpt-NNNNNNNN.npz: the whole training state, every `every` iterations and at the end.

    `save(staging)` writes the checkpoint of the current iteration; `staging`: where it is written first (a
    local folder when the run is on a slow mount such as Drive), or None."""

    def __init__(self, every: int, save: Callable[[Path | None], None], staging: Path | None = None):
        self.every, self.save, self.staging = every, save, staging
        self.failed: int | None = None  # the iteration whose checkpoint, the last one tried, could not be written

    def on_train_end(self, context):
        if not (context.run.checkpoints / checkpoint.file_name(context.iteration)).exists():
            self.write(context)

    def write(self, context):
        context.save_log()  # a resume cuts the log back to its checkpoint: the rows up to it must be there
        k = context.iteration
        saved = context.attempt(f"the checkpoint of iteration {k:,}", lambda: self.save(self.staging))
        self.failed = None if saved else k


class SavedGenerator(Writer):
    """generator.keras at the end (or when stopped): the shown generator, in stock Keras layers. Where the
    run folder has no room, it goes to the system's temporary folder, and the message says where."""

    def __init__(self):
        self.saved_as: Path | None = None

    def on_train_end(self, context):
        from dcgan_faces.models import stock_generator  # TensorFlow's: loaded by the time training ends

        generator = stock_generator(context.output_generator())
        try:
            self.saved_as = context.run.save_generator(generator)
            return
        except OSError as error:
            problem = f"could not write the generator {context.run.generator_path} ({error.strerror or error})"
        fallback = fallback_path(context.run.path, context.iteration)
        try:
            self.saved_as = _save_generator(generator, fallback)
        except OSError as error:
            context.say(f"{problem}, nor {fallback} ({error.strerror or error}): the generator of this session is "
                        "not saved anywhere. Free some space and run the same command: it resumes from the newest "
                        "checkpoint")
            return
        context.say(f"{problem}; saved it as {fallback} instead: move it into the run folder once there is room")


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

    def on_train_begin(self, context):
        from tqdm import tqdm

        k, steps = context.iteration, context.config.steps
        if self.interactive:
            self.bar = tqdm(total=steps, initial=k, unit="it", dynamic_ncols=True, file=sys.stderr)
        self.started_at, self.started_iteration = time.perf_counter(), k

    def on_train_batch_end(self, context):
        iteration, logs = context.iteration, context.logs
        if iteration - self.started_iteration == 1:  # time from here on: the first step traces the graphs
            self.started_at = time.perf_counter()
        elif iteration - self.started_iteration == FIRST_STEPS + 1:
            context.say(self.forecast(context))
        if self.bar is not None:
            self.bar.update()
            if iteration % POSTFIX_EVERY == 0:
                self.bar.set_postfix({name: f"{value:.3f}" for name, value in logs.items()}, refresh=False)
        elif self.due(iteration) or iteration == context.config.steps:
            context.say(self.line(context))

    def seconds_per_iteration(self, iteration: int) -> float | None:
        done = iteration - self.started_iteration - 1
        return (time.perf_counter() - self.started_at) / done if done > 0 else None

    def forecast(self, context: Context) -> str:
        iteration = context.iteration
        per = self.seconds_per_iteration(iteration)
        left = context.config.steps - iteration
        text = f"{per:.2f} s per iteration ({context.global_batch / per:.1f} images/s)"
        if left <= 0:
            return text
        text += f"; the {left:,} iterations to go take about {duration(per * left)}"
        if per * left > 3600 and iteration < 2 * FIRST_STEPS:
            text += f". For a first look at faces within minutes, try --res 32 --steps 500 ({how_to_stop()})"
        return text

    def line(self, context: Context) -> str:
        iteration, steps = context.iteration, context.config.steps
        per = self.seconds_per_iteration(iteration)
        speed = f"{context.global_batch / per:.1f} images/s, ETA {duration(per * (steps - iteration))}" if per \
            else "timing..."
        figures = " ".join(f"{name} {value:.3f}" for name, value in context.logs.items())
        grid = context.run.preview_path(iteration)
        where = f"; grid {grid}" if grid.exists() else ""
        return f"iteration {iteration:,}/{steps:,} (epoch {context.epoch:.2f}): {speed}; {figures}{where}"

    def on_rollback(self, context):
        if self.bar is not None:
            self.bar.reset(total=context.config.steps)
            self.bar.update(context.iteration)
        self.started_at, self.started_iteration = time.perf_counter(), context.iteration

    def on_train_end(self, context):
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def clear_line(self) -> None:
        """Before another message: keep it off the bar's line."""
        if self.bar is not None:
            self.bar.clear()


class NotebookDisplay(Writer):
    """The newest preview grid and plots.png in the training cell's output, replaced in place at every grid."""

    def __init__(self, every: int):
        self.every = every
        self.handles: dict[str, object] = {}  # "grid", "plot": IPython DisplayHandle

    def on_train_begin(self, context):
        self.write(context)

    def on_train_end(self, context):
        self.write(context)

    def write(self, context):
        context.attempt("the grid shown in the notebook", lambda: self._show(context.run))

    def _show(self, run: RunFolder) -> None:
        from IPython.display import Image, display

        previews = run.preview_files()
        for name, path in (("grid", previews[-1] if previews else None), ("plot", run.plot_path)):
            if path is None or not path.exists():
                continue
            image = Image(data=Path(path).read_bytes(), format="png")
            if name in self.handles:
                self.handles[name].update(image)
            else:
                self.handles[name] = display(image, display_id=True)


@dataclass
class Writers:
    """A session's writers: `files` write the run's files, each its own, in any order; `shows` then show them (the
    progress line names the newest grid, the notebook shows the grid and the plot)."""

    files: list[Writer]
    shows: list[Writer]
    progress: Progress
    checkpoints: Checkpoints | None = None
    generator: SavedGenerator | None = None

    @classmethod
    def make(cls, config: TrainConfig, run: RunFolder, chief: bool,
             save_checkpoint: Callable[[Path | None], None]) -> Writers:
        """The chief's writers, or a worker's (the progress alone); the chief shows the grids in a notebook, and
        stages its checkpoints on local disk when the run is on a slow mount (Drive)."""
        progress = Progress(config.save_every)
        if not chief:
            return cls([], [progress], progress)
        from dcgan_faces.tblog import TensorBoardLog  # TensorFlow's summary writer

        tensorboard = TensorBoardLog(run.path / "tensorboard")
        staging = Path(tempfile.gettempdir()) if is_slow_mount(run.checkpoints) else None
        checkpoints, generator = Checkpoints(config.checkpoint_interval, save_checkpoint, staging), SavedGenerator()
        files = [TensorBoard(tensorboard), Evaluation(config.eval_every), Previews(config.save_every, tensorboard),
                 LossPlot(config.save_every), checkpoints, generator]
        shows = [progress, NotebookDisplay(config.save_every)] if in_kernel() else [progress]
        return cls(files, shows, progress, checkpoints, generator)

    def __iter__(self):
        return iter([*self.files, *self.shows])


def duration(seconds: float) -> str:
    """3725 → "1 h 2 min"; 95 → "2 min"; 20 → "20 s"."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
