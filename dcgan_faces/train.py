"""Train the faces DCGAN; re-running the same command resumes the run.

Example: python -m dcgan_faces.train --data ~/photos/faces --res 64
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from types import SimpleNamespace

from dcgan_faces import __version__, checkpoint, distribute, layer_choice, precision, quiet, sources
from dcgan_faces.cli_types import CommandError, Parser, positive_float
from dcgan_faces.config import FIXED, TrainConfig, add_flags, fields_that_are
from dcgan_faces.data import data_change, describe, open_scanned
from dcgan_faces.interrupt import Interrupted, StopRequest, exit_code, sigterm_unwinds
from dcgan_faces.lock import RunLock
from dcgan_faces.resolve import Plan, Request, SetupError, resolve_run
from dcgan_faces.sources import CacheSettings

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


class AlreadyFinished(CommandError):
    """The run has trained its length already: nothing to do, and how to train further (said on stdout)."""

    exit_code = 0


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parser(prog).parse_args(argv)
    try:
        with sigterm_unwinds():
            started = start(args)
    except CommandError as refused:  # every refusal of the start, one line, its own exit code
        return refused.report()
    except (Interrupted, KeyboardInterrupt) as stop:
        return exit_code(stop, "starting")
    if started is None:
        return 0
    session, claim = started
    try:
        with StopRequest() as stop:
            return session.run(stop)
    except Interrupted as forced:  # a third stop signal: out without the save
        return exit_code(forced, "stopping")
    finally:
        if claim is not None:
            claim.release()


def start(args: argparse.Namespace):
    """(Session, Claim or None) ready to run, or None after --dry-run; a CommandError when it cannot start or has
    nothing to train. Decide (without TensorFlow) → claim the folder → open the data → build (→ run, in main)."""
    plan, scan = _decide(args)
    training = _load_tensorflow(args.verbose, plan)
    if args.dry_run:
        print(dry_run_report(plan, args.cache_dir))
        return None
    chief = distribute.is_chief(plan.config.strategy)
    claim = plan.run.claim(plan.run_id, plan.fresh, plan.damaged) if chief else None
    try:
        plan.run.clear_stale()
        dataset, strategy = _open_data(plan, scan)
        trainer, seconds = _build(plan, dataset, strategy, training.Trainer)
        if chief:
            _write_run_files(plan, trainer)
    except BaseException:  # an error or a signal before training: what this start wrote goes
        if claim is not None:
            claim.undo()
        raise
    return training.Session(plan.config, plan.run, trainer, dataset, seconds, chief, run_id=plan.run_id), claim


def _decide(args: argparse.Namespace):
    """(Plan, Scan or None): the run, and its data's image files found and counted (not on --dry-run). All that
    can be refused without TensorFlow, which takes seconds to import, is refused here: the settings, a folder
    another training holds (first, before anything is said of it), a finished run, too few images."""
    source = sources.parse(args.data, args.gdrive)
    request = Request(given_settings(args), args.epochs, args.out, args.fresh, args.resume, args.cache_dir, source)
    notes: list[str] = []  # what resolving finds in the run folder: said once no other training holds it
    try:
        plan = resolve_run(request, log=notes.append)
    except SetupError:
        _print_lines(notes)
        raise
    if args.dry_run:
        _print_lines(notes)
        return plan, None
    if distribute.is_chief(plan.config.strategy):
        RunLock(plan.run.path).refuse_if_held()  # its lock is taken later, by RunFolder.claim, which checks again
    _print_lines(notes)
    if plan.epochs is None:
        _refuse_finished(plan, plan.config.steps)
    return plan, _scan_data(plan, args.cache_dir)


def _load_tensorflow(verbose: bool, plan: Plan) -> SimpleNamespace:
    """The one place the start imports TensorFlow (quietly) and the modules that need it; then a new run's
    --precision auto is chosen for this machine."""
    quiet.import_tensorflow(verbose)
    from dcgan_faces import session, trainer

    if plan.resumed is None:
        choice = precision.choose(plan.config)
        plan.config = dataclasses.replace(plan.config, precision=choice.policy)
        print(choice.describe())
    return SimpleNamespace(Session=session.Session, Trainer=trainer.Trainer)


def _print_lines(lines: list[str]) -> None:
    for line in lines:
        print(line)


def _refuse_finished(plan: Plan, steps: int) -> None:
    """A resumed run that has trained `steps` iterations already: say so, and how to train further."""
    if plan.resumed is None or plan.resumed.iteration < steps:
        return
    done = plan.resumed.iteration
    length = f"--steps {steps}" if plan.epochs is None else f"--epochs {plan.epochs:g}: {steps:,} iterations"
    raise AlreadyFinished(f"the run in {plan.run.path} already finished {done:,} iterations ({length}); to train "
                          f"further pass a larger --steps (e.g. --steps {2 * done}) or --epochs")


def _scan_data(plan: Plan, cache_dir: Path):
    """The run's images found and counted, nothing decoded; DataError when there are none, SetupError when fewer
    than one batch (images that fail to decode later only make that worse)."""
    config = plan.config
    scan = plan.source.scan(CacheSettings(cache_dir, config.res, config.channels, config.min_size),
                            exclude=(plan.run.path,))
    found = scan.files_found
    if found is not None and found < config.batch_size:
        raise SetupError(f"--batch-size {config.batch_size} is larger than {scan.description}; use at most "
                         f"{found}, or add images")
    return scan


def _open_data(plan: Plan, scan):
    """(Dataset, strategy): the run's images from their cache (built first if need be), the settings fitted to
    them; the distribution strategy is chosen here, before any TensorFlow operation."""
    dataset = open_scanned(scan)
    try:  # before any TensorFlow operation: a multi-worker strategy configures the runtime
        strategy = distribute.choose_strategy(plan.config.strategy)
    except (ValueError, RuntimeError) as error:
        raise SetupError(f"--strategy {plan.config.strategy}: {error}") from None
    config = plan.fit_to_data(dataset.source, len(dataset.images), distribute.replicas(strategy))
    _refuse_finished(plan, config.steps)
    if plan.changes:
        print("changed for this session: " + ", ".join(f"{k} {old} → {new}" for k, (old, new) in plan.changes.items()))
    return dataset, strategy


def _build(plan: Plan, dataset, strategy, trainer_class):
    """(Trainer, seconds trained before): the models in the layer form chosen, restored when resuming."""
    layers = layer_choice.choose(plan.config, dataset.images, strategy)
    print(layers.describe())
    config = plan.config = dataclasses.replace(plan.config, layers_chosen=layers.record())
    # after the layer probe: the Trainer sets the seed, so the run's models start as they would without a probe
    trainer = trainer_class(config, dataset.images, strategy, fast=layers.form == "fast")
    seconds = 0.0
    if plan.resumed:
        try:
            checkpoint.restore(trainer.gan, plan.resumed.arrays, plan.resumed.path)
        except checkpoint.CheckpointError as error:
            raise SetupError(f"{error}; to start over instead, pass --fresh (the earlier run is moved aside, "
                             "nothing is deleted)") from None
        trainer.iteration, seconds = plan.resumed.iteration, plan.resumed.state.get("seconds", 0.0)
        print(f"resuming from iteration {trainer.iteration:,} ({plan.resumed.path})")
        if change := data_change(plan.resumed.state, plan.resumed.arrays, dataset):
            print(change)
    return trainer, seconds


def _write_run_files(plan: Plan, trainer) -> None:
    """The chief's: the run's folders and config.json written, the log cut back to the iteration resumed."""
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


def dry_run_report(plan, cache_dir: Path) -> str:
    """What --dry-run prints: the run folder, the data and cache, and every setting with where it comes from."""
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
