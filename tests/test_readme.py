"""The README's commands are the ones the project really runs."""

import re
import sys
from pathlib import Path

from dcgan_faces import cli, train

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
sys.path.insert(0, str(ROOT / "scripts"))
import readme_check  # noqa: E402


def _bash_blocks():
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command():
    test_command = next(block.strip() for block in _bash_blocks() if "pytest" in block)
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert test_command in ci_lines


def test_ci_runs_the_readme_install_and_train_command_and_checks_its_outputs():
    assert readme_check.first_command() == 'pip install ".[cpu]" && python -m dcgan_faces.train --res 64'
    ci = (ROOT / ".ci/run").read_text()
    assert "readme_check.py command" in ci and "readme_check.py check" in ci


def test_the_readme_check_accepts_a_finished_run_and_names_what_a_broken_one_lacks(tiny_run, tmp_path):
    import shutil

    assert readme_check.check(tiny_run) == []
    broken = shutil.copytree(tiny_run, tmp_path / "run")
    (broken / "plots.png").unlink()
    shutil.rmtree(broken / "checkpoints")
    assert readme_check.check(broken) == ["plots.png", "checkpoints/ckpt-*.npz"]


def test_readme_training_flags_exist():
    known = set(re.findall(r"--[a-z][a-z-]+", train.parser().format_help()))
    used = set(re.findall(r"--[a-z][a-z-]+", " ".join(b for b in _bash_blocks() if "dcgan_faces.train" in b)))
    used |= set(re.findall(r"dcgan_faces\.train [^`\n]*?(--[a-z][a-z-]+)", README))
    assert used and used <= known, used - known


def test_readme_console_commands_exist():
    named = set(re.findall(r"python -m dcgan_faces\.([a-z]+)", README))
    assert named <= set(cli.COMMANDS) | {"train"}, named - set(cli.COMMANDS)
