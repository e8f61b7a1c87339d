"""Differentiable augmentation of every image D sees (Zhao et al. 2020, "DiffAugment").

D is trained on augmented real and augmented fake batches, and G is trained through the same random
augmentation, so D cannot simply memorise a small training set and G is never pushed to produce the
augmentations themselves. The operations follow the paper's reference code for images in [-1, 1].
"""

from __future__ import annotations

import keras
from keras import ops

from dcgan_faces.config import AUGMENTATIONS, TRANSLATION_SHIFT, parse_policy


@keras.saving.register_keras_serializable(package="dcgan_faces")
class DiffAugment(keras.layers.Layer):
    """Random colour, translation (by up to `shift` of the size: the paper's 1/8) and cutout (a square of half the
    size), in training only."""

    def __init__(self, policy: str = ",".join(AUGMENTATIONS), seed: int | None = None,
                 shift: float = TRANSLATION_SHIFT, **kwargs):
        super().__init__(**kwargs)
        self.policy = policy
        self.operations = parse_policy(policy)
        self.seed = seed
        self.shift = shift
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        for operation in self.operations:
            images = getattr(self, f"_{operation}")(images)
        return images

    def _uniform(self, batch: int, low: float = 0.0, high: float = 1.0):
        return keras.random.uniform((batch, 1, 1, 1), low, high, dtype=self.compute_dtype, seed=self.seed_generator)

    def _color(self, x):
        batch = ops.shape(x)[0]
        x = x + self._uniform(batch, -0.5, 0.5)  # brightness
        mean = ops.mean(x, axis=-1, keepdims=True)
        x = (x - mean) * self._uniform(batch, 0.0, 2.0) + mean  # saturation
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        return (x - mean) * self._uniform(batch, 0.5, 1.5) + mean  # contrast

    def _shifts(self, batch, limit: int):
        return keras.random.randint((batch, 1, 1), -limit, limit + 1, seed=self.seed_generator)

    def _translation(self, x):
        """Shift each image by up to ±shift of its size; uncovered pixels become 0 (mid-grey)."""
        batch, height, width = ops.shape(x)[0], x.shape[1], x.shape[2]
        rows = ops.arange(height)[None, :, None] + self._shifts(batch, int(height * self.shift + 0.5))
        cols = ops.arange(width)[None, None, :] + self._shifts(batch, int(width * self.shift + 0.5))
        inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        rows, cols = ops.clip(rows, 0, height - 1), ops.clip(cols, 0, width - 1)
        flat = ops.reshape(x, (batch, height * width, x.shape[3]))
        index = ops.reshape(rows * width + cols, (batch, height * width))
        moved = ops.reshape(ops.take_along_axis(flat, index[..., None], axis=1), ops.shape(x))
        return moved * ops.cast(inside, x.dtype)[..., None]

    def _cutout(self, x, ratio: float = 0.5):
        """Zero one square of ratio × the size per image, centred anywhere in the image."""
        batch, height, width = ops.shape(x)[0], x.shape[1], x.shape[2]
        cut_h, cut_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
        top = keras.random.randint((batch, 1, 1), 0, height + (1 - cut_h % 2), seed=self.seed_generator)
        left = keras.random.randint((batch, 1, 1), 0, width + (1 - cut_w % 2), seed=self.seed_generator)
        rows, cols = ops.arange(height)[None, :, None], ops.arange(width)[None, None, :]
        inside_rows = (rows >= top - cut_h // 2) & (rows < top - cut_h // 2 + cut_h)
        inside_cols = (cols >= left - cut_w // 2) & (cols < left - cut_w // 2 + cut_w)
        return x * ops.cast(~(inside_rows & inside_cols), x.dtype)[..., None]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "policy": self.policy, "seed": self.seed, "shift": self.shift}
