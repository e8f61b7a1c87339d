"""The platforms setup.py promises: the oldest Python of python_requires (no newer standard-library names in the
package), and an `[cpu]` extra that installs a TensorFlow with wheels for the machine (macOS has no
tensorflow-cpu)."""

import ast
import re
import runpy
from pathlib import Path

import pytest
import setuptools
from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]

# standard-library names newer than Python 3.10: (module, name) or (module, None) for a whole module
NEWER_THAN_310 = {("datetime", "UTC"), ("tomllib", None), ("typing", "Self"), ("typing", "LiteralString"),
                  ("typing", "Never"), ("typing", "assert_never"), ("typing", "reveal_type"), ("typing", "override"),
                  ("enum", "StrEnum"), ("asyncio", "TaskGroup"), ("contextlib", "chdir"), ("hashlib", "file_digest"),
                  ("itertools", "batched")}


def setup_arguments(monkeypatch) -> dict:
    """The keyword arguments setup.py passes to setuptools.setup, without building anything."""
    captured = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: captured.update(kwargs))
    runpy.run_path(str(ROOT / "setup.py"))
    return captured


def installed_by(requirements: list[str], platform: str, machine: str) -> set[str]:
    environment = default_environment() | {"sys_platform": platform, "platform_machine": machine}
    return {req.name for req in map(Requirement, requirements)
            if req.marker is None or req.marker.evaluate(environment)}


@pytest.mark.parametrize("platform, machine, tensorflow", [
    ("darwin", "arm64", "tensorflow"), ("darwin", "x86_64", "tensorflow"),
    ("linux", "x86_64", "tensorflow-cpu"), ("linux", "aarch64", "tensorflow-cpu"), ("win32", "AMD64", "tensorflow-cpu"),
])
def test_the_cpu_extra_installs_one_tensorflow_with_wheels_for_the_platform(monkeypatch, platform, machine,
                                                                            tensorflow):
    extras = setup_arguments(monkeypatch)["extras_require"]
    assert installed_by(extras["cpu"], platform, machine) == {tensorflow}
    assert installed_by(extras["gpu"], platform, machine) == {"tensorflow"}


def test_ruff_is_in_the_test_extra(monkeypatch):
    assert "ruff" in {Requirement(req).name for req in setup_arguments(monkeypatch)["extras_require"]["test"]}


def test_ruff_checks_for_the_oldest_python_that_setup_py_promises(monkeypatch):
    oldest = re.fullmatch(r">=3\.(\d+)", setup_arguments(monkeypatch)["python_requires"])[1]
    target = re.search(r'^target-version = "(.*)"', (ROOT / "pyproject.toml").read_text(), flags=re.M)[1]
    assert target == f"py3{oldest}"  # (tomllib would read it properly, but is not in Python 3.10)


def newer_names(source: str) -> list[str]:
    """`module.name` for each use of a NEWER_THAN_310 name: imported from its module, or read off it."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            found += [f"{node.module}.{a.name}" for a in node.names if (node.module, a.name) in NEWER_THAN_310]
            found += [str(node.module)] if (node.module, None) in NEWER_THAN_310 else []
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if (a.name, None) in NEWER_THAN_310]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            found += [f"{node.value.id}.{node.attr}"] if (node.value.id, node.attr) in NEWER_THAN_310 else []
    return found


def test_the_package_uses_no_standard_library_name_newer_than_python_3_10():
    used = {f"{path.relative_to(ROOT)}: {name}" for path in (ROOT / "dcgan_faces").rglob("*.py")
            for name in newer_names(path.read_text())}
    assert not used, f"not in Python 3.10, which setup.py's python_requires promises: {sorted(used)}"


def test_the_check_sees_each_form_of_use():
    assert newer_names("from datetime import UTC, datetime\nimport tomllib\nimport datetime\nx = datetime.UTC\n"
                       "from datetime import timezone\ny = timezone.utc\n") == [
        "datetime.UTC", "tomllib", "datetime.UTC"]
