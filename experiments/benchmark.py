"""Speed of this project's training and cache against the course notebook's, measured in one process.

    PYTHONPATH=. python experiments/benchmark.py [--res 64] [--batch-size 32] [--steps 24] [--warmup 3]
        [--rounds 4] [--threads INTRA,INTER] [--skip-train] [--skip-gpu] [--skip-prep] [--prep-images N]
        [--json-only]

Prints one JSON object on stdout and (unless --json-only) a short table on stderr. Training speeds are
medians over interleaved rounds (A, B, C, C, B, A...), so that load from other processes hits every
contestant alike: compare the ratios, not the absolute figures. Contestants:
- notebook: the course notebook's loop, ported faithfully (stock Keras layers, generator.predict every
  iteration, the whole data set as float64), with the two Keras 3 necessities (two optimizers, D's
  trainable flag restored for its own steps);
- ours, stock layers: this project's Trainer with the notebook's stock layers (the loop alone);
- ours, float32: the Trainer as `train` runs it in float32 (the exact, faster layers of fast_layers.py);
- ours, auto: the Trainer with the precision `--precision auto` chooses on this machine, timed only where
  that is not float32 (on a CPU it is, and "ours, float32" is its figure).
On a GPU a third section times the Trainer in every combination of float32 / mixed_float16, stock / fast
layers (fast_layers.py) and jit_compile off / on (Keras turns it on by default on a GPU), at 64 and 128 px,
so that the first run on a GPU says which combination is fastest there; a contestant that fails records its
error and the others go on. Without a GPU that section says why it was skipped.
Each preprocessing contestant runs in a fresh subprocess, so that its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GPU_RESOLUTIONS = (64, 128)
GPU_PRECISIONS = ("float32", "mixed_float16")
DEFAULT_FACES = REPO / ".." / "shared" / "data" / "faces" / "celeba_6k"
SEED_SIZE = 100


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def proc_status(field: str) -> int:
    """A field of /proc/self/status in bytes (VmHWM: peak resident set, VmRSS: current)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def machine() -> dict:
    from dcgan_faces.precision import cpu_flags

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = cpu_flags()
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cpu_flags": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni",
                                     "amx_bf16", "amx_tile", "amx_int8"}),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
    }
    try:
        import keras
        import tensorflow as tf

        info["tensorflow"], info["keras"] = tf.__version__, keras.__version__
        info["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
    except ImportError:
        pass
    return info


# ----------------------------------------------------------------------------------------- training loops

class NotebookLoop:
    """The course notebook's loop, ported faithfully except for two Keras 3 necessities: two optimizers
    (build_gan) and `discriminator.trainable` restored around D's steps so that D trains at all."""

    def __init__(self, config, images: np.ndarray):
        import keras

        from dcgan_faces.models import build_gan

        keras.utils.set_random_seed(0)
        keras.mixed_precision.set_global_policy("float32")
        self.gan = build_gan(config, fast=False)
        self.batch_size = config.batch_size
        # The notebook: training_data = np.array(list of uint8 images) / 127.5 - 1  → float64 in memory.
        self.training_data = np.array(images) / 127.5 - 1
        self.y_real = np.ones((self.batch_size, 1))
        self.y_fake = np.zeros((self.batch_size, 1))

    def step(self) -> None:
        gan, b = self.gan, self.batch_size
        idx = np.random.randint(0, self.training_data.shape[0], b)
        x_real = self.training_data[idx]
        seed = np.random.normal(0, 1, (b, SEED_SIZE))
        x_fake = gan.generator.predict(seed, verbose=0)  # the notebook left verbose at its default
        gan.discriminator.trainable = True
        d_metrics_real = gan.discriminator.train_on_batch(x_real, self.y_real)
        d_metrics_fake = gan.discriminator.train_on_batch(x_fake, self.y_fake)
        gan.discriminator.trainable = False
        self.d_metrics = 0.5 * np.add(d_metrics_real, d_metrics_fake)
        self.g_metrics = gan.combined.train_on_batch(seed, self.y_real)


def contestants(args, images: np.ndarray) -> tuple[dict, dict]:
    """({name: object with step()}, the precision choice of --precision auto)."""
    import dataclasses

    import keras

    from dcgan_faces.config import TrainConfig
    from dcgan_faces.precision import choose
    from dcgan_faces.trainer import Trainer

    config = TrainConfig(res=args.res, batch_size=args.batch_size, recipe="notebook", precision="float32")
    choice = choose(dataclasses.replace(config, precision="auto"))
    auto = dataclasses.replace(config, precision=choice.policy)
    loops = {"notebook": NotebookLoop(config, images), "ours, stock layers": Trainer(config, images, fast=False),
             "ours, float32": Trainer(config, images)}
    if auto != config:
        loops["ours, auto"] = Trainer(auto, images)
        keras.mixed_precision.set_global_policy("float32")  # the auto trainer's policy, not for models built later
    return loops, {"policy": choice.policy, "reason": choice.reason}


def bench_training(args) -> dict:
    images = np.random.default_rng(0).integers(0, 256, (512, args.res, args.res, 3), dtype=np.uint8)
    peaks = [peak_conv_gflops()]  # before and after the rounds: a shared machine's speed drifts
    started = time.perf_counter()
    loops, choice = contestants(args, images)
    for loop in loops.values():
        for _ in range(max(args.warmup, 1)):
            loop.step()
    log(f"  built and warmed up ({args.warmup} steps each) in {time.perf_counter() - started:.1f} s; "
        f"auto chose {choice['policy']} ({choice['reason']})")
    names = list(loops)
    per_round = max(1, args.steps // args.rounds)
    seconds = timed_rounds(loops, args.rounds, per_round)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    peaks.append(peak_conv_gflops())
    base = median["notebook"]
    result = {
        "res": args.res, "batch_size": args.batch_size, "rounds": args.rounds, "steps_per_round": per_round,
        "warmup_steps": args.warmup, "training_images": "512 random uint8", "auto_precision": choice,
        "loops": {name: {"seconds_per_iteration": round(median[name], 4),
                         "images_per_s": round(args.batch_size / median[name], 2),
                         "ratio_over_notebook": round(base / median[name], 3),
                         "rounds_seconds_per_iteration": [round(x, 4) for x in seconds[name]]} for name in names},
    }
    result["flops"] = flops_report(args, median, peaks)
    return result


def timed_rounds(loops: dict, rounds: int, per_round: int) -> dict[str, list[float]]:
    """Seconds per iteration of each loop in each round; the order alternates (A B C, C B A...) so that
    none always goes first."""
    names = list(loops)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            begin = time.perf_counter()
            for _ in range(per_round):
                loops[name].step()
            seconds[name].append((time.perf_counter() - begin) / per_round)
        log(f"  round {r + 1}/{rounds}: " + ", ".join(f"{n} {seconds[n][-1]:.3f} s" for n in names))
    return seconds


# --------------------------------------------------------------------------------------------------- GPU

def bench_gpu(args) -> dict:
    """Every combination of precision, layer form and jit_compile at 64 and 128 px; on a CPU, why not."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return {"skipped": "no GPU visible"}
    per_round = max(1, args.steps // args.rounds)
    result = {"gpus": [gpu.name for gpu in gpus], "batch_size": args.batch_size, "rounds": args.rounds,
              "steps_per_round": per_round, "warmup_steps": args.warmup, "baseline": "float32, stock, jit off"}
    for res in GPU_RESOLUTIONS:
        log(f"  GPU, {res} px...")
        result[f"{res}px"] = bench_gpu_resolution(args, res, per_round)
    return result


def bench_gpu_resolution(args, res: int, per_round: int) -> dict:
    from dcgan_faces.config import TrainConfig
    from dcgan_faces.trainer import Trainer

    images = np.random.default_rng(0).integers(0, 256, (512, res, res, 3), dtype=np.uint8)
    loops, contestants = {}, {}
    for precision in GPU_PRECISIONS:
        config = TrainConfig(res=res, batch_size=args.batch_size, recipe="notebook", precision=precision)
        for layers in ("stock", "fast"):
            for jit in (False, True):
                name = f"{precision}, {layers}, jit {'on' if jit else 'off'}"
                try:
                    trainer = Trainer(config, images, fast=layers == "fast")
                    for model in (trainer.gan.generator, trainer.gan.discriminator, trainer.gan.combined):
                        model.jit_compile = jit  # Keras falls back to off (with a warning) where XLA cannot
                    for _ in range(max(args.warmup, 1)):
                        trainer.step()
                except Exception as error:  # one failing combination must not hide the others
                    contestants[name] = {"failed": f"{type(error).__name__}: {str(error)[:300]}"}
                    log(f"  {name}: failed ({type(error).__name__})")
                    continue
                loops[name] = trainer
                contestants[name] = {"jit_compile": bool(trainer.gan.combined.jit_compile)}
    seconds = timed_rounds(loops, args.rounds, per_round)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    base = median.get("float32, stock, jit off")
    for name, value in median.items():
        contestants[name].update({
            "seconds_per_iteration": round(value, 5), "images_per_s": round(args.batch_size / value, 1),
            "ratio_over_baseline": round(base / value, 3) if base else None,
            "rounds_seconds_per_iteration": [round(x, 5) for x in seconds[name]]})
    fastest = min(median, key=median.get) if median else None
    return {"contestants": contestants, "fastest": fastest}


# ------------------------------------------------------------------------------------------------- FLOPs

def forward_flops(model) -> int:
    """Multiply-adds × 2 of every convolution and Dense layer, per image.

    A folded UpsampleConv2D does 4 multiply-adds per output value and input channel (a 2×2 window of the
    low-resolution input), where UpSampling2D + Conv2D 3×3 does 9.
    """
    from keras import layers

    from dcgan_faces.fast_layers import UpsampleConv2D

    total = 0
    for layer in every_layer(model):
        if isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            c_in = layer.input.shape[-1]
            taps = 4 if isinstance(layer, UpsampleConv2D) else layer.kernel_size[0] * layer.kernel_size[1]
            total += 2 * h * w * taps * c_in * c_out
        elif isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return total


def every_layer(model) -> list:
    """The layers of `model`, those of a nested model in its place."""
    import keras

    return [inner for layer in model.layers
            for inner in (every_layer(layer) if isinstance(layer, keras.Model) else [layer])]


def peak_conv_gflops(dtype: str = "float32", batch: int = 32, size: int = 64, channels: int = 256,
                     repeats: int = 3) -> float:
    import tensorflow as tf

    x = tf.random.normal((batch, size, size, channels), dtype=tf.float32)
    k = tf.random.normal((3, 3, channels, channels), dtype=tf.float32) * 0.01
    x, k = tf.cast(x, dtype), tf.cast(k, dtype)

    @tf.function
    def conv(x, k):
        return tf.reduce_sum(tf.cast(tf.nn.conv2d(x, k, 1, "SAME"), tf.float32))

    conv(x, k).numpy()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        conv(x, k).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * batch * size * size * 9 * channels * channels / best / 1e9


def flops_report(args, median: dict[str, float], peaks: list[float]) -> dict:
    from dcgan_faces.models import build_discriminator, build_generator

    f_d = forward_flops(build_discriminator(args.res))
    f_g = {fast: forward_flops(build_generator(args.res, SEED_SIZE, fast=fast)) for fast in (False, True)}
    # Backward of a layer ≈ 2 × its forward (input gradient + weight gradient). Per image:
    #   G forward F_G;  two D steps: 2 × 3·F_D;  combined: G 3·F_G + frozen D forward and input gradient 2·F_D
    per_iteration = {fast: (4 * f_g[fast] + 8 * f_d) * args.batch_size for fast in (False, True)}
    peak32 = max(peaks)
    report = {
        "formula": "per iteration = batch × (4·F_G + 8·F_D): G forward F_G, 2 D steps 2×3·F_D, combined "
                   "3·F_G + 2·F_D (frozen D: forward + input gradient only)",
        "generator_forward_gflop_per_image": {"stock": round(f_g[False] / 1e9, 4), "folded": round(f_g[True] / 1e9, 4)},
        "discriminator_forward_gflop_per_image": round(f_d / 1e9, 4),
        "gflop_per_iteration": {"stock": round(per_iteration[False] / 1e9, 1),
                                "folded": round(per_iteration[True] / 1e9, 1)},
        "peak_conv3x3_gflops_float32": round(peak32, 1),
        "peak_before_and_after_the_rounds": [round(peak, 1) for peak in peaks],
        "peak_benchmark": "tf.function conv2d (32,64,64,256) ⊛ 3×3×256×256, SAME, best of 3; the higher of two",
        "achieved_gflops": {}, "fraction_of_float32_peak": {},
    }
    for name, seconds in median.items():
        flops = per_iteration[name not in ("notebook", "ours, stock layers")]
        report["achieved_gflops"][name] = round(flops / seconds / 1e9, 1)
        report["fraction_of_float32_peak"][name] = round(flops / seconds / 1e9 / peak32, 3)
    return report


# --------------------------------------------------------------------------------------------- preprocessing

def child_main(argv: list[str]) -> None:
    """Run one preprocessing contestant in this fresh process and print its figures as JSON."""
    kind = argv[0]
    started = time.perf_counter()
    out: dict = {}
    if kind == "ours":
        folder, cache_dir, res = Path(argv[1]), Path(argv[2]), int(argv[3])
        from dcgan_faces.data import open_dataset

        dataset = open_dataset(str(folder), cache_dir, res, log=lambda m: None)
        out["seconds"] = time.perf_counter() - started
        out["images"] = len(dataset.images)
        out["cache_bytes"] = dataset.cache_path.stat().st_size
        del dataset
        again = time.perf_counter()
        dataset = open_dataset(str(folder), cache_dir, res, log=lambda m: None)
        out["reopen_seconds"] = time.perf_counter() - again
    elif kind == "notebook":
        folder, res = Path(argv[1]), int(argv[2])
        from PIL import Image

        training_data = []
        for filename in sorted(os.listdir(folder)):
            path = os.path.join(folder, filename)
            image = Image.open(path).resize((res, res), Image.LANCZOS)  # ANTIALIAS in the notebook
            training_data.append(np.asarray(image))
        training_data = np.reshape(training_data, (-1, res, res, 3))
        training_data = training_data.astype(np.float64)
        training_data = training_data / 127.5 - 1.0
        out["seconds"] = time.perf_counter() - started
        out["images"] = len(training_data)
        out["array_bytes"] = training_data.nbytes
    elif kind == "bigcache":
        tmp, count, res, batches = Path(argv[1]), int(argv[2]), int(argv[3]), int(argv[4])
        path = tmp / "big_64_64.npy"
        made = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, res, res, 3))
        made[-1] = 1  # sparse: only the last page is written
        made.flush()
        del made
        from dcgan_faces.batches import BatchSampler

        rss0 = proc_status("VmRSS")
        started = time.perf_counter()
        images = np.load(path, mmap_mode="r")
        sampler = BatchSampler(images, 32, 0)
        sampler.batch(0)
        out["open_and_first_batch_seconds"] = time.perf_counter() - started
        t = time.perf_counter()
        for k in range(1, batches):
            sampler.batch(k)
        out["seconds_per_batch"] = (time.perf_counter() - t) / max(batches - 1, 1)
        out["rss_growth_bytes"] = proc_status("VmRSS") - rss0
        out["file_bytes_logical"] = path.stat().st_size
        out["batches"] = batches
    out["peak_rss_bytes"] = proc_status("VmHWM")
    out["children_peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps(out))


def run_child(*argv: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_child", *argv],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child {argv[0]} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_large_photos(sources: list[Path], folder: Path, count: int, long_side: int = 1500) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(count):
        with Image.open(sources[i % len(sources)]) as image:
            image = image.convert("RGB")
            w, h = image.size
            scale = long_side / max(w, h)
            big = image.resize((round(w * scale), round(h * scale)), Image.Resampling.BICUBIC)
        big.save(folder / f"large_{i:04d}.jpg", quality=90)


def compare_loaders(folder: Path, res: int, work: Path) -> dict:
    ours = run_child("ours", str(folder), str(work / f"cache_{folder.name}"), str(res))
    notebook = run_child("notebook", str(folder), str(res))
    mib = 1 / 2**20
    return {
        "images": ours["images"],
        "ours_images_per_s": round(ours["images"] / ours["seconds"], 1),
        "notebook_images_per_s": round(notebook["images"] / notebook["seconds"], 1),
        "ratio_ours_over_notebook": round(notebook["seconds"] / ours["seconds"], 2),
        "ours_seconds": round(ours["seconds"], 2), "notebook_seconds": round(notebook["seconds"], 2),
        "ours_peak_rss_mib_main": round(ours["peak_rss_bytes"] * mib, 1),
        "ours_peak_rss_mib_worker_max": round(ours["children_peak_rss_bytes"] * mib, 1),
        "notebook_peak_rss_mib": round(notebook["peak_rss_bytes"] * mib, 1),
        "cache_mib_on_disk": round(ours["cache_bytes"] * mib, 2),
        "notebook_float64_array_mib": round(notebook["array_bytes"] * mib, 2),
        "reopen_existing_cache_ms": round(ours["reopen_seconds"] * 1e3, 1),
    }


def bench_prep(args) -> dict:
    faces = Path(args.faces).resolve()
    if not faces.is_dir():
        return {"skipped": f"no folder {faces}: preprocessing benchmark skipped"}
    files = sorted(p for p in faces.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    work = Path(tempfile.mkdtemp(prefix="dcgan_bench_"))
    result: dict = {"source": str(faces), "res": args.res}
    try:
        if args.prep_images and args.prep_images < len(files):
            subset = work / "subset"
            subset.mkdir()
            for path in files[: args.prep_images]:
                (subset / path.name).symlink_to(path)
            folder = subset
        else:
            folder = faces
        log(f"  preprocessing {folder}...")
        result["folder"] = compare_loaders(folder, args.res, work)
        log("  large photos...")
        large = work / "large"
        make_large_photos(files[: args.large_images], large, args.large_images)
        from PIL import Image

        with Image.open(next(large.iterdir())) as probe:
            size = probe.size
        result["large_photos"] = {"size_px": list(size), "note": "fewer than data.SERIAL_BELOW files are "
                                  "decoded serially: this isolates JPEG draft mode",
                                  **compare_loaders(large, args.res, work)}
        shutil.rmtree(large, ignore_errors=True)
        log("  200k-image cache...")
        big = run_child("bigcache", str(work), str(args.big_images), "64", "100")
        result["open_200k_cache"] = {
            "images": args.big_images, "file_gib": round(big["file_bytes_logical"] / 2**30, 2),
            "open_and_first_batch_ms": round(big["open_and_first_batch_seconds"] * 1e3, 1),
            "ms_per_batch": round(big["seconds_per_batch"] * 1e3, 2),
            "rss_growth_mib_after_100_batches": round(big["rss_growth_bytes"] / 2**20, 1),
            "note": "sparse file; np.load(mmap_mode='r') + BatchSampler(batch 32)",
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


# ---------------------------------------------------------------------------------------------------- main

def table(report: dict) -> str:
    lines = []
    train = report.get("training")
    if train:
        lines.append(f"training {train['res']} px, batch {train['batch_size']} (median of {train['rounds']} rounds; "
                     f"auto chose {train['auto_precision']['policy']})")
        for name, v in train["loops"].items():
            lines.append(f"  {name:20s} {v['seconds_per_iteration']:7.3f} s/it {v['images_per_s']:7.1f} img/s  "
                         f"×{v['ratio_over_notebook']} vs notebook  {train['flops']['achieved_gflops'][name]} GFLOP/s")
        f = train["flops"]
        lines.append(f"  GFLOP per iteration: stock {f['gflop_per_iteration']['stock']}, folded "
                     f"{f['gflop_per_iteration']['folded']}; measured conv peak {f['peak_conv3x3_gflops_float32']} "
                     "GFLOP/s (float32)")
    gpu = report.get("gpu")
    if gpu and "skipped" in gpu:
        lines.append(f"GPU: skipped, {gpu['skipped']}")
    elif gpu:
        for res in GPU_RESOLUTIONS:
            part = gpu[f"{res}px"]
            lines.append(f"GPU {res} px, batch {gpu['batch_size']} (fastest: {part['fastest']})")
            for name, v in part["contestants"].items():
                lines.append(f"  {name:32s} " + (v["failed"] if "failed" in v else
                             f"{v['seconds_per_iteration']:8.4f} s/it {v['images_per_s']:8.1f} img/s  "
                             f"×{v['ratio_over_baseline']} vs {gpu['baseline']}"))
    prep = report.get("preprocessing")
    if prep:
        if "skipped" in prep:
            lines.append(f"preprocessing: {prep['skipped']}")
        for key in ("folder", "large_photos"):
            if key in prep:
                p = prep[key]
                lines.append(f"prep {key} ({p['images']} images): ours {p['ours_images_per_s']} img/s, notebook "
                             f"{p['notebook_images_per_s']} img/s (×{p['ratio_ours_over_notebook']}); peak RSS "
                             f"{p['ours_peak_rss_mib_main']} vs {p['notebook_peak_rss_mib']} MiB; cache "
                             f"{p['cache_mib_on_disk']} MiB vs float64 {p['notebook_float64_array_mib']} MiB; "
                             f"reopen {p['reopen_existing_cache_ms']} ms")
        if "open_200k_cache" in prep:
            b = prep["open_200k_cache"]
            lines.append(f"200k cache: open+first batch {b['open_and_first_batch_ms']} ms, "
                         f"{b['ms_per_batch']} ms/batch, RSS +{b['rss_growth_mib_after_100_batches']} MiB")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--res", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=24, help="timed steps per loop, split over the rounds")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", default=None, help="INTRA,INTER op threads for TensorFlow")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-gpu", action="store_true", help="skip the GPU section")
    parser.add_argument("--skip-prep", action="store_true")
    parser.add_argument("--prep-images", type=int, default=0, help="use only the first N images (0: all)")
    parser.add_argument("--large-images", type=int, default=200)
    parser.add_argument("--big-images", type=int, default=200_000)
    parser.add_argument("--faces", default=str(DEFAULT_FACES))
    parser.add_argument("--json-only", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_child"]:
        child_main(argv[1:])
        return
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    if args.threads:
        import tensorflow as tf

        intra, inter = (int(x) for x in args.threads.split(","))
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    report: dict = {"machine": machine(), "threads": args.threads or "tensorflow default"}
    started = time.perf_counter()
    if not args.skip_train:
        log("training...")
        report["training"] = bench_training(args)
    if not args.skip_gpu:
        log("GPU...")
        report["gpu"] = bench_gpu(args)
    if not args.skip_prep:
        log("preprocessing...")
        report["preprocessing"] = bench_prep(args)
    report["seconds"] = round(time.perf_counter() - started, 1)
    if not args.json_only:
        log(table(report))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
