"""`--precision auto`: the Keras dtype policy a new run trains with, chosen for this machine.

On a GPU that is mixed_float16. On a CPU it is float32, everywhere: in runs of equal length, mixed_bfloat16
made measurably worse faces than float32 (docs/precision.md), so auto does not trade quality for the
speed bfloat16 gives on CPUs that have bfloat16 instructions (and it is several times slower on those that
do not). `--precision mixed_bfloat16` still asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Choice:
    policy: str
    reason: str

    def describe(self) -> str:
        return f"precision {self.policy} ({self.reason})"


def choose(config) -> Choice:
    """The policy for `config.precision`; "auto" is decided here."""
    if config.precision != "auto":
        return Choice(config.precision, "as asked")
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return Choice("mixed_float16", "a GPU")
    return Choice("float32", "a CPU: bfloat16 trained worse faces at equal length, see docs/precision.md")
