"""The adapter over the Keras internals that multi-device training needs works on the installed Keras."""

import keras
import numpy as np
import pytest

from dcgan_faces import keras_hooks, trainer
from tests.conftest import train_quietly


def _model():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    return model


def test_symbolic_build_builds_the_optimizer_and_trains_nothing():
    model = _model()
    before = [w.copy() for w in model.get_weights()]
    keras_hooks.symbolic_build(model, np.zeros((1, 3), np.float32), np.zeros((1, 1), np.float32))
    assert model.optimizer.built, f"Keras {keras.__version__}: Model._symbolic_build no longer builds the optimizer"
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_a_keras_without_the_hook_is_named_in_one_line():
    class WithoutHook:
        pass

    with pytest.raises(keras_hooks.KerasHookError) as error:
        keras_hooks.symbolic_build(WithoutHook(), None, None)
    message = str(error.value)
    assert "\n" not in message and keras.__version__ in message and "--strategy none" in message


def test_logs_of_shape_one_keep_their_values():
    import tensorflow as tf

    model, twin = _model(), _model()
    twin.set_weights(model.get_weights())
    data = (tf.ones((4, 3)), tf.ones((4, 1)))
    keras_hooks.logs_of_shape_one(model)
    reshaped, plain = model.train_step(data), twin.train_step(data)
    assert set(reshaped) == set(plain)
    for name, value in plain.items():
        assert tuple(reshaped[name].shape) == (1,)
        # np.asarray: Keras 3.12 (the newest for Python 3.10) returns some logs as floats
        np.testing.assert_allclose(reshaped[name].numpy(), np.reshape(np.asarray(value), [1]), rtol=1e-5)


@pytest.mark.slow
def test_training_with_a_keras_without_the_hook_stops_in_one_line(face_folder, tmp_path, monkeypatch, capsys):
    def without_hook(*args, **kwargs):
        raise keras_hooks.KerasHookError("Keras 9.9 has no Model._symbolic_build, ...; train with --strategy none")

    monkeypatch.setattr(trainer.Trainer, "__init__", without_hook)
    code = train_quietly(["--res", "16", "--batch-size", "4", "--steps", "1", "--data", str(face_folder),
                          "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--strategy none" in err
    assert not (tmp_path / "run").exists(), "the failed start took back what it wrote"
