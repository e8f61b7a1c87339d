"""The run folder, the unit a user handles: config, metrics log, preview grids, checkpoints, generator."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from dcgan_faces.config import TrainConfig
from dcgan_faces.data import write_atomically, write_json_atomically

PREVIEW_PATTERN = "iter-*.png"


class RunFolder:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.config_path = self.path / "config.json"
        self.metrics_path = self.path / "metrics.jsonl"
        self.previews = self.path / "previews"
        self.checkpoints = self.path / "checkpoints"
        self.generator_path = self.path / "generator.keras"

    def create(self) -> None:
        self.previews.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(parents=True, exist_ok=True)

    def write_config(self, config: TrainConfig) -> None:
        write_json_atomically(self.config_path, json.loads(config.to_json()))

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
        text = "".join(json.dumps(row) + "\n" for row in self.read_metrics() if row["iteration"] <= iteration)
        write_atomically(self.metrics_path, lambda tmp: tmp.write_text(text))

    def preview_path(self, iteration: int) -> Path:
        return self.previews / f"iter-{iteration:08d}.png"

    def save_preview(self, grid: Image.Image, iteration: int) -> Path:
        path = self.preview_path(iteration)
        write_atomically(path, grid.save)
        return path

    def preview_files(self) -> list[Path]:
        return sorted(self.previews.glob(PREVIEW_PATTERN))

    def save_generator(self, generator) -> Path:
        """generator.keras in stock Keras layers: it loads with plain `keras.models.load_model`."""
        from dcgan_faces.models import stock_generator

        write_atomically(self.generator_path, stock_generator(generator).save)
        return self.generator_path


def load_generator(path: Path):
    """(generator, config or None) from a run folder or a saved .keras / .h5 file.

    A run folder without generator.keras yet (training still going, or killed) gives the generator of
    its newest checkpoint.
    """
    import keras

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--model {path}: no such run folder or model file")
    if not path.is_dir():
        return keras.models.load_model(path, compile=False), None
    run = RunFolder(path)
    if not run.config_path.exists():
        raise FileNotFoundError(f"--model {path}: not a run folder (no config.json)")
    config = TrainConfig.load(run.config_path)
    if run.generator_path.exists():
        return keras.models.load_model(run.generator_path, compile=False), config
    return _generator_from_checkpoint(run, config), config


def _generator_from_checkpoint(run: RunFolder, config: TrainConfig):
    from dcgan_faces import checkpoint
    from dcgan_faces.models import ARCHITECTURES

    latest = checkpoint.read_latest(run.checkpoints)
    if latest is None:
        raise FileNotFoundError(f"{run.path} has neither generator.keras nor a checkpoint yet")
    _, _, arrays = latest
    generator = ARCHITECTURES[config.arch][0](config.res, config.seed_size, config.channels)
    checkpoint.assign_group(generator.variables, arrays, checkpoint.output_generator_group(arrays))
    return generator
