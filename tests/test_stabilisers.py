"""The additions of the default recipe and its candidates: each does what it claims on real tensors."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from dcgan_faces import checkpoint, precision, train
from dcgan_faces.augment import DiffAugment
from dcgan_faces.config import RECIPES, TrainConfig, parse_policy, recipe_settings
from dcgan_faces.ema import GeneratorAverage, batch_norm_layers, decay_at, recalibrate_batch_norm
from dcgan_faces.models import FrozenSpectralNormalization, MinibatchStdDev, build_gan, build_generator
from dcgan_faces.runfolder import RunFolder
from dcgan_faces.sampling import latents
from dcgan_faces.trained_model import load_generator
from dcgan_faces.trainer import Trainer

IMAGES = np.random.default_rng(0).uniform(-1, 1, (6, 16, 16, 3)).astype("float32")


def _augmented(policy, x=IMAGES, seed=3):
    return np.asarray(DiffAugment(policy, seed=seed)(x, training=True))


def test_augmentation_only_in_training_and_differentiable():
    layer = DiffAugment(seed=1)
    np.testing.assert_array_equal(layer(IMAGES, training=False), IMAGES)
    assert not np.allclose(layer(IMAGES, training=True), IMAGES)
    x = tf.Variable(IMAGES)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(layer(x, training=True) ** 2)
    assert float(tf.reduce_max(tf.abs(tape.gradient(total, x)))) > 0, "G must be trainable through it"


@pytest.mark.parametrize("shift, most", [(0.125, 2), (0.0625, 1)])
def test_translation_moves_whole_images_by_at_most_the_shift(shift, most):
    ramp = np.broadcast_to(np.arange(16, dtype="float32")[None, None, :, None] + 1, (6, 16, 16, 3))
    ramp = ramp * np.arange(1, 17, dtype="float32")[None, :, None, None]  # every pixel its own value
    images = np.tile(ramp, (4, 1, 1, 1))
    moved = np.asarray(DiffAugment("translation", seed=3, shift=shift)(images, training=True))
    found = []
    for original, shifted in zip(images, moved, strict=True):
        matches = [(dy, dx) for dx in range(-3, 4) for dy in range(-3, 4)
                   if np.array_equal(_shift(original, dy, dx), shifted)]
        assert matches, "each image is its original shifted, with zeros filled in"
        found += matches
    assert max(max(abs(dy), abs(dx)) for dy, dx in found) == most, f"by up to {most} px of 16, and as far"


def test_the_translations_shift_reaches_ds_layer_and_its_saved_config():
    config = TrainConfig(res=16, augment="translation", augment_shift=0.0625)
    layer = build_gan(config).discriminator.get_layer("augment")
    assert layer.shift == 0.0625 and DiffAugment.from_config(layer.get_config()).shift == 0.0625
    assert build_gan(TrainConfig(res=16, augment="translation")).discriminator.get_layer("augment").shift == 0.125


def _shift(image, dy, dx):
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    src = image[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)]
    out[max(-dy, 0):max(-dy, 0) + src.shape[0], max(-dx, 0):max(-dx, 0) + src.shape[1]] = src
    return out


def test_cutout_zeroes_one_square_of_at_most_half_the_size():
    ones = np.ones((6, 16, 16, 3), dtype="float32")
    cut = _augmented("cutout", ones)
    for image in cut:
        rows, cols = np.nonzero(image[..., 0] == 0)
        assert rows.size, "something is cut out"
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert height <= 8 and width <= 8 and rows.size == height * width, "one axis-aligned square, ≤ 8×8"
        assert (image[..., 0] == 0).sum() == (image == 0).sum() / 3, "all channels alike"


def test_colour_changes_brightness_saturation_contrast_per_image():
    out = _augmented("color")
    assert out.shape == IMAGES.shape
    shifts = (out - IMAGES).mean(axis=(1, 2, 3))
    assert np.ptp(shifts) > 0.05, "each image gets its own random change"


def test_policy_parsing():
    assert parse_policy("translation, cutout") == ("translation", "cutout")
    assert parse_policy("") == ()
    with pytest.raises(ValueError, match="--augment: unknown blur"):
        parse_policy("color,blur")


def test_minibatch_stddev_appends_the_batch_spread():
    x = np.random.default_rng(1).normal(0, 2, (8, 4, 4, 5)).astype("float32")
    out = np.asarray(MinibatchStdDev()(x))
    assert out.shape == (8, 4, 4, 6)
    np.testing.assert_array_equal(out[..., :5], x)
    np.testing.assert_allclose(out[..., 5], np.sqrt(x.var(axis=0) + 1e-8).mean(), rtol=1e-5)
    same = np.repeat(x[:1], 8, axis=0)
    assert np.abs(np.asarray(MinibatchStdDev()(same))[..., 5]).max() < 1e-3, "identical faces: no spread"


def test_spectral_norm_normalises_when_trainable_and_leaves_a_frozen_layer_alone():
    layer = FrozenSpectralNormalization(keras.layers.Dense(6))
    x = np.random.default_rng(2).normal(size=(4, 10)).astype("float32")
    layer(x)
    layer.layer.kernel.assign(layer.layer.kernel * 10)
    for _ in range(20):  # power iteration converges
        layer(x, training=True)
    assert np.linalg.norm(layer.layer.kernel.numpy(), 2) == pytest.approx(1.0, rel=0.02)
    layer.layer.kernel.assign(layer.layer.kernel * 3)
    before = [v.numpy().copy() for v in layer.weights]
    layer.trainable = False
    layer(x, training=True)
    for old, variable in zip(before, layer.weights, strict=True):
        np.testing.assert_array_equal(old, variable.numpy())


def test_average_ramps_up_then_holds_its_decay():
    assert decay_at(0.999, 0) == pytest.approx(0.1)
    assert decay_at(0.999, 90) == pytest.approx(0.91)
    assert decay_at(0.999, 10_000) == 0.999
    assert all(decay_at(0.999, k) <= decay_at(0.999, k + 1) for k in range(0, 20_000, 97))


@pytest.mark.parametrize("ramp", [3.0, 10.0, 50.0])
def test_the_ramp_sets_the_share_of_the_run_the_average_spans(ramp):
    for k in (1_000, 4_000):
        horizon = 1 / (1 - decay_at(0.99999, k, ramp))  # iterations an exponential average spans
        assert horizon == pytest.approx((ramp + k) / (ramp - 1))  # about the last 1/(ramp - 1) of the run
    assert decay_at(0.999, 10**6, ramp) == 0.999
    average = GeneratorAverage(build_gan(TrainConfig(res=16, arch="dcgan")).generator, 0.999, ramp)
    assert average.ramp == ramp


def test_a_run_made_before_the_ramp_setting_keeps_the_ramp_it_trained_with(tmp_path):
    config = json.loads(TrainConfig(ema=0.999).to_json())
    del config["ema_ramp"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert TrainConfig.load(tmp_path / "config.json").ema_ramp == 10.0
    assert decay_at(0.999, 90, TrainConfig.load(tmp_path / "config.json").ema_ramp) == pytest.approx(0.91)


def test_average_follows_the_generator_weights():
    gan = build_gan(TrainConfig(res=16, arch="dcgan"))
    average = GeneratorAverage(gan.generator, 0.999)
    start = [w.numpy().copy() for w in average.model.weights]
    for w in gan.generator.weights:
        w.assign(w + 1.0)
    average.update(0)  # decay 0.1 at the first step
    for old, new, current in zip(start, average.model.weights, gan.generator.weights, strict=True):
        np.testing.assert_allclose(new.numpy(), 0.1 * old + 0.9 * current.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_trainer_shows_and_checkpoints_the_average(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)
    trainer = Trainer(TrainConfig(res=16, batch_size=4, arch="dcgan", ema=0.999), images)
    for _ in range(3):
        trainer.step()
    seeds = np.random.default_rng(1).standard_normal((2, 100)).astype("float32")
    from_average = np.asarray(trainer.gan.average.model.predict_on_batch(seeds))
    np.testing.assert_array_equal(trainer.generate(seeds), from_average)
    assert not np.allclose(from_average, trainer.gan.generator.predict_on_batch(seeds))
    path = checkpoint.save(tmp_path, trainer.gan, {"iteration": 3})
    _, arrays = checkpoint.read(path)
    assert any(name.startswith(checkpoint.AVERAGE + "/") for name in arrays)


@pytest.mark.parametrize("fast", [True, False])
def test_recalibration_gives_each_batch_norm_the_mean_of_its_batch_statistics(fast):
    generator = build_generator(16, 8, 3, fast=fast, filters=8)
    for layer in batch_norm_layers(generator):  # statistics of other weights, as an average's are
        layer.moving_mean.assign(layer.moving_mean + 5.0)
        layer.moving_variance.assign(layer.moving_variance * 9.0)
    reference = keras.models.clone_model(generator)
    reference.set_weights(generator.get_weights())
    z = latents(8, 12, seed=5)
    recalibrate_batch_norm(generator, z, batch_size=4)
    for i in range(3):  # Keras's own update with momentum i/(i+1): the running mean of the batches' statistics
        for layer in batch_norm_layers(reference):
            layer.momentum = i / (i + 1)
        reference(z[4 * i:4 * i + 4], training=True)
    for ours, theirs in zip(generator.weights, reference.weights, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-5, err_msg=ours.path)
    recalibrated = [w.numpy() for w in generator.weights]
    recalibrate_batch_norm(generator, z, batch_size=4)
    for before, after in zip(recalibrated, generator.weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())


@pytest.mark.slow
def test_recalibrated_faces_change_what_is_shown_and_saved_and_nothing_the_run_trains(face_folder, tmp_path):
    base = ["--res", "16", "--batch-size", "4", "--steps", "3", "--save-every", "2", "--ema", "0.9",
            "--data", str(face_folder), "--cache-dir", str(tmp_path / "c")]
    assert train.main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert train.main([*base, "--bn-recalibration", "2", "--out", str(tmp_path / "recalibrated")]) == 0
    runs = [tmp_path / "plain", tmp_path / "recalibrated"]
    (_, plain), (_, recalibrated) = (checkpoint.read(checkpoint.checkpoints(RunFolder(run).checkpoints)[0])
                                     for run in runs)
    assert plain.keys() == recalibrated.keys()
    for name in plain:  # the trained weights and the average alike: a resume goes on exactly as without it
        np.testing.assert_array_equal(plain[name], recalibrated[name], err_msg=name)

    seeds = latents(100, 4, seed=1)
    saved = [load_generator(run)[0] for run in runs]
    faces = [generator.predict_on_batch(seeds) for generator in saved]
    assert np.abs(faces[0] - faces[1]).max() > 1e-3
    np.testing.assert_allclose(_checkpoint_generator(runs[1]).predict_on_batch(seeds), faces[1], atol=1e-5)
    for ours, theirs in zip(saved[0].weights, saved[1].weights, strict=True):
        if "moving" not in ours.path:  # only the BatchNorm statistics differ
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)


def test_recipes_and_flags():
    assert recipe_settings({})["recipe"] == "default"
    below_64 = {**RECIPES["default"], "recipe": "default"}
    from_64 = {**below_64, "augment": "translation", "augment_shift": 0.0625}
    assert recipe_settings({"res": 32}) == {**below_64, "res": 32} and "augment" not in recipe_settings({"res": 60})
    assert recipe_settings({"res": 64}) == {**from_64, "res": 64} and recipe_settings({"res": 128})["augment"]
    assert recipe_settings({}) == from_64  # the default size, 64
    assert recipe_settings({"res": 64, "augment": ""})["augment"] == ""  # --augment none
    assert recipe_settings({"recipe": "notebook"}) == {"recipe": "notebook"}
    assert recipe_settings({"arch": "dcgan", "recipe": "notebook"})["lr"] == 2e-4
    assert recipe_settings({"arch": "dcgan", "lr": 1e-3})["lr"] == 1e-3
    notebook_arch = recipe_settings({"arch": "notebook"})
    assert notebook_arch["arch"] == "notebook" and "lr" not in notebook_arch, "the notebook's own lr then"


@pytest.mark.slow
def test_default_recipe_from_the_command_line_and_notebook_one_flag_away(face_folder, tmp_path, capsys):
    base = ["--res", "16", "--batch-size", "4", "--steps", "2", "--data", str(face_folder),
            "--cache-dir", str(tmp_path / "c")]
    assert train.main([*base, "--out", str(tmp_path / "default")]) == 0
    config = TrainConfig.load(tmp_path / "default/config.json")
    expected = TrainConfig(**recipe_settings({"res": 16}))
    for name in ("recipe", *RECIPES["default"], "augment", "augment_shift", "lr"):
        assert getattr(config, name) == getattr(expected, name), name
    generator, _ = load_generator(tmp_path / "default")
    seeds = np.random.default_rng(0).standard_normal((2, 100)).astype("float32")
    from_checkpoint = _checkpoint_generator(tmp_path / "default")
    np.testing.assert_allclose(generator.predict_on_batch(seeds), from_checkpoint.predict_on_batch(seeds), atol=1e-6)

    assert train.main([*base, "--recipe", "notebook", "--out", str(tmp_path / "notebook")]) == 0
    notebook = json.loads((tmp_path / "notebook/config.json").read_text())
    made_here = ("data", "res", "batch_size", "steps", "layers_chosen")  # layers_chosen: the session's layer form
    assert {k: v for k, v in notebook.items() if k not in made_here} == {
        k: v for k, v in json.loads(TrainConfig(precision=precision.choose(TrainConfig()).policy).to_json()).items()
        if k not in made_here}
    capsys.readouterr()
    assert train.main([*base, "--steps", "4", "--recipe", "notebook", "--out", str(tmp_path / "default")]) == 2
    assert "--recipe notebook (the run has default)" in capsys.readouterr().err


def _checkpoint_generator(run):
    """The generator a run folder gives when generator.keras is missing: the checkpoint's average."""
    (run / "generator.keras").rename(run / "generator.keras.bak")
    try:
        return load_generator(run)[0]
    finally:
        (run / "generator.keras.bak").rename(run / "generator.keras")
