"""The other recipes as options of the one trainer: each changes what it claims and survives a resume."""

import json

import keras
import numpy as np
import pytest
from PIL import Image

from dcgan_faces import data, models, train
from dcgan_faces.config import TrainConfig
from dcgan_faces.trainer import Trainer

IMAGES16 = np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)


def _labels_seen(config, monkeypatch, steps=2):
    trainer = Trainer(config, IMAGES16)
    seen = []
    real_d = trainer.gan.discriminator.train_on_batch
    real_c = trainer.gan.combined.train_on_batch
    monkeypatch.setattr(trainer.gan.discriminator, "train_on_batch", lambda x, y: seen.append(("d", y)) or real_d(x, y))
    monkeypatch.setattr(trainer.gan.combined, "train_on_batch", lambda x, y: seen.append(("g", y)) or real_c(x, y))
    for _ in range(steps):
        trainer.step()
    return seen


@pytest.mark.slow
def test_one_sided_label_smoothing_changes_only_the_real_labels(monkeypatch):
    seen = _labels_seen(TrainConfig(res=16, batch_size=4, label_smoothing=0.1), monkeypatch)
    real, fake, generator = (y for _, y in seen[:3])
    np.testing.assert_allclose(real, 0.9)
    np.testing.assert_array_equal(fake, 0.0)
    np.testing.assert_array_equal(generator, 1.0)


@pytest.mark.slow
def test_label_noise_pushes_real_down_and_fake_up(monkeypatch):
    seen = _labels_seen(TrainConfig(res=16, batch_size=8, label_noise=0.15), monkeypatch)
    real, fake = seen[0][1], seen[1][1]
    assert (real <= 1).all() and (real >= 0.85).all() and real.std() > 0
    assert (fake >= 0).all() and (fake <= 0.15).all() and fake.std() > 0
    assert not np.array_equal(real, seen[3][1]), "fresh noise every iteration"


def test_optimizers_and_their_learning_rates():
    gan = Trainer(TrainConfig(res=16, batch_size=4, optimizer="rmsprop", lr_g=1e-4, lr_d=3e-4), IMAGES16).gan
    assert isinstance(gan.discriminator.optimizer, keras.optimizers.RMSprop)
    assert isinstance(gan.combined.optimizer, keras.optimizers.RMSprop)
    assert float(gan.discriminator.optimizer.learning_rate) == pytest.approx(3e-4)
    assert float(gan.combined.optimizer.learning_rate) == pytest.approx(1e-4)
    gan = Trainer(TrainConfig(res=16, batch_size=4, beta1=0.3, beta2=0.99), IMAGES16).gan
    for adam in (gan.combined.optimizer, gan.discriminator.optimizer):
        assert isinstance(adam, keras.optimizers.Adam)
        assert (float(adam.beta_1), float(adam.beta_2)) == (pytest.approx(0.3), pytest.approx(0.99))


def test_least_squares_loss_is_what_d_minimises():
    trainer = Trainer(TrainConfig(res=16, batch_size=4, loss="mse"), IMAGES16)
    d = trainer.gan.discriminator
    assert d.loss == "mean_squared_error" and trainer.gan.combined.loss == "mean_squared_error"
    x = IMAGES16[:4].astype("float32") / 127.5 - 1
    y = np.ones((4, 1), "float32")
    loss = d.evaluate(x, y, verbose=0)[0]
    assert loss == pytest.approx(float(np.mean((d.predict_on_batch(x) - 1) ** 2)), rel=1e-4)


def test_the_logit_is_read_back_from_d_sigmoid():
    logits = np.linspace(-12, 12, 25, dtype="float32")
    probabilities = keras.ops.sigmoid(logits)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(models.realness_logit(probabilities)), logits, atol=2e-3)


@pytest.mark.slow  # trains a step
def test_hinge_loss_is_what_d_and_g_minimise():
    trainer = Trainer(TrainConfig(res=16, batch_size=4, loss="hinge"), IMAGES16)
    d, combined = trainer.gan.discriminator, trainer.gan.combined
    x = IMAGES16[:4].astype("float32") / 127.5 - 1
    ones, zeros = np.ones((4, 1), "float32"), np.zeros((4, 1), "float32")

    def logit(images):
        p = d.predict_on_batch(images).astype("float64")
        return np.log(p / (1 - p))

    assert d.evaluate(x, ones, verbose=0)[0] == pytest.approx(np.mean(np.maximum(0, 1 - logit(x))), rel=1e-3)
    assert d.evaluate(x, zeros, verbose=0)[0] == pytest.approx(np.mean(np.maximum(0, 1 + logit(x))), rel=1e-3)
    seeds = np.random.default_rng(3).standard_normal((4, 100)).astype("float32")
    fake = trainer.gan.generator.predict_on_batch(seeds)
    assert combined.evaluate(seeds, ones, verbose=0)[0] == pytest.approx(-np.mean(logit(fake)), rel=1e-3, abs=1e-4)
    assert np.isfinite(trainer.step()["d_loss"])


@pytest.mark.slow
def test_grayscale_outputs_and_grids(face_folder, tmp_path):
    flags = ["--res", "16", "--channels", "1", "--steps", "2", "--batch-size", "4", "--save-every", "2"]
    assert train.main([*flags, "--data", str(face_folder), "--cache-dir", str(tmp_path / "c"),
                       "--out", str(tmp_path / "r")]) == 0
    assert keras.models.load_model(tmp_path / "r/generator.keras").output.shape[-1] == 1
    assert Image.open(tmp_path / "r/previews/iter-00000002.png").mode == "L"


@pytest.mark.parametrize("make, described", [
    (lambda a: a, "uint8 0..255"),
    (lambda a: a.astype(np.float32) / 255, "floats in [0, 1]"),
    (lambda a: a.astype(np.float32) / 127.5 - 1, "floats in [-1, 1]"),
    (lambda a: a[..., 0], "uint8 0..255"),
    (lambda a: a.transpose(0, 3, 1, 2).copy(), "uint8 0..255"),
])
def test_array_inputs_and_their_ranges_are_detected(tmp_path, make, described):
    original = np.random.default_rng(1).integers(0, 256, (6, 12, 12, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", make(original))
    messages = []
    dataset = data.open_dataset(str(tmp_path / "x.npy"), tmp_path / "cache", 12, log=messages.append)
    assert any(described in m for m in messages), messages
    expected = original[..., :1].repeat(3, axis=3) if make(original).ndim == 3 else original
    assert np.abs(dataset.images.astype(int) - expected).max() <= 1


def test_npz_arrays_are_read_too(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((5, 28, 28), np.uint8), y_train=np.arange(5))
    assert data.open_dataset(str(tmp_path / "mnist.npz"), tmp_path / "c", 28, channels=1).images.shape == (5, 28, 28, 1)


@pytest.mark.slow
def test_a_28px_grayscale_array_trains_at_its_own_size(tmp_path):
    digits = np.random.default_rng(2).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "digits.npy", digits)
    assert train.main(["--data", str(tmp_path / "digits.npy"), "--channels", "1", "--steps", "2", "--batch-size",
                       "4", "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "r")]) == 0
    generator = keras.models.load_model(tmp_path / "r/generator.keras")
    assert generator.output.shape == (None, 28, 28, 1)


@pytest.mark.slow
def test_dcgan_architecture_trains_and_saves(face_folder, tmp_path):
    assert train.main(["--arch", "dcgan", "--res", "32", "--steps", "2", "--batch-size", "4", "--data",
                       str(face_folder), "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "r")]) == 0
    config = json.loads((tmp_path / "r/config.json").read_text())
    assert config["arch"] == "dcgan" and config["lr"] == pytest.approx(2e-4)
    generator = keras.models.load_model(tmp_path / "r/generator.keras")
    assert generator.output.shape == (None, 32, 32, 3)
    assert any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in generator.layers)


@pytest.mark.slow
def test_options_survive_a_resume_and_cannot_silently_change(face_folder, tmp_path, capsys):
    base = ["--res", "16", "--batch-size", "4", "--save-every", "2", "--data", str(face_folder),
            "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "r")]
    recipe = ["--optimizer", "rmsprop", "--loss", "mse", "--label-smoothing", "0.1", "--lr-d", "3e-4"]
    assert train.main([*base, *recipe, "--steps", "2"]) == 0
    assert train.main([*base, "--steps", "4"]) == 0
    config = json.loads((tmp_path / "r/config.json").read_text())
    assert (config["optimizer"], config["loss"], config["label_smoothing"], config["lr_d"]) == ("rmsprop", "mse",
                                                                                               0.1, 3e-4)
    capsys.readouterr()
    assert train.main([*base, "--steps", "6", "--loss", "bce"]) == 2
    assert "--loss bce (the run has mse)" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_with_float32_outputs_and_losses(precision):
    trainer = Trainer(TrainConfig(res=16, batch_size=4, precision=precision), IMAGES16)
    try:
        assert trainer.gan.generator.layers[3].compute_dtype == precision.removeprefix("mixed_")
        assert trainer.gan.generator.output.dtype == "float32"
        assert trainer.gan.discriminator.output.dtype == "float32"
        figures = [trainer.step() for _ in range(2)][-1]
        assert all(np.isfinite(value) for value in figures.values())
        assert trainer.generate(np.zeros((2, 100), "float32")).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_auto_precision_is_bfloat16_only_on_a_cpu_with_bfloat16_instructions(monkeypatch, tmp_path):
    import tensorflow as tf

    from dcgan_faces import precision

    config = TrainConfig(res=16)
    plain, bf16, amx, unreadable = (tmp_path / name for name in ("plain", "bf16", "amx", "missing"))
    plain.write_text("flags\t\t: fpu sse avx2 avx512f avx512bw\nbugs\t\t: avx512_bf16\n")
    bf16.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n")
    amx.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_tile amx_bf16 amx_int8\n")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])  # a CPU-only machine
    for cpuinfo in (plain, unreadable):
        chosen = precision.choose(config, cpuinfo)
        assert chosen.policy == "float32" and "docs/performance.md" in chosen.describe(), cpuinfo
    for cpuinfo, flag in ((bf16, "avx512_bf16"), (amx, "amx_bf16")):
        chosen = precision.choose(config, cpuinfo)
        assert chosen.policy == "mixed_bfloat16" and flag in chosen.describe(), cpuinfo
        assert "--precision float32" in chosen.describe(), "how to get the notebook's arithmetic back"
    assert precision.choose(TrainConfig(precision="mixed_bfloat16"), plain).policy == "mixed_bfloat16", "asked for"
    assert precision.choose(TrainConfig(precision="float32"), bf16).policy == "float32", "asked for"
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    assert precision.choose(config, bf16).policy == "mixed_float16"
