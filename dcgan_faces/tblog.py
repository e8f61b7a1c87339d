"""TensorBoard event files for a run (RUN/tensorboard): scalars and images, viewable with `tensorboard --logdir runs`.

Summaries go through `tf.summary.write` with the scalars and images plugins' metadata, the format that
`tf.summary.scalar` and `tf.summary.image` produce, so writing needs TensorFlow only, not the tensorboard package.
"""

from __future__ import annotations

import contextlib
import errno
import io
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image
from tensorflow.core.framework import summary_pb2


def _metadata(plugin: str, data_class: int) -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin),
                                       data_class=data_class)


SCALAR = _metadata("scalars", summary_pb2.DATA_CLASS_SCALAR)
IMAGE = _metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE)


def flatten(values: Mapping, prefix: str = "") -> dict[str, float]:
    """{"swd": 3.1, "swd_levels": {"32": 2.0}} → {"swd": 3.1, "swd_levels/32": 2.0}; non-numbers dropped."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}/"))
        elif isinstance(value, int | float | np.number) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = float(value)
    return flat


def png_bytes(image: np.ndarray) -> bytes:
    array = np.asarray(image, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array).save(buffer, "PNG")
    return buffer.getvalue()


def _os_error(error: tf.errors.OpError) -> OSError:
    """TensorFlow's write error (a full disk is a ResourceExhaustedError) as the OSError that every other
    writer raises, so that the run reports it in one line and goes on."""
    if isinstance(error, tf.errors.ResourceExhaustedError):
        return OSError(errno.ENOSPC, "No space left on device")
    return OSError(errno.EIO, (error.message or type(error).__name__).splitlines()[0].rsplit("; ", 1)[-1])


class TensorBoardLog:
    """The event files of one run; every method raises OSError when they cannot be written."""

    def __init__(self, logdir: Path):
        self.logdir = Path(logdir)
        self._writer = None  # made on first use: a full disk at start is then reported like any later one

    @contextlib.contextmanager
    def _writing(self):
        try:
            if self._writer is None:
                self.logdir.mkdir(parents=True, exist_ok=True)
                self._writer = tf.summary.create_file_writer(str(self.logdir))
            with self._writer.as_default():
                yield
        except tf.errors.OpError as error:
            raise _os_error(error) from None

    def scalars(self, iteration: int, values: Mapping[str, float]) -> None:
        """One point per value; nested dicts become "outer/inner" tags, NaN and inf are skipped."""
        with self._writing():
            for tag, value in flatten(values).items():
                if math.isfinite(value):
                    tf.summary.write(tag, tf.constant(value, tf.float32), step=iteration, metadata=SCALAR)

    def image(self, iteration: int, name: str, image_uint8: np.ndarray) -> None:
        """One uint8 (H, W, C) or (H, W) image, stored as PNG."""
        height, width = np.shape(image_uint8)[:2]
        blob = tf.constant([str(width).encode(), str(height).encode(), png_bytes(image_uint8)])
        with self._writing():
            tf.summary.write(name, blob, step=iteration, metadata=IMAGE)

    def flush(self) -> None:
        if self._writer is not None:
            with self._writing():
                self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            with self._writing():
                self._writer.close()
