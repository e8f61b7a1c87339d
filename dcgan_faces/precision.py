"""`--precision auto`: the Keras dtype policy a new run trains with, chosen for this machine.

On a GPU that is mixed_float16. On a CPU with bfloat16 instructions (AVX-512 BF16 or AMX) it is
mixed_bfloat16: there it trains about 1.3× as many iterations per hour, and at equal wall-clock time its
faces were better, judged on held-out faces (docs/performance.md). Every other CPU trains float32: without
those instructions bfloat16 is emulated and several times slower.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

BFLOAT16_FLAGS = {"avx512_bf16", "amx_bf16"}
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class Choice:
    policy: str
    reason: str

    def describe(self) -> str:
        return f"precision {self.policy} ({self.reason})"


def choose(config, cpuinfo: Path = CPUINFO) -> Choice:
    """The policy for `config.precision`; "auto" is decided here."""
    if config.precision != "auto":
        return Choice(config.precision, "as asked")
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return Choice("mixed_float16", "a GPU")
    flags = sorted(cpu_flags(cpuinfo) & BFLOAT16_FLAGS)
    if flags:
        return Choice("mixed_bfloat16", f"a CPU with {', '.join(flags)}: more faces per hour than float32, "
                                        "see docs/performance.md; --precision float32 for the notebook's arithmetic")
    return Choice("float32", "a CPU without bfloat16 instructions, where bfloat16 is slower, see docs/performance.md")


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str]:
    """The CPU's feature flags from Linux's /proc/cpuinfo; none elsewhere or if it cannot be read."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return set(value.split())
    return set()


def policy_name(precision: str) -> str:
    """A run's recorded --precision as a Keras policy; "auto" (not yet resolved) is float32."""
    return "float32" if precision == "auto" else precision


@contextlib.contextmanager
def building_in(precision: str):
    """Models built inside compute in a run's precision; the process's policy is restored after."""
    import keras

    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy_name(precision))
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)
