"""Every setting of a run, declared once: its default (the course notebook's), its flag and help, and
whether a resumed run may change it.

`add_flags` builds the training command line from these declarations and `resolve.py` the resume check,
so a new setting is one field here and nothing else.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from dcgan_faces import cli_types as types

FIXED = "fixed"  # defines the model, the data or the random streams: a resume keeps it and refuses a change
CHANGEABLE = "changeable"  # length, schedules, safety nets: a resume applies the new value
MIN_START = 4  # smallest square the generator grows from
AUGMENTATIONS = ("color", "translation", "cutout")  # DiffAugment's operations (augment.py)
TRANSLATION_SHIFT = 0.125  # DiffAugment's largest translation, a share of the image's size (the paper's 1/8)
DEFAULT_RES = 64
RECIPES: dict[str, dict] = {  # --recipe: a new run's settings before the user's own flags
    # the notebook's models and loop, with faces from a moving average, no dropout in D and a generator half
    # as wide, which makes about 1.75x the iterations in the same time, and the average's BatchNorm statistics
    # recomputed for its own weights before it draws (docs/results.md)
    "default": {"ema": 0.999, "d_dropout": 0.0, "g_filters": 128, "bn_recalibration": 16},
    "notebook": {},  # the field defaults
}
# What a recipe adds from an image size up. From 64 px the default shifts every image D sees by up to 1/16 of
# its size (DiffAugment's translation, half the paper's shift): at equal time at 64 px it gave a lower SWD and
# as many faces; at 32 px fewer faces (docs/results.md). StyleGAN2-ADA's `--cfg auto` sets R1's weight by size too.
RECIPES_FROM_SIZE: dict[str, dict[int, dict]] = {
    "default": {64: {"augment": "translation", "augment_shift": 0.0625}},
}
DEFAULT_RECIPE = "default"
DCGAN_LR = 2e-4  # Radford et al. 2015


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


def resolution(text: str) -> int:
    """--res as an argument type: a size the generator can grow to, at most MAX_RES."""
    value = int(text)
    if value > types.MAX_RES:
        raise argparse.ArgumentTypeError(f"{value} is too large: at most {types.MAX_RES} px")
    try:
        upsampling_plan(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix(f"--res {value} ")) from None
    return value


def augment_policy(text: str) -> str:
    """--augment as an argument type: "none" or a comma-separated subset of AUGMENTATIONS."""
    if text == "none":
        return ""
    try:
        return ",".join(parse_policy(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--augment: ")) from None


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def recipe_flags(recipe: str) -> str:
    """A recipe's settings as the flags that give them: "--ema 0.999 --d-dropout 0.0 ..., and from 64 px ..."."""
    def flags(settings: dict) -> str:
        return " ".join(f"{flag_name(name)} {value}" for name, value in settings.items())

    return flags(RECIPES[recipe]) + "".join(f", and from {size} px {flags(settings)}"
                                            for size, settings in RECIPES_FROM_SIZE.get(recipe, {}).items())


def recipe_at(recipe: str, res: int) -> dict:
    """A recipe's settings for images of `res` px."""
    settings = dict(RECIPES[recipe])
    for size, larger in sorted(RECIPES_FROM_SIZE.get(recipe, {}).items()):
        if res >= size:
            settings.update(larger)
    return settings


def setting(default, resume: str, help: str | None = None, **flag):
    """A TrainConfig field. `help` None: no command-line flag. `flag`: argparse options (type, choices...);
    `group`: the mutually exclusive group the flag belongs to."""
    return field(default=default, metadata={"resume": resume, "help": help, "flag": flag})


@dataclass
class TrainConfig:
    """Every setting of a run. The field defaults are the notebook recipe; RECIPES["default"] changes some."""

    recipe: str = setting("notebook", FIXED, "the settings a new run starts from: default (the default: the "
                          "notebook's models and loop with what beat it at equal time: "
                          f"{recipe_flags(DEFAULT_RECIPE)}) or notebook "
                          "(the course notebook's exactly). Flags given override the recipe's; docs/results.md "
                          "compares them",
                          choices=tuple(RECIPES))
    res: int = setting(DEFAULT_RES, FIXED, "image size in px: any multiple of 4 from 16", type=resolution)
    channels: int = setting(3, FIXED, "3 for colour, 1 for grayscale", type=int, choices=(1, 3))
    arch: str = setting("notebook", FIXED, "notebook: the course notebook's models; dcgan: Radford et al. 2015 "
                        "(transposed convs, no dropout, N(0, 0.02) init, lr 2e-4)", choices=("notebook", "dcgan"))
    g_filters: int = setting(256, FIXED, "the generator's widest convolutions (its last block has half; the "
                             "notebook's 256): fewer make a faster, smaller generator (--arch dcgan: no effect)",
                             type=types.positive_int, metavar="N")
    d_filters: int = setting(512, FIXED, "the discriminator's widest convolution (the others have a half, a "
                             "quarter, ... of it; the notebook's 512): fewer make a faster discriminator "
                             "(--arch dcgan: no effect)", type=types.positive_int, metavar="N")
    seed_size: int = setting(100, FIXED, "length of the latent seed vector", type=types.positive_int)
    batch_size: int = setting(32, FIXED, "images per replica; with --strategy the global batch is this × the "
                              "number of replicas", type=types.positive_int)
    lr: float = setting(1.5e-4, FIXED, "learning rate of both optimizers (2e-4 with --arch dcgan). The batch "
                        "size does not change it", type=types.positive_float)
    lr_g: float | None = setting(None, FIXED, "the generator's learning rate (default --lr)",
                                 type=types.positive_float)
    lr_d: float | None = setting(None, FIXED, "the discriminator's learning rate (default --lr)",
                                 type=types.positive_float)
    beta1: float = setting(0.5, FIXED, "Adam's beta_1", type=types.beta)
    beta2: float = setting(0.999, FIXED, "Adam's beta_2 (e.g. 0.99, as in StyleGAN)", type=types.beta)
    optimizer: str = setting("adam", FIXED, "the optimizer of D and of G", choices=("adam", "rmsprop"))
    loss: str = setting("bce", FIXED, "bce: binary cross-entropy; mse: least squares; hinge: the hinge "
                       "loss on D's logit (SAGAN, BigGAN)", choices=("bce", "mse", "hinge"))
    label_smoothing: float = setting(0.0, FIXED, "one-sided: D's real labels become 1 - this (e.g. 0.1)",
                                     type=types.fraction)
    label_noise: float = setting(0.0, FIXED, "uniform noise of this amplitude in D's labels: real ones pushed "
                                 "down, fake ones up (e.g. 0.15)", type=types.fraction)
    ema: float = setting(0.0, FIXED, "decay of a moving average of G's weights that makes the previews and the "
                         "saved generator, with a ramp-up for short runs (0: off)", type=types.ema_decay)
    ema_ramp: float = setting(10.0, FIXED, "the average's ramp-up: after k iterations its decay is min(--ema, "
                              "(1+k)/(R+k)), so it averages about the last 1/(R-1) of the run until --ema's "
                              "horizon is reached", type=types.ema_ramp, metavar="R")
    bn_recalibration: int = setting(0, CHANGEABLE, "recompute the BatchNorm statistics of the generator whose "
                                    "faces are shown (the moving average with --ema) from its own weights, over "
                                    "this many batches of fixed latents, before it draws or is saved; its "
                                    "training is untouched (0: off)", type=types.non_negative_int,
                                    metavar="BATCHES")
    spectral_norm: bool = setting(False, FIXED, "spectral normalisation of D's weights (Miyato et al. 2018)",
                                  action=argparse.BooleanOptionalAction)
    minibatch_stddev: bool = setting(False, FIXED, "D sees the batch's standard deviation as an extra channel "
                                     "(Karras et al. 2018)", action=argparse.BooleanOptionalAction)
    d_dropout: float = setting(0.25, FIXED, "dropout rate before each of D's convolution blocks and its output "
                               "layer (0: none; --arch dcgan has none)", type=types.dropout, metavar="RATE")
    r1: float = setting(0.0, FIXED, "weight γ of a zero-centred penalty on D's gradient at real images (R1, "
                        "Mescheder et al. 2018): γ/2·E‖∇ logit‖², as one more step of D's optimizer every "
                        "--r1-every iterations, weighted by that interval (0: off)", type=types.non_negative_float,
                        metavar="GAMMA")
    r1_every: int = setting(16, FIXED, "iterations between --r1's steps (StyleGAN2's lazy regularisation)",
                            type=types.positive_int, metavar="K")
    mirror: bool = setting(False, FIXED, "flip each real image left to right at random (a face set twice the "
                           "size for D; StyleGAN's --mirror)", action=argparse.BooleanOptionalAction)
    augment: str = setting("", FIXED, "DiffAugment (Zhao et al. 2020) of every image D sees: a comma-separated "
                           "subset of color,translation,cutout; 'none' for none", type=augment_policy,
                           metavar="POLICY")
    augment_shift: float = setting(TRANSLATION_SHIFT, FIXED, "--augment translation's largest shift, a share of "
                                   "the image's size (the paper's 1/8)", type=types.shift, metavar="SHARE")
    steps: int = setting(10_000, CHANGEABLE, "iterations in total (the notebook's EPOCHS)", type=types.positive_int,
                         group="length")
    save_every: int = setting(100, CHANGEABLE, "iterations between preview grids (the notebook's SAVE_FREQ)",
                              type=types.positive_int)
    checkpoint_every: int | None = setting(None, CHANGEABLE, "iterations between checkpoints (default: with "
                                           "every preview grid)", type=types.positive_int)
    keep_checkpoints: int = setting(2, CHANGEABLE, "newest checkpoints kept", type=types.positive_int)
    seed: int = setting(0, FIXED, "random seed: fixes the preview faces and the run", type=types.seed)
    data: str = setting("demo", FIXED, "folder of face images (searched recursively), or a .npy/.npz array of "
                        "images (uint8, or floats in [0,1] or [-1,1]; trains at its own size unless --res is "
                        "given); default ./face_images if it exists, else the built-in demo faces", group="source")
    min_size: int = setting(0, FIXED, "skip images whose short side is below this many px (0: smaller images "
                            "are upscaled)", type=types.non_negative_int)
    on_nan: str = setting("stop", CHANGEABLE, "when a loss turns NaN/inf: stop, or reload the last checkpoint "
                          "with halved learning rates and go on (at most 3 times)", choices=("stop", "rollback"))
    precision: str = setting("auto", FIXED, "auto: mixed_float16 on a GPU, mixed_bfloat16 on a CPU "
                             "with avx512_bf16 or amx_bf16 (better faces per hour there), else float32. D's "
                             "output and the losses stay float32 in every mode",
                             choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"))
    layers: str = setting("auto", CHANGEABLE, "the notebook models' layers: fast (the exact, faster forms of "
                          "fast_layers.py), stock (Keras's own), or auto: fast on a CPU, where it was measured "
                          "faster; on a GPU or TPU the faster of the two in a probe of a few iterations at "
                          "start-up. Both compute the same function with the same weights; a checkpoint of "
                          "either resumes into the other", choices=("auto", "fast", "stock"))
    layers_chosen: dict | None = setting(None, CHANGEABLE)  # this session's form, reason and probe figures
    eval_every: int = setting(0, CHANGEABLE, "iterations between SWD and face-rate evaluations, logged in "
                              "metrics.jsonl (0: never; needs the [metrics] extra)", type=types.non_negative_int)
    eval_images: int = setting(500, CHANGEABLE, f"images per evaluation, at least {types.MIN_EVAL_IMAGES} (with fewer "
                               f"than {types.MIN_FLOOR_IMAGES} real ones, no real-vs-real SWD floor)",
                               type=types.evaluation_images)
    preview_rows: int = setting(4, FIXED)
    preview_cols: int = setting(7, FIXED)
    strategy: str = setting("auto", CHANGEABLE, "tf.distribute strategy (auto: a Colab TPU, all GPUs when there "
                            "are 2 or more, else none); multiworker reads TF_CONFIG. --batch-size is per replica, "
                            "so the global batch grows with the replicas; the learning rate is kept as given, "
                            "not scaled", choices=("auto", "none", "mirrored", "multiworker", "tpu"))

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
        """The settings a config.json holds; OSError or ValueError when it cannot be read or is not settings."""
        values = json.loads(Path(path).read_text())
        if not isinstance(values, dict):
            raise ValueError(f"it holds a JSON {type(values).__name__}, not the run's settings")
        return cls.from_dict(values)


def fields_that_are(resume: str) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["resume"] == resume)


def add_flags(parser: argparse.ArgumentParser) -> dict[str, argparse._MutuallyExclusiveGroup]:
    """One flag per TrainConfig field that has help text; returns the mutually exclusive groups by name.

    Every flag defaults to None ("not given"), so that a resumed run can tell a flag from a default.
    """
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for item in dataclasses.fields(TrainConfig):
        if item.metadata["help"] is None:
            continue
        options = dict(item.metadata["flag"])
        group = options.pop("group", None)
        target = groups.setdefault(group, parser.add_mutually_exclusive_group()) if group else parser
        text = item.metadata["help"]
        target.add_argument(flag_name(item.name), help=text + default_text(item.name, text), **options)
    return groups


def default_text(name: str, text: str) -> str:
    """" (default X)" for a flag's help `text`, naming each recipe's default where they differ; "" when the
    text already says what the default is."""
    if "default" in text:
        return ""
    values = {recipe: recipe_default(recipe, name) for recipe in RECIPES}
    if len(set(values.values())) == 1:
        return f" (default {values[DEFAULT_RECIPE]})"
    return " (default " + "; ".join(f"{value} with --recipe {recipe}" for recipe, value in values.items()) + ")"


def recipe_default(recipe: str, name: str) -> str:
    """A setting's value in a recipe for a help text: "128", or by size "none, from 64 px translation"."""
    sizes = (0, *sorted(RECIPES_FROM_SIZE.get(recipe, {})))
    field_default = TrainConfig.__dataclass_fields__[name].default
    values = [recipe_at(recipe, size).get(name, field_default) for size in sizes]
    shown = ["none" if value == "" else str(value) for value in values]
    return shown[0] + "".join(f", from {size} px {value}" for size, value, before in zip(sizes[1:], shown[1:], shown)
                              if value != before)


def recipe_settings(given: dict) -> dict:
    """TrainConfig fields of a new run: its recipe's settings, overridden by `given` (the user's flags).

    --arch dcgan brings its paper's learning rate unless a learning rate is given.
    """
    recipe = given.get("recipe", DEFAULT_RECIPE)
    settings = {**recipe_at(recipe, given.get("res", DEFAULT_RES)), **given, "recipe": recipe}
    if settings.get("arch") == "dcgan":
        settings.setdefault("lr", DCGAN_LR)
    return settings
