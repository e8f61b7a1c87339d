"""`--strategy`: run the same `train_on_batch` loop on several devices or machines with tf.distribute.

Keras 3's `train_on_batch` hands its arguments to `strategy.run` as they are: a plain NumPy batch would
reach every replica whole (each replica computing the full batch: correct, but no faster). So the trainer
feeds distributed values instead (`Feed`): each replica gets its own contiguous slice of the global batch,
Keras scales each replica's loss by 1 / replicas and sums the gradients across replicas, which gives the
mean gradient of the global batch, the same update one device would make on it.

Multi-worker: each worker computes the same global batch plan, reads only its own rows of the real images
(`BatchSampler(shard=...)`) and slices the same-for-all latent seeds and labels to its rows; the all-reduce
of the gradients combines the workers' shards.
"""

from __future__ import annotations

import json
import os

import numpy as np

STRATEGIES = ("auto", "none", "mirrored", "multiworker", "tpu")


def tpu_runtime() -> bool:
    """A Colab (or Cloud) TPU runtime: its environment variables, or TPU devices TensorFlow already sees."""
    if os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME"):
        return True
    import tensorflow as tf

    try:
        return bool(tf.config.list_logical_devices("TPU"))
    except RuntimeError:
        return False


def choose_strategy(name: str = "auto"):
    """The tf.distribute.Strategy for `--strategy name`; None means the plain single-device loop.

    auto: a TPU strategy on a TPU runtime, MirroredStrategy with more than one GPU, otherwise None.
    multiworker: MultiWorkerMirroredStrategy from TF_CONFIG; it must be created before TensorFlow runs
    any operation, so call this first thing.
    """
    if name not in STRATEGIES:
        raise ValueError(f"--strategy {name}: choose one of {', '.join(STRATEGIES)}")
    if name == "none":
        return None
    import tensorflow as tf

    if name == "auto":
        if tpu_runtime():
            name = "tpu"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            return None
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", ""))
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


def cluster_spec() -> tuple[dict, str | None, int]:
    """(cluster, this task's type, its index) from TF_CONFIG: the one place the project reads it."""
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task", {})
    return tf_config.get("cluster", {}), task.get("type"), int(task.get("index", 0))


def _workers(cluster: dict) -> list[tuple[str, int]]:
    """The training tasks in order: the chief (if any) first, then the workers."""
    return [(kind, i) for kind in ("chief", "worker") for i in range(len(cluster.get(kind, [])))]


def is_multi_worker(strategy) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and len(_workers(cluster_spec()[0])) > 1


def is_chief(strategy_name: str) -> bool:
    """Whether this process writes the run's files: always, except on a multi-worker run's other workers.

    The chief is task type "chief", or worker 0 when the cluster has no chief. Known from --strategy and
    TF_CONFIG alone, so it can be asked before the strategy exists.
    """
    cluster, kind, index = cluster_spec()
    if strategy_name != "multiworker" or len(_workers(cluster)) < 2 or kind is None:
        return True
    return _workers(cluster)[0] == (kind, index)


def replicas(strategy) -> int:
    """Replicas in sync over all workers (1 without a strategy)."""
    return 1 if strategy is None else int(strategy.num_replicas_in_sync)


def worker_shard(strategy) -> tuple[int, int]:
    """(this worker's index, number of workers): which share of each global batch this process feeds."""
    if strategy is None or not is_multi_worker(strategy):
        return 0, 1
    cluster, kind, index = cluster_spec()
    return _workers(cluster).index((kind, index)), len(_workers(cluster))


class Feed:
    """Turns global-batch arrays into what this process passes to `train_on_batch` under `strategy`.

    Rows are dealt out contiguously: worker w of W owns rows [w·B/W, (w+1)·B/W) of the global batch of B,
    and its local replica j of L the j-th contiguous L-th of those.
    """

    def __init__(self, strategy):
        self.strategy = strategy
        self.shard = worker_shard(strategy)
        self.local_replicas = 1 if strategy is None else replicas(strategy) // self.shard[1]

    def worker_rows(self, global_array: np.ndarray) -> np.ndarray:
        """This worker's rows of an array that every worker builds whole (latent seeds, labels)."""
        index, count = self.shard
        return global_array if count == 1 else np.array_split(global_array, count)[index]

    def replicas(self, local_array):
        """This worker's rows spread over its local replicas (a PerReplica value); as is without a strategy."""
        if self.strategy is None or replicas(self.strategy) == 1:
            return local_array
        chunks = np.array_split(np.asarray(local_array), self.local_replicas)
        first = self.shard[0] * self.local_replicas
        return self.strategy.experimental_distribute_values_from_function(
            lambda context: chunks[context.replica_id_in_sync_group - first])

    def __call__(self, global_array: np.ndarray):
        return self.replicas(self.worker_rows(global_array))


def prepare_for_distributed_input(gan, config, strategy) -> None:
    """Build D's and the combined model's losses and metrics from a plain NumPy batch, once.

    Under a strategy, Keras 3's `train_on_batch` first builds the model symbolically from the batch it is
    given, which fails on a PerReplica value (no `.shape`); once everything is built it skips that step.
    Also sets every BatchNormalization to `synchronized`: its batch statistics become the global batch's
    (as on one device) and its moving statistics stay identical on all replicas (unsynchronized, each
    replica would update its copy from its own slice and the copies would drift apart).
    """
    import keras

    from dcgan_faces import keras_hooks

    for model in (gan.generator, gan.discriminator):
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True
    with strategy.scope():
        for model, x in ((gan.discriminator, np.zeros((1, config.res, config.res, config.channels), np.float32)),
                         (gan.combined, np.zeros((1, config.seed_size), np.float32))):
            keras_hooks.symbolic_build(model, x, np.zeros((1, 1), np.float32))
    if is_multi_worker(strategy):
        for model in (gan.discriminator, gan.combined):
            keras_hooks.logs_of_shape_one(model)
