"""`python -m dcgan_faces.train`: train the faces DCGAN; re-running the same command resumes the run."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: hide its C++ log noise

import argparse
import dataclasses
import signal
import sys
from pathlib import Path

from dcgan_faces import __version__
from dcgan_faces.cli_types import (
    augment_policy,
    ema_decay,
    fraction,
    non_negative_int,
    positive_float,
    positive_int,
    resolution,
)
from dcgan_faces.config import DEFAULT_RECIPE, RECIPES, TrainConfig
from dcgan_faces.data import GDRIVE_PREFIX

DEFAULTS = TrainConfig()

EPILOG = """\
Iterations and epochs: one iteration trains D on one real and one fake batch and G on one batch. An epoch
is one pass over the cached images (images / batch size iterations). The course notebook's "EPOCHS = 10000,
SAVE_FREQ = 100" counted iterations: reproduce it with --steps 10000 --save-every 100 (the defaults).

Resuming: re-run the same command (same --out) and training continues from the newest checkpoint, with the
same preview faces and continuous numbering. --fresh moves an earlier run aside and starts over.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dcgan_faces.train", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = DEFAULTS
    p.add_argument("--res", type=resolution, help=f"image size in px: any multiple of 4 from 16 (default {d.res})")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", help="folder of face images (searched recursively), or a .npy/.npz array of images "
                        "(uint8, or floats in [0,1] or [-1,1]; trains at its own size unless --res is given); "
                        "default ./face_images if it exists, else the built-in demo faces")
    source.add_argument("--gdrive", metavar="ID_OR_URL", help="Google Drive file id, share URL or folder URL of the "
                        "images (a zip/tar is unpacked); downloaded once into --cache-dir")
    p.add_argument("--cache-dir", type=Path, default=Path("data_cache"),
                   help="where the preprocessed .npy tensor is kept (default data_cache/; may be on Drive)")
    p.add_argument("--out", type=Path, help="run folder (default runs/<data name>_<res>)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=positive_int, help=f"iterations in total (default {d.steps})")
    length.add_argument("--epochs", type=positive_float, help="passes over the images in total (instead of --steps)")
    p.add_argument("--batch-size", type=positive_int, help=f"images per replica (default {d.batch_size}); with "
                   "--strategy the global batch is this × the number of replicas")
    p.add_argument("--save-every", type=positive_int,
                   help=f"iterations between preview grids, like the notebook's SAVE_FREQ (default {d.save_every})")
    p.add_argument("--checkpoint-every", type=positive_int, help="iterations between checkpoints "
                                                                 "(default: with every preview grid)")
    p.add_argument("--keep-checkpoints", type=positive_int,
                   help=f"newest checkpoints kept (default {d.keep_checkpoints})")
    p.add_argument("--seed-size", type=positive_int, help=f"length of the latent seed vector (default {d.seed_size})")
    p.add_argument("--seed", type=int, help=f"random seed: fixes the preview faces and the run (default {d.seed})")
    p.add_argument("--channels", type=int, choices=(1, 3), help="3 for colour (default), 1 for grayscale")
    p.add_argument("--recipe", choices=tuple(RECIPES), help=f"the settings a new run starts from: {DEFAULT_RECIPE} "
                   f"(the default: {recipe_text(RECIPES[DEFAULT_RECIPE])}) or notebook (the course notebook's: every "
                   "option at the default it names below). Options given override the recipe's; "
                   "docs/recipes.md compares them")
    p.add_argument("--arch", choices=("notebook", "dcgan"), help="notebook: the course notebook's models; dcgan: "
                   "Radford et al. 2015 (transposed convs, no dropout, N(0, 0.02) init, lr 2e-4)")
    p.add_argument("--lr", type=positive_float, help=f"learning rate of both optimizers (default {d.lr}; 2e-4 with "
                   "--arch dcgan). The batch size does not change it")
    p.add_argument("--lr-g", type=positive_float, help="the generator's learning rate (default --lr)")
    p.add_argument("--lr-d", type=positive_float, help="the discriminator's learning rate (default --lr)")
    p.add_argument("--optimizer", choices=("adam", "rmsprop"), help="default adam")
    p.add_argument("--beta1", type=float, help=f"Adam beta_1 (default {d.beta1})")
    p.add_argument("--loss", choices=("bce", "mse"), help="bce: binary cross-entropy (default); mse: least squares")
    p.add_argument("--label-smoothing", type=fraction, help="one-sided: D's real labels become 1 - this (e.g. 0.1)")
    p.add_argument("--label-noise", type=fraction, help="uniform noise of this amplitude in D's labels: real ones "
                   "pushed down, fake ones up (e.g. 0.15)")
    p.add_argument("--ema", type=ema_decay, help="decay of a moving average of G's weights that makes the "
                   "previews and the saved generator, with a ramp-up for short runs (e.g. 0.999; 0: off)")
    p.add_argument("--spectral-norm", action=argparse.BooleanOptionalAction,
                   help="spectral normalisation of D's weights (Miyato et al. 2018)")
    p.add_argument("--minibatch-stddev", action=argparse.BooleanOptionalAction,
                   help="D sees the batch's standard deviation as an extra channel (Karras et al. 2018)")
    p.add_argument("--augment", type=augment_policy, metavar="POLICY", help="DiffAugment (Zhao et al. 2020) of "
                   "every image D sees: a comma-separated subset of color,translation,cutout; 'none' for none")
    p.add_argument("--min-size", type=non_negative_int, help="skip images whose short side is below this many px "
                                               "(default 0: smaller images are upscaled)")
    p.add_argument("--on-nan", choices=("stop", "rollback"), help="when a loss turns NaN/inf: stop (default) or "
                   "reload the last checkpoint with halved learning rates and go on (at most 3 times)")
    p.add_argument("--precision", choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"),
                   help="auto (default): mixed_float16 on a GPU, float32 on a CPU; fixed when a run starts. D's "
                        "output and the losses stay float32 in every mode")
    p.add_argument("--eval-every", type=positive_int, help="iterations between SWD and face-rate evaluations, "
                   "logged in metrics.jsonl (default: never; needs the [metrics] extra)")
    p.add_argument("--eval-images", type=positive_int, help=f"images per evaluation (default {d.eval_images})")
    p.add_argument("--strategy", choices=("auto", "none", "mirrored", "multiworker", "tpu"),
                   help="tf.distribute strategy (default auto: a Colab TPU, all GPUs when there are 2 or more, "
                   "else none); multiworker reads TF_CONFIG. --batch-size is per replica, so the global batch "
                   "grows with the replicas; the learning rate is kept as given, not scaled")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--fresh", action="store_true", help="start over: an existing run in --out is moved aside")
    start.add_argument("--resume", type=Path, metavar="CHECKPOINT", help="resume from this checkpoint file")
    p.add_argument("--version", action="version", version=f"dcgan_faces {__version__}")
    return p


def recipe_text(settings: dict) -> str:
    return ", ".join(f"--{name.replace('_', '-')} {value}" for name, value in settings.items())


def given_settings(args: argparse.Namespace) -> dict:
    """TrainConfig fields the user set on the command line."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    if args.gdrive:
        given["data"] = GDRIVE_PREFIX + args.gdrive
    return given


class StopRequest:
    """Turns SIGINT and SIGTERM (Ctrl-C, a Colab disconnect) into a flag the loop checks between steps."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signal: int | None = None
        self._previous = {}

    def __enter__(self) -> StopRequest:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.signal is not None:  # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        self.signal = signum
        print(f"\n{signal.Signals(signum).name}: finishing this step, then saving a checkpoint...", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from dcgan_faces.session import Session, SetupError

    try:
        session = Session.start(args, given_settings(args))
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with StopRequest() as stop:
        return session.run(stop)


if __name__ == "__main__":
    sys.exit(main())
