"""The course notebook's generator and discriminator, and the combined model that trains the generator."""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers, ops

from dcgan_faces.config import upsampling_plan


@keras.saving.register_keras_serializable(package="dcgan_faces")
class FrozenBatchStatsNormalization(layers.BatchNormalization):
    """BatchNormalization that keeps 2019 Keras semantics inside a frozen discriminator.

    Since TF 2 a frozen BatchNormalization layer normalises with its moving averages even in training
    mode. In the combined model that lets the generator fool a stale version of the discriminator and the
    game collapses. Frozen and in training mode, this layer normalises with the batch's own statistics
    and updates nothing; otherwise it is the stock layer.
    """

    def call(self, inputs, training=None, mask=None):
        if not training or self.trainable:
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        axes = [i for i in range(len(x.shape)) if i != self.axis % len(x.shape)]
        mean, variance = ops.moments(x, axes=axes)
        outputs = ops.batch_normalization(
            x, mean, variance, axis=self.axis,
            offset=ops.cast(self.beta, x.dtype), scale=ops.cast(self.gamma, x.dtype), epsilon=self.epsilon,
        )
        return ops.cast(outputs, self.compute_dtype)


def build_generator(res: int = 64, seed_size: int = 100, channels: int = 3) -> keras.Model:
    """Dense(start²·256) → 2 × [UpSampling, Conv 256, BN, ReLU] → [UpSampling, Conv 128, BN, ReLU]… → tanh."""
    start, doublings = upsampling_plan(res)
    seed = keras.Input((seed_size,), name="seed")
    x = layers.Dense(start * start * 256, activation="relu")(seed)
    x = layers.Reshape((start, start, 256))(x)
    for block in range(doublings):
        x = layers.UpSampling2D()(x)
        x = layers.Conv2D(256 if block < 2 else 128, 3, padding="same")(x)
        x = layers.BatchNormalization(momentum=0.8)(x)
        x = layers.Activation("relu")(x)
    x = layers.Conv2D(channels, 3, padding="same")(x)
    image = layers.Activation("tanh", dtype="float32")(x)
    return keras.Model(seed, image, name="generator")


def _conv_block(x, filters: int, strides: int, zero_pad: bool = False):
    x = layers.Dropout(0.25)(x)
    x = layers.Conv2D(filters, 3, strides=strides, padding="same")(x)
    if zero_pad:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
    x = FrozenBatchStatsNormalization(momentum=0.8)(x)
    return layers.LeakyReLU(0.2)(x)


def build_discriminator(res: int = 64, channels: int = 3) -> keras.Model:
    """Conv 32 s2 → Conv 64 s2 + pad → Conv 128 s2 → Conv 256 → Conv 512 → Dense(1, sigmoid)."""
    image = keras.Input((res, res, channels), name="image")
    x = layers.Conv2D(32, 3, strides=2, padding="same")(image)
    x = layers.LeakyReLU(0.2)(x)
    x = _conv_block(x, 64, 2, zero_pad=True)
    x = _conv_block(x, 128, 2)
    x = _conv_block(x, 256, 1)
    x = _conv_block(x, 512, 1)
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    realness = layers.Dense(1, activation="sigmoid", dtype="float32")(x)
    return keras.Model(image, realness, name="discriminator")


@dataclass
class GAN:
    generator: keras.Model
    discriminator: keras.Model
    combined: keras.Model


def _adam(lr: float, beta1: float) -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate=lr, beta_1=beta1)


def build_gan(res: int = 64, seed_size: int = 100, channels: int = 3, lr: float = 1.5e-4,
              beta1: float = 0.5) -> GAN:
    """Compile D, freeze it, chain it behind G and compile that with an Adam of its own.

    The trainer toggles `discriminator.trainable` around each step: Keras 3 reads the flag when it first
    traces a train function, so D must be trainable for its own steps and frozen for the combined one.
    """
    generator = build_generator(res, seed_size, channels)
    discriminator = build_discriminator(res, channels)
    discriminator.compile(optimizer=_adam(lr, beta1), loss="binary_crossentropy", metrics=["accuracy"])
    discriminator.trainable = False
    seed = keras.Input((seed_size,), name="seed")
    combined = keras.Model(seed, discriminator(generator(seed)), name="combined")
    combined.compile(optimizer=_adam(lr, beta1), loss="binary_crossentropy", metrics=["accuracy"])
    return GAN(generator, discriminator, combined)
