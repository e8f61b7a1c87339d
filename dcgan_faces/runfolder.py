"""The run folder, the unit a user handles: config, metrics log, preview grids, checkpoints, generator."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from dcgan_faces.atomic import write_atomically, write_json, write_text
from dcgan_faces.config import TrainConfig
from dcgan_faces.imagefile import save_png

PREVIEW_PATTERN = "iter-*.png"


class RunFolder:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.config_path = self.path / "config.json"
        self.metrics_path = self.path / "metrics.jsonl"
        self.previews = self.path / "previews"
        self.checkpoints = self.path / "checkpoints"
        self.generator_path = self.path / "generator.keras"
        self.plot_path = self.path / "plots.png"

    def is_run(self) -> bool:
        """Whether the folder holds (the start of) a run: a config, a metrics log or checkpoints."""
        return self.config_path.exists() or self.metrics_path.exists() or self.checkpoints.is_dir()

    def create(self) -> None:
        self.previews.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(parents=True, exist_ok=True)

    def write_config(self, config: TrainConfig) -> None:
        write_json(self.config_path, json.loads(config.to_json()))

    def append_metrics(self, rows: list[dict]) -> None:
        with open(self.metrics_path, "a") as log:
            log.writelines(json.dumps(row) + "\n" for row in rows)

    def read_metrics(self) -> list[dict]:
        if not self.metrics_path.exists():
            return []
        rows = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                break  # a line cut short by a kill: everything after it is lost anyway
        return rows

    def truncate_metrics(self, iteration: int) -> None:
        """Drop log rows after `iteration`: a resume replays those iterations and logs them again."""
        rows = self.read_metrics()
        if rows and rows[-1]["iteration"] > iteration:
            write_text(self.metrics_path, "".join(json.dumps(row) + "\n" for row in rows
                                                  if row["iteration"] <= iteration))

    def preview_path(self, iteration: int) -> Path:
        return self.previews / f"iter-{iteration:08d}.png"

    def save_preview(self, grid: Image.Image, iteration: int) -> Path:
        return save_png(grid, self.preview_path(iteration), "preview grid")

    def preview_files(self) -> list[Path]:
        return sorted(self.previews.glob(PREVIEW_PATTERN))

    def save_generator(self, generator) -> Path:
        """generator.keras in stock Keras layers: it loads with plain `keras.models.load_model`."""
        from dcgan_faces.models import stock_generator

        return write_atomically(self.generator_path, stock_generator(generator).save)


class ModelError(Exception):
    """A model cannot be loaded; the message names the path and what to do."""


def load_generator(path: Path, log=print):
    """(generator, config or None) from a run folder or a saved .keras / .h5 file.

    A run folder gives its generator.keras, or (training still going, killed, or the file damaged) the
    generator of its newest checkpoint, built with the trainer's own layers so that it makes exactly the
    faces the trainer's preview grids show.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"--model {path}: no such run folder or model file; give a run folder such as runs/demo_64")
    if not path.is_dir():
        return _load_keras(path), None
    run = RunFolder(path)
    if not run.config_path.exists():
        raise ModelError(f"--model {path}: not a run folder (no config.json)")
    config = TrainConfig.load(run.config_path)
    from dcgan_faces import checkpoint

    latest = checkpoint.read_latest(run.checkpoints, log=log)
    if latest is not None and _is_newest(run, latest[0]):
        return _generator_from_checkpoint(config, latest[2]), config
    if run.generator_path.exists():
        try:
            return _trainer_layers(_load_keras(run.generator_path), config), config
        except ModelError as error:
            if latest is None:
                raise
            log(f"{error}; using the newest checkpoint instead")
    if latest is None:
        raise ModelError(f"--model {path}: the run has neither generator.keras nor a checkpoint yet")
    return _generator_from_checkpoint(config, latest[2]), config


def _is_newest(run: RunFolder, checkpoint_path: Path) -> bool:
    """Whether the checkpoint is newer than generator.keras (or there is no generator.keras)."""
    try:
        return checkpoint_path.stat().st_mtime > run.generator_path.stat().st_mtime
    except FileNotFoundError:
        return True


def _load_keras(path: Path):
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises ValueError, OSError, zipfile errors... for a damaged file
        raise ModelError(f"--model {path}: not a readable Keras model ({type(error).__name__}); it may be cut "
                         "short or not a model") from None


def _trainer_layers(generator, config: TrainConfig):
    """A notebook generator in the trainer's faster layers (same weights), so that it makes the same faces."""
    if config.arch != "notebook":
        return generator
    from dcgan_faces.models import build_generator

    fast = build_generator(config.res, config.seed_size, config.channels)
    fast.set_weights(generator.get_weights())
    return fast


def _generator_from_checkpoint(config: TrainConfig, arrays):
    from dcgan_faces import checkpoint
    from dcgan_faces.models import ARCHITECTURES

    generator = ARCHITECTURES[config.arch][0](config.res, config.seed_size, config.channels)
    checkpoint.assign_group(generator.variables, arrays, checkpoint.output_generator_group(arrays))
    return generator
