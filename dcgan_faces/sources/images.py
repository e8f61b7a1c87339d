"""Image files → uint8 rows of the cache (their pixels: pixels.py); decoded in parallel on every core for a large
folder, an unusable file skipped and counted by reason."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dcgan_faces.interrupt import STOP_SIGNALS
from dcgan_faces.sources.base import CacheSettings, DataError, Fill, Log, shown
from dcgan_faces.sources.pixels import SkippedImage, load_image

SERIAL_BELOW = 256  # folders smaller than this are decoded in-process: a pool costs more than it saves
SKIPPED_NAMED = 5
PR_SET_PDEATHSIG = 1  # Linux's prctl option: a signal sent to this process when its parent dies
PARENT_POLL_S = 0.5  # elsewhere a worker looks for its parent this often


def _decode(job: tuple[Path, int, int, int]) -> np.ndarray | str:
    """Pool worker: the image, or the reason it was skipped."""
    try:
        return load_image(*job)
    except SkippedImage as skipped:
        return skipped.args[0]


def _decoded(files: list[Path], res: int, channels: int, min_size: int) -> Iterable[np.ndarray | str]:
    jobs = [(path, res, channels, min_size) for path in files]
    workers = os.cpu_count() or 1
    if len(files) < SERIAL_BELOW or workers == 1:
        yield from map(_decode, jobs)
        return
    # spawn: the parent may already run TensorFlow's threads, which a forked child must not inherit
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"),  # its workers start with the first job
                               initializer=_exit_with_parent, initargs=(os.getpid(),))
    try:
        with _signals_held():
            results = pool.map(_decode, jobs, chunksize=32)
        yield from results
    finally:  # on an interrupt, drop the queued work instead of decoding it all first
        pool.shutdown(wait=True, cancel_futures=True)


def _exit_with_parent(parent: int) -> None:
    """Pool initializer: the worker ends when the process that started it dies. A SIGKILLed parent cannot stop
    its workers, and they would wait for work forever (the queue they read is never closed). Linux's signal comes
    when the thread that started the worker ends: the one that submits the work and reads it all back."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) == 0:
                if os.getppid() != parent:  # it died before the prctl
                    os._exit(1)
                return
        except (OSError, AttributeError):  # no libc to load, or no prctl in it: watch instead
            pass
    threading.Thread(target=_watch_parent, args=(parent,), name="watch parent", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


@contextlib.contextmanager
def _signals_held():
    """The stop signals (Ctrl-C, SIGTERM, SIGHUP) held back while the decoding workers start (an interrupt then
    would cut a worker's start-up data short and print a traceback), then delivered; an ignored one stays so."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
                for sig in STOP_SIGNALS if signal.getsignal(sig) != signal.SIG_IGN}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            signal.raise_signal(caught[0])


def decode_into(folder: Path, files: list[Path], wanted: CacheSettings, log: Log) -> Fill:
    """The `fill` of cache.write for a folder: decode every file into the rows; skipped files are counted."""
    def fill(out: np.ndarray) -> tuple[int, dict]:
        kept, skipped, first_skipped = 0, Counter(), []
        decoded = _decoded(files, wanted.res, wanted.channels, wanted.min_size)
        bar = tqdm(decoded, total=len(files), unit="img", disable=None,
                   desc=f"caching {folder.name} at {wanted.res} px")
        for path, result in zip(files, bar, strict=True):
            if isinstance(result, str):
                skipped[result] += 1
                if len(first_skipped) < SKIPPED_NAMED:
                    first_skipped.append(f"{shown(path)} ({result})")
                continue
            out[kept] = result
            kept += 1
        if kept == 0:
            raise DataError(f"no usable image in {shown(folder)}: {len(files)} files tried, none decoded "
                            f"(e.g. {', '.join(first_skipped)}); point --data at a folder of JPEG/PNG faces")
        if first_skipped:
            log(f"skipped {sum(skipped.values())} of {len(files)} files "
                f"({', '.join(f'{n} {why}' for why, n in skipped.items())}), e.g. {'; '.join(first_skipped)}")
        return kept, {"skipped": dict(skipped)}

    return fill
