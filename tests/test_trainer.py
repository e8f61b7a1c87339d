"""The combined-model loop on real weights: who learns on which step, and exact resumption."""

import numpy as np
import pytest

from dcgan_faces import checkpoint
from dcgan_faces.config import TrainConfig
from dcgan_faces.preview import preview_seeds
from dcgan_faces.trainer import Trainer

CONFIG = TrainConfig(res=32, batch_size=8, seed=5)
EVERY_OPTION = {"ema": 0.99, "spectral_norm": True, "minibatch_stddev": True, "augment": "color,translation,cutout",
                "r1": 1.0, "r1_every": 2, "mirror": True}
CONFIGS = {
    "notebook": CONFIG,
    "notebook+options": TrainConfig(res=32, batch_size=8, seed=5, **EVERY_OPTION),
    "dcgan+options": TrainConfig(res=32, batch_size=8, seed=5, arch="dcgan", **EVERY_OPTION),
}


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)


def _values(variables):
    return [np.array(v.numpy(), copy=True) for v in variables]


def _changed(before, variables):
    return [not np.array_equal(old, v.numpy()) for old, v in zip(before, variables, strict=True)]


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_d_learns_on_d_steps_and_only_g_learns_on_combined_steps(images, monkeypatch, config):
    trainer = Trainer(config, images)
    gan = trainer.gan
    seen = {"d": 0, "combined": 0}
    d_train, combined_train = gan.discriminator.train_on_batch, gan.combined.train_on_batch

    def watched_d_step(*args, **kwargs):
        trainable_before = _values(gan.discriminator.trainable_variables)
        result = d_train(*args, **kwargs)
        assert all(_changed(trainable_before, gan.discriminator.trainable_variables)), "every D weight moves"
        seen["d"] += 1
        return result

    def watched_combined_step(*args, **kwargs):
        # weights: trainable ones, BatchNorm's moving statistics and spectral norm's power-iteration vectors
        # (not the dropout and augmentation RNG states, which advance)
        d_before, g_before = _values(gan.discriminator.weights), _values(gan.generator.trainable_variables)
        result = combined_train(*args, **kwargs)
        assert not any(_changed(d_before, gan.discriminator.weights)), "D (moving statistics too) is frozen"
        assert all(_changed(g_before, gan.generator.trainable_variables)), "every G weight moves"
        seen["combined"] += 1
        return result

    monkeypatch.setattr(gan.discriminator, "train_on_batch", watched_d_step)
    monkeypatch.setattr(gan.combined, "train_on_batch", watched_combined_step)
    for _ in range(3):
        figures = trainer.step()
        assert all(np.isfinite(list(figures.values())))
    assert seen == {"d": 6, "combined": 3}
    assert trainer.iteration == 3


@pytest.mark.slow
def test_a_trainer_sets_the_seed_and_dtype_policy_it_needs_whatever_the_process_was_left_with(images):
    import keras

    first = Trainer(CONFIG, images)
    keras.utils.set_random_seed(999)  # what a previous trainer or a caller may leave behind
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        second = Trainer(CONFIG, images)
        assert keras.mixed_precision.global_policy().name == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    for model in ("generator", "discriminator"):
        a, b = getattr(first.gan, model).weights, getattr(second.gan, model).weights
        assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a, b, strict=True)), model
        assert all(x.dtype == "float32" for x in b), model


def test_preview_seeds_are_fixed_by_the_seed():
    np.testing.assert_array_equal(preview_seeds(CONFIG), preview_seeds(TrainConfig(res=64, seed=5)))
    assert preview_seeds(CONFIG).shape == (28, 100)
    assert not np.array_equal(preview_seeds(CONFIG), preview_seeds(TrainConfig(seed=6)))


@pytest.mark.slow
@pytest.mark.parametrize("config", [CONFIG, CONFIGS["dcgan+options"]], ids=["notebook", "dcgan+options"])
def test_resuming_from_a_checkpoint_gives_the_same_weights_as_not_stopping(images, tmp_path, config):
    straight = Trainer(config, images)
    for _ in range(5):
        straight.step()

    first = Trainer(config, images)
    for _ in range(3):
        first.step()
    path = checkpoint.save(tmp_path, first.gan, {"iteration": first.iteration})
    del first

    resumed = Trainer(config, images)
    state, arrays = checkpoint.read(path)
    checkpoint.restore(resumed.gan, arrays)
    resumed.iteration = state["iteration"]
    for _ in range(2):
        resumed.step()

    for model in ("generator", "discriminator", "output_generator"):
        a, b = getattr(straight.gan, model).variables, getattr(resumed.gan, model).variables
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=f"{model} {x.path}")
