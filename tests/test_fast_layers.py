"""The faster layers compute the notebook's functions: same weights, same outputs, same gradients."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from dcgan_faces import checkpoint, fast_layers, models
from dcgan_faces.config import TrainConfig
from dcgan_faces.ema import GeneratorAverage
from dcgan_faces.runfolder import RunFolder
from dcgan_faces.trainer import Trainer

RNG = np.random.default_rng(0)


def _seeds(n=6, size=100):
    return np.random.default_rng(n).standard_normal((n, size)).astype("float32")


def _pair(res, channels=3):
    # Fixed weights: with others a ReLU input rounded across 0 in one BatchNorm channel can move the
    # gradients of the layers above it by up to 0.4 % (3 of 8 seeds at 48 px), whatever ran before.
    keras.utils.set_random_seed(0)
    fast = models.build_generator(res, channels=channels)
    stock = models.stock_generator(fast)
    return fast, stock


def _gradients(model, x):
    with tf.GradientTape() as tape:
        y = model(x, training=True)
        loss = tf.reduce_sum(y * tf.cos(3.0 * y))  # any scalar that weighs every output differently
    return [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]


def _assert_gradients_equal(fast_grads, stock_grads):
    """Equal up to rounding, weight by weight, in norm: where rounding moves a ReLU's input across 0, a few
    elements differ by their whole size. Conv biases in front of BatchNorm have a gradient of pure rounding
    (~0) in both, so the allowance also scales with the model's largest gradient."""
    largest = max(np.linalg.norm(g) for g in stock_grads)
    for fast, stock in zip(fast_grads, stock_grads, strict=True):
        assert np.linalg.norm(fast - stock) <= 1e-3 * np.linalg.norm(stock) + 1e-6 * largest


@pytest.mark.parametrize("res", [28, 32, 48, 64])  # start squares 7, 4, 6, 4
def test_fast_generator_equals_the_stock_one_in_both_modes(res):
    fast, stock = _pair(res)
    assert any(isinstance(layer, fast_layers.UpsampleConv2D) for layer in fast.layers)
    assert not any(isinstance(layer, fast_layers.UpsampleConv2D) for layer in stock.layers)
    assert fast.count_params() == stock.count_params()
    z = _seeds()
    for training in (True, False):
        np.testing.assert_allclose(fast(z, training=training), stock(z, training=training), atol=2e-5)


@pytest.mark.parametrize("res", [28, 48])
def test_fast_generator_gradients_equal_the_stock_ones(res):
    fast, stock = _pair(res)
    z = _seeds()
    _assert_gradients_equal(_gradients(fast, z), _gradients(stock, z))


def test_fast_discriminator_equals_the_stock_one():
    fast = models.build_discriminator(32)
    stock = models.build_discriminator(32, fast=False)
    stock.set_weights(fast.get_weights())
    images = RNG.uniform(-1, 1, (6, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(fast(images, training=False), stock(images, training=False), atol=1e-6)
    with tf.GradientTape(persistent=True) as tape:  # dropout off, batch statistics on: a deterministic pass
        outputs = [m(images, training=False) for m in (fast, stock)]
    fast_grads, stock_grads = (tape.gradient(out, m.trainable_variables) for out, m in zip(outputs, (fast, stock)))
    _assert_gradients_equal([g.numpy() for g in fast_grads], [g.numpy() for g in stock_grads])


@pytest.mark.parametrize("filters, size", [(3, 12), (1, 9), (16, 7)])  # few outputs (matrix products), many
def test_fast_conv_equals_stock_conv(filters, size):
    fast, stock = fast_layers.Conv2D(filters, 3, padding="same"), keras.layers.Conv2D(filters, 3, padding="same")
    x = RNG.standard_normal((4, size, size, 5)).astype("float32")
    fast.build(x.shape)
    stock.build(x.shape)
    stock.set_weights(fast.get_weights())
    np.testing.assert_allclose(fast(x), stock(x), atol=1e-5)
    _assert_gradients_equal(_input_and_weight_gradients(fast, x), _input_and_weight_gradients(stock, x))


def _input_and_weight_gradients(layer, x):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * tf.cos(3.0 * y))
    return [g.numpy() for g in tape.gradient(loss, [x, *layer.trainable_variables])]


def test_fused_batch_norm_trains_like_the_stock_layer():
    fast = fast_layers.BatchNormalization(momentum=0.8)
    stock = keras.layers.BatchNormalization(momentum=0.8)
    x = RNG.normal(2.0, 3.0, (8, 5, 5, 4)).astype("float32")
    for layer in (fast, stock):
        layer.build(x.shape)
    _assert_gradients_equal(_input_and_weight_gradients(fast, x), _input_and_weight_gradients(stock, x))
    np.testing.assert_allclose(fast.moving_mean, stock.moving_mean, rtol=1e-6)
    np.testing.assert_allclose(fast.moving_variance, stock.moving_variance, rtol=1e-5)  # the biased variance
    assert np.abs(stock.moving_variance.numpy() - 1).min() > 0.5, "the statistics did move"


def test_mixed_bfloat16_fast_generator_matches_the_stock_one():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        fast, stock = _pair(32)
        z = _seeds()
        difference = np.abs(np.asarray(fast(z, training=True)) - np.asarray(stock(z, training=True)))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert difference.max() < 0.05  # bfloat16 keeps 8 bits: the two sum in different orders


@pytest.mark.slow
def test_a_checkpoint_of_the_stock_layers_resumes_into_the_fast_ones(tmp_path):
    images = RNG.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    config = TrainConfig(res=32, batch_size=4, ema=0.9)
    stock = Trainer(config, images, fast=False)
    for _ in range(2):
        stock.step()
    path = checkpoint.save(tmp_path, stock.gan, {"iteration": stock.iteration})
    fast = Trainer(config, images)
    assert any(isinstance(layer, fast_layers.UpsampleConv2D) for layer in fast.gan.generator.layers)
    checkpoint.restore(fast.gan, checkpoint.read(path)[1])
    fast.iteration = stock.iteration
    z = _seeds(size=config.seed_size)
    for model in ("generator", "output_generator", "discriminator"):
        x = z if model != "discriminator" else images[:4].astype("float32") / 127.5 - 1
        np.testing.assert_allclose(getattr(fast.gan, model)(x, training=False),
                                   getattr(stock.gan, model)(x, training=False), atol=2e-5, err_msg=model)
    for a, b in zip(fast.step().values(), stock.step().values(), strict=True):
        assert a == pytest.approx(b, rel=1e-3, abs=1e-4)


@pytest.mark.slow
def test_the_saved_generator_loads_in_a_python_without_the_package(tmp_path):
    fast = models.build_generator(28, channels=1)
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.save_generator(models.stock_generator(fast))
    z = _seeds()
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "expected.npy", np.asarray(fast(z, training=False)))
    probe = ("import sys, keras, numpy as np; "
             f"m = keras.models.load_model({str(run.generator_path)!r}); "
             f"out = m.predict_on_batch(np.load({str(tmp_path / 'z.npy')!r})); "
             f"assert np.abs(out - np.load({str(tmp_path / 'expected.npy')!r})).max() < 2e-5; "
             "assert not any(name.startswith('dcgan_faces') for name in sys.modules); "
             "print(sorted({type(layer).__name__ for layer in m.layers}))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "UpSampling2D" in done.stdout and "UpsampleConv2D" not in done.stdout


def test_the_moving_average_of_a_fast_generator_is_fast_and_follows_it():
    fast = models.build_generator(32)
    average = GeneratorAverage(fast, decay=0.5)
    assert any(isinstance(layer, fast_layers.UpsampleConv2D) for layer in average.model.layers)
    before = [w.copy() for w in average.model.get_weights()]
    fast.set_weights([w + 1.0 for w in fast.get_weights()])
    average.update(iteration=1000)  # decay min(0.5, ...) = 0.5: halfway to G's weights
    for old, new, current in zip(before, average.model.get_weights(), fast.get_weights(), strict=True):
        np.testing.assert_allclose(new, 0.5 * old + 0.5 * current, rtol=1e-5, atol=1e-6)
    z = _seeds()
    np.testing.assert_allclose(average.model(z, training=False),
                               models.stock_generator(average.model)(z, training=False), atol=2e-5)


def _imports_run_on_import(tree: ast.AST):
    """The import statements a module runs when it is imported: all but those inside functions."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _imports_run_on_import(node)


def test_no_module_imports_fast_layers_when_it_is_imported():
    package = Path(models.__file__).parent
    offenders = [f"{path.relative_to(package.parent)}:{node.lineno}"
                 for path in sorted(package.rglob("*.py"))
                 for node in _imports_run_on_import(ast.parse(path.read_text()))
                 if "fast_layers" in ast.unparse(node)]
    assert not offenders, f"{offenders} import fast_layers on import; import it where the fast form is built"


@pytest.mark.slow
def test_fast_layers_is_loaded_only_when_the_fast_form_is_built():
    probe = ("import sys; import dcgan_faces.models as m, dcgan_faces.train, dcgan_faces.trainer, "
             "dcgan_faces.layer_choice; loaded = lambda: 'dcgan_faces.fast_layers' in sys.modules; "
             "assert not loaded(), 'on import'; "
             "m.build_generator(16, fast=False); m.build_discriminator(16, fast=False); "
             "assert not loaded(), 'stock form'; m.stock_generator(m.build_generator(16, fast=False)); "
             "assert not loaded(), 'stock_generator'; m.build_generator(16); assert loaded(), 'fast form'")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-3000:]
