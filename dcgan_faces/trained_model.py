"""The trained generator a tool is pointed at with --model: a run folder (its newest generator) or a .keras file."""

from __future__ import annotations

import sys
from pathlib import Path

from dcgan_faces.cli_types import UsageError


def open_model(path: Path):
    """(generator, config or None) of a run folder or model file; UsageError when it cannot be loaded."""
    from dcgan_faces import quiet

    quiet.import_tensorflow()
    from dcgan_faces.runfolder import ModelError, load_generator

    try:
        return load_generator(path, log=lambda text: print(text, file=sys.stderr))
    except ModelError as error:
        raise UsageError(str(error)) from None


def model_iteration(path: Path) -> int | None:
    """The iteration of the generator a run folder gives (its newest checkpoint's); None for a model file."""
    from dcgan_faces import checkpoint
    from dcgan_faces.runfolder import RunFolder

    saved = checkpoint.checkpoints(RunFolder(path).checkpoints) if path.is_dir() else []
    return int(checkpoint.NAME.match(saved[0].name).group(1)) if saved else None
