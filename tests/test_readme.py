"""The README's commands are the ones the project really runs."""

import re
from pathlib import Path

from dcgan_faces import train

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _bash_blocks():
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command():
    test_command = next(block.strip() for block in _bash_blocks() if "pytest" in block)
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_training_flags_exist():
    known = set(re.findall(r"--[a-z][a-z-]+", train.parser().format_help()))
    used = set(re.findall(r"--[a-z][a-z-]+", " ".join(b for b in _bash_blocks() if "dcgan_faces.train" in b)))
    assert used and used <= known, used - known
