"""A newcomer's first hour: a quiet start, progress without a terminal, console commands, one-line errors."""

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dcgan_faces import cli, quiet
from tests.conftest import train_quietly

ROOT = Path(__file__).resolve().parents[1]


def _train(face_folder, tmp_path, *extra):
    return train_quietly(["--res", "16", "--batch-size", "4", "--data", str(face_folder), "--cache-dir",
                          str(tmp_path / "cache"), "--out", str(tmp_path / "run"), *extra])


@pytest.mark.slow
def test_our_first_line_is_the_first_line_even_when_tensorflow_would_log(face_folder, tmp_path):
    command = [sys.executable, "-m", "dcgan_faces.train", "--res", "16", "--steps", "1", "--batch-size", "4",
               "--data", str(face_folder), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0", "PYTHONPATH": str(ROOT)}
    env.pop(quiet.VERBOSE_ENV, None)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    first = (done.stderr + done.stdout).splitlines()[0]
    assert first.startswith("precision "), first


def test_the_quiet_import_drops_known_noise_and_keeps_real_errors():
    captured = "\n".join([
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:17 123 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use ...",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with ...",
        "E0000 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to register factory for plugin",
        "ImportError: libcudart.so.12: cannot open shared object file",
    ])
    assert quiet.kept_lines(captured) == ["ImportError: libcudart.so.12: cannot open shared object file"]


@pytest.mark.slow
def test_without_a_terminal_each_grid_gets_a_plain_progress_line(face_folder, tmp_path, capsys):
    assert _train(face_folder, tmp_path, "--steps", "8", "--save-every", "4") == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("iteration ")]
    assert [line.split()[1] for line in lines] == ["4/8", "8/8"]
    assert "images/s, ETA" in lines[0] and "d_loss" in lines[0] and "g_acc" in lines[0]
    assert "grid " + str(tmp_path / "run/previews/iter-00000004.png") in lines[0]
    forecast = next(line for line in out.splitlines() if " s per iteration (" in line)
    assert "the 2 iterations to go take about" in forecast  # after 1 + 5 timed iterations


@pytest.mark.slow
def test_on_a_terminal_a_progress_bar_replaces_the_lines(face_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert _train(face_folder, tmp_path, "--steps", "4", "--save-every", "2") == 0
    captured = capsys.readouterr()
    assert "4/4" in captured.err and ("it/s" in captured.err or "s/it" in captured.err)
    assert not [line for line in captured.out.splitlines() if line.startswith("iteration ")]


def _help(main, argv, capsys) -> list[str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_every_tool_is_a_console_command_whose_help_opens_with_an_example_under_the_typed_name(command, capsys):
    lines = _help(cli.main, [command, "--help"], capsys)
    assert lines[1] == "" and lines[2].startswith(f"Example: dcgan-faces {command}"), lines[:4]
    usage = next(line for line in lines[3:] if line.startswith("usage: "))
    assert usage.startswith(f"usage: dcgan-faces {command} ") and len(usage) < 60, "a short usage line, after"
    module = importlib.import_module(f"dcgan_faces.{command}")
    lines = _help(module.main, ["--help"], capsys)
    assert lines[2].startswith(f"Example: python -m dcgan_faces.{command}")
    usage = next(line for line in lines if line.startswith("usage: "))
    assert usage.startswith(f"usage: python -m dcgan_faces.{command}")


def test_the_console_commands_own_help_opens_with_what_it_does_and_an_example(capsys):
    assert cli.main(["--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "DCGAN" in lines[0] and lines[2].startswith("Example: dcgan-faces train --data")


def test_the_console_command_lists_the_tools_and_refuses_others_in_one_line(capsys):
    assert cli.main(["--help"]) == 0
    usage = capsys.readouterr().out
    assert all(f"  {command} " in usage for command in cli.COMMANDS)
    assert cli.main(["trian"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'trian'" in err
    setup = (ROOT / "setup.py").read_text()
    assert '"dcgan-faces=dcgan_faces.cli:main"' in setup


@pytest.mark.skipif(shutil.which("dcgan-faces") is None, reason="the package is not installed with its scripts")
def test_the_installed_command_runs():
    done = subprocess.run(["dcgan-faces", "plots", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.splitlines()[2].startswith("Example: dcgan-faces plots runs/")


def test_plots_and_gif_movies_need_no_extra():
    setup = (ROOT / "setup.py").read_text()
    plain = setup[setup.index("install_requires="):setup.index("entry_points=")]
    assert "matplotlib" in plain and "pillow" in plain  # plots.png; GIFs are written by Pillow


def test_evaluate_without_opencv_names_the_extra_before_loading_anything(tmp_path, monkeypatch, capsys):
    from dcgan_faces import evaluate

    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` fails as it does without the [metrics] extra
    monkeypatch.setattr(evaluate, "open_model", lambda path: pytest.fail("the model was loaded"))
    assert evaluate.main(["--model", str(tmp_path / "run"), "--n", "200"]) == 2
    err = capsys.readouterr().err
    assert err == "error: evaluate needs OpenCV: pip install 'dcgan_faces[metrics]'\n"


def test_an_mp4_asked_for_without_the_media_extra_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    from dcgan_faces import animation, generate, movie

    monkeypatch.setattr(animation, "mp4_available", lambda: False)
    monkeypatch.setattr(movie, "mp4_available", lambda: False)
    monkeypatch.setattr(generate, "open_model", lambda path: pytest.fail("the model was loaded"))
    assert generate.main(["--model", str(tmp_path), "--interpolate", "3", "--out", str(tmp_path / "walk.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'dcgan_faces[media]'" in err and "walk.gif" in err
    assert movie.main([str(tmp_path / "run"), "--mp4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'dcgan_faces[media]'" in err
    assert not list(tmp_path.rglob("*.gif"))


@pytest.mark.slow
def test_a_walk_without_the_media_extra_says_what_it_wrote_and_why_no_mp4(tiny_run, tmp_path, monkeypatch, capsys):
    from dcgan_faces import animation, generate

    monkeypatch.setattr(animation, "mp4_available", lambda: False)
    out = tmp_path / "walk.gif"
    assert generate.main(["--model", str(tiny_run), "--interpolate", "2", "--frames-per-step", "2", "--out",
                          str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}; no MP4: pip install 'dcgan_faces[media]'\n"
    assert out.exists() and not out.with_suffix(".mp4").exists()
