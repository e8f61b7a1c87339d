"""notebooks/colab.ipynb runs top to bottom with its defaults in a real Jupyter kernel outside Colab, in minutes,
shows the grids while it trains and faces at the end; each cell runs on its own after the set-up cell; a stop is a
clean stop; and what it needs from the package (dcgan_faces/notebook.py).

Where a test changes the notebook's settings, it rewrites the values of its `#@param` form fields in memory (as
papermill injects parameters): the code a user sees carries no test switches.
"""

import ast
import base64
import builtins
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
MY_PHOTOS_SMALL = {"TRAIN_ON_MY_PHOTOS": True, "RES": 16, "STEPS": 4, "EVERY": 2}
DEMO_SMALL = {"DEMO_RES": 16, "DEMO_STEPS": 4, "DEMO_EVERY": 2}
REAL_FIND_SPEC = importlib.util.find_spec


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


def test_every_form_field_the_tests_set_is_in_the_notebook():
    found = set()
    for cell in _cells():
        found |= with_params(_source(cell), {**MY_PHOTOS_SMALL, **DEMO_SMALL})[1]
    assert found == {*MY_PHOTOS_SMALL, *DEMO_SMALL}


def free_names(source: str) -> set[str]:
    """Names a cell reads that it neither assigns, imports nor defines itself, and that are not builtins."""
    tree = ast.parse(source)
    defined = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    defined |= {(alias.asname or alias.name).split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import | ast.ImportFrom) for alias in node.names}
    defined |= {node.name for node in ast.walk(tree)
                if isinstance(node, ast.FunctionDef | ast.ClassDef)}
    defined |= {arg.arg for node in ast.walk(tree) if isinstance(node, ast.arguments)
                for arg in [*node.args, *node.kwonlyargs, *filter(None, [node.vararg, node.kwarg])]}
    read = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    return read - defined - set(dir(builtins))


def test_each_cell_needs_nothing_from_another_cell():
    """So that after the set-up cell each runs on its own: again, or after Runtime → Restart session."""
    code = [_source(cell) for cell in _cells() if cell["cell_type"] == "code"]
    assert {f"cell {i}": free_names(source) for i, source in enumerate(code)} == {
        f"cell {i}": set() for i in range(len(code))}
    assert free_names("x = 1\nprint(x, RUN)\nfrom a import b as c\nc(b)") == {"RUN", "b"}


# ------------------------------------------------------------------------------------------- the install cell


@pytest.fixture(autouse=True)
def own_home(monkeypatch, tmp_path):
    """The install cell's record of what it installed goes to this test's own home; and the modules of the package
    it takes out of sys.modules after an install come back after the test."""
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in [name for name in sys.modules if name.split(".")[0] == "dcgan_faces"]:
        monkeypatch.setitem(sys.modules, name, sys.modules[name])


def _fresh_runtime(monkeypatch, missing: set) -> list:
    """The install cell as on a fresh runtime: the modules in `missing` are not installed (a submodule of one
    raises ModuleNotFoundError, as find_spec does); pip calls are recorded, not run."""
    calls = []

    def find_spec(name, *args):
        if name.partition(".")[0] in missing - {name}:
            raise ModuleNotFoundError(f"No module named {name.partition('.')[0]!r}")
        return None if name in missing else REAL_FIND_SPEC(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
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


def _one_line(raised) -> str:
    rendered = raised.value._render_traceback_()
    assert len(rendered) == 1 and "\n" not in rendered[0]
    return rendered[0]


@pytest.mark.parametrize("package", ["/content/drive/MyDrive/dcgan_faces.zip", "git+https://github.com/YOUR_NAME/x",
                                     "", "<path to the repository>"])
def test_the_install_cell_says_in_one_line_what_to_put_in_package(fresh_runtime, package, capsys):
    with pytest.raises(Exception) as raised:
        _run_install_cell(package)
    line = _one_line(raised)
    assert line.startswith("PACKAGE") and "repository" in line and fresh_runtime == []


def test_in_a_fresh_kernel_without_google_the_default_package_is_one_line_too(monkeypatch):
    """A plain Jupyter with neither the package nor any `google` module: find_spec("google.colab") raises."""
    calls = _fresh_runtime(monkeypatch, {"dcgan_faces", "google"})
    with pytest.raises(Exception) as raised:
        _run_install_cell("/content/drive/MyDrive/dcgan_faces.zip")
    assert _one_line(raised).startswith("PACKAGE: /content/drive/MyDrive/dcgan_faces.zip does not exist")
    assert calls == []


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


def test_a_changed_copy_of_the_package_is_installed_over_the_old_one(monkeypatch, tmp_path, capsys):
    package = tmp_path / "dcgan_faces.zip"
    package.write_bytes(b"the first upload")
    calls = _fresh_runtime(monkeypatch, {"dcgan_faces"})
    _run_install_cell(str(package))
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", str(package)]]

    calls = _fresh_runtime(monkeypatch, set())  # installed now
    _run_install_cell(str(package))
    assert calls == [] and "ready" in capsys.readouterr().out, "the same copy: nothing to do"

    package.write_bytes(b"uploaded again, changed")
    _run_install_cell(str(package))
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", str(package)]]

    calls.clear()
    _run_install_cell(str(tmp_path / "not there now, e.g. Drive not mounted.zip"))
    assert calls == [], "the installed copy is kept"
    other = tmp_path / "other.zip"
    other.write_bytes(b"the first upload")
    _run_install_cell(str(other))
    assert calls[-1][-1] == str(other), "another PACKAGE is installed over the old one"


def test_after_an_install_the_kernel_imports_the_new_code_not_modules_of_the_old(monkeypatch, tmp_path):
    package = tmp_path / "dcgan_faces.zip"
    package.write_bytes(b"one")
    old = sys.modules["dcgan_faces"]  # this test process's imports stand for the old copy's
    assert "dcgan_faces.notebook" in sys.modules
    _fresh_runtime(monkeypatch, {"dcgan_faces"})
    _run_install_cell(str(package))
    assert "dcgan_faces.notebook" not in sys.modules and sys.modules["dcgan_faces"] is not old


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


def test_on_colab_drive_is_mounted_and_the_folders_kept_and_checked(monkeypatch, tmp_path):
    mounted = []
    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mounted.append)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    paths = (str(tmp_path), "/content/drive/MyDrive/cache", "/content/drive/MyDrive/run")
    assert notebook.drive_folders(*paths) == paths and mounted == ["/content/drive"]
    with pytest.raises(notebook.ToolStopped) as raised:
        notebook.drive_folders("/content/drive/MyDrive/faces", *paths[1:])
    assert _one_line(raised).startswith("DATA: /content/drive/MyDrive/faces is not a folder on your Drive; put ")


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


@pytest.fixture
def tool(monkeypatch):
    """cli.main replaced: records the argv it gets and returns `tool.code` (or raises `tool.raises`)."""
    from dcgan_faces import cli

    called = types.SimpleNamespace(argv=[], code=0, raises=None)

    def main(argv):
        called.argv.append(argv)
        if called.raises:
            raise called.raises
        return called.code

    monkeypatch.setattr(cli, "main", main)
    return called


def test_run_takes_the_flags_as_a_string_or_a_list(tool):
    notebook.run("train", "--res 16 --steps 10 --out 'my run'")
    notebook.run("train", ["--res", 16, "--steps", 10])
    notebook.run("train", ("--res", 16))
    notebook.run("plots")
    assert tool.argv == [["train", "--res", "16", "--steps", "10", "--out", "my run"],
                         ["train", "--res", "16", "--steps", "10"], ["train", "--res", "16"], ["plots"]]


@pytest.mark.parametrize("argv, says", [(None, "not NoneType"), (16, "not int"), ("--out 'my run", "close the quote")])
def test_run_refuses_other_flags_in_one_line(tool, argv, says):
    with pytest.raises(notebook.ToolStopped) as raised:
        notebook.run("train", argv)
    assert says in _one_line(raised) and _one_line(raised).startswith("run('train', ") and tool.argv == []


def test_a_stop_is_a_clean_stop_not_an_error(tool, capsys):
    """The kernel interrupted: training saved and said where it stopped (exit 130); the cell ends without a red
    box. A second interrupt (KeyboardInterrupt) says in one plain line how to continue."""
    tool.code = 130
    notebook.run("train", "--res 16")
    tool.code, tool.raises = None, KeyboardInterrupt()
    notebook.run("train", "--res 16")
    assert capsys.readouterr().out == "train: interrupted, stopped at once; run this cell again to continue\n"
    tool.code, tool.raises = 143, None  # SIGTERM: not the user's stop
    with pytest.raises(notebook.ToolStopped, match=r"exit code 143 \(SIGTERM\)"):
        notebook.run("train", "--res 16")


def test_in_a_notebook_a_stop_is_told_as_the_cell_s_interrupt_and_the_cell_again(monkeypatch):
    from dcgan_faces import interrupt

    terminal = (interrupt.signal_name(signal.SIGINT), interrupt.rerun(), interrupt.how_to_stop())
    assert terminal == ("SIGINT", "run the same command", "Ctrl-C here stops cleanly; the same command resumes")
    monkeypatch.setattr(interrupt, "in_kernel", lambda: True)
    told = " ".join((interrupt.signal_name(signal.SIGINT), interrupt.rerun(), interrupt.how_to_stop()))
    assert "Ctrl-C" not in told and "command" not in told and "SIGINT" not in told and "this cell" in told
    assert interrupt.signal_name(signal.SIGTERM) == "SIGTERM"


def test_the_faces_cell_takes_the_run_trained_last(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(staging, "in_colab", lambda: False)
    with pytest.raises(notebook.ToolStopped) as raised:
        notebook.trained_run("")
    assert _one_line(raised).startswith("MODEL: no trained generator here yet; run a training cell above first")
    for age, run in enumerate(["drive/dcgan_runs/faces64", "runs/demo_32", "runs/demo_16"]):
        (tmp_path / run).mkdir(parents=True)
        (tmp_path / run / "generator.keras").write_bytes(b"")
        os.utime(tmp_path / run / "generator.keras", (1000 - age, 1000 - age))
    assert notebook.trained_run("") == "drive/dcgan_runs/faces64"
    os.utime(tmp_path / "runs/demo_16/generator.keras")  # trained again just now
    assert notebook.trained_run(" ") == "runs/demo_16"
    assert notebook.trained_run(" elsewhere/run ") == "elsewhere/run"


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


def _text(cell) -> str:
    return "".join(out.text for out in _outputs(cell, "stream"))


def _default(name: str) -> int:
    """A form field's value as committed."""
    found = (re.search(rf"^{name} = (\d+)  #@param", _source(cell), flags=re.M) for cell in _cells())
    return int(next(filter(None, found))[1])


def _kernel_env(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)  # a user's kernel: quiet.py alone hides the noise
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel imports this checkout of the package


RUN_ALL_LIMIT_S = 15 * 60  # Runtime → Run all with the defaults, on a CPU runtime


@pytest.mark.slow
def test_run_all_with_the_defaults_trains_the_demo_in_minutes_and_shows_faces_in_the_last_cell(tmp_path,
                                                                                                monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    _kernel_env(monkeypatch)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    started = time.perf_counter()
    _client(nb, tmp_path).execute()
    seconds = time.perf_counter() - started
    print(f"Run all with the notebook's defaults: {seconds:.0f} s")
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert [_outputs(cell, "error") for cell in code] == [[]] * len(code)
    install, demo, mine, faces = code
    assert "ready" in _text(install)

    res, steps, every = _default("DEMO_RES"), _default("DEMO_STEPS"), _default("DEMO_EVERY")
    run = tmp_path / f"runs/demo_{res}"
    assert sorted(p.name for p in (run / "previews").iterdir()) == [
        f"iter-{k:08d}.png" for k in range(0, steps + 1, every)]
    assert (run / "plots.png").is_file() and (run / "generator.keras").is_file()
    grid, plot = _images(demo)  # every grid and plot shown in one place, updated: the newest
    assert base64.b64decode(grid.data["image/png"]) == (run / f"previews/iter-{steps:08d}.png").read_bytes()
    assert base64.b64decode(plot.data["image/png"]) == (run / "plots.png").read_bytes()
    text = _text(demo)
    assert f"iteration {every}/{steps}" in text and f"done: {steps} iterations" in text
    assert not quiet.NOISE.search(text) and "Traceback" not in text, "TensorFlow's import is quiet in a kernel"

    assert _text(mine).startswith("skipped: tick TRAIN_ON_MY_PHOTOS") and not (tmp_path / "drive").exists()
    assert any("image/gif" in out.get("data", {}) for out in faces.outputs) and len(_images(faces)) == 1
    assert (tmp_path / "faces.png").is_file() and not (ROOT / "faces.png").exists()
    assert seconds < RUN_ALL_LIMIT_S


@pytest.mark.slow
def test_after_set_up_the_my_photos_cell_and_the_faces_cell_each_run_alone(tmp_path, monkeypatch):
    """A fresh kernel runs the set-up cell, then only the opted-in "your photos" cell (outside Colab: ./drive and
    the demo faces), then only the faces cell, which finds the run trained last by itself."""
    nbformat = pytest.importorskip("nbformat")
    _kernel_env(monkeypatch)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    install, _, mine, faces = [cell for cell in nb.cells if cell.cell_type == "code"]
    mine.source = with_params(mine.source, MY_PHOTOS_SMALL)[0]
    for cell in (mine, faces):
        alone = nbformat.v4.new_notebook(cells=[install, cell])
        _client(alone, tmp_path).execute()
        assert [_outputs(c, "error") for c in alone.cells] == [[], []]

    run = tmp_path / "drive/dcgan_runs/faces64"
    assert "the demo faces stand in" in _text(mine)
    assert sorted(p.name for p in (run / "previews").iterdir()) == [
        "iter-00000000.png", "iter-00000002.png", "iter-00000004.png"]
    assert (run / "generator.keras").is_file() and len(_images(mine)) == 2  # the grid and the plot
    assert (run / "progress.gif").is_file() and (tmp_path / "faces.png").is_file() and len(_images(faces)) == 1


@pytest.mark.slow
def test_interrupting_the_kernel_is_a_clean_stop_and_running_the_cell_again_continues(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    # three kept: resuming to `stopped + 2` may write two checkpoints, and the stop's own must still be there
    flags = "--data demo --res 16 --save-every 2 --batch-size 8 --keep-checkpoints 3"
    again = ("import glob\nstopped = max(int(p[-12:-4]) for p in glob.glob('runs/demo_16/checkpoints/ckpt-*.npz'))\n"
             f"run('train', '{flags} --steps ' + str(stopped + 2))")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"from dcgan_faces.notebook import run\nrun('train', '{flags} --steps 100000')"),
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
    text = _text(interrupted)
    assert "interrupted: finishing this step, then saving a checkpoint" in text
    stopped = int(re.search(r"stopped at iteration ([\d,]+): checkpoint, grid and generator saved in runs/demo_16\. "
                            r"Run this cell again to continue\.", text)[1].replace(",", ""))
    assert _outputs(interrupted, "error") == [], "a stop is no error: no red box"
    for terminal_words in ("Ctrl-C", "same command", "exit code", "SIGINT"):
        assert terminal_words not in text
    run = tmp_path / "runs/demo_16"
    assert (run / f"checkpoints/ckpt-{stopped:08d}.npz").is_file() and (run / "generator.keras").is_file()
    assert len(_images(interrupted)) == 2  # the newest grid and the plot, shown until the end

    text = _text(resumed)
    assert f"resuming from iteration {stopped:,}" in text and f"done: {stopped + 2:,} iterations" in text
    assert _outputs(resumed, "error") == [] and len(_images(resumed)) == 2
