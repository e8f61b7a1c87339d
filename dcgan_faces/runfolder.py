"""The run folder, the unit a user handles: config, metrics log, preview grids, checkpoints, generator."""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

from dcgan_faces import __version__, checkpoint, staging
from dcgan_faces.atomic import remove_stale, write_atomically, write_json, write_text
from dcgan_faces.cli_types import CommandError
from dcgan_faces.config import TrainConfig
from dcgan_faces.imagefile import save_png
from dcgan_faces.lock import RunLock

PREVIEW_PATTERN = "iter-*.png"
MARK = ".dcgan_faces_run"  # a run folder's own mark: only a marked folder is resumed, moved aside or skipped as data
CHECKPOINT_PATTERN = "ckpt-*.npz"
WRITE_PROBE = ".write-test"  # the empty file a start writes and removes to learn whether the folder is writable


class FolderError(CommandError):
    """The run folder cannot be claimed: one line naming --out (or --fresh) and what to do."""


@dataclass
class MetricsFile:
    """metrics.jsonl as read: its rows, and how many lines could not be read (cut by a kill, or damaged)."""

    rows: list[dict] = field(default_factory=list)
    unreadable: int = 0
    torn_tail: bool = False  # the last line is cut short: what a kill during an append leaves


class RunFolder:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.mark_path = self.path / MARK
        self.config_path = self.path / "config.json"
        self.metrics_path = self.path / "metrics.jsonl"
        self.previews = self.path / "previews"
        self.checkpoints = self.path / "checkpoints"
        self.generator_path = self.path / "generator.keras"
        self.plot_path = self.path / "plots.png"

    def is_run(self) -> bool:
        """Whether the folder is a run of this package: marked, or a run made before the mark existed."""
        return self.is_marked() or self.is_unmarked_run()

    def is_marked(self) -> bool:
        return self.mark_path.is_file()

    def is_unmarked_run(self) -> bool:
        """A run of an earlier version (no mark): config.json with trained weights or logged rows beside it."""
        return not self.is_marked() and self.config_path.is_file() and (
            bool(self.checkpoint_files()) or self.generator_path.is_file() or bool(self.read_metrics()))

    def mark(self) -> dict:
        """What the mark says (run_id, version, created); {} when there is none or it cannot be read."""
        try:
            value = json.loads(self.mark_path.read_text())
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def write_mark(self, run_id: str, earlier_version: bool = False) -> None:
        """Mark the folder as the run `run_id`'s; `earlier_version`: a run made before the mark existed."""
        mark = {"run_id": run_id, "version": __version__,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if earlier_version:
            mark["made_by_an_earlier_version"] = True
        write_json(self.mark_path, mark)

    def checkpoint_files(self) -> list[Path]:
        """Every checkpoint file, readable or not, set aside as damaged ones included (no temporary files)."""
        if not self.checkpoints.is_dir():
            return []
        return sorted([*self.checkpoints.glob(CHECKPOINT_PATTERN), *self.checkpoints.glob(f"*/{CHECKPOINT_PATTERN}")])

    def create(self) -> None:
        self.previews.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(parents=True, exist_ok=True)

    def move_aside(self) -> Path | None:
        """The run here renamed to FOLDER-YYYYMMDD-HHMMSS, or FOLDER-YYYYMMDD-HHMMSS-2, -3... where that name is
        taken (returned); None when the folder holds no run. Call it holding the run's lock."""
        if not self.is_run():
            return None
        stamp = f"{self.path.name}-{datetime.now():%Y%m%d-%H%M%S}"
        aside = self.path.with_name(stamp)
        for number in itertools.count(2):
            if not (aside.exists() or aside.is_symlink()):
                break
            aside = self.path.with_name(f"{stamp}-{number}")
        self.path.rename(aside)
        return aside

    def claim(self, run_id: str, fresh: bool = False, damaged: list[Path] | tuple = (), say=print) -> Claim:
        """This start's hold on the folder, the chief's: Colab's advice, --fresh's move aside of the earlier run,
        then the folder made, locked and marked as the run `run_id`'s, and its `damaged` checkpoints set aside.
        LockedError when another training holds it, FolderError when it cannot be written; what this claim made
        is taken back when it fails."""
        if staging.in_colab() and not staging.is_slow_mount(self.path):
            say(staging.colab_advice())
        if fresh and self.is_run():
            self._move_aside_locked(say)
        claim = Claim(self)
        try:
            self._check_writable()
            claim.lock = self._lock(say)
            if self.is_unmarked_run():
                self._write(lambda: self.write_mark(run_id, earlier_version=True))
                say(f"{self.path}: a run made by an earlier version of dcgan_faces; marked as a run folder ({MARK})")
            claim.note()
            if not self.is_marked():
                self._write(lambda: self.write_mark(run_id))
            if damaged:
                say(f"damaged checkpoints moved to {checkpoint.set_aside(list(damaged))} (kept, never used)")
        except BaseException:
            claim.undo()
            raise
        return claim

    def _move_aside_locked(self, say) -> None:
        """--fresh: the earlier run renamed aside, under its own lock (nobody trains there while it moves)."""
        earlier = self._lock(say)
        try:
            moved = self.move_aside()
            earlier.follow(moved)
        except OSError as error:
            raise FolderError(f"--fresh: cannot move the earlier run {self.path} aside ({error.strerror or error}); "
                              "move or rename it yourself, or pick another --out") from None
        finally:
            earlier.release()
        say(f"--fresh: moved the earlier run to {moved}")

    def _check_writable(self) -> None:
        """The folder made, and a file written there and removed; FolderError when that fails."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            write_text(self.path / WRITE_PROBE, "").unlink()
        except OSError as error:
            raise FolderError(f"--out {self.path} is not writable ({error.strerror or error}); choose another "
                              "folder") from None

    def _lock(self, say) -> RunLock:
        """The folder's lock taken (a stale one taken over is said); LockedError when another training holds it."""
        lock = RunLock(self.path)
        taken_over = self._write(lock.acquire)
        if taken_over:
            say(taken_over)
        return lock

    def _write(self, write):
        """`write()`'s result; FolderError when the folder cannot be written (a full disk)."""
        try:
            return write()
        except OSError as error:
            raise FolderError(f"--out {self.path}: cannot write there ({error.strerror or error}); free some space "
                              "or pick another --out") from None

    def clear_stale(self) -> None:
        """Delete the temporary files that killed processes left in the folder, its checkpoints and previews."""
        for folder in (self.path, self.checkpoints, self.previews):
            remove_stale(folder)

    def write_config(self, config: TrainConfig) -> None:
        write_json(self.config_path, json.loads(config.to_json()))

    def append_metrics(self, rows: list[dict]) -> None:
        """Append rows; after a line cut short by a kill, on a new line of their own."""
        text = "".join(json.dumps(row) + "\n" for row in rows)
        with open(self.metrics_path, "ab+") as log:  # appending mode: every write lands at the end
            log.write((("\n" if _ends_torn(log) else "") + text).encode())

    def read_metrics(self) -> list[dict]:
        return self.read_metrics_log().rows

    def read_metrics_log(self) -> MetricsFile:
        """The rows of metrics.jsonl; a line that cannot be read is skipped and counted, later rows still read."""
        log = MetricsFile()
        try:
            text = self.metrics_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return log
        *lines, unfinished = text.split("\n")  # unfinished: "" when the file ends with a newline
        for line in lines:
            _count(log, line)
        if unfinished:
            log.torn_tail = _row(unfinished) is None
            _count(log, unfinished)
        return log

    def truncate_metrics(self, iteration: int) -> None:
        """Drop log rows after `iteration`: a resume replays those iterations and logs them again. Lines that
        cannot be read go with them; a log left with no row is removed."""
        rows = self.read_metrics()
        kept = [row for row in rows if row["iteration"] <= iteration]
        if len(kept) == len(rows):
            return
        if kept:
            write_text(self.metrics_path, "".join(json.dumps(row) + "\n" for row in kept))
        else:
            self.metrics_path.unlink()

    def preview_path(self, iteration: int) -> Path:
        return self.previews / f"iter-{iteration:08d}.png"

    def save_preview(self, grid: Image.Image, iteration: int) -> Path:
        return save_png(grid, self.preview_path(iteration), "preview grid")

    def preview_files(self) -> list[Path]:
        return sorted(self.previews.glob(PREVIEW_PATTERN))

    def save_generator(self, stock_model) -> Path:
        """generator.keras, from a generator in stock Keras layers (models.stock_generator): it loads with plain
        `keras.models.load_model`."""
        return write_atomically(self.generator_path, stock_model.save)


class Claim:
    """One start's hold on a run folder (RunFolder.claim): its lock, and what the start adds, so that a start that
    fails before training takes it away again: never anything that was there before, never a folder that holds
    anything else."""

    ENTRIES = (MARK, "config.json", "previews", "checkpoints")  # what a start writes before training

    def __init__(self, run: RunFolder):
        self.run = run
        self.new_folders = [p for p in (run.path, *run.path.parents) if not p.exists()]  # innermost first
        self.before: set[str] | None = None
        self.lock: RunLock | None = None

    def release(self) -> None:
        """Let go of the folder (training is over)."""
        if self.lock is not None:
            self.lock.release()

    def note(self) -> None:
        """Remember what the folder holds now (call it holding the folder's lock, before writing)."""
        self.before = set(os.listdir(self.run.path))

    def undo(self) -> None:
        """Let go of the folder and take back what this start added."""
        self.release()
        if self.before is not None:
            for name in self.ENTRIES:
                if name not in self.before:
                    _remove(self.run.path / name)
        for folder in self.new_folders:
            if not _remove(folder):
                break


def _remove(path: Path) -> bool:
    """Remove a file or an empty folder; False when it cannot be (a folder that holds something)."""
    try:
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink(missing_ok=True)
    except OSError:
        return False
    return True


def _ends_torn(file) -> bool:
    """Whether an open file's last line is cut short (the file does not end with a newline)."""
    size = file.seek(0, os.SEEK_END)
    if size == 0:
        return False
    file.seek(size - 1)
    return file.read(1) != b"\n"


def _count(log: MetricsFile, line: str) -> None:
    """Add one line to `log`: a row, or an unreadable line (a blank one is neither)."""
    row = _row(line)
    if row is not None:
        log.rows.append(row)
    elif line.strip():
        log.unreadable += 1


def _row(line: str) -> dict | None:
    """One log row, or None for a line that is not one (cut short, damaged, or not this package's)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and isinstance(row.get("iteration"), int) else None


def is_run_folder(path: Path) -> bool:
    """Whether `path` is a run folder of this package (a data scan leaves it out)."""
    return RunFolder(path).is_run()
