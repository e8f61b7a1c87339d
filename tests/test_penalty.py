"""--r1: the penalty is γ/2·E‖∇ₓ logit‖² at real images, its steps move D towards a flatter D there, and the
trainer takes one every --r1-every iterations while D is trainable, leaving G alone."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dcgan_faces.config import TrainConfig
from dcgan_faces.models import DiscriminatorOptions, build_discriminator, build_gan
from dcgan_faces.penalty import RealGradientPenalty
from dcgan_faces.trainer import Trainer

REAL = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 3)).astype("float32")


def _gan(**settings):
    keras.utils.set_random_seed(0)
    return build_gan(TrainConfig(res=16, batch_size=4, r1=10.0, **settings))


def test_the_input_gradient_is_the_logits_slope_and_the_penalty_its_mean_square():
    gan = _gan(d_dropout=0.0)  # no dropout: D in training mode is a fixed function of its batch
    gan.discriminator.trainable = True
    for row in range(len(REAL)):  # one image at a time: its logit depends on no other image
        image = tf.constant(REAL[row:row + 1])
        with tf.GradientTape() as tape:
            tape.watch(image)
            realness = tf.reduce_sum(gan.discriminator(image, training=True))
        slope = tape.gradient(realness, image) / (realness * (1 - realness))  # σ' = σ(1 − σ)
        np.testing.assert_allclose(gan.penalty.input_gradient(image), slope, rtol=1e-3, atol=1e-6)
    gradient = gan.penalty.input_gradient(REAL).numpy()
    assert float(gan.penalty.value(REAL)) == pytest.approx(0.5 * 10.0 * np.mean(np.sum(gradient ** 2, axis=(1, 2, 3))),
                                                           rel=1e-5)


def test_the_logit_is_read_before_the_sigmoid_and_the_split_head_is_the_same_function():
    keras.utils.set_random_seed(0)
    joined = build_discriminator(16, 3, DiscriminatorOptions(dropout=0.0))
    split = build_discriminator(16, 3, DiscriminatorOptions(dropout=0.0, logit_layer=True))
    assert len(split.weights) == len(joined.weights)
    split.set_weights(joined.get_weights())
    np.testing.assert_allclose(split(REAL), joined(REAL), rtol=1e-6)
    penalty = RealGradientPenalty(split, gamma=1.0, every=4)
    np.testing.assert_allclose(tf.sigmoid(penalty.logit(REAL)), joined(REAL), rtol=1e-5)
    with pytest.raises(ValueError, match="sigmoid"):
        RealGradientPenalty(joined, gamma=1.0, every=4)


@pytest.mark.slow  # trains D for ten steps
def test_penalty_steps_flatten_d_at_the_real_images():
    gan = _gan(d_dropout=0.0, lr=1e-3)
    gan.discriminator.trainable = True
    before = float(gan.penalty.value(REAL))
    for _ in range(10):
        gan.penalty.step(REAL)
    assert float(gan.penalty.value(REAL)) < 0.5 * before


def test_fast_and_stock_layers_give_the_penalty_the_same_gradient():
    """The fast layers' hand-written gradients are differentiated once more here: they must agree."""
    gradients = []
    for fast in (True, False):
        gan = build_gan(TrainConfig(res=16, batch_size=4, r1=10.0, d_dropout=0.0, seed=2), fast=fast)
        if fast:
            start = gan.discriminator.get_weights()
        gan.discriminator.set_weights(start)
        gan.discriminator.trainable = True
        with tf.GradientTape() as tape:
            penalty = gan.penalty.value(REAL)
        gradients.append(tape.gradient(penalty, gan.discriminator.trainable_variables))
    assert sum(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients[0]) >= len(start) // 2
    for fast, stock in zip(*gradients, strict=True):
        if stock is None:
            assert fast is None
        else:
            np.testing.assert_allclose(fast, stock, rtol=1e-3, atol=1e-5 * float(tf.reduce_max(tf.abs(stock))))


@pytest.mark.slow
def test_the_trainer_takes_a_penalty_step_every_k_iterations_on_the_real_batch_and_g_stays(monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    trainer = Trainer(TrainConfig(res=16, batch_size=8, seed=1, ema=0.99, r1=1.0, r1_every=3), images)
    gan, step = trainer.gan, trainer.gan.penalty.step
    taken = []

    def watched(real, strategy=None):
        assert gan.discriminator.trainable, "the step is traced and run while D is trainable"
        np.testing.assert_array_equal(real, trainer.sampler.batch(trainer.iteration))
        d_before, g_before = gan.discriminator.get_weights(), gan.generator.get_weights()
        step(real, strategy)
        assert any(not np.array_equal(a, b) for a, b in zip(d_before, gan.discriminator.get_weights(), strict=True))
        assert all(np.array_equal(a, b) for a, b in zip(g_before, gan.generator.get_weights(), strict=True))
        taken.append(trainer.iteration)

    monkeypatch.setattr(gan.penalty, "step", watched)
    for _ in range(7):
        assert all(np.isfinite(list(trainer.step().values())))
    assert taken == [0, 3, 6]


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])  # float16: D's optimizer scales the loss
def test_r1_trains_in_mixed_precision(policy):
    images = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    trainer = Trainer(TrainConfig(res=16, batch_size=8, seed=1, r1=1.0, r1_every=1, precision=policy), images)
    discriminator = trainer.gan.discriminator
    for _ in range(2):
        assert all(np.isfinite(list(trainer.step().values())))
        discriminator.trainable = True
        before = discriminator.get_weights()
        trainer.gan.penalty.step(trainer.sampler.batch(trainer.iteration))
        discriminator.trainable = False
        after = discriminator.get_weights()
        assert all(np.isfinite(w).all() for w in after)
        assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True)), "the step moves D"
