"""The generator and discriminator (the course notebook's, or Radford et al.'s) and the combined model.

Every layer that holds variables is named (`up1_conv`, `conv3_norm`...): checkpoints key the weights by those
names, and the fast and stock forms of the notebook's models share them. fast_layers.py is imported only when
the fast form is built.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers, ops

from dcgan_faces.augment import DiffAugment
from dcgan_faces.config import TRANSLATION_SHIFT, TrainConfig, upsampling_plan
from dcgan_faces.ema import GeneratorAverage, Recalibrated
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
    the logit before it can be read (R1 needs it; the same function either way); the notebook architecture's
    widest convolution (the others have a half, a quarter, ... of it)."""

    spectral_norm: bool = False
    minibatch_stddev: bool = False
    augment: str = ""
    augment_shift: float = TRANSLATION_SHIFT
    dropout: float = 0.25
    logit_layer: bool = False
    filters: int = 512

    @classmethod
    def of(cls, config: TrainConfig) -> DiscriminatorOptions:
        return cls(config.spectral_norm, config.minibatch_stddev, config.augment, config.augment_shift,
                   config.d_dropout, config.r1 > 0, config.d_filters)

    def dropped(self, x, name: str):
        return layers.Dropout(self.dropout, name=name)(x) if self.dropout else x

    def weights(self, layer: layers.Layer) -> layers.Layer:
        if not self.spectral_norm:
            return layer
        return FrozenSpectralNormalization(layer, dtype=layer.dtype_policy, name=f"{layer.name}_spectral")

    def input(self, image):
        return DiffAugment(self.augment, shift=self.augment_shift, name="augment")(image) if self.augment else image

    def before_output(self, x):
        return MinibatchStdDev(name="minibatch_stddev")(x) if self.minibatch_stddev else x

    def realness(self, x, **dense):
        """D's output, Dense(1, sigmoid) in float32 (`dense`: the Dense layer's other arguments)."""
        if not self.logit_layer:
            return self.weights(layers.Dense(1, activation="sigmoid", dtype="float32", name="realness", **dense))(x)
        logit = self.weights(layers.Dense(1, dtype="float32", name="realness", **dense))(x)
        return layers.Activation("sigmoid", dtype="float32", name="realness_sigmoid")(logit)


@dataclass(frozen=True)
class LayerKinds:
    """The layer classes one form of the notebook's models is built from: fast_layers.py's or Keras's own."""

    conv: type
    batch_norm: type
    upsample_conv: Callable  # (filters, name) → a function of a tensor: nearest ×2 upsampling, then a 3×3 conv


def layer_kinds(fast: bool) -> LayerKinds:
    if not fast:
        return LayerKinds(layers.Conv2D, layers.BatchNormalization, _stock_upsample_conv)
    from dcgan_faces import fast_layers  # loaded only where the fast form is built

    return LayerKinds(fast_layers.Conv2D, fast_layers.BatchNormalization,
                      lambda filters, name: fast_layers.UpsampleConv2D(filters, name=name))


def _stock_upsample_conv(filters: int, name: str):
    upsample = layers.UpSampling2D(name=f"{name}_upsample")
    conv = layers.Conv2D(filters, 3, padding="same", name=name)
    return lambda x: conv(upsample(x))


@dataclass(frozen=True)
class GeneratorSpec:
    """The notebook generator, described once: Dense(start²·filters, relu) → reshape to start×start → per
    doubling [upsample ×2 + Conv 3×3, BN, ReLU] → Conv 3×3 to `channels` → tanh.

    Both forms are built from it (`build(fast)`), with the same layer names and the same variables in the
    same order, so one's weights are the other's. The first two blocks have `filters` channels, the others
    half (the notebook's 256 and 128); `upsampling_plan` gives the start square and the number of doublings.
    """

    res: int = 64
    seed_size: int = 100
    channels: int = 3
    filters: int = 256

    def widths(self) -> list[int]:
        _, doublings = upsampling_plan(self.res)
        return [self.filters if block < 2 else max(1, self.filters // 2) for block in range(doublings)]

    @classmethod
    def of_model(cls, generator: keras.Model) -> GeneratorSpec:
        """The spec a notebook generator (either form) was built from, read from its named layers."""
        _, res, _, channels = generator.output_shape
        return cls(res, generator.input_shape[-1], channels, generator.get_layer("reshape").target_shape[-1])

    def build(self, fast: bool = True) -> keras.Model:
        kinds = layer_kinds(fast)
        start, _ = upsampling_plan(self.res)
        seed = keras.Input((self.seed_size,), name="seed")
        x = layers.Dense(start * start * self.filters, activation="relu", name="project")(seed)
        x = layers.Reshape((start, start, self.filters), name="reshape")(x)
        for block, width in enumerate(self.widths(), start=1):
            x = kinds.upsample_conv(width, f"up{block}_conv")(x)
            x = kinds.batch_norm(momentum=0.8, name=f"up{block}_norm")(x)
            x = layers.Activation("relu", name=f"up{block}_relu")(x)
        x = kinds.conv(self.channels, 3, padding="same", name="to_image")(x)
        image = layers.Activation("tanh", dtype="float32", name="tanh")(x)
        return keras.Model(seed, image, name="generator")


def build_generator(res: int = 64, seed_size: int = 100, channels: int = 3, fast: bool = True,
                    filters: int = 256) -> keras.Model:
    """The notebook generator (see GeneratorSpec). fast=True builds it from the exact, faster layers of
    fast_layers.py (each UpSampling + Conv pair as one UpsampleConv2D); fast=False from the notebook's stock
    layers. The weights are the same. `filters` replaces the notebook's 256 (and its half the 128).
    """
    return GeneratorSpec(res, seed_size, channels, filters).build(fast)


def _conv_block(x, name: str, filters: int, strides: int, options: DiscriminatorOptions, conv,
                zero_pad: bool = False):
    x = options.dropped(x, f"{name}_dropout")
    x = options.weights(conv(filters, 3, strides=strides, padding="same", name=name))(x)
    if zero_pad:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_pad")(x)
    x = FrozenBatchStatsNormalization(momentum=0.8, name=f"{name}_norm")(x)
    return layers.LeakyReLU(0.2, name=f"{name}_act")(x)


def build_discriminator(res: int = 64, channels: int = 3, options: DiscriminatorOptions = DiscriminatorOptions(),
                        fast: bool = True) -> keras.Model:
    """Conv 32 s2 → Conv 64 s2 + pad → Conv 128 s2 → Conv 256 → Conv 512 → Dense(1, sigmoid), the widths
    those of options.filters 512 (the notebook's).

    fast=True: the stride-1 convolutions run with faster, exact gradients (fast_layers.Conv2D).
    """
    conv = layer_kinds(fast).conv
    width = [max(1, options.filters // 2 ** k) for k in (4, 3, 2, 1, 0)]
    image = keras.Input((res, res, channels), name="image")
    x = options.weights(layers.Conv2D(width[0], 3, strides=2, padding="same", name="conv1"))(options.input(image))
    x = layers.LeakyReLU(0.2, name="conv1_act")(x)
    x = _conv_block(x, "conv2", width[1], 2, options, conv, zero_pad=True)
    x = _conv_block(x, "conv3", width[2], 2, options, conv)
    x = _conv_block(x, "conv4", width[3], 1, options, conv)
    x = _conv_block(x, "conv5", width[4], 1, options, conv)
    x = options.dropped(options.before_output(x), "output_dropout")
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(image, options.realness(x), name="discriminator")


def _dcgan_init():
    return keras.initializers.RandomNormal(stddev=0.02)


def build_dcgan_generator(res: int = 64, seed_size: int = 100, channels: int = 3) -> keras.Model:
    """Radford et al. 2015: project, then Conv2DTranspose 4×4 s2 + BatchNorm + ReLU, halving filters; tanh."""
    start, doublings = upsampling_plan(res)
    filters = min(512, 64 * 2 ** (doublings - 1))
    seed = keras.Input((seed_size,), name="seed")
    x = layers.Dense(start * start * filters, use_bias=False, kernel_initializer=_dcgan_init(), name="project")(seed)
    x = layers.Reshape((start, start, filters), name="reshape")(x)
    x = layers.Activation("relu", name="project_relu")(layers.BatchNormalization(name="project_norm")(x))
    for block in range(1, doublings):
        filters = max(64, filters // 2)
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False,
                                   kernel_initializer=_dcgan_init(), name=f"up{block}_conv")(x)
        x = layers.Activation("relu", name=f"up{block}_relu")(layers.BatchNormalization(name=f"up{block}_norm")(x))
    x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", kernel_initializer=_dcgan_init(),
                               name="to_image")(x)
    image = layers.Activation("tanh", dtype="float32")(x)
    return keras.Model(seed, image, name="generator")


def build_dcgan_discriminator(res: int = 64, channels: int = 3,
                              options: DiscriminatorOptions = DiscriminatorOptions()) -> keras.Model:
    """Radford et al. 2015: strided 4×4 convs, BatchNorm (not on the first), LeakyReLU 0.2; no pooling or dropout."""
    _, doublings = upsampling_plan(res)
    image = keras.Input((res, res, channels), name="image")
    x = options.input(image)
    for block in range(doublings):
        name = f"conv{block + 1}"
        x = options.weights(layers.Conv2D(min(512, 64 * 2**block), 4, strides=2, padding="same",
                                          use_bias=block == 0, kernel_initializer=_dcgan_init(), name=name))(x)
        if block > 0:
            x = FrozenBatchStatsNormalization(name=f"{name}_norm")(x)
        x = layers.LeakyReLU(0.2, name=f"{name}_act")(x)
    x = layers.Flatten(name="flatten")(options.before_output(x))
    return keras.Model(image, options.realness(x, kernel_initializer=_dcgan_init()), name="discriminator")


def stock_generator(generator: keras.Model) -> keras.Model:
    """The notebook generator `generator` in the notebook's stock layers, with the same weights.

    What is saved as generator.keras, so that `keras.models.load_model` reads it without this package.
    """
    fast_layers = sys.modules.get("dcgan_faces.fast_layers")  # not loaded: no model holds its layers
    if fast_layers is None or not any(isinstance(layer, fast_layers.UpsampleConv2D) for layer in generator.layers):
        return generator
    stock = GeneratorSpec.of_model(generator).build(fast=False)
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
    recalibrated: Recalibrated | None = None  # --bn-recalibration: see Trainer.output_generator

    @property
    def output_generator(self) -> keras.Model:
        """The generator whose weights are shown, evaluated and saved: the moving average when there is one."""
        return self.average.model if self.average else self.generator


def accuracy(y_true, y_pred):
    """Share judged on the right side of 0.5; a label above 0.5 means real, so smoothed or noisy labels work."""
    return ops.mean(ops.cast(ops.equal(y_true > 0.5, y_pred > 0.5), "float32"), axis=-1)


def make_optimizer(name: str, lr: float, beta1: float, beta2: float = 0.999) -> keras.optimizers.Optimizer:
    """Named by its kind, not "adam_1" for the second one: checkpoints key its variables by their paths."""
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr, name="rmsprop")
    return keras.optimizers.Adam(learning_rate=lr, beta_1=beta1, beta_2=beta2, name="adam")


# How far the logit is read back from D's sigmoid: float32 holds 1 - p to about 1e-7 (|logit| up to ~16).
REALNESS_EPSILON = 1e-7


def realness_logit(probability):
    """D's logit, read back from its sigmoid output (D keeps the notebook's sigmoid, its accuracy and its
    logged figures; the hinge needs the logit)."""
    p = ops.clip(ops.cast(probability, "float32"), REALNESS_EPSILON, 1 - REALNESS_EPSILON)
    return ops.log(p) - ops.log1p(-p)


def hinge_discriminator(y_true, y_pred):
    """D's hinge loss (Lim & Ye 2017; SAGAN, BigGAN): max(0, 1 - logit) on real (label 1), max(0, 1 + logit) on
    fake (label 0); a smoothed or noisy label moves the margin's side in proportion (2y - 1)."""
    side = 2 * ops.cast(y_true, "float32") - 1
    return ops.mean(ops.relu(1 - side * realness_logit(y_pred)), axis=-1)


def hinge_generator(y_true, y_pred):
    """G's side of the hinge game: -logit of its faces (the labels, all 1, are not read)."""
    return ops.mean(-realness_logit(y_pred), axis=-1)


LOSSES = {  # --loss: (D's loss, G's loss through the combined model)
    "bce": ("binary_crossentropy", "binary_crossentropy"),
    "mse": ("mean_squared_error", "mean_squared_error"),
    "hinge": (hinge_discriminator, hinge_generator),
}


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
    d_loss, g_loss = LOSSES[config.loss]
    discriminator.compile(optimizer=make_optimizer(config.optimizer, config.lr_d or config.lr, config.beta1,
                                                   config.beta2),
                          loss=d_loss, metrics=[accuracy])
    discriminator.trainable = False
    seed = keras.Input((config.seed_size,), name="seed")
    combined = keras.Model(seed, discriminator(generator(seed)), name="combined")
    combined.compile(optimizer=make_optimizer(config.optimizer, config.lr_g or config.lr, config.beta1,
                                              config.beta2),
                     loss=g_loss, metrics=[accuracy])
    average = GeneratorAverage(generator, config.ema, config.ema_ramp) if config.ema else None
    penalty = RealGradientPenalty(discriminator, config.r1, config.r1_every) if config.r1 else None
    gan = GAN(generator, discriminator, combined, average, penalty)
    if config.bn_recalibration:
        gan.recalibrated = Recalibrated(gan.output_generator, config)
    return gan
