"""R1 (Mescheder et al. 2018): a zero-centred penalty on D's gradient at real images, applied lazily.

The penalty is γ/2 · E‖∇ₓ logit D(x)‖² over a real batch. As in StyleGAN2 it is lazy: every k iterations
one more step of D's own optimizer on the penalty alone, weighted by k so that its average strength is the
same. D's real and fake steps stay the notebook's `train_on_batch` calls and the losses they log stay the
notebook's.
"""

from __future__ import annotations

import numpy as np


class RealGradientPenalty:
    """`gamma` and `every` as in --r1 and --r1-every; D's last layer must be its sigmoid on its own
    (DiscriminatorOptions(logit_layer=True)), so that the penalty sees the logit before it."""

    def __init__(self, discriminator, gamma: float, every: int):
        import keras
        import tensorflow as tf

        sigmoid = discriminator.layers[-1]
        if not isinstance(sigmoid, keras.layers.Activation):
            raise ValueError("R1 needs a discriminator whose sigmoid is a layer of its own")
        self.discriminator, self.gamma, self.every = discriminator, gamma, every
        self.logit = keras.Model(discriminator.input, sigmoid.input)
        self._step = tf.function(self._penalised_step)

    def due(self, iteration: int) -> bool:
        return iteration % self.every == 0

    def input_gradient(self, real):
        """∇ₓ of the batch's summed logits at `real`, in float32; D runs in training mode, as in its own steps
        (so each row's logit depends on the others' only through BatchNorm's batch statistics)."""
        import tensorflow as tf

        with tf.GradientTape() as tape:
            real = tf.convert_to_tensor(real, tf.float32)
            tape.watch(real)
            logits = tf.reduce_sum(self.logit(real, training=True))
        return tf.cast(tape.gradient(logits, real), tf.float32)

    def value(self, real):
        """γ/2 · the batch mean of ‖∇ₓ logit‖²."""
        import tensorflow as tf

        squares = tf.reduce_sum(tf.square(self.input_gradient(real)), axis=[1, 2, 3])
        return 0.5 * self.gamma * tf.reduce_mean(squares)

    def _penalised_step(self, real):
        import tensorflow as tf

        discriminator = self.discriminator
        optimizer, variables = discriminator.optimizer, discriminator.trainable_variables  # traced while trainable
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync  # the replicas' gradients are summed
        with tf.GradientTape() as tape:
            penalty = self.value(real)
            scaled = optimizer.scale_loss(penalty * (self.every / replicas))
        moved = [(grad, var) for grad, var in zip(tape.gradient(scaled, variables), variables, strict=True)
                 if grad is not None]  # the output layer's bias does not change ∇ₓ
        optimizer.apply(*zip(*moved))

    def step(self, real, strategy=None):
        """One lazy R1 step of D on `real` (a batch in [-1, 1], per replica under a strategy); D must be
        trainable. The penalty's value is not logged: D's loss stays the notebook's."""
        if strategy is None:
            self._step(np.asarray(real))
        else:
            strategy.run(self._step, args=(real,))
