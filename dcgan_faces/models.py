"""The generator and discriminator (the course notebook's, or Radford et al.'s) and the combined model."""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers, ops

from dcgan_faces import fast_layers
from dcgan_faces.augment import DiffAugment
from dcgan_faces.config import TrainConfig, upsampling_plan
from dcgan_faces.ema import GeneratorAverage
from dcgan_faces.penalty import RealGradientPenalty


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
        mean, variance = ops.moments(x, axes=axes, synchronized=self.synchronized)  # global batch under a strategy
        outputs = ops.batch_normalization(
            x, mean, variance, axis=self.axis,
            offset=ops.cast(self.beta, x.dtype), scale=ops.cast(self.gamma, x.dtype), epsilon=self.epsilon,
        )
        return ops.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package="dcgan_faces")
class FrozenSpectralNormalization(layers.SpectralNormalization):
    """Spectral normalisation (Miyato et al. 2018) that leaves a frozen discriminator untouched.

    The stock wrapper rescales its kernel in place on every training call, which would change D during
    the generator's step; frozen, this one uses the kernel as D's last step left it (already normalised
    there, then moved by one optimizer step).
    """

    def call(self, inputs, training=False):
        return super().call(inputs, training=training and self.trainable)


@keras.saving.register_keras_serializable(package="dcgan_faces")
class MinibatchStdDev(layers.Layer):
    """Appends the batch's average per-feature standard deviation as one more channel (Karras et al. 2018).

    D sees how varied the batch is, so a generator that makes the same face again and again is caught.
    """

    def call(self, x):
        stddev = ops.sqrt(ops.var(ops.cast(x, "float32"), axis=0) + 1e-8)
        average = ops.cast(ops.mean(stddev), x.dtype)
        return ops.concatenate([x, ops.ones_like(x[..., :1]) * average], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)


@dataclass(frozen=True)
class DiscriminatorOptions:
    """Additions to either architecture's D: spectral norm on every weight layer, a minibatch-stddev
    channel before the output layer, DiffAugment of every input (policy string; "" for none); the notebook
    architecture's dropout rate (0: no dropout layers); the output's sigmoid as a layer of its own, so that
    the logit before it can be read (R1 needs it; the same function either way)."""

    spectral_norm: bool = False
    minibatch_stddev: bool = False
    augment: str = ""
    dropout: float = 0.25
    logit_layer: bool = False

    @classmethod
    def of(cls, config: TrainConfig) -> DiscriminatorOptions:
        return cls(config.spectral_norm, config.minibatch_stddev, config.augment, config.d_dropout, config.r1 > 0)

    def dropped(self, x):
        return layers.Dropout(self.dropout)(x) if self.dropout else x

    def weights(self, layer: layers.Layer) -> layers.Layer:
        return FrozenSpectralNormalization(layer, dtype=layer.dtype_policy) if self.spectral_norm else layer

    def input(self, image):
        return DiffAugment(self.augment)(image) if self.augment else image

    def before_output(self, x):
        return MinibatchStdDev()(x) if self.minibatch_stddev else x

    def realness(self, x, **dense):
        """D's output, Dense(1, sigmoid) in float32 (`dense`: the Dense layer's other arguments)."""
        if not self.logit_layer:
            return self.weights(layers.Dense(1, activation="sigmoid", dtype="float32", **dense))(x)
        logit = self.weights(layers.Dense(1, dtype="float32", **dense))(x)
        return layers.Activation("sigmoid", dtype="float32")(logit)


def build_generator(res: int = 64, seed_size: int = 100, channels: int = 3, fast: bool = True,
                    filters: int = 256) -> keras.Model:
    """Dense(start²·256) → 2 × [UpSampling, Conv 256, BN, ReLU] → [UpSampling, Conv 128, BN, ReLU]… → tanh.

    fast=True builds the same function from the exact, faster layers of fast_layers.py (each UpSampling +
    Conv pair as one UpsampleConv2D); fast=False from the notebook's stock layers. The weights are the same.
    `filters` replaces the notebook's 256 (and its half the 128) to make a narrower or wider generator.
    """
    conv, batch_norm = (fast_layers.Conv2D, fast_layers.BatchNormalization) if fast else (
        layers.Conv2D, layers.BatchNormalization)
    start, doublings = upsampling_plan(res)
    seed = keras.Input((seed_size,), name="seed")
    x = layers.Dense(start * start * filters, activation="relu")(seed)
    x = layers.Reshape((start, start, filters))(x)
    for block in range(doublings):
        width = filters if block < 2 else max(1, filters // 2)
        if fast:
            x = fast_layers.UpsampleConv2D(width)(x)
        else:
            x = layers.Conv2D(width, 3, padding="same")(layers.UpSampling2D()(x))
        x = batch_norm(momentum=0.8)(x)
        x = layers.Activation("relu")(x)
    x = conv(channels, 3, padding="same")(x)
    image = layers.Activation("tanh", dtype="float32")(x)
    return keras.Model(seed, image, name="generator")


def _conv_block(x, filters: int, strides: int, options: DiscriminatorOptions, conv, zero_pad: bool = False):
    x = options.dropped(x)
    x = options.weights(conv(filters, 3, strides=strides, padding="same"))(x)
    if zero_pad:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
    x = FrozenBatchStatsNormalization(momentum=0.8)(x)
    return layers.LeakyReLU(0.2)(x)


def build_discriminator(res: int = 64, channels: int = 3, options: DiscriminatorOptions = DiscriminatorOptions(),
                        fast: bool = True) -> keras.Model:
    """Conv 32 s2 → Conv 64 s2 + pad → Conv 128 s2 → Conv 256 → Conv 512 → Dense(1, sigmoid).

    fast=True: the stride-1 convolutions run with faster, exact gradients (fast_layers.Conv2D).
    """
    conv = fast_layers.Conv2D if fast else layers.Conv2D
    image = keras.Input((res, res, channels), name="image")
    x = options.weights(layers.Conv2D(32, 3, strides=2, padding="same"))(options.input(image))
    x = layers.LeakyReLU(0.2)(x)
    x = _conv_block(x, 64, 2, options, conv, zero_pad=True)
    x = _conv_block(x, 128, 2, options, conv)
    x = _conv_block(x, 256, 1, options, conv)
    x = _conv_block(x, 512, 1, options, conv)
    x = options.dropped(options.before_output(x))
    x = layers.Flatten()(x)
    return keras.Model(image, options.realness(x), name="discriminator")


def _dcgan_init():
    return keras.initializers.RandomNormal(stddev=0.02)


def build_dcgan_generator(res: int = 64, seed_size: int = 100, channels: int = 3) -> keras.Model:
    """Radford et al. 2015: project, then Conv2DTranspose 4×4 s2 + BatchNorm + ReLU, halving filters; tanh."""
    start, doublings = upsampling_plan(res)
    filters = min(512, 64 * 2 ** (doublings - 1))
    seed = keras.Input((seed_size,), name="seed")
    x = layers.Dense(start * start * filters, use_bias=False, kernel_initializer=_dcgan_init())(seed)
    x = layers.Reshape((start, start, filters))(x)
    x = layers.Activation("relu")(layers.BatchNormalization()(x))
    for _ in range(doublings - 1):
        filters = max(64, filters // 2)
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False,
                                   kernel_initializer=_dcgan_init())(x)
        x = layers.Activation("relu")(layers.BatchNormalization()(x))
    x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", kernel_initializer=_dcgan_init())(x)
    image = layers.Activation("tanh", dtype="float32")(x)
    return keras.Model(seed, image, name="generator")


def build_dcgan_discriminator(res: int = 64, channels: int = 3,
                              options: DiscriminatorOptions = DiscriminatorOptions()) -> keras.Model:
    """Radford et al. 2015: strided 4×4 convs, BatchNorm (not on the first), LeakyReLU 0.2; no pooling or dropout."""
    _, doublings = upsampling_plan(res)
    image = keras.Input((res, res, channels), name="image")
    x = options.input(image)
    for block in range(doublings):
        x = options.weights(layers.Conv2D(min(512, 64 * 2**block), 4, strides=2, padding="same",
                                          use_bias=block == 0, kernel_initializer=_dcgan_init()))(x)
        if block > 0:
            x = FrozenBatchStatsNormalization()(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(options.before_output(x))
    return keras.Model(image, options.realness(x, kernel_initializer=_dcgan_init()), name="discriminator")


def stock_generator(generator: keras.Model) -> keras.Model:
    """The notebook generator `generator` in the notebook's stock layers, with the same weights.

    What is saved as generator.keras, so that `keras.models.load_model` reads it without this package.
    """
    if not any(isinstance(layer, fast_layers.UpsampleConv2D) for layer in generator.layers):
        return generator
    _, res, _, channels = generator.output_shape
    filters = generator.get_layer(index=2).output.shape[-1]  # the Reshape after the seed's Dense layer
    stock = build_generator(res, generator.input_shape[-1], channels, fast=False, filters=filters)
    stock.set_weights(generator.get_weights())
    return stock


ARCHITECTURES = {
    "notebook": (build_generator, build_discriminator),
    "dcgan": (build_dcgan_generator, build_dcgan_discriminator),
}


def generator_of(config: TrainConfig, fast: bool = True) -> keras.Model:
    """A run's generator, freshly initialised: its architecture, size and width (fast: see build_generator)."""
    if config.arch == "notebook":
        return build_generator(config.res, config.seed_size, config.channels, fast, config.g_filters)
    return ARCHITECTURES[config.arch][0](config.res, config.seed_size, config.channels)


@dataclass
class GAN:
    generator: keras.Model
    discriminator: keras.Model
    combined: keras.Model
    average: GeneratorAverage | None = None  # --ema: a moving average of G's weights
    penalty: RealGradientPenalty | None = None  # --r1

    @property
    def output_generator(self) -> keras.Model:
        """The generator whose faces are shown, evaluated and saved: the moving average when there is one."""
        return self.average.model if self.average else self.generator


def accuracy(y_true, y_pred):
    """Share judged on the right side of 0.5; a label above 0.5 means real, so smoothed or noisy labels work."""
    return ops.mean(ops.cast(ops.equal(y_true > 0.5, y_pred > 0.5), "float32"), axis=-1)


def make_optimizer(name: str, lr: float, beta1: float) -> keras.optimizers.Optimizer:
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr)
    return keras.optimizers.Adam(learning_rate=lr, beta_1=beta1)


LOSSES = {"bce": "binary_crossentropy", "mse": "mean_squared_error"}


def build_gan(config: TrainConfig, fast: bool = True) -> GAN:
    """Compile D, freeze it, chain it behind G and compile that with an optimizer of its own.

    The trainer toggles `discriminator.trainable` around each step: Keras 3 reads the flag when it first
    traces a train function, so D must be trainable for its own steps and frozen for the combined one.
    fast=False builds the notebook architecture from stock layers (the benchmark's baseline).
    """
    _, build_d = ARCHITECTURES[config.arch]
    stock = {} if fast or config.arch != "notebook" else {"fast": False}
    generator = generator_of(config, fast)
    discriminator = build_d(config.res, config.channels, DiscriminatorOptions.of(config), **stock)
    loss = LOSSES[config.loss]
    discriminator.compile(optimizer=make_optimizer(config.optimizer, config.lr_d or config.lr, config.beta1),
                          loss=loss, metrics=[accuracy])
    discriminator.trainable = False
    seed = keras.Input((config.seed_size,), name="seed")
    combined = keras.Model(seed, discriminator(generator(seed)), name="combined")
    combined.compile(optimizer=make_optimizer(config.optimizer, config.lr_g or config.lr, config.beta1),
                     loss=loss, metrics=[accuracy])
    average = GeneratorAverage(generator, config.ema, config.ema_ramp) if config.ema else None
    penalty = RealGradientPenalty(discriminator, config.r1, config.r1_every) if config.r1 else None
    return GAN(generator, discriminator, combined, average, penalty)
