"""`--precision auto`: the Keras dtype policy a new run trains with, chosen for this machine.

On a GPU that is mixed_float16. On a CPU it depends on the chip: bfloat16 kernels run 1.3× faster than
float32 on one with AVX-512 BF16, and several times slower on one without (both measured on this
project's machines). So on a CPU with bfloat16 instructions the actual models are timed in both
precisions at start-up (a few seconds), and bfloat16 is chosen only when it is clearly faster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
BF16_MUST_WIN = 1.25  # bfloat16 rounds more coarsely: take it only for a clear gain
PROBE_BATCH = 4
PROBE_REPEATS = 2
BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}  # x86 (AVX-512, AMX) and Arm (FEAT_BF16) in /proc/cpuinfo


@dataclass(frozen=True)
class Choice:
    policy: str
    reason: str
    seconds: dict[str, float] | None = None  # per probe step, by policy, when measured

    def describe(self) -> str:
        if not self.seconds:
            return f"precision {self.policy} ({self.reason})"
        timings = ", ".join(f"{policy} {seconds * 1e3:.0f} ms" for policy, seconds in self.seconds.items())
        return f"precision {self.policy} ({self.reason}; one probe step: {timings})"


def choose(config, measure=None) -> Choice:
    """The policy for `config.precision`; "auto" is decided here (by timing, on a CPU)."""
    if config.precision != "auto":
        return Choice(config.precision, "as asked")
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return Choice("mixed_float16", "a GPU")
    if config.strategy not in ("auto", "none"):
        return Choice("float32", "several devices: not measured")
    if cpu_lacks_bf16():
        return Choice("float32", "this CPU has no bfloat16 instructions")
    seconds = (measure or time_policies)(config)
    ratio = seconds["float32"] / seconds["mixed_bfloat16"]
    if ratio >= BF16_MUST_WIN:
        return Choice("mixed_bfloat16", f"{ratio:.2f}× float32's speed on this CPU", seconds)
    return Choice("float32", f"bfloat16 is {ratio:.2f}× float32's speed on this CPU, below {BF16_MUST_WIN}×",
                  seconds)


def cpu_lacks_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU's flags are readable and name no bfloat16 instructions (False where unknown)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = {word for line in text.splitlines() if line.startswith(("flags", "Features"))
             for word in line.split(":", 1)[1].split()}
    return bool(flags) and not flags & BF16_FLAGS


def time_policies(config) -> dict[str, float]:
    """Seconds per step of G and D (forward and gradients, PROBE_BATCH images) in float32 and bfloat16.

    A policy that is already slower than float32 on its first timed step is not timed further.
    """
    seconds = {}
    for policy in ("float32", "mixed_bfloat16"):
        step = _probe_step(config, policy)
        best = float("inf")
        for _ in range(PROBE_REPEATS):
            started = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - started)
            if policy != "float32" and best > seconds["float32"]:
                break
        seconds[policy] = best
    return seconds


def _probe_step(config, policy: str):
    """A traced and warmed-up function: the generator's and discriminator's forward pass and gradients."""
    import keras
    import numpy as np
    import tensorflow as tf

    from dcgan_faces.models import ARCHITECTURES, DiscriminatorOptions

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        build_g, build_d = ARCHITECTURES[config.arch]
        generator = build_g(config.res, config.seed_size, config.channels)
        discriminator = build_d(config.res, config.channels, DiscriminatorOptions.of(config))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    seeds = tf.constant(np.random.default_rng(0).standard_normal((PROBE_BATCH, config.seed_size)), tf.float32)
    weights = generator.trainable_variables + discriminator.trainable_variables

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(discriminator(generator(seeds, training=True), training=True))
        return [tf.reduce_sum(tf.cast(g, tf.float32)) for g in tape.gradient(loss, weights)]

    step()
    return lambda: [g.numpy() for g in step()]
