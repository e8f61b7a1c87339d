"""Atomic save and restore of the whole training state: weights, optimizer slots, counters, config."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dcgan_faces.atomic import write_atomically

if TYPE_CHECKING:
    from dcgan_faces.models import GAN

NAME = re.compile(r"ckpt-(\d{8})\.npz$")
AVERAGE = "generator_average"
DAMAGED = "damaged"  # subfolder where unreadable checkpoints are set aside, never deleted


class CheckpointError(Exception):
    """A checkpoint cannot be used; the message says which file and why."""


class NotACheckpoint(CheckpointError):
    """The file is not a checkpoint of this package at all (a photo, another program's .npz)."""


def _variable_groups(gan: GAN) -> dict[str, list]:
    # model.variables also holds the dropout layers' random-generator states, which exact resumption needs
    groups = {
        "generator": gan.generator.variables,
        "discriminator": gan.discriminator.variables,
        "d_optimizer": gan.discriminator.optimizer.variables,
        "g_optimizer": gan.combined.optimizer.variables,
    }
    if gan.average:
        groups[AVERAGE] = gan.average.model.variables
    return groups


def checkpoints(folder: Path) -> list[Path]:
    """Checkpoint files in `folder`, newest (highest iteration) first."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if NAME.match(p.name)), reverse=True)


def save(folder: Path, gan: GAN, state: dict, keep: int = 2, extra: dict[str, np.ndarray] | None = None,
         staging: Path | None = None) -> Path:
    """Write ckpt-{iteration}.npz into `folder` atomically and keep only the newest `keep` checkpoints.

    The ones it would prune go first, before the new one is written: a disk with room for `keep` checkpoints
    keeps taking them. The newest one stays until the new one is written, whatever `keep`.

    With `staging` (fast local disk) the file is written there first and then copied beside its final
    name, so a slow or failing destination such as a Drive mount never shows a half-written checkpoint.
    """
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"state": np.array(json.dumps(state)), **(extra or {})}
    for group, variables in _variable_groups(gan).items():
        arrays.update({f"{group}/{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(variables)})
    final = folder / f"ckpt-{state['iteration']:08d}.npz"
    _prune([path for path in checkpoints(folder) if path != final][max(keep - 1, 1):])
    if staging is None:
        write_atomically(final, lambda tmp: np.savez(tmp, **arrays))
    else:
        with tempfile.TemporaryDirectory(dir=staging, prefix=".ckpt-") as work:
            local = Path(work) / final.name
            np.savez(local, **arrays)
            write_atomically(final, lambda tmp: shutil.copyfile(local, tmp))
    _prune(checkpoints(folder)[keep:])
    return final


def _prune(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def iteration_of(path: Path) -> int:
    """The iteration in a checkpoint's name (ckpt-NNNNNNNN.npz)."""
    return int(NAME.search(path.name)[1])


def read(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(state, arrays) of one checkpoint; NotACheckpoint when the file is not one of this package's (not an
    .npz archive, or no training state in it), CheckpointError when it is truncated or corrupt."""
    try:
        if not _starts_like_a_zip(path):
            raise NotACheckpoint(f"{path} is not a checkpoint of dcgan_faces (not an .npz archive)")
        with np.load(path, allow_pickle=False) as archive:
            if "state" not in archive.files:
                raise NotACheckpoint(f"{path} is not a checkpoint of dcgan_faces (an .npz without a training state)")
            arrays = {name: archive[name] for name in archive.files}  # reading all checks every CRC
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path} is damaged ({error.__class__.__name__}: {error})") from error
    state = _training_state(arrays.pop("state"))
    if state is None:
        raise NotACheckpoint(f"{path} is not a checkpoint of dcgan_faces (its state entry is not a training state)")
    return state, arrays


def _starts_like_a_zip(path: Path) -> bool:
    """An .npz is a zip archive: it starts with a zip header (a truncated one still does)."""
    with open(path, "rb") as file:
        return file.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def _training_state(entry: np.ndarray) -> dict | None:
    try:
        state = json.loads(str(entry))
    except ValueError:
        return None
    return state if isinstance(state, dict) and isinstance(state.get("iteration"), int) else None


def read_latest(folder: Path, log=print, damaged: list[Path] | None = None) -> tuple[Path, dict, dict] | None:
    """The newest readable checkpoint in `folder`; None if none. Damaged ones are skipped with a message
    and listed in `damaged`."""
    for path in checkpoints(folder):
        try:
            return (path, *read(path))
        except CheckpointError as error:
            log(f"{error}; trying the previous checkpoint")
            if damaged is not None:
                damaged.append(path)
    return None


def set_aside(paths: list[Path]) -> Path | None:
    """Move damaged checkpoints into their folder's damaged/ subfolder: kept, but never again the newest."""
    for path in paths:
        (path.parent / DAMAGED).mkdir(exist_ok=True)
        path.rename(path.parent / DAMAGED / path.name)
    return paths[0].parent / DAMAGED if paths else None


def assign_group(variables: list, arrays: dict[str, np.ndarray], group: str) -> None:
    """Assign the checkpoint's `group/NNNN` arrays to `variables`, checking their count and shapes."""
    saved = sorted(k for k in arrays if k.startswith(group + "/"))
    if len(saved) != len(variables):
        raise CheckpointError(f"checkpoint has {len(saved)} {group} variables, model {len(variables)}")
    for variable, key in zip(variables, saved, strict=True):
        if tuple(variable.shape) != arrays[key].shape:
            raise CheckpointError(f"{key}: checkpoint shape {arrays[key].shape}, model {variable.shape}")
        variable.assign(arrays[key])


def output_generator_group(arrays: dict[str, np.ndarray]) -> str:
    """The group holding the generator whose faces a run shows: the moving average when it was saved."""
    return AVERAGE if any(name.startswith(AVERAGE + "/") for name in arrays) else "generator"


def restore(gan: GAN, arrays: dict[str, np.ndarray]) -> None:
    """Assign saved values to every variable; the optimizers must already be built."""
    for group, variables in _variable_groups(gan).items():
        assign_group(variables, arrays, group)
