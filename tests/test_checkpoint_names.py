"""Checkpoints key each array by its variable's name, not its position: a restore matches names, refuses a
checkpoint whose names differ, and still reads the checkpoints written before the names (by position)."""

from pathlib import Path

import keras
import numpy as np
import pytest

from dcgan_faces import checkpoint, models
from dcgan_faces.config import TrainConfig
from dcgan_faces.trainer import Trainer
from tests.conftest import train_quietly

LEGACY = Path(__file__).parent / "data" / "ckpt-legacy-positional.npz"  # how it was made: tests/data/README.md


def _trainer(config: TrainConfig) -> Trainer:
    return Trainer(config, np.zeros((8, config.res, config.res, 3), np.uint8))


@pytest.fixture(scope="module")
def legacy():
    state, arrays = checkpoint.read(LEGACY)
    return state, arrays, _trainer(TrainConfig(**state["config"]))


def _values(gan) -> dict[str, list[np.ndarray]]:
    return {group: [np.array(v.numpy()) for v in owner.variables]
            for group, owner in checkpoint._variable_groups(gan).items()}


def test_a_checkpoint_keyed_by_position_still_restores_its_weights_in_order(legacy):
    state, arrays, trainer = legacy
    assert all(checkpoint.POSITIONAL.fullmatch(key.split("/")[1]) for key in arrays if "/" in key)
    checkpoint.restore(trainer.gan, arrays, LEGACY)
    restored = 0
    for group, values in _values(trainer.gan).items():
        for i, value in enumerate(values):
            np.testing.assert_array_equal(value, arrays[f"{group}/{i:04d}"], err_msg=f"{group}/{i:04d}")
            restored += 1
    assert restored == len(arrays) - 1 and state["iteration"] == 1  # all but the preview seeds
    # each variable holds its own values: restored one position off, two equal shapes would show
    kernels = [v for v in trainer.gan.generator.variables if tuple(v.shape) == (3, 3, 8, 8)]
    assert len(kernels) == 2 and not np.array_equal(kernels[0].numpy(), kernels[1].numpy())


def test_a_checkpoint_is_saved_by_name_and_restores_by_name(legacy, tmp_path):
    _, _, trainer = legacy
    path = checkpoint.save(tmp_path, trainer.gan, {"iteration": 3})
    _, arrays = checkpoint.read(path)
    assert {"generator/up1_conv/kernel", "discriminator/conv2_dropout/seed_generator_state",
            "generator_average/to_image/bias", "g_optimizer/adam/up1_conv_kernel_momentum",
            "d_optimizer/adam/iteration"} <= arrays.keys()
    fresh = _trainer(TrainConfig(**legacy[0]["config"]))
    checkpoint.restore(fresh.gan, arrays, path)
    for group, values in _values(fresh.gan).items():
        for value, saved in zip(values, _values(trainer.gan)[group], strict=True):
            np.testing.assert_array_equal(value, saved, err_msg=group)


def test_a_checkpoint_whose_names_differ_is_refused_naming_the_file_and_nothing_is_assigned(legacy, tmp_path):
    _, _, trainer = legacy
    _, arrays = checkpoint.read(checkpoint.save(tmp_path, trainer.gan, {"iteration": 3}))
    arrays["generator/up9_conv/kernel"] = arrays.pop("generator/up1_conv/kernel")
    fresh = _trainer(TrainConfig(**legacy[0]["config"]))
    before = _values(fresh.gan)
    with pytest.raises(checkpoint.CheckpointError) as refused:
        checkpoint.restore(fresh.gan, arrays, tmp_path / "ckpt-00000003.npz")
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'ckpt-00000003.npz'}: its generator weights")
    assert "missing there: up1_conv/kernel" in message and "not in the model: up9_conv/kernel" in message
    for group, values in _values(fresh.gan).items():  # the groups before the generator's were checked first too
        for value, old in zip(values, before[group], strict=True):
            np.testing.assert_array_equal(value, old)


def _two_dense(order: tuple[str, str]) -> keras.Model:
    """Two Dense layers of the same shape, named "first" and "second", applied in `order`."""
    x = inputs = keras.Input((4,))
    for name in order:
        x = keras.layers.Dense(4, name=name)(x)
    return keras.Model(inputs, x)


def test_variables_of_equal_shape_in_another_order_get_their_own_weights_back():
    saved = _two_dense(("first", "second"))
    arrays = {f"g/{name}": np.asarray(v.numpy()) for name, v in checkpoint.named_variables(saved).items()}
    reordered = _two_dense(("second", "first"))
    assert reordered.variables[0].path.startswith("second")  # by position, "first" would get "second"'s kernel
    checkpoint.assign_group(reordered, arrays, "g")
    for name in ("first", "second"):
        np.testing.assert_array_equal(reordered.get_layer(name).kernel.numpy(), saved.get_layer(name).kernel.numpy())


def test_the_fast_and_stock_forms_name_their_variables_alike():
    for build in (models.build_generator, models.build_discriminator):
        fast, stock = build(28, fast=True), build(28, fast=False)
        assert list(checkpoint.named_variables(fast)) == list(checkpoint.named_variables(stock))


@pytest.mark.slow
def test_resuming_from_a_checkpoint_of_another_model_is_one_line(face_folder, tmp_path, capsys):
    def train(*extra):
        return train_quietly(["--res", "16", "--batch-size", "4", "--save-every", "2", "--data", str(face_folder),
                              "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run"), *extra])

    assert train("--steps", "2") == 0
    path = tmp_path / "run/checkpoints/ckpt-00000002.npz"
    with np.load(path) as archive:
        arrays = {name.replace("up1_conv", "up0_conv"): archive[name] for name in archive.files}
    np.savez(path, **arrays)
    capsys.readouterr()
    assert train("--steps", "3") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "--fresh" in err and "up0_conv" in err


def test_a_run_whose_checkpoint_is_of_another_model_is_refused_by_model_in_one_line(tmp_path):
    from dcgan_faces.runfolder import RunFolder
    from dcgan_faces.trained_model import ModelError, load_generator

    run = RunFolder(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    run.write_config(TrainConfig(res=16, g_filters=8))
    path = run.checkpoints / "ckpt-00000002.npz"
    np.savez(path, state=np.array('{"iteration": 2}'), **{"generator/up0_conv/kernel": np.zeros((3, 3, 8, 8))})
    with pytest.raises(ModelError) as refused:
        load_generator(run.path)
    message = str(refused.value)
    assert "\n" not in message and str(path) in message and "not in the model: up0_conv/kernel" in message
