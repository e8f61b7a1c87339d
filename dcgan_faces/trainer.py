"""The combined-model `train_on_batch` loop: D on a real batch, D on a fake batch, G through frozen D."""

from __future__ import annotations

import contextlib

import numpy as np

from dcgan_faces.batches import BatchSampler
from dcgan_faces.config import TrainConfig
from dcgan_faces.distribute import Feed, prepare_for_distributed_input, replicas
from dcgan_faces.models import GAN, build_gan
from dcgan_faces.preview import LABEL_NOISE, TRAINING_SEEDS, latent_seeds


def _set_process_state(config: TrainConfig) -> None:
    """What a Trainer sets before it builds its models: the process's random seed and dtype policy.

    config.precision must be resolved already (precision.choose); "auto" falls back to float32.
    """
    import keras

    from dcgan_faces.precision import policy_name

    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(policy_name(config.precision))


class Trainer:
    """Owns the models and the iteration counter; `step()` runs one iteration of the notebook's loop.

    Every random draw is a function of (--seed, iteration): the real batch, the latent seeds, and the
    dropout masks (whose generator states live in the models' variables and so in each checkpoint). That
    makes a resumed run continue exactly where an uninterrupted one would have been. The models' initial
    weights come from --seed: a new Trainer first sets the process's seed and dtype policy from its config.
    """

    def __init__(self, config: TrainConfig, images: np.ndarray, strategy=None, fast: bool = True):
        _set_process_state(config)
        self.config = config
        # --batch-size is per replica; models and optimizers live in the strategy's scope (distribute.py)
        self.strategy, self.feed = strategy, Feed(strategy)
        self.global_batch = config.batch_size * replicas(strategy)
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            self.gan: GAN = build_gan(config, fast)  # fast=False: the notebook's stock layers
            self._build_optimizers()
        self.sampler = BatchSampler(images, self.global_batch, config.seed, shard=self.feed.shard,
                                    mirror=config.mirror)
        self.iteration = 0
        self.real_labels = np.full((self.global_batch, 1), 1.0 - config.label_smoothing, dtype=np.float32)
        self.fake_labels = np.zeros((self.global_batch, 1), dtype=np.float32)
        self.generator_labels = np.ones((self.global_batch, 1), dtype=np.float32)
        if strategy is not None:
            import tensorflow as tf

            prepare_for_distributed_input(self.gan, config, strategy)
            self._replica_generate = tf.function(lambda seeds: self.gan.generator(seeds, training=False))

    def _build_optimizers(self) -> None:
        """Create the optimizers' slots up front, so that a checkpoint can be restored into them."""
        gan = self.gan
        gan.discriminator.trainable = True
        gan.discriminator.optimizer.build(gan.discriminator.trainable_variables)
        gan.discriminator.trainable = False
        gan.combined.optimizer.build(gan.combined.trainable_variables)

    def learning_rates(self) -> tuple[float, float]:
        """(G's, D's) current learning rates; they live in the optimizers' variables, so in checkpoints."""
        return (float(self.gan.combined.optimizer.learning_rate.numpy()),
                float(self.gan.discriminator.optimizer.learning_rate.numpy()))

    def scale_learning_rates(self, factor: float) -> None:
        for optimizer in (self.gan.combined.optimizer, self.gan.discriminator.optimizer):
            optimizer.learning_rate.assign(optimizer.learning_rate * factor)

    @property
    def epoch(self) -> float:
        return self.sampler.epoch(self.iteration)

    def step(self) -> dict[str, float]:
        """One iteration; returns the notebook's four figures (D's averaged over its real and fake steps)."""
        gan, k = self.gan, self.iteration
        real = self.sampler.batch(k)
        seeds = latent_seeds(self.config, TRAINING_SEEDS, k, self.global_batch)
        fake = gan.generator.predict_on_batch(seeds) if self.strategy is None else None

        real_labels, fake_labels = self.discriminator_labels(k)
        generator_labels = self.generator_labels
        if self.strategy is not None:  # each replica gets its own rows; the fakes stay on their replicas
            real = self.feed.replicas(real)
            seeds, real_labels, fake_labels, generator_labels = map(
                self.feed, (seeds, real_labels, fake_labels, generator_labels))
            fake = self.strategy.run(self._replica_generate, args=(seeds,))

        gan.discriminator.trainable = True
        d_real = gan.discriminator.train_on_batch(real, real_labels)
        if gan.penalty and gan.penalty.due(k):
            gan.penalty.step(real, self.strategy)
        d_fake = gan.discriminator.train_on_batch(fake, fake_labels)
        gan.discriminator.trainable = False
        g_loss, g_acc = gan.combined.train_on_batch(seeds, generator_labels)

        self.iteration += 1
        if gan.average:
            gan.average.update(self.iteration)
        return {  # float(): Keras before 3.13 (all that Python 3.10 gets) returns NumPy scalars
            "d_loss": float(0.5 * (d_real[0] + d_fake[0])),
            "d_acc": float(0.5 * (d_real[1] + d_fake[1])),
            "g_loss": float(g_loss),
            "g_acc": float(g_acc),
        }

    def discriminator_labels(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Targets of D's real and fake steps: one-sided smoothing, then label noise if asked for."""
        amplitude = self.config.label_noise
        if not amplitude:
            return self.real_labels, self.fake_labels
        rng = np.random.default_rng([self.config.seed, LABEL_NOISE, k])
        noise = rng.uniform(0, amplitude, (2, *self.fake_labels.shape))
        return (self.real_labels - noise[0]).astype(np.float32), (self.fake_labels + noise[1]).astype(np.float32)

    def output_generator(self):
        """The generator whose faces are shown and saved: GAN.output_generator, or under --bn-recalibration its
        copy with BatchNorm statistics recomputed."""
        recalibrated = self.gan.recalibrated
        return recalibrated.at(self.iteration) if recalibrated else self.gan.output_generator

    def generate(self, seeds: np.ndarray) -> np.ndarray:
        """Output generator's images in [-1, 1] for `seeds`, in inference mode (BatchNorm on moving averages)."""
        generator = self.output_generator()
        if self.strategy is not None:  # no collective ops: only the chief calls this on a multi-worker run
            return np.asarray(generator(seeds, training=False))
        return np.asarray(generator.predict_on_batch(seeds))
