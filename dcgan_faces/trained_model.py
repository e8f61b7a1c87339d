"""The trained generator a tool is pointed at with --model: a run folder (its newest generator) or a .keras file."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from dcgan_faces import checkpoint, quiet
from dcgan_faces.cli_types import UsageError
from dcgan_faces.config import TrainConfig
from dcgan_faces.ema import recalibrate_batch_norm, recalibration_latents
from dcgan_faces.precision import building_in
from dcgan_faces.runfolder import RunFolder


def open_model(path: Path):
    """(generator, config or None) of a run folder or model file; UsageError when it cannot be loaded.

    What can be checked without TensorFlow (the path, the run's settings, its checkpoints) is checked before
    TensorFlow is imported, which takes seconds."""
    try:
        found = find_generator(path, log=_to_stderr)
        quiet.import_tensorflow()
        return build_generator(found, log=_to_stderr), found.config
    except ModelError as error:
        raise UsageError(str(error)) from None


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr)


def model_iteration(path: Path) -> int | None:
    """The iteration of the generator a run folder gives (its newest checkpoint's); None for a model file."""
    saved = checkpoint.checkpoints(RunFolder(path).checkpoints) if path.is_dir() else []
    return int(checkpoint.NAME.match(saved[0].name).group(1)) if saved else None


class ModelError(Exception):
    """A model cannot be loaded; the message names the path and what to do."""


@dataclass
class Found:
    """A generator located without TensorFlow: the run's settings and where its weights are."""

    config: TrainConfig | None  # None for a model file
    keras_file: Path | None = None  # a model file, or a run's generator.keras when no checkpoint is newer
    checkpoint: tuple | None = None  # (path, state, arrays) of a run's newest readable checkpoint


def load_generator(path: Path, log=print):
    """(generator, config or None) from a run folder or a saved .keras / .h5 file.

    A run folder gives its generator.keras, or (training still going, killed, or the file damaged) the
    generator of its newest checkpoint, built with the trainer's own layers so that it makes exactly the
    faces the trainer's preview grids show.
    """
    found = find_generator(path, log)
    return build_generator(found, log), found.config


def find_generator(path: Path, log=print) -> Found:
    """Where the generator of a run folder or model file is; ModelError naming the path when there is none."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"--model {path}: no such run folder or model file; give a run folder such as runs/demo_64")
    if not path.is_dir():
        return Found(None, keras_file=path)
    run = RunFolder(path)
    if not run.config_path.exists():
        raise ModelError(f"--model {path}: not a run folder (no config.json)")
    latest = checkpoint.read_latest(run.checkpoints, log=log)
    if latest is None and not run.generator_path.exists():
        raise ModelError(f"--model {path}: the run has neither generator.keras nor a checkpoint yet")
    config = _run_config(run, latest, log)
    newer = latest is not None and _is_newest(run, latest[0])
    return Found(config, None if newer else run.generator_path, latest)


def build_generator(found: Found, log=print):
    """The generator `find_generator` found: its Keras file, or (none, or damaged) its newest checkpoint."""
    if found.keras_file is not None:
        try:
            model = _load_keras(found.keras_file)
            return model if found.config is None else _trainer_layers(model, found.config)
        except ModelError as error:
            if found.checkpoint is None:
                raise
            log(f"{error}; using the newest checkpoint instead")
    return _generator_from_checkpoint(found.config, found.checkpoint[2], found.checkpoint[0])


def _run_config(run: RunFolder, latest: tuple | None, log) -> TrainConfig:
    """The run's settings from its config.json or, where that cannot be read, from its newest checkpoint, which
    holds them too (where a resumed training takes them from)."""
    try:
        return TrainConfig.load(run.config_path)
    except (OSError, ValueError) as error:
        problem = f"{run.config_path} cannot be read ({error})"
    if latest is None:
        raise ModelError(f"--model {run.path}: {problem} and no checkpoint holds the run's settings; give its "
                         f"generator alone: --model {run.generator_path}")
    log(f"{problem}; using the settings saved in {latest[0]}")
    return TrainConfig.from_dict(latest[1]["config"])


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
    from dcgan_faces.models import generator_of

    with building_in(config.precision):  # a mixed-precision run's grids were drawn in its precision
        fast = generator_of(config)
    fast.set_weights(generator.get_weights())
    return fast


def _generator_from_checkpoint(config: TrainConfig, arrays, path: Path):
    from dcgan_faces.models import generator_of

    with building_in(config.precision):
        generator = generator_of(config)
    try:
        checkpoint.assign_group(generator, arrays, checkpoint.output_generator_group(arrays), path)
    except checkpoint.CheckpointError as error:
        raise ModelError(f"--model: {error}") from None
    if config.bn_recalibration:  # the faces the trainer showed: generator.keras is saved recalibrated
        recalibrate_batch_norm(generator, recalibration_latents(config), config.batch_size)
    return generator
