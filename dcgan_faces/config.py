"""Training settings as one dataclass; the defaults are the course notebook's."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

# Settings that define the model or the random streams: changing them on resume would not continue the
# same run, so a resume refuses them. Every other setting may change between sessions.
MIN_START = 4  # smallest square the generator grows from

IDENTITY_FIELDS = ("res", "channels", "seed_size", "arch", "batch_size", "lr", "lr_g", "lr_d", "beta1", "optimizer",
                   "loss", "label_smoothing", "label_noise", "precision", "seed", "data", "recipe", "ema",
                   "spectral_norm", "minibatch_stddev", "augment")
AUGMENTATIONS = ("color", "translation", "cutout")  # DiffAugment's operations (augment.py)


@dataclass
class TrainConfig:
    """Every setting of a run. The field defaults are the notebook recipe; RECIPES["default"] changes some."""

    recipe: str = "notebook"
    res: int = 64
    channels: int = 3
    arch: str = "notebook"
    seed_size: int = 100
    batch_size: int = 32
    lr: float = 1.5e-4
    lr_g: float | None = None  # None: --lr
    lr_d: float | None = None  # None: --lr
    beta1: float = 0.5
    optimizer: str = "adam"  # or "rmsprop"
    loss: str = "bce"  # or "mse" (least squares)
    label_smoothing: float = 0.0  # real labels become 1 - this (one-sided)
    label_noise: float = 0.0  # uniform noise of this amplitude: real labels pushed down, fake ones up
    ema: float = 0.0  # decay of the generator's moving average (with ramp-up); 0: previews use G itself
    spectral_norm: bool = False  # spectral normalisation of D's weight layers
    minibatch_stddev: bool = False  # D sees the batch's standard deviation as an extra channel
    augment: str = ""  # DiffAugment policy for everything D sees, e.g. "color,translation,cutout"
    steps: int = 10_000
    save_every: int = 100
    checkpoint_every: int | None = None  # None: with every preview grid
    keep_checkpoints: int = 2
    seed: int = 0
    data: str = "demo"
    min_size: int = 0  # skip images whose short side is smaller; 0: upscale them
    on_nan: str = "stop"  # or "rollback"
    precision: str = "auto"  # auto, float32, mixed_float16, mixed_bfloat16
    eval_every: int = 0  # iterations between SWD / face-rate evaluations; 0: never
    eval_images: int = 500
    preview_rows: int = 4
    preview_cols: int = 7
    strategy: str = "auto"  # tf.distribute: auto, none, mirrored, multiworker, tpu (dcgan_faces/distribute.py)

    @property
    def checkpoint_interval(self) -> int:
        return self.checkpoint_every or self.save_every

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def differences(self, other: TrainConfig) -> dict[str, tuple]:
        """{field: (self's value, other's value)} for every field that differs."""
        mine, theirs = dataclasses.asdict(self), dataclasses.asdict(other)
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}


def parse_policy(text: str) -> tuple[str, ...]:
    """--augment "color,translation" → ("color", "translation"); "" → (); ValueError naming an unknown part."""
    parts = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [part for part in parts if part not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"--augment: unknown {', '.join(unknown)}; use a comma-separated subset of "
                         f"{','.join(AUGMENTATIONS)}")
    return parts


def upsampling_plan(res: int) -> tuple[int, int]:
    """(start size, number of 2× upsamplings) that grows a square from start to `res`.

    The notebook starts at 4×4 and doubles. Other sizes start from the smallest square of at least 4 that
    doubles into them: 28 = 7·2², 48 = 6·2³, 96 = 6·2⁴, 144 = 9·2⁴. At least two doublings are needed, so
    every multiple of 4 from 16 up works.
    """
    if res < 16 or res % 4:
        raise ValueError(f"--res {res} cannot be built: use a multiple of 4, at least 16 (28, 32, 64, 96...)")
    doublings = 2
    while res % 2 ** (doublings + 1) == 0 and res // 2 ** (doublings + 1) >= MIN_START:
        doublings += 1
    return res // 2**doublings, doublings


# --recipe: the settings a new run starts from, before the user's own flags. "notebook" is the field defaults.
RECIPES: dict[str, dict] = {
    "default": {"ema": 0.999},  # the notebook's models and loop; faces from a moving average (docs/recipes.md)
    "notebook": {},
}
DEFAULT_RECIPE = "default"
DCGAN_LR = 2e-4  # Radford et al. 2015


def recipe_settings(given: dict) -> dict:
    """TrainConfig fields of a new run: its recipe's settings, overridden by `given` (the user's flags).

    --arch dcgan brings its paper's learning rate unless a learning rate is given.
    """
    recipe = given.get("recipe", DEFAULT_RECIPE)
    settings = {**RECIPES[recipe], **given, "recipe": recipe}
    if settings.get("arch") == "dcgan":
        settings.setdefault("lr", DCGAN_LR)
    return settings
