"""Train the faces DCGAN; re-running the same command resumes the run.

Example: python -m dcgan_faces.train --data ~/photos/faces --res 64
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from pathlib import Path

from dcgan_faces import __version__
from dcgan_faces.cli_types import Parser, positive_float
from dcgan_faces.config import FIXED, TrainConfig, add_flags, fields_that_are
from dcgan_faces.interrupt import signal_name

EPILOG = """\
Iterations and epochs: one iteration trains D on one real and one fake batch and G on one batch. An epoch
is one pass over the cached images (images / batch size iterations). The course notebook's "EPOCHS = 10000,
SAVE_FREQ = 100" counted iterations: reproduce it with --steps 10000 --save-every 100 (the defaults).

Resuming: re-run the same command (same --out) and training continues from the newest checkpoint, with the
same preview faces and continuous numbering. --fresh moves an earlier run aside and starts over.
"""


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = Parser("dcgan_faces.train", __doc__, prog, epilog=EPILOG)
    groups = add_flags(p)
    groups["source"].add_argument("--gdrive", metavar="ID_OR_URL", help="Google Drive file id, share URL or folder "
                                  "URL of the images (a zip/tar is unpacked); downloaded once into --cache-dir")
    groups["length"].add_argument("--epochs", type=positive_float, help="passes over the images in total "
                                  "(instead of --steps)")
    p.add_argument("--cache-dir", type=Path, default=Path("data_cache"),
                   help="where the preprocessed .npy tensors are kept, one per data set and size (default "
                        "data_cache/; may be on Drive)")
    p.add_argument("--out", type=Path, help="run folder (default runs/<data name>_<res>)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--fresh", action="store_true", help="start over: an existing run in --out is moved aside")
    start.add_argument("--resume", type=Path, metavar="CHECKPOINT", help="resume from this checkpoint file")
    p.add_argument("--dry-run", action="store_true", help="print the settings this command would train with (what "
                   "is new, what a resume keeps and changes) and the data and cache it would use; train nothing")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own start-up and log lines")
    p.add_argument("--version", action="version", version=f"dcgan_faces {__version__}")
    return p


def given_settings(args: argparse.Namespace) -> dict:
    """TrainConfig fields the user set on the command line, but the data (see sources.parse)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"data"}
    return {k: v for k, v in vars(args).items() if k in fields and v is not None}


class StopRequest:
    """Turns SIGINT and SIGTERM (Ctrl-C, a Colab disconnect) into a flag the loop checks between steps."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signal: int | None = None
        self._previous = {}

    def __enter__(self) -> StopRequest:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.signal is not None:  # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        self.signal = signum
        print(f"\n{signal_name(signum)}: finishing this step, then saving a checkpoint...", flush=True)


class AlreadyFinished(Exception):
    """The run has trained its length already: nothing to do, and how to train further."""


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parser(prog).parse_args(argv)
    from dcgan_faces.interrupt import Interrupted, exit_code, sigterm_unwinds
    from dcgan_faces.resolve import SetupError

    try:
        with sigterm_unwinds():
            started = start(args)
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except AlreadyFinished as finished:
        print(finished)
        return 0
    except (Interrupted, KeyboardInterrupt) as stop:
        return exit_code(stop, "starting")
    if started is None:
        return 0
    session, lock = started
    try:
        with StopRequest() as stop:
            return session.run(stop)
    finally:
        if lock is not None:
            lock.release()


def start(args: argparse.Namespace):
    """(Session, RunLock or None) ready to run, or None after --dry-run; SetupError when it cannot start,
    AlreadyFinished when there is nothing to train. Its steps: decide → own the folder → open the data → build
    (→ train: Session.run, in main)."""
    from dcgan_faces import distribute

    plan, scan = _decide(args)
    if args.dry_run:
        print(dry_run_report(plan, args.cache_dir))
        return None
    from dcgan_faces.session import Session  # after TensorFlow's quiet import (in _decide)

    chief = distribute.is_chief(plan.config.strategy)
    claim, lock = _own_folder(plan) if chief else (None, None)
    try:
        plan.run.clear_stale()
        dataset, strategy = _open_data(plan, scan)
        trainer, seconds = _build(plan, dataset, strategy)
        if chief:
            _write_run_files(plan, trainer)
    except BaseException:  # an error or a signal before training: what this start wrote goes
        if lock is not None:
            lock.release()
            claim.undo()
        raise
    return Session(plan.config, plan.run, trainer, dataset, seconds, chief, run_id=plan.run_id), lock


def _decide(args: argparse.Namespace):
    """(Plan, Scan or None): the run, and its data's image files found and counted (not on --dry-run).

    What can be checked without TensorFlow (the settings, the run folder, the data and its number of image
    files) is checked before it is imported, which takes seconds; then a new run's --precision auto is chosen.
    """
    from dcgan_faces import precision, quiet, sources
    from dcgan_faces.resolve import Request, SetupError, resolve_run

    try:
        source = sources.parse(args.data, args.gdrive)
    except sources.DataError as error:
        raise SetupError(str(error)) from None
    request = Request(given_settings(args), args.epochs, args.out, args.fresh, args.resume, args.cache_dir, source)
    plan = resolve_run(request)  # a new run's --precision auto stays "auto" until TensorFlow is there
    scan = None
    if not args.dry_run:
        if plan.epochs is None:
            _refuse_finished(plan, plan.config.steps)
        scan = _scan_data(plan, args.cache_dir)
    quiet.import_tensorflow(args.verbose)
    if plan.resumed is None:
        choice = precision.choose(plan.config)
        plan.config = dataclasses.replace(plan.config, precision=choice.policy)
        print(choice.describe())
    return plan, scan


def _refuse_finished(plan, steps: int) -> None:
    """A resumed run that has trained `steps` iterations already: say so, and how to train further."""
    if plan.resumed is None or plan.resumed.iteration < steps:
        return
    done = plan.resumed.iteration
    length = f"--steps {steps}" if plan.epochs is None else f"--epochs {plan.epochs:g}: {steps:,} iterations"
    raise AlreadyFinished(f"the run in {plan.run.path} already finished {done:,} iterations ({length}); to train "
                          f"further pass a larger --steps (e.g. --steps {2 * done}) or --epochs")


def _scan_data(plan, cache_dir: Path):
    """The run's images found and counted, nothing decoded; SetupError when there are none, or fewer than one
    batch (images that fail to decode later only make that worse)."""
    from dcgan_faces.resolve import SetupError
    from dcgan_faces.sources import CacheSettings, DataError

    config = plan.config
    try:
        scan = plan.source.scan(CacheSettings(cache_dir, config.res, config.channels, config.min_size),
                                exclude=(plan.run.path,))
    except DataError as error:
        raise SetupError(str(error)) from None
    found = scan.files_found
    if found is not None and found < config.batch_size:
        raise SetupError(f"--batch-size {config.batch_size} is larger than {scan.description}; use at most "
                         f"{found}, or add images")
    return scan


def _own_folder(plan):
    """(Claim, RunLock) of the chief: Colab's advice, --fresh's move aside, then the folder locked and marked as
    the run's and its damaged checkpoints set aside; what this start made goes again when that fails."""
    from dcgan_faces import checkpoint, staging
    from dcgan_faces.runfolder import Claim

    if staging.in_colab() and not staging.is_slow_mount(plan.run.path):
        print(staging.colab_advice())
    if plan.fresh and plan.run.is_run():
        _move_aside(plan.run)
    claim, lock = Claim(plan.run), None
    try:
        lock = _lock_and_mark(plan, claim)
        if plan.damaged:
            print(f"damaged checkpoints moved to {checkpoint.set_aside(plan.damaged)} (kept, never used)")
    except BaseException:
        if lock is not None:
            lock.release()
        claim.undo()
        raise
    return claim, lock


def _move_aside(run) -> None:
    """--fresh: the earlier run renamed aside, under its own lock (nobody trains there while it moves)."""
    from dcgan_faces.lock import RunLock

    earlier = RunLock(run.path)
    _acquire(earlier, run.path)
    moved = run.move_aside()
    earlier.follow(moved)
    earlier.release()
    print(f"--fresh: moved the earlier run to {moved}")


def _lock_and_mark(plan, claim):
    """The lock of the run folder, which is then marked as the run's (an earlier version's run: said once)."""
    from dcgan_faces.lock import RunLock
    from dcgan_faces.resolve import SetupError
    from dcgan_faces.runfolder import MARK

    run = plan.run
    _check_writable(run.path)
    lock = RunLock(run.path)
    _acquire(lock, run.path)
    try:
        if run.is_unmarked_run():
            run.write_mark(plan.run_id, earlier_version=True)
            print(f"{run.path}: a run made by an earlier version of dcgan_faces; marked as a run folder ({MARK})")
        claim.note()
        if not run.is_marked():
            run.write_mark(plan.run_id)
    except OSError as error:
        lock.release()
        raise SetupError(f"--out {run.path}: cannot write there ({error.strerror or error}); free some space or pick "
                         "another --out") from None
    return lock


def _acquire(lock, folder: Path) -> None:
    from dcgan_faces.lock import LockedError
    from dcgan_faces.resolve import SetupError

    try:
        taken_over = lock.acquire()
    except LockedError as error:
        raise SetupError(str(error)) from None
    except OSError as error:
        raise SetupError(f"--out {folder}: cannot write there ({error.strerror or error}); free some space or pick "
                         "another --out") from None
    if taken_over:
        print(taken_over)


def _open_data(plan, scan):
    """(Dataset, strategy): the run's images from their cache (built first if need be), the settings fitted to
    them; the distribution strategy is chosen here, before any TensorFlow operation."""
    from dcgan_faces import distribute
    from dcgan_faces.data import DataError, open_scanned
    from dcgan_faces.resolve import SetupError

    try:
        dataset = open_scanned(scan)
    except DataError as error:
        raise SetupError(str(error)) from None
    try:  # before any TensorFlow operation: a multi-worker strategy configures the runtime
        strategy = distribute.choose_strategy(plan.config.strategy)
    except (ValueError, RuntimeError) as error:
        raise SetupError(f"--strategy {plan.config.strategy}: {error}") from None
    config = plan.fit_to_data(dataset.source, len(dataset.images), distribute.replicas(strategy))
    _refuse_finished(plan, config.steps)
    if plan.changes:
        print("changed for this session: " + ", ".join(f"{k} {old} → {new}" for k, (old, new) in plan.changes.items()))
    return dataset, strategy


def _build(plan, dataset, strategy):
    """(Trainer, seconds trained before): the models in the layer form chosen, restored when resuming."""
    from dcgan_faces import checkpoint, layer_choice
    from dcgan_faces.data import data_change
    from dcgan_faces.keras_hooks import KerasHookError
    from dcgan_faces.resolve import SetupError
    from dcgan_faces.trainer import Trainer

    layers = layer_choice.choose(plan.config, dataset.images, strategy)
    print(layers.describe())
    config = plan.config = dataclasses.replace(plan.config, layers_chosen=layers.record())
    # after the layer probe: the Trainer sets the seed, so the run's models start as they would without a probe
    try:
        trainer = Trainer(config, dataset.images, strategy, fast=layers.form == "fast")
    except KerasHookError as error:  # several devices, and a Keras whose internals moved
        raise SetupError(str(error)) from None
    seconds = 0.0
    if plan.resumed:
        checkpoint.restore(trainer.gan, plan.resumed.arrays)
        trainer.iteration, seconds = plan.resumed.iteration, plan.resumed.state.get("seconds", 0.0)
        print(f"resuming from iteration {trainer.iteration:,} ({plan.resumed.path})")
        if change := data_change(plan.resumed.state, plan.resumed.arrays, dataset):
            print(change)
    return trainer, seconds


def _write_run_files(plan, trainer) -> None:
    """The chief's: the run's folders and config.json written, the log cut back to the iteration resumed."""
    from dcgan_faces.resolve import SetupError

    run = plan.run
    unreadable = run.read_metrics_log().unreadable
    if unreadable and plan.resumed:
        print(f"{run.metrics_path}: skipped {unreadable} line(s) that cannot be read (cut short by a kill, or "
              "damaged); the rows around them are kept")
    try:
        run.create()
        run.write_config(plan.config)
        run.truncate_metrics(trainer.iteration)
    except OSError as error:
        raise SetupError(f"--out {run.path}: cannot write the run's files ({error.strerror or error}); free "
                         "some space or pick another --out") from None


def _check_writable(path: Path) -> None:
    from dcgan_faces.atomic import write_text
    from dcgan_faces.resolve import SetupError
    from dcgan_faces.runfolder import WRITE_PROBE

    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = write_text(path / WRITE_PROBE, "")
        probe.unlink()
    except OSError as error:
        raise SetupError(f"--out {path} is not writable ({error.strerror or error}); choose another folder") from None


def dry_run_report(plan, cache_dir: Path) -> str:
    """What --dry-run prints: the run folder, the data and cache, and every setting with where it comes from."""
    from dcgan_faces.data import describe
    from dcgan_faces.sources import CacheSettings

    config = plan.config
    lines = ["dry run: nothing is trained, downloaded, cached or written"]
    if plan.resumed:
        lines.append(f"run folder: {plan.run.path}, resuming from iteration {plan.resumed.iteration:,} "
                     f"({plan.resumed.path})")
    else:
        earlier = " (the earlier run there is moved aside first)" if plan.fresh and plan.run.is_run() else ""
        lines.append(f"run folder: {plan.run.path}, a new run{earlier}")
    wanted = CacheSettings(cache_dir, config.res, config.channels, config.min_size)
    lines.append("data: " + describe(plan.source, wanted, exclude=(plan.run.path,)))
    if plan.epochs is not None:
        lines.append(f"length: --epochs {plan.epochs:g}, turned into steps once the images are counted")
    title = "settings kept from the run (fixed for its life) and the others" if plan.resumed else "settings"
    lines.append(title + ":")
    fixed = set(fields_that_are(FIXED))
    for name, value in dataclasses.asdict(config).items():
        if name == "layers_chosen":  # decided when training starts (--layers auto may time both forms)
            continue
        note = ""
        if name in plan.changes:
            note = f"  (changed for this session: was {plan.changes[name][0]})"
        elif plan.resumed and name in fixed:
            note = "  (kept)"
        lines.append(f"  {name:18s} {value}{note}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
