"""`--precision auto`: the Keras dtype policy a new run trains with, chosen for this machine.

On a GPU that is mixed_float16. On a CPU it is float32. Where the CPU has bfloat16 instructions
(AVX-512 BF16 or AMX), mixed_bfloat16 trained better faces per hour on held-out faces (docs/precision.md),
so the choice says so; auto does not take it yet, because `generate` rebuilds a run's generator in
float32 and would no longer reproduce a bfloat16 run's grids exactly. Without those instructions bfloat16
is emulated and several times slower. `--precision mixed_bfloat16` asks for it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

BFLOAT16_FLAGS = {"avx512_bf16", "amx_bf16"}


@dataclass(frozen=True)
class Choice:
    policy: str
    reason: str

    def describe(self) -> str:
        return f"precision {self.policy} ({self.reason})"


CPUINFO = Path("/proc/cpuinfo")


def choose(config, cpuinfo: Path = CPUINFO) -> Choice:
    """The policy for `config.precision`; "auto" is decided here."""
    if config.precision != "auto":
        return Choice(config.precision, "as asked")
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return Choice("mixed_float16", "a GPU")
    flags = sorted(cpu_flags(cpuinfo) & BFLOAT16_FLAGS)
    if flags:
        return Choice("float32", f"a CPU; this one has {', '.join(flags)}, where --precision mixed_bfloat16 "
                                 "trains better faces per hour, see docs/precision.md")
    return Choice("float32", "a CPU without bfloat16 instructions, where bfloat16 is slower, see docs/precision.md")


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
