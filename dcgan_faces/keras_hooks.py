"""The two places where training on several devices reaches past Keras 3's public API, in one adapter.

Keras 3.15 (the version tested) builds a model symbolically from the first batch that `train_on_batch`
gets, which fails on a distributed value; and it reduces a multi-worker step's logs along an axis that
scalar logs do not have. A Keras where the first hook moved is named in one line when training on several
devices starts, instead of an AttributeError deep inside a step.
"""

from __future__ import annotations

import keras

from dcgan_faces.cli_types import CommandError

TESTED = "3.15"


class KerasHookError(CommandError, RuntimeError):
    """The installed Keras lacks an internal hook that multi-device training needs."""


def symbolic_build(model: keras.Model, x, y) -> None:
    """Build `model`'s losses and metrics from a plain batch (x, y), as `train_on_batch` would."""
    build = getattr(model, "_symbolic_build", None)
    if build is None:
        raise KerasHookError(f"Keras {keras.__version__} has no Model._symbolic_build, which training on several "
                             f"devices needs (tested with Keras {TESTED}); train with --strategy none or install "
                             f"keras~={TESTED}.0")
    build(data_batch=(x, y, None))


def logs_of_shape_one(model: keras.Model) -> None:
    """Make `model`'s train step return logs of shape (1,): a multi-worker step reduces them along axis 0."""
    import tensorflow as tf

    step = model.train_step
    model.train_step = lambda data: {name: tf.reshape(value, [1]) for name, value in step(data).items()}
