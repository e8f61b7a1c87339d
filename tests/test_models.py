"""Generator and discriminator shapes, and the frozen discriminator's BatchNorm semantics."""

import keras
import numpy as np
import pytest

from dcgan_faces import models
from dcgan_faces.config import TrainConfig, upsampling_plan


@pytest.mark.parametrize("res", [28, 32, 48, 64, 96, 128])
def test_generator_and_discriminator_shapes(res):
    generator = models.build_generator(res, seed_size=100)
    discriminator = models.build_discriminator(res)
    assert generator.output.shape == (None, res, res, 3)
    assert discriminator.output.shape == (None, 1)
    images = generator.predict_on_batch(np.random.default_rng(0).standard_normal((2, 100)).astype("float32"))
    assert images.shape == (2, res, res, 3)
    assert -1.0 <= images.min() and images.max() <= 1.0
    realness = discriminator.predict_on_batch(images)
    assert ((0.0 <= realness) & (realness <= 1.0)).all()


def test_notebook_sizes_at_64px():
    assert upsampling_plan(64) == (4, 4)
    assert models.build_generator(64).count_params() == pytest.approx(2.0e6, rel=0.05)
    assert models.build_discriminator(64).count_params() == pytest.approx(1.6e6, rel=0.05)


@pytest.mark.parametrize("res", [8, 30, 18, 0])
def test_unbuildable_resolutions_are_refused(res):
    with pytest.raises(ValueError, match=f"--res {res}"):
        upsampling_plan(res)


def _batch_norm(layer_class):
    layer = layer_class(momentum=0.8)
    layer.build((None, 4, 4, 3))
    layer.gamma.assign(np.array([1.5, 0.5, 2.0], dtype="float32"))
    layer.beta.assign(np.array([0.1, -0.2, 0.3], dtype="float32"))
    layer.moving_mean.assign(np.array([5.0, 5.0, 5.0], dtype="float32"))
    layer.moving_variance.assign(np.array([9.0, 9.0, 9.0], dtype="float32"))
    layer.trainable = False
    return layer


def test_frozen_batch_norm_uses_batch_statistics_and_updates_nothing():
    x = np.random.default_rng(1).normal(2.0, 3.0, (8, 4, 4, 3)).astype("float32")
    layer = _batch_norm(models.FrozenBatchStatsNormalization)
    before = [v.numpy().copy() for v in layer.variables]
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    expected = (x - mean) / np.sqrt(var + layer.epsilon) * layer.gamma.numpy() + layer.beta.numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    for old, variable in zip(before, layer.variables, strict=True):
        np.testing.assert_array_equal(old, variable.numpy())
    stock = keras.ops.convert_to_numpy(_batch_norm(keras.layers.BatchNormalization)(x, training=True))
    assert np.abs(stock - expected).max() > 0.5, "the stock frozen layer uses moving averages instead"


def test_batch_norm_behaves_as_stock_when_trainable_or_inferring():
    x = np.random.default_rng(2).normal(1.0, 2.0, (8, 4, 4, 3)).astype("float32")
    ours, stock = _batch_norm(models.FrozenBatchStatsNormalization), _batch_norm(keras.layers.BatchNormalization)
    np.testing.assert_allclose(ours(x, training=False), stock(x, training=False), rtol=1e-6)
    ours.trainable = stock.trainable = True
    np.testing.assert_allclose(ours(x, training=True), stock(x, training=True), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.moving_mean.numpy(), stock.moving_mean.numpy(), rtol=1e-6)


def test_d_dropout_sets_the_notebook_discriminators_dropout_and_zero_removes_it():
    images = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
    for rate, layers in ((0.25, 5), (0.5, 5), (0.0, 0)):
        d = models.build_discriminator(16, options=models.DiscriminatorOptions(dropout=rate))
        dropouts = [layer for layer in d.layers if isinstance(layer, keras.layers.Dropout)]
        assert len(dropouts) == layers and all(layer.rate == rate for layer in dropouts)
        if rate == 0:  # nothing random left: training mode gives the same answer twice
            np.testing.assert_array_equal(d(images, training=True), d(images, training=True))
    gan = models.build_gan(TrainConfig(res=16, d_dropout=0.1))
    assert {layer.rate for layer in gan.discriminator.layers if isinstance(layer, keras.layers.Dropout)} == {0.1}


def test_g_filters_narrows_the_generator_and_its_stock_copy_computes_the_same():
    seeds = np.random.default_rng(0).standard_normal((3, 100)).astype("float32")
    narrow = models.generator_of(TrainConfig(res=32, g_filters=64))
    widths = [layer.filters for layer in narrow.layers if hasattr(layer, "filters")]
    assert widths == [64, 64, 32, 3]
    assert narrow.count_params() < models.generator_of(TrainConfig(res=32)).count_params() / 3
    stock = models.stock_generator(narrow)
    np.testing.assert_allclose(stock(seeds, training=False), narrow(seeds, training=False), atol=1e-5)


def test_d_filters_narrows_every_discriminator_convolution():
    def widths(config):
        d = models.build_gan(config).discriminator
        return [layer.filters for layer in d.layers if hasattr(layer, "filters")], d.count_params()

    notebook, notebook_params = widths(TrainConfig(res=16))
    narrow, narrow_params = widths(TrainConfig(res=16, d_filters=256))
    assert notebook == [32, 64, 128, 256, 512]
    assert narrow == [16, 32, 64, 128, 256]
    assert narrow_params < notebook_params / 3


@pytest.mark.parametrize("res, start", [(16, 4), (20, 5), (24, 6), (28, 7), (36, 9)])  # each start square's family
def test_both_forms_of_one_generator_spec_compute_the_same_function(res, start):
    spec = models.GeneratorSpec(res, seed_size=8, channels=3, filters=16)
    assert upsampling_plan(res)[0] == start
    keras.utils.set_random_seed(0)
    fast, stock = spec.build(fast=True), spec.build(fast=False)
    assert [v.path for v in fast.weights] == [v.path for v in stock.weights]
    assert models.GeneratorSpec.of_model(fast) == models.GeneratorSpec.of_model(stock) == spec
    stock.set_weights(fast.get_weights())
    seeds = np.random.default_rng(res).standard_normal((4, 8)).astype("float32")
    for training in (False, True):
        np.testing.assert_allclose(stock(seeds, training=training), fast(seeds, training=training), atol=2e-5)
