"""Running the tools from a Jupyter or Colab notebook: the newest grid and loss plot shown live in the training
cell, and a failed or stopped tool reported in one line that also stops Runtime → Run all.

IPython is never imported here unless the process has already loaded it: a terminal run is unchanged.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from dcgan_faces import staging
from dcgan_faces.writers import Writer

DRIVE_MOUNT = Path("/content/drive")
DRIVE_ROOT = DRIVE_MOUNT / "MyDrive"
LOCAL_DRIVE = Path("drive")  # where a notebook run outside Colab keeps what would go to Drive


def in_kernel() -> bool:
    """True inside a Jupyter kernel (Colab's included), where a cell's output can show images."""
    if "IPython" not in sys.modules:
        return False
    shell = sys.modules["IPython"].get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def drive_folders(data: str, cache: str, run_folder: str) -> tuple[str, str, str]:
    """The notebook's Drive folders: on Colab, Drive mounted and the paths as given. Elsewhere (no Drive: a
    local Jupyter, CI), each /content/drive/MyDrive path moved under ./drive, and the demo faces for a
    data folder that is not there, so that the notebook runs unchanged."""
    if staging.in_colab():
        from google.colab import drive as colab_drive

        colab_drive.mount(str(DRIVE_MOUNT))
        return data, cache, run_folder
    data, cache, run_folder = (_local(path) for path in (data, cache, run_folder))
    if not Path(data).is_dir():
        print(f"not on Colab: no {data} here, so the demo faces stand in for your photos")
        data = "demo"
    return data, cache, run_folder


def _local(path: str) -> str:
    """/content/drive/MyDrive/x → drive/x; other paths unchanged."""
    try:
        return str(LOCAL_DRIVE / Path(path).relative_to(DRIVE_ROOT))
    except ValueError:
        return path


class NotebookDisplay(Writer):
    """The newest preview grid and plots.png in the training cell's output, replaced in place at every grid."""

    def __init__(self, every: int):
        self.every = every
        self.handles: dict[str, object] = {}  # "grid", "plot": IPython DisplayHandle

    def on_train_begin(self, session):
        self.write(session)

    def on_train_end(self, session):
        self.write(session)

    def write(self, session):
        session.attempt("the grid shown in the notebook", lambda: self._show(session))

    def _show(self, session) -> None:
        from IPython.display import Image, display

        previews = session.run_folder.preview_files()
        for name, path in (("grid", previews[-1] if previews else None), ("plot", session.run_folder.plot_path)):
            if path is None or not path.exists():
                continue
            image = Image(data=Path(path).read_bytes(), format="png")
            if name in self.handles:
                self.handles[name].update(image)
            else:
                self.handles[name] = display(image, display_id=True)


class ToolStopped(Exception):
    """A tool's non-zero exit in a notebook cell: IPython shows only this one line (no traceback), and the cells
    queued after it (Run all) do not run."""

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


def run(command: str, argv: list[str]) -> None:
    """`dcgan-faces COMMAND ARGV...` in this kernel, e.g. run("train", ["--res", "32"]); raises ToolStopped when
    it exits non-zero. Interrupt the kernel (Ctrl-C) to stop training cleanly, with a checkpoint."""
    from dcgan_faces import cli

    try:
        code = cli.main([command, *(str(arg) for arg in argv)])
    except SystemExit as exit_:  # argparse on a mistyped flag: its usage line is printed already
        code = exit_.code
    except KeyboardInterrupt:
        raise ToolStopped(f"{command}: interrupted twice, stopped at once; run this cell again to resume from the "
                          "last checkpoint") from None
    if code:
        raise ToolStopped(f"{command} stopped with exit code {code}{_signal_name(code)}: the lines above say why; "
                          "run this cell again to resume or retry")


def _signal_name(code) -> str:
    try:
        return f" ({signal.Signals(code - 128).name})" if isinstance(code, int) and code > 128 else ""
    except ValueError:
        return ""
