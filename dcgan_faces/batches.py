"""Training batches from the cached images: which images make batch k, as float32 in [-1, 1]."""

from __future__ import annotations

import numpy as np

MIRROR_STREAM = 1  # keeps the mirror's coins apart from the pass orders, which are drawn from (seed, pass)


class BatchSampler:
    """Batch k holds positions [k·B, (k+1)·B) of an endless run of shuffled passes over the images.

    Each pass's order comes from (seed, pass number), so a batch depends only on k: resuming needs the
    iteration count and nothing else. Pixels become float32 in [-1, 1] only here, one batch at a time.

    shard=(index, count): a multi-worker run's worker `index` of `count` gathers only its contiguous share
    of each global batch of `batch_size` (np.array_split order, as distribute.Feed deals out the rest).

    mirror: each image of batch k is flipped left to right or not by a coin drawn from (seed, k), so a
    mirrored run resumes exactly too. A mirrored face is still a face: the set D learns from doubles.
    """

    def __init__(self, images: np.ndarray, batch_size: int, seed: int, shard: tuple[int, int] = (0, 1),
                 mirror: bool = False):
        self.images, self.batch_size, self.seed, self.shard = images, batch_size, seed, shard
        self.mirror = mirror
        self._order_pass, self._order = -1, np.empty(0, dtype=np.int64)

    def _pass_order(self, number: int) -> np.ndarray:
        if number != self._order_pass:
            self._order = np.random.default_rng([self.seed, number]).permutation(len(self.images))
            self._order_pass = number
        return self._order

    def indices(self, k: int) -> np.ndarray:
        n = len(self.images)
        positions = np.arange(k * self.batch_size, (k + 1) * self.batch_size)
        return np.concatenate([self._pass_order(p)[positions[positions // n == p] % n]
                               for p in np.unique(positions // n)])

    def batch(self, k: int) -> np.ndarray:
        index, count = self.shard
        rows = self.indices(k) if count == 1 else np.array_split(self.indices(k), count)[index]
        picked = self.images[np.sort(rows)]  # sorted: sequential reads from the memmap
        if self.mirror:
            flipped = np.random.default_rng([self.seed, k, MIRROR_STREAM]).random(len(picked)) < 0.5
            picked[flipped] = picked[flipped, :, ::-1]
        return picked.astype(np.float32) / np.float32(127.5) - np.float32(1.0)

    def epoch(self, k: int) -> float:
        """Passes over the images completed after k batches."""
        return k * self.batch_size / len(self.images)
