"""Running the tools from a Jupyter or Colab notebook: the newest grid and loss plot shown live in the training
cell (writers.NotebookDisplay), a failed tool reported in one line that also stops Runtime → Run all, and a stop
(the kernel interrupted) as a clean stop that says how to continue.

IPython is never imported here unless the process has already loaded it: a terminal run is unchanged.
"""

from __future__ import annotations

import shlex
import signal
from pathlib import Path

from dcgan_faces import cli, staging
from dcgan_faces.interrupt import in_kernel as in_kernel  # where the notebook's users look for it

DRIVE_MOUNT = Path("/content/drive")
DRIVE_ROOT = DRIVE_MOUNT / "MyDrive"
LOCAL_DRIVE = Path("drive")  # where a notebook run outside Colab keeps what would go to Drive
DRIVE_RUNS = "dcgan_runs"  # the notebook's run folders on Drive: MyDrive/dcgan_runs/...
STOPPED = 128 + signal.SIGINT  # a tool's exit code after the kernel's interrupt stopped it cleanly


def drive_folders(data: str, cache: str, run_folder: str) -> tuple[str, str, str]:
    """The notebook's Drive folders: on Colab, Drive mounted and the paths as given. Elsewhere (no Drive: a
    local Jupyter, CI), each /content/drive/MyDrive path moved under ./drive, and the demo faces for a
    data folder that is not there, so that the notebook runs unchanged."""
    if staging.in_colab():
        from google.colab import drive as colab_drive

        colab_drive.mount(str(DRIVE_MOUNT))
        if not Path(data).is_dir():
            raise ToolStopped(f"DATA: {data} is not a folder on your Drive; put your face photos there (subfolders "
                              "are searched too), or set DATA to the folder that holds them")
        return data, cache, run_folder
    data, cache, run_folder = (_local(path) for path in (data, cache, run_folder))
    if not Path(data).is_dir():
        print(f"not on Colab: no {data} here, so the demo faces stand in for your photos")
        data = "demo"
    return data, cache, run_folder


def trained_run(model: str = "") -> str:
    """`model` as given; blank: the run folder whose generator was saved last, under ./runs or the notebook's
    Drive runs folder (./drive/dcgan_runs outside Colab)."""
    if model.strip():
        return model.strip()
    drive_runs = DRIVE_ROOT / DRIVE_RUNS if staging.in_colab() else LOCAL_DRIVE / DRIVE_RUNS
    generators = [*Path("runs").glob("*/generator.keras"), *drive_runs.glob("*/generator.keras")]
    if not generators:
        raise ToolStopped("MODEL: no trained generator here yet; run a training cell above first, or set MODEL to "
                          "a run folder")
    return str(max(generators, key=lambda path: path.stat().st_mtime).parent)


def _local(path: str) -> str:
    """/content/drive/MyDrive/x → drive/x; other paths unchanged."""
    try:
        return str(LOCAL_DRIVE / Path(path).relative_to(DRIVE_ROOT))
    except ValueError:
        return path


class ToolStopped(Exception):
    """A tool's non-zero exit in a notebook cell: IPython shows only this one line (no traceback), and the cells
    queued after it (Run all) do not run."""

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


def run(command: str, argv: str | list | tuple = "") -> None:
    """`dcgan-faces COMMAND ARGV...` in this kernel: run("train", "--res 32 --steps 300") or run("train", ["--res",
    32, "--steps", 300]). Raises ToolStopped when the tool fails. Interrupting the kernel (Runtime → Interrupt
    execution) is a clean stop, no failure: training finishes its step, saves a checkpoint and says where it
    stopped; running the cell again continues."""
    arguments = _arguments(command, argv)
    try:
        code = cli.main([command, *arguments])
    except SystemExit as exit_:  # argparse on a mistyped flag: its usage line is printed already
        code = exit_.code
    except KeyboardInterrupt:  # a second interrupt, or one outside training's own handling
        print(f"{command}: interrupted, stopped at once; run this cell again to continue")
        return
    if code and code != STOPPED:  # a stop has said where it stopped and how to continue
        raise ToolStopped(f"{command} stopped with exit code {code}{_signal_name(code)}: the lines above say why; "
                          "run this cell again to resume or retry")


def _arguments(command: str, argv) -> list[str]:
    """The flags as a list: a string split as a shell would ("--out 'my run'"), a list or tuple as it is."""
    if isinstance(argv, str):
        try:
            return shlex.split(argv)
        except ValueError as error:  # an unclosed quote
            raise ToolStopped(f"run({command!r}, {argv!r}): {error}; close the quote") from None
    if isinstance(argv, list | tuple):
        return [str(arg) for arg in argv]
    raise ToolStopped(f"run({command!r}, ...): give the flags as a string (\"--res 32 --steps 300\") or a list "
                      f"([\"--res\", 32]), not {type(argv).__name__}")


def _signal_name(code) -> str:
    try:
        return f" ({signal.Signals(code - 128).name})" if isinstance(code, int) and code > 128 else ""
    except ValueError:
        return ""
