"""`--layers auto`: the form of the notebook models' layers a session trains with, chosen for this machine.

The exact layers of fast_layers.py and Keras's stock layers compute the same function with the same weights
(a checkpoint of either resumes into the other), so choosing between them by speed costs no quality. On a
CPU the fast form was measured 1.9× faster (experiments/benchmark.py) and `auto` takes it. On a GPU or TPU the
choice was never measured, so there `auto` times a few iterations of each form at start-up, on models built
for the probe and thrown away, and keeps the faster. DCGAN_FACES_PROBE_LAYERS=1 forces the probe on a CPU.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np

PROBE_ENV = "DCGAN_FACES_PROBE_LAYERS"
FORMS = ("fast", "stock")
WARMUP_STEPS = 2  # per form, untimed: the first steps trace the graphs (and autotune kernels on a GPU)
TIMED_STEPS = 5  # per form, interleaved with the other form's


@dataclass(frozen=True)
class Choice:
    form: str  # "fast" or "stock"
    reason: str
    seconds_per_iteration: dict[str, float] | None = None  # the probe's medians, when it ran

    def describe(self) -> str:
        return f"layers {self.form} ({self.reason})"

    def record(self) -> dict:
        """What config.json keeps of the choice."""
        return dataclasses.asdict(self)


def probe_forced() -> bool:
    return os.environ.get(PROBE_ENV, "") not in ("", "0")


def choose(config, images: np.ndarray, strategy=None) -> Choice:
    """The layer form for `config.layers`; "auto" is decided here, by a probe where it was never measured.

    Call it before the run's Trainer is made: the probe's trainers set the process's seed too, and the run's
    Trainer sets it again, so its models start as they would without a probe.
    """
    if config.arch != "notebook":
        return Choice("stock", f"--arch {config.arch} has one form only")
    if config.layers != "auto":
        return Choice(config.layers, "as asked")
    device = accelerator()
    if device is None and not probe_forced():
        return Choice("fast", "a CPU: measured faster there, see the README's performance section")
    return probe(config, images, strategy, device or f"CPU, forced by {PROBE_ENV}")


def accelerator() -> str | None:
    """"GPU" or "TPU" when TensorFlow sees one (a TPU once its strategy is set up), else None."""
    import tensorflow as tf

    for kind in ("TPU", "GPU"):
        if tf.config.list_logical_devices(kind):
            return kind
    return None


def probe(config, images: np.ndarray, strategy, device: str) -> Choice:
    """Time TIMED_STEPS iterations of each form, interleaved, after WARMUP_STEPS untimed ones; the faster
    median wins.

    The probe's models are its own; afterwards Keras's session is cleared, so that the run's models (their
    Trainer sets the seed again) get the names and the random start they get without a probe.
    """
    import keras

    from dcgan_faces.trainer import Trainer

    trainers = {form: Trainer(config, images, strategy, fast=form == "fast") for form in FORMS}
    for trainer in trainers.values():
        for _ in range(WARMUP_STEPS):
            trainer.step()
    seconds: dict[str, list[float]] = {form: [] for form in FORMS}
    for _ in range(TIMED_STEPS):
        for form, trainer in trainers.items():
            began = time.perf_counter()
            trainer.step()  # returns the losses as numbers: the device has finished the step
            seconds[form].append(time.perf_counter() - began)
    del trainers
    keras.backend.clear_session()
    median = {form: round(statistics.median(values), 4) for form, values in seconds.items()}
    faster = min(FORMS, key=median.get)
    figures = ", ".join(f"{form} {median[form]:.4f} s" for form in FORMS)
    return Choice(faster, f"the faster in a start-up probe on this {device}: {figures} per iteration", median)
