"""notebooks/colab.ipynb runs top to bottom in a real Jupyter kernel outside Colab, shows the grids while it
trains, stops cleanly on an interrupt; and what it needs from the package (dcgan_faces/notebook.py).

The test shrinks the run by rewriting the values of the notebook's `#@param` form fields in memory (as
papermill injects parameters): the code a user sees carries no test switches.
"""

import base64
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from dcgan_faces import notebook, quiet, staging

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "colab.ipynb"
SMALL = {"DEMO_RES": 16, "DEMO_STEPS": 4, "DEMO_EVERY": 2, "RES": 16, "STEPS": 4, "EVERY": 2}


def _cells() -> list[dict]:
    return json.loads(NOTEBOOK.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def with_params(source: str, values: dict) -> tuple[str, set]:
    """`source` with the form fields named in `values` set to them; and the names found."""
    found = set()

    def replace(match):
        found.add(match[1])
        return f"{match[1]} = {values[match[1]]!r}  {match[2]}"

    names = "|".join(map(re.escape, values))
    return re.sub(rf"^({names}) = .*?(#@param.*)$", replace, source, flags=re.M), found


def _install_cell() -> str:
    return next(_source(cell) for cell in _cells() if "PACKAGE =" in _source(cell))


# ------------------------------------------------------------------------------------------- the file itself


def test_the_committed_notebook_has_no_outputs_and_no_placeholders():
    cells = _cells()
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert code and all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)
    text = NOTEBOOK.read_text()
    assert not re.search(r"YOUR_NAME|<this repository|github\.com/[A-Z_]+/", text)
    first_code = _source(code[0])
    assert re.search(r'^PACKAGE = "/content/drive/MyDrive/dcgan_faces\.zip"  #@param', first_code, flags=re.M)
    assert "!python" not in text and "!pip" not in text, "the tools run in the kernel, where the grids can be shown"


def test_every_form_field_the_test_shrinks_is_in_the_notebook():
    found = set()
    for cell in _cells():
        found |= with_params(_source(cell), SMALL)[1]
    assert found == set(SMALL)


# ------------------------------------------------------------------------------------------- the install cell


def _fresh_runtime(monkeypatch, missing: set) -> list:
    """The install cell as on a fresh runtime: the modules in `missing` are not installed; pip calls are
    recorded, not run."""
    real_find_spec, calls = importlib.util.find_spec, []
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in missing else real_find_spec(name, *a))
    monkeypatch.setattr(subprocess, "run", lambda argv, **kw: calls.append(argv) or types.SimpleNamespace(
        returncode=0, stdout="", stderr=""))
    return calls


@pytest.fixture
def fresh_runtime(monkeypatch):
    """As on Colab: TensorFlow there, dcgan_faces not yet."""
    return _fresh_runtime(monkeypatch, {"dcgan_faces"})


def _run_install_cell(package: str):
    source, found = with_params(_install_cell(), {"PACKAGE": package})
    assert found == {"PACKAGE"}
    exec(compile(source, "install-cell", "exec"), {"__name__": "__main__"})


@pytest.mark.parametrize("package", ["/content/drive/MyDrive/dcgan_faces.zip", "git+https://github.com/YOUR_NAME/x",
                                     "", "<path to the repository>"])
def test_the_install_cell_says_in_one_line_what_to_put_in_package(fresh_runtime, package, capsys):
    with pytest.raises(Exception) as raised:
        _run_install_cell(package)
    rendered = raised.value._render_traceback_()
    assert len(rendered) == 1 and rendered[0].startswith("PACKAGE") and "\n" not in rendered[0]
    assert "repository" in rendered[0] and fresh_runtime == []


@pytest.mark.parametrize("package, target", [
    (str(ROOT), str(ROOT)),
    ("git+https://example.org/dcgan_faces.git", "dcgan_faces @ git+https://example.org/dcgan_faces.git"),
])
def test_the_install_cell_pip_installs_package_into_the_kernel(fresh_runtime, package, target):
    _run_install_cell(package)
    assert fresh_runtime == [[sys.executable, "-m", "pip", "install", "-q", target]]


def test_without_tensorflow_the_install_cell_adds_the_cpu_build(monkeypatch):
    calls = _fresh_runtime(monkeypatch, {"dcgan_faces", "tensorflow"})
    _run_install_cell(str(ROOT))
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", f"{ROOT}[cpu]"]]


def test_the_install_cell_installs_nothing_where_the_package_is_importable(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **kw: calls.append(a))
    _run_install_cell("/content/drive/MyDrive/dcgan_faces.zip")  # not there, and not needed
    assert calls == [] and "ready" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------- dcgan_faces.notebook


def test_outside_colab_the_drive_folders_are_local_and_missing_data_is_the_demo(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(staging, "in_colab", lambda: False)
    mine = "/content/drive/MyDrive"
    assert notebook.drive_folders(f"{mine}/faces", f"{mine}/cache", "/elsewhere/run") == (
        "demo", "drive/cache", "/elsewhere/run")
    assert "demo faces" in capsys.readouterr().out
    (tmp_path / "drive/faces").mkdir(parents=True)
    assert notebook.drive_folders(f"{mine}/faces", f"{mine}/cache", f"{mine}/r")[0] == "drive/faces"


def test_on_colab_drive_is_mounted_and_the_folders_kept(monkeypatch):
    mounted = []
    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mounted.append)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    paths = ("/content/drive/MyDrive/faces", "/content/drive/MyDrive/cache", "/content/drive/MyDrive/run")
    assert notebook.drive_folders(*paths) == paths and mounted == ["/content/drive"]


def test_in_kernel_only_with_an_ipython_kernel_already_loaded(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert notebook.in_kernel() is False
    shell = None
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert notebook.in_kernel() is False  # IPython imported, no shell
    shell = types.SimpleNamespace()
    assert notebook.in_kernel() is False  # a terminal IPython: no kernel
    shell.kernel = object()
    assert notebook.in_kernel() is True


def test_a_failed_tool_is_one_line_without_traceback(tmp_path, capsys):
    with pytest.raises(notebook.ToolStopped) as raised:
        notebook.run("movie", [tmp_path / "nothing"])
    assert "no preview grids" in capsys.readouterr().err
    assert raised.value._render_traceback_() == [
        "movie stopped with exit code 2: the lines above say why; run this cell again to resume or retry"]
    with pytest.raises(notebook.ToolStopped, match="exit code 2"):
        notebook.run("movie", ["--no-such-flag"])  # argparse's exit, not a SystemExit traceback


@pytest.mark.slow
def test_a_terminal_run_shows_no_grids_and_the_package_never_imports_ipython_itself():
    pytest.importorskip("IPython")
    code = ("import sys; from dcgan_faces import notebook; assert 'IPython' not in sys.modules; "
            "from dcgan_faces import session; import IPython; assert not notebook.in_kernel()")  # TF may load IPython
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ------------------------------------------------------------------------------------------- in a real kernel


def _client(nb, folder: Path, timeout: int = 600):
    nbclient = pytest.importorskip("nbclient")
    return nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                   resources={"metadata": {"path": str(folder)}})


def _outputs(cell, kind: str) -> list:
    return [output for output in cell.outputs if output.output_type == kind]


def _images(cell) -> list:
    return [output for output in cell.outputs if "image/png" in output.get("data", {})]


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom_outside_colab_and_shows_the_grids_while_training(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)  # a user's kernel: quiet.py alone hides the noise
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        cell.source = with_params(cell.source, SMALL)[0]
    started = time.perf_counter()
    _client(nb, tmp_path).execute()
    print(f"notebook executed in {time.perf_counter() - started:.0f} s")
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert [_outputs(cell, "error") for cell in code] == [[]] * len(code)
    install, demo, mine, faces = code
    assert "ready" in "".join(out.text for out in _outputs(install, "stream"))

    for cell, run in ((demo, tmp_path / "runs/demo_16"), (mine, tmp_path / "drive/dcgan_runs/faces64")):
        assert sorted(p.name for p in (run / "previews").iterdir()) == [
            "iter-00000000.png", "iter-00000002.png", "iter-00000004.png"]
        assert (run / "plots.png").is_file() and (run / "generator.keras").is_file()
        grid, plot = _images(cell)  # three grids and two plots, each shown in one place updated: the newest
        assert base64.b64decode(grid.data["image/png"]) == (run / "previews/iter-00000004.png").read_bytes()
        assert base64.b64decode(plot.data["image/png"]) == (run / "plots.png").read_bytes()
        text = "".join(out.text for out in _outputs(cell, "stream"))
        assert "iteration 2/4" in text and "iteration 4/4" in text and "done: 4 iterations" in text
        assert not quiet.NOISE.search(text) and "Traceback" not in text, "TensorFlow's import is quiet in a kernel"
    assert any("image/gif" in out.get("data", {}) for out in faces.outputs) and len(_images(faces)) == 1
    assert (tmp_path / "faces.png").is_file() and not (ROOT / "faces.png").exists()


@pytest.mark.slow
def test_interrupting_the_kernel_stops_training_cleanly_and_running_the_cell_again_resumes(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    # three kept: resuming to `stopped + 2` may write two checkpoints, and the stop's own must still be there
    argv = ["--data", "demo", "--res", 16, "--save-every", 2, "--batch-size", 8, "--keep-checkpoints", 3]
    again = ("import glob\nstopped = max(int(p[-12:-4]) for p in glob.glob('runs/demo_16/checkpoints/ckpt-*.npz'))\n"
             f"run('train', {argv!r} + ['--steps', stopped + 2])")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"from dcgan_faces.notebook import run\nrun('train', {argv!r} + ['--steps', 100_000])"),
        nbformat.v4.new_code_cell(again)])
    client = _client(nb, tmp_path, timeout=300)
    previews = tmp_path / "runs/demo_16/previews"

    def interrupt_after_a_few_grids():
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(list(previews.glob("iter-*.png"))) < 3:
            time.sleep(0.5)
        os.kill(client.km.provisioner.process.pid, signal.SIGINT)  # what Jupyter's "Interrupt" sends

    threading.Thread(target=interrupt_after_a_few_grids, daemon=True).start()
    client.execute()
    interrupted, resumed = nb.cells
    text = "".join(out.text for out in _outputs(interrupted, "stream"))
    assert "SIGINT: finishing this step, then saving a checkpoint" in text
    stopped = int(re.search(r"stopped at iteration ([\d,]+)", text)[1].replace(",", ""))
    (error,) = _outputs(interrupted, "error")
    assert error.ename == "ToolStopped" and len(error.traceback) == 1 and "(SIGINT)" in error.traceback[0]
    run = tmp_path / "runs/demo_16"
    assert (run / f"checkpoints/ckpt-{stopped:08d}.npz").is_file() and (run / "generator.keras").is_file()
    assert len(_images(interrupted)) == 2  # the newest grid and the plot, shown until the end

    text = "".join(out.text for out in _outputs(resumed, "stream"))
    assert f"resuming from iteration {stopped:,}" in text and f"done: {stopped + 2:,} iterations" in text
    assert _outputs(resumed, "error") == [] and len(_images(resumed)) == 2
