"""Training curves drawn to a PNG: losses and accuracies (smoothed) and, when logged, the quality figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dcgan_faces.atomic import write_atomically
from dcgan_faces.imagefile import png_metadata

SMOOTHING = 50  # rows in the moving average
TRAINING = (("loss", ("d_loss", "g_loss")), ("accuracy", ("d_acc", "g_acc")))
# Evaluations are sparse: drawn unsmoothed with markers, each panel only when some row has one of its keys.
QUALITY = (("SWD ×1e3", ("swd", "swd_real_floor")), ("face rate", ("face_rate", "face_rate_fake", "face_rate_real")))


def series(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(iterations, values) of the rows that have `key`; missing or null values are left out."""
    pairs = [(row["iteration"], row[key]) for row in rows if row.get(key) is not None]
    if not pairs:
        return np.empty(0), np.empty(0)
    x, y = zip(*pairs, strict=True)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to `window` values, ignoring NaN and inf; NaN where the window holds none."""
    finite = np.isfinite(values)
    sums = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
    counts = np.concatenate([[0], np.cumsum(finite)])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - max(window, 1), 0)
    n = counts[ends] - counts[starts]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (sums[ends] - sums[starts]) / n, np.nan)


def _draw(axes, rows: list[dict], keys: tuple[str, ...], smoothing: int | None) -> None:
    """Each key's raw values faint and their moving average bold, or (smoothing None) the values with markers."""
    for index, key in enumerate(keys):
        x, y = series(rows, key)
        if not len(x):
            continue
        colour = f"C{index}"
        if smoothing is None:
            axes.plot(x, y, color=colour, linewidth=1.2, marker="o", markersize=3, label=key)
            continue
        axes.plot(x, y, color=colour, alpha=0.25, linewidth=0.8)
        axes.plot(x, moving_average(y, smoothing), color=colour, linewidth=1.6, label=key,
                  marker="o" if len(x) == 1 else None)
    if axes.has_data():
        axes.legend(loc="best", fontsize="small")
    axes.grid(alpha=0.3)


def save_plot(rows: list[dict], path: Path, smoothing: int = SMOOTHING) -> Path:
    """Write the curves of `rows` (metrics.jsonl lines) to `path` as a PNG, atomically.

    Raw values are drawn faint behind a trailing moving average over `smoothing` rows.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install matplotlib") from None
    panels = [(title, keys, smoothing) for title, keys in TRAINING]
    panels += [(title, keys, None) for title, keys in QUALITY if any(key in row for row in rows for key in keys)]
    figure = Figure(figsize=(9, 2.6 * len(panels)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (title, keys, window) in zip(axes, panels, strict=True):
        _draw(ax, rows, keys, window)
        ax.set_ylabel(title)
    axes[1].set_ylim(-0.02, 1.02)
    axes[-1].set_xlabel("iteration")
    return write_atomically(Path(path), lambda tmp: figure.savefig(tmp, format="png", dpi=100,
                                                                          metadata=png_metadata("plot")))
