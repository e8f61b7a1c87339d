"""Exact, faster formulations of the notebook models' layers: the same weights, the same function.

On a CPU the notebook's models spend most of their time in kernels that do more work than the function
needs, or do it in a badly blocked way (measured in experiments/benchmark.py):
- `UpsampleConv2D`: nearest ×2 upsampling followed by a 3×3 convolution is one stride-2 transposed
  convolution with a folded 4×4 kernel: 4 multiply-adds per output value and input channel instead of 9. The
  forward pass runs it as four 2×2 convolutions of the input, one per output phase, interleaved; the
  backward pass as the transposed convolution's gradients.
- `Conv2D`: TensorFlow's input gradient of a stride-1 convolution (Conv2DBackpropInput) runs at a
  quarter of the speed of the equal forward convolution with the flipped kernel; with 8 or fewer output
  channels (the generator's RGB layer) every pass runs as one matrix product instead.
- `BatchNormalization`: in training mode, the fused kernel instead of a chain of small element-wise ops.
Each keeps the stock layer's variables (names, shapes, order), so checkpoints carry over either way, and
`models.stock_generator` turns a generator back into stock layers for saving.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

# Per spatial axis, nearest ×2 upsampling then a 3-tap convolution (taps k0, k1, k2) equals a stride-2
# transposed convolution with the 4 taps [k2, k1+k2, k0+k1, k0]: row a of this matrix picks them.
_FOLD = np.array([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], dtype="float32")
FEW_CHANNELS = 8  # a convolution with at most this many outputs runs as matrix products


def _plain_3x3(layer: layers.Conv2D) -> bool:
    return (layer.kernel_size == (3, 3) and layer.padding == "same" and layer.strides == (1, 1)
            and layer.dilation_rate == (1, 1) and layer.groups == 1 and layer.data_format == "channels_last")


def _finish(layer: layers.Conv2D, outputs):
    outputs = ops.add(outputs, layer.bias) if layer.use_bias else outputs
    return layer.activation(outputs) if layer.activation is not None else outputs


# The same fold, one output phase at a time: output row 2m + p is a 2-tap convolution of input rows
# (m - 1, m) for p = 0 with taps (k0, k1 + k2), and of rows (m, m + 1) for p = 1 with taps (k0 + k1, k2).
_PHASES = (np.array([[1, 0, 0], [0, 1, 1]], dtype="float32"), np.array([[1, 1, 0], [0, 0, 1]], dtype="float32"))
_PHASE_PADDING = ([1, 0], [0, 1])  # rows (or columns) of zeros before and after the input, per phase


@tf.custom_gradient
def _upsample_conv(x, kernel):
    """Nearest ×2 upsampling then a 3×3 'same' convolution, at the low resolution.

    Forward: each of the four output phases is a 2×2 convolution of the input, interleaved by
    depth_to_space. Backward: the input gradient is the stride-2 convolution with the folded 4×4 kernel,
    the kernel gradient the transposed convolution's filter gradient, unfolded back onto the 3×3 taps.
    """
    taps = [tf.constant(phase, dtype=kernel.dtype) for phase in _PHASES]
    phases = [tf.nn.conv2d(tf.pad(x, [[0, 0], _PHASE_PADDING[p], _PHASE_PADDING[q], [0, 0]]),
                           tf.einsum("ai,bj,ijco->abco", taps[p], taps[q], kernel), 1, "VALID")
              for p in (0, 1) for q in (0, 1)]
    y = tf.nn.depth_to_space(tf.concat(phases, -1), 2)
    fold = tf.constant(_FOLD, dtype=kernel.dtype)

    def gradient(dy):
        transposed = tf.einsum("ai,bj,ijco->aboc", fold, fold, kernel)  # (4, 4, outputs, inputs)
        dx = tf.nn.conv2d(dy, transposed, 2, "SAME")
        d_transposed = tf.raw_ops.Conv2DBackpropFilter(input=dy, filter_sizes=tf.shape(transposed), out_backprop=x,
                                                       strides=[1, 2, 2, 1], padding="SAME")
        return dx, tf.einsum("ai,bj,aboc->ijco", fold, fold, d_transposed)

    return y, gradient


@keras.saving.register_keras_serializable(package="dcgan_faces")
class UpsampleConv2D(layers.Conv2D):
    """`UpSampling2D()` followed by `Conv2D(filters, 3, padding="same")`, computed at the low resolution.

    The weights are the stock pair's 3×3 kernel and bias; the upsampled tensor is never made.
    """

    def __init__(self, filters: int, **kwargs):
        super().__init__(filters, **{"kernel_size": 3, "padding": "same", **kwargs})
        if not _plain_3x3(self):
            raise ValueError("UpsampleConv2D folds only a 3×3, stride-1, 'same', channels-last convolution")

    def call(self, inputs):
        return _finish(self, _upsample_conv(inputs, tf.convert_to_tensor(self.kernel)))

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        return batch, height and 2 * height, width and 2 * width, self.filters


def _flipped(kernel):
    """The kernel whose forward convolution is the input gradient: spatially flipped, in and out swapped."""
    return tf.transpose(kernel[::-1, ::-1], [0, 1, 3, 2])


@tf.custom_gradient
def _conv_same(x, kernel):
    """A stride-1 'same' 3×3 convolution whose input gradient is a forward convolution too."""

    def gradient(dy):
        dx = tf.nn.conv2d(dy, _flipped(kernel), 1, "SAME")
        dk = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(kernel), out_backprop=dy,
                                             strides=[1, 1, 1, 1], padding="SAME")
        return dx, dk

    return tf.nn.conv2d(x, kernel, 1, "SAME"), gradient


def _shifted_taps(t):
    """(N, H, W, C) → (N·H·W, 9·C): for tap (i, j), t moved so that row (p, q) holds t[p + 1 - i, q + 1 - j]."""
    _, height, width, channels = t.shape
    padded = tf.pad(t, [[0, 0], [1, 1], [1, 1], [0, 0]])
    taps = [padded[:, 2 - i:2 - i + height, 2 - j:2 - j + width] for i in range(3) for j in range(3)]
    return tf.reshape(tf.concat(taps, -1), [-1, 9 * channels])


@tf.custom_gradient
def _conv_few_outputs(x, kernel):
    """A stride-1 'same' 3×3 convolution to a few channels, as one matrix product and nine shifted sums.

    out[p, q] = Σ_ij x[p+i-1, q+j-1] · k[i, j]: the product x · k for all nine taps at once is small (9 ×
    the few output channels), then each tap's share is added at its offset.
    """
    batch, height, width, channels = x.shape
    outputs = kernel.shape[-1]
    rows = tf.reshape(x, [-1, channels])
    per_tap = tf.matmul(rows, tf.reshape(tf.transpose(kernel, [2, 0, 1, 3]), [channels, 9 * outputs]))
    per_tap = tf.pad(tf.reshape(per_tap, [-1, height, width, 9 * outputs]), [[0, 0], [1, 1], [1, 1], [0, 0]])
    y = tf.add_n([per_tap[:, i:i + height, j:j + width, (3 * i + j) * outputs:(3 * i + j + 1) * outputs]
                  for i in range(3) for j in range(3)])

    def gradient(dy):
        taps = _shifted_taps(dy)  # (N·H·W, 9·outputs)
        dx = tf.reshape(tf.matmul(taps, tf.reshape(tf.transpose(kernel, [0, 1, 3, 2]), [9 * outputs, channels])),
                        tf.shape(x))
        dk = tf.matmul(rows, taps, transpose_a=True)  # (channels, 9·outputs)
        return dx, tf.transpose(tf.reshape(dk, [channels, 3, 3, outputs]), [1, 2, 0, 3])

    return y, gradient


@keras.saving.register_keras_serializable(package="dcgan_faces")
class Conv2D(layers.Conv2D):
    """`layers.Conv2D` whose 3×3 stride-1 'same' case runs with faster gradients (see the module's doc)."""

    def call(self, inputs):
        if not _plain_3x3(self):
            return super().call(inputs)
        kernel = tf.convert_to_tensor(self.kernel)
        convolve = _conv_few_outputs if self.filters <= FEW_CHANNELS and inputs.shape[1] else _conv_same
        return _finish(self, convolve(inputs, kernel))


@keras.saving.register_keras_serializable(package="dcgan_faces")
class BatchNormalization(layers.BatchNormalization):
    """`layers.BatchNormalization` whose training-mode step runs TensorFlow's fused kernel."""

    def call(self, inputs, training=None, mask=None):
        renorm = getattr(self, "renorm", False)  # Keras 3.14+; Python 3.10 gets at most Keras 3.12, without it
        if not (training and self.trainable) or mask is not None or renorm or self.synchronized \
                or self.axis not in (-1, len(inputs.shape) - 1) or not (self.scale and self.center):
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, "float32")
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, ops.cast(self.gamma, "float32"), ops.cast(self.beta, "float32"), epsilon=self.epsilon,
            is_training=True)
        count = ops.cast(ops.size(x) // x.shape[-1], "float32")
        variance = variance * (count - 1.0) / count  # the kernel returns the unbiased variance; Keras keeps the biased
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return ops.cast(outputs, self.compute_dtype)
