"""An exponential moving average of the generator's weights, used for previews, evaluation and the saved model,
and (--bn-recalibration) its BatchNorm statistics recomputed for its own weights."""

from __future__ import annotations

import numpy as np

from dcgan_faces.sampling import latents

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


RECALIBRATION_SEED = 20_261_206  # the fixed latents the statistics are recomputed from


def recalibration_latents(config) -> np.ndarray:
    """The --bn-recalibration batches' latents: the same for every run, so the faces are a function of the weights."""
    return latents(config.seed_size, config.bn_recalibration * config.batch_size, seed=RECALIBRATION_SEED)


def batch_norm_layers(model) -> list:
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def batch_statistics(model):
    """(BatchNorm layers, f): f(latents) gives each layer's (mean, variance) over its input in training mode,
    as a compiled function of the model's current weights."""
    import keras
    import tensorflow as tf

    norms = batch_norm_layers(model)
    inputs_of = keras.Model(model.input, [layer.input for layer in norms])

    @tf.function(reduce_retracing=True)
    def statistics(latents):
        seen = inputs_of(latents, training=True)
        return [keras.ops.moments(keras.ops.cast(x, "float32"), axes=list(range(len(x.shape) - 1)))
                for x in (seen if isinstance(seen, list | tuple) else [seen])]

    return norms, statistics


def recalibrate_batch_norm(model, latents: np.ndarray, batch_size: int, statistics=None) -> None:
    """Set each BatchNormalization layer's moving mean and variance to the mean, over batches of `latents`,
    of the batch statistics that layer sees in training mode with `model`'s own weights (SWA's update_bn,
    Izmailov et al. 2018). `statistics`: batch_statistics(model), kept to save compiling it again.

    An averaged generator's moving statistics are an average of G's, which were measured on other weights:
    they are not the statistics of the averaged weights."""
    norms, statistics = statistics or batch_statistics(model)
    if not norms:
        return
    count = len(latents) // batch_size
    sums = [np.zeros((2, layer.moving_mean.shape[0])) for layer in norms]
    for start in range(0, count * batch_size, batch_size):
        for total, (mean, variance) in zip(sums, statistics(latents[start:start + batch_size]), strict=True):
            total += [np.asarray(mean, np.float64), np.asarray(variance, np.float64)]
    for layer, total in zip(norms, sums, strict=True):
        layer.moving_mean.assign((total[0] / count).astype(np.float32))
        layer.moving_variance.assign((total[1] / count).astype(np.float32))


class Recalibrated:
    """The average's faces under --bn-recalibration: a copy of it whose BatchNorm statistics are recomputed
    from its weights. The average itself is left as it is, so a run's checkpoints and resumes do not change."""

    def __init__(self, average, config):
        import keras

        self.average = average
        self.model = keras.models.clone_model(average)
        self.latents, self.batch_size = recalibration_latents(config), config.batch_size
        self.statistics = batch_statistics(self.model)
        self.iteration: int | None = None  # of the weights the copy has

    def refresh(self) -> None:
        """Bring the copy up to the average's current weights."""
        self.model.set_weights(self.average.get_weights())
        recalibrate_batch_norm(self.model, self.latents, self.batch_size, self.statistics)

    def at(self, iteration: int):
        """The copy at `iteration`, recalibrated once per iteration. (A rollback to iteration k restores the
        weights the copy had at k, so the copy of k stays right.)"""
        if self.iteration != iteration:
            self.refresh()
            self.iteration = iteration
        return self.model
