"""Atomic save and restore of the whole training state: weights, optimizer slots, counters, config.

Each array is stored as `group/name`: the group (generator, d_optimizer...) and the variable's name in it, its
path below the model's layer (`up1_conv/kernel`, `conv2_dropout/seed_generator_state`) or the optimizer's
variable path (`adam/up1_conv_kernel_momentum`). A restore matches them by name and refuses a checkpoint whose
names differ from the model's. Checkpoints written before the names (`group/0000`...) are restored by position.
"""

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
POSITIONAL = re.compile(r"\d{4}")  # a variable's key in the checkpoints written before names: its position
SHOWN_NAMES = 3  # names listed when a checkpoint's differ from the model's
_WHAT_TO_DO = ("it was written for another model (other model settings, or another version of dcgan_faces: "
               "read it with that version)")


class CheckpointError(Exception):
    """A checkpoint cannot be used; the message says which file and why."""


class NotACheckpoint(CheckpointError):
    """The file is not a checkpoint of this package at all (a photo, another program's .npz)."""


def _variable_groups(gan: GAN) -> dict:
    """The models and optimizers whose variables a checkpoint holds, by group."""
    groups = {
        "generator": gan.generator,
        "discriminator": gan.discriminator,
        "d_optimizer": gan.discriminator.optimizer,
        "g_optimizer": gan.combined.optimizer,
    }
    if gan.average:
        groups[AVERAGE] = gan.average.model
    return groups


def named_variables(owner) -> dict:
    """{name: variable} of a model or an optimizer, every variable once (see the module's doc for the names).

    A model's variables are named by layer, as `layer/path below it`: its variable paths start with names that
    Keras numbers across the process (`seed_generator_3/...` for a dropout layer's random state), its layers'
    names are the builders'. The models' variables include those random states, which exact resumption needs.
    """
    if not hasattr(owner, "layers"):  # an optimizer: named after its kind, so its variables' paths are stable
        named = {variable.path: variable for variable in owner.variables}
    else:
        named = {f"{layer.name}/{_below(layer, variable)}": variable
                 for layer in owner.layers for variable in layer.variables}
    if len(named) != len(owner.variables):
        raise ValueError(f"{owner.name}: {len(owner.variables)} variables but {len(named)} distinct names")
    return named


def _below(layer, variable) -> str:
    path = variable.path
    return path[len(layer.name) + 1:] if path.startswith(layer.name + "/") else variable.name


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
    for group, owner in _variable_groups(gan).items():
        arrays.update({f"{group}/{name}": np.asarray(v.numpy()) for name, v in named_variables(owner).items()})
    final = folder / file_name(state["iteration"])
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


def file_name(iteration: int) -> str:
    """The name of the checkpoint at `iteration` (ckpt-NNNNNNNN.npz), the inverse of `iteration_of`."""
    return f"ckpt-{iteration:08d}.npz"


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


def assign_group(owner, arrays: dict[str, np.ndarray], group: str, path: Path | None = None) -> None:
    """Assign the checkpoint's `group/...` arrays to the variables of `owner` (a model or an optimizer), by name;
    CheckpointError, naming `path` (the checkpoint file), when the names or the shapes differ."""
    for variable, value in _matched(owner, arrays, group, path):
        variable.assign(value)


def _matched(owner, arrays: dict[str, np.ndarray], group: str, path: Path | None) -> list[tuple]:
    """(variable, saved value) of every variable of `owner`, names and shapes checked."""
    source = str(path) if path is not None else "the checkpoint"
    saved = {key[len(group) + 1:]: value for key, value in arrays.items() if key.startswith(group + "/")}
    if saved and all(POSITIONAL.fullmatch(name) for name in saved):
        pairs = _by_position(owner.variables, saved, group, source)
    else:
        pairs = _by_name(named_variables(owner), saved, group, source)
    for variable, name, value in pairs:
        if tuple(variable.shape) != value.shape:
            raise CheckpointError(f"{source}: its {group}/{name} has the shape {value.shape}, the model's "
                                  f"{tuple(variable.shape)}; {_WHAT_TO_DO}")
    return [(variable, value) for variable, _, value in pairs]



def _by_name(named: dict, saved: dict[str, np.ndarray], group: str, source: str) -> list[tuple]:
    missing, unknown = sorted(named.keys() - saved.keys()), sorted(saved.keys() - named.keys())
    if missing or unknown:
        differences = [f"{label}: {_some(names)}" for label, names in (("missing there", missing),
                                                                       ("not in the model", unknown)) if names]
        raise CheckpointError(f"{source}: its {group} weights are named differently from the model's "
                              f"({'; '.join(differences)}); {_WHAT_TO_DO}")
    return [(variable, name, saved[name]) for name, variable in named.items()]


def _by_position(variables: list, saved: dict[str, np.ndarray], group: str, source: str) -> list[tuple]:
    """A checkpoint written before the names: its arrays in the order of the model's variables."""
    if len(saved) != len(variables):
        raise CheckpointError(f"{source}: it has {len(saved)} {group} variables, the model {len(variables)}; "
                              f"{_WHAT_TO_DO}")
    return [(variable, name, saved[name]) for variable, name in zip(variables, sorted(saved), strict=True)]


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")


def output_generator_group(arrays: dict[str, np.ndarray]) -> str:
    """The group holding the generator whose faces a run shows: the moving average when it was saved."""
    return AVERAGE if any(name.startswith(AVERAGE + "/") for name in arrays) else "generator"


def restore(gan: GAN, arrays: dict[str, np.ndarray], path: Path | None = None) -> None:
    """Assign saved values to every variable; the optimizers must already be built. CheckpointError naming
    `path` when the checkpoint's variables are not the model's; then nothing is assigned."""
    matched = [pair for group, owner in _variable_groups(gan).items() for pair in _matched(owner, arrays, group, path)]
    for variable, value in matched:
        variable.assign(value)
