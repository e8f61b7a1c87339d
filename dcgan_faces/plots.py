"""Training curves from metrics.jsonl: losses and accuracies (and quality figures when logged) vs iteration.

Example: python -m dcgan_faces.plots runs/demo_64   (redraws runs/demo_64/plots.png)
"""

from __future__ import annotations

import sys
from pathlib import Path

from dcgan_faces.cli_types import Parser, positive_int
from dcgan_faces.curves import SMOOTHING, save_plot
from dcgan_faces.runfolder import RunFolder


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    p = Parser("dcgan_faces.plots", __doc__, prog, usage="%(prog)s RUN [options]")
    p.add_argument("run", type=Path, metavar="RUN", help="run folder with metrics.jsonl")
    p.add_argument("--smoothing", type=positive_int, default=SMOOTHING,
                   help=f"rows in the moving average of the bold lines (default {SMOOTHING})")
    args = p.parse_args(argv)
    run = RunFolder(args.run)
    log = run.read_metrics_log()
    if not log.rows:
        print(f"error: RUN {args.run}: no metrics in {run.metrics_path}; give a run folder that has trained "
              "at least to its first grid", file=sys.stderr)
        return 2
    try:
        written = save_plot(log.rows, run.plot_path, args.smoothing)
    except ImportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot write {run.plot_path} ({error.strerror or error}); free some space or make "
              f"{run.path} writable", file=sys.stderr)
        return 2
    skipped = f" (skipped {log.unreadable} line(s) of {run.metrics_path} that cannot be read)" if log.unreadable else ""
    print(f"wrote {written}{skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
