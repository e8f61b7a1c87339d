"""Run by tests/test_distribute.py in a fresh process (logical devices must be set before TF starts).

    python tests/distribute_script.py mirrored OUT_DIR   → JSON findings of a 2-replica mirrored run
    python tests/distribute_script.py worker OUT_DIR     → one multi-worker process (TF_CONFIG set by caller)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def faces(count: int = 16, res: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, res, res, 3), dtype=np.uint8)


def mirrored(out: Path) -> dict:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from dcgan_faces import checkpoint
    from dcgan_faces.config import TrainConfig
    from dcgan_faces.distribute import choose_strategy, replicas
    from dcgan_faces.trainer import Trainer

    strategy = choose_strategy("mirrored")
    config = TrainConfig(res=16, batch_size=2, seed=3, strategy="mirrored", ema=0.99, spectral_norm=True,
                         minibatch_stddev=True, augment="color,translation,cutout", r1=1.0, r1_every=2,
                         bn_recalibration=2)
    trainer = Trainer(config, faces(), strategy)
    gan = trainer.gan
    found = {"replicas": replicas(strategy), "global_batch": trainer.global_batch, "losses": [],
             "d_moves_on_d_steps": [], "d_frozen_on_combined": [], "g_moves_on_combined": [], "d_steps": 0,
             "combined_steps": 0, "penalty_steps_moving_d": []}

    def values(variables):
        return [np.array(v.numpy(), copy=True) for v in variables]

    def changed(before, variables):
        return [not np.array_equal(a, v.numpy()) for a, v in zip(before, variables, strict=True)]

    d_train, combined_train = gan.discriminator.train_on_batch, gan.combined.train_on_batch

    def d_step(*args, **kwargs):
        before = values(gan.discriminator.trainable_variables)
        result = d_train(*args, **kwargs)
        found["d_moves_on_d_steps"].append(all(changed(before, gan.discriminator.trainable_variables)))
        found["d_steps"] += 1
        return result

    def combined_step(*args, **kwargs):
        d_before, g_before = values(gan.discriminator.weights), values(gan.generator.trainable_variables)
        result = combined_train(*args, **kwargs)
        found["d_frozen_on_combined"].append(not any(changed(d_before, gan.discriminator.weights)))
        found["g_moves_on_combined"].append(all(changed(g_before, gan.generator.trainable_variables)))
        found["combined_steps"] += 1
        return result

    penalty_step = gan.penalty.step

    def watched_penalty_step(real, strategy):
        before = values(gan.discriminator.trainable_variables)
        penalty_step(real, strategy)
        found["penalty_steps_moving_d"].append(any(changed(before, gan.discriminator.trainable_variables)))

    gan.discriminator.train_on_batch, gan.combined.train_on_batch = d_step, combined_step
    gan.penalty.step = watched_penalty_step
    for _ in range(3):
        found["losses"].append({k: float(v) for k, v in trainer.step().items()})

    mirrored_vars = [v for model in (gan.generator, gan.discriminator, gan.average.model) for v in model.weights]
    mirrored_vars += gan.discriminator.optimizer.variables + gan.combined.optimizer.variables
    # a Keras variable wraps a tf MirroredVariable (.value): one copy per replica device
    copies = [strategy.experimental_local_results(v.value) for v in mirrored_vars]
    found["variables_checked"] = len(copies)
    found["copies_per_variable"] = sorted({len(c) for c in copies})
    found["replicas_differ"] = [v.path for v, c in zip(mirrored_vars, copies, strict=True)
                                if not np.array_equal(c[0].numpy(), c[-1].numpy())]
    found["replica_devices"] = sorted({c.device for c in copies[0]})

    path = checkpoint.save(out / "checkpoints", gan, {"iteration": trainer.iteration})
    single = Trainer(config, faces(), None)
    state, arrays = checkpoint.read(path)
    checkpoint.restore(single.gan, arrays)
    single.iteration = state["iteration"]
    pairs = [*zip(single.gan.generator.weights, gan.generator.weights, strict=True),
             *zip(single.gan.average.model.weights, gan.average.model.weights, strict=True)]
    found["restored_equal"] = all(np.array_equal(a.numpy(), b.numpy()) for a, b in pairs)
    seeds = np.random.default_rng(1).standard_normal((4, config.seed_size)).astype(np.float32)
    shown = trainer.generate(seeds)  # the average recalibrated under the strategy, and on one device
    found["recalibrated_faces_equal"] = bool(np.allclose(shown, single.generate(seeds), atol=1e-5))
    found["recalibration_changed_faces"] = bool(not np.allclose(
        shown, np.asarray(gan.average.model(seeds, training=False)), atol=1e-3))
    found["single_global_batch"] = single.global_batch
    found["single_losses"] = [{k: float(v) for k, v in single.step().items()} for _ in range(2)]
    found["single_iteration"] = single.iteration
    return found


def worker(out: Path) -> dict:
    from dcgan_faces import train

    code = train.main(["--res", "16", "--steps", "2", "--save-every", "2", "--batch-size", "2",
                       "--data", str(out / "faces.npy"), "--cache-dir", str(out / "cache"), "--out",
                       str(out / "run"), "--strategy", "multiworker", "--eval-every", "1", "--eval-images", "4"])
    return {"code": code}


if __name__ == "__main__":
    mode, folder = sys.argv[1], Path(sys.argv[2])
    result = {"mirrored": mirrored, "worker": worker}[mode](folder)
    print("RESULT " + json.dumps(result), flush=True)
