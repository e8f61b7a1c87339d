"""An exponential moving average of the generator's weights, used for previews, evaluation and the saved model."""

from __future__ import annotations

RAMP = 10.0  # tf.train.ExponentialMovingAverage's num_updates ramp: the average spans the last ~ninth of a run


def decay_at(decay: float, iteration: int, ramp: float = RAMP) -> float:
    """The decay used after `iteration` steps: min(decay, (1 + k) / (ramp + k)).

    Without a ramp-up an average with a horizon of ~1/(1 - decay) iterations drags a short run's faces back
    towards its first, blurry weights. With it the average spans about the last 1/(ramp - 1) of the run
    (its horizon (ramp + k)/(ramp - 1) iterations) until the horizon 1/(1 - decay) is reached.
    """
    return min(decay, (1.0 + iteration) / (ramp + iteration))


class GeneratorAverage:
    """A copy of the generator whose weights (BatchNorm statistics included) follow G's as a moving average."""

    def __init__(self, generator, decay: float, ramp: float = RAMP):
        import keras
        import tensorflow as tf

        self.decay, self.ramp = decay, ramp
        self.model = keras.models.clone_model(generator)
        self.model.set_weights(generator.get_weights())
        pairs = list(zip(self.model.weights, generator.weights, strict=True))

        @tf.function
        def update(keep):
            for average, current in pairs:
                average.assign(keep * average + (1.0 - keep) * tf.cast(current, average.dtype))

        self._update = update

    def update(self, iteration: int) -> None:
        """Move the average towards G's current weights; `iteration` counts the steps done so far."""
        import tensorflow as tf

        self._update(tf.constant(decay_at(self.decay, iteration, self.ramp), tf.float32))
