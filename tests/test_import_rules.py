"""The package's layers, read from its imports (every `import`, also those inside functions): the commands
(train, generate, ...) only parse flags and call the library; no command imports another, no library module
imports a command, and no modules import each other round a loop."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import dcgan_faces
from dcgan_faces.cli import COMMANDS

PACKAGE = Path(dcgan_faces.__file__).parent


@dataclass(frozen=True)
class Import:
    importer: str  # module names without the package, dotted below it: "writers", "sources.demo"
    line: int
    imported: str
    file: str  # the importer's file below the package: "sources/demo.py"

    def __str__(self) -> str:
        return f"dcgan_faces/{self.file}:{self.line} imports {self.imported}"


def module_files(folder: Path) -> dict[str, Path]:
    """Every module of the package in `folder`, subpackages' included: {"writers": its path, "sources.demo": ...,
    "sources": its __init__.py}; the package's own __init__ is not one."""
    modules = {}
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            modules[".".join(parts)] = path
    return modules


def imports(folder: Path) -> list[Import]:
    """Every import of a module of the package by a module of the package in `folder` or its subpackages."""
    modules = module_files(folder)
    return [Import(importer, node.lineno, name, path.relative_to(folder).as_posix())
            for importer, path in modules.items()
            for node in ast.walk(ast.parse(path.read_text(), str(path)))
            for name in sorted(_modules_named(node, _package_of(importer, path), modules))]


def _package_of(importer: str, path: Path) -> str:
    """The package a module is in, dotted below dcgan_faces: "" for writers, "sources" for sources.demo and for
    sources/__init__.py itself."""
    return importer if path.name == "__init__.py" else importer.rpartition(".")[0]


def _modules_named(node: ast.AST, package: str, modules) -> set[str]:
    """The package's modules an import statement may name: `import dcgan_faces.x`, `from dcgan_faces import x`,
    `from dcgan_faces.x import y`, `from . import x`, `from .x import y`, and their forms for a subpackage's
    modules ("sources.demo"), each the most specific module that exists."""
    if isinstance(node, ast.Import):
        named = {_deepest(alias.name.removeprefix("dcgan_faces."), modules) for alias in node.names
                 if alias.name.startswith("dcgan_faces.")}
        return named - {None}
    if not isinstance(node, ast.ImportFrom):
        return set()
    module = node.module or ""
    if node.level == 0:
        if module.split(".")[0] != "dcgan_faces":
            return set()
        base = module.removeprefix("dcgan_faces").lstrip(".")
    else:
        up = package.split(".")[:len(package.split(".")) - (node.level - 1)] if package else []
        base = ".".join([*up, module]).strip(".")
    return {_deepest(f"{base}.{alias.name}".lstrip("."), modules) for alias in node.names} - {None}


def _deepest(dotted: str, modules) -> str | None:
    """The longest leading part of `dotted` that is a module: "sources.base.Scan" → "sources.base"."""
    parts = dotted.split(".")
    return next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in modules), None)


def command_imports(found: list[Import], by_commands: bool, commands=frozenset(COMMANDS)) -> list[str]:
    """One line per import of a command by a command (`by_commands`) or by a library module, saying what to do."""
    if by_commands:
        return [f"{i}, a command: no command imports another; move what both use into a library module"
                for i in found if i.imported in commands and i.importer in commands]
    return [f"{i}, a command: the library imports no command; move what it uses into a library module"
            for i in found if i.imported in commands and i.importer not in commands]


def cycle(found: list[Import]) -> list[Import]:
    """One loop of imports (each module imports the next, the last the first); [] when there is none."""
    edges: dict[str, dict[str, Import]] = {}
    for i in found:
        edges.setdefault(i.importer, {}).setdefault(i.imported, i)
    finished: set[str] = set()

    def loop_from(module: str, trail: list[Import]) -> list[Import]:
        passed = [i.importer for i in trail]
        if module in passed:
            return trail[passed.index(module):]
        if module in finished:
            return []
        for i in edges.get(module, {}).values():
            if loop := loop_from(i.imported, [*trail, i]):
                return loop
        finished.add(module)
        return []

    for module in sorted(edges):
        if loop := loop_from(module, []):
            return loop
    return []


def test_no_command_imports_another_command():
    problems = command_imports(imports(PACKAGE), by_commands=True)
    assert not problems, "\n".join(problems)


def test_no_library_module_imports_a_command():
    problems = command_imports(imports(PACKAGE), by_commands=False)
    assert not problems, "\n".join(problems)


def test_no_import_cycle():
    loop = cycle(imports(PACKAGE))
    assert not loop, "import cycle: " + ", ".join(map(str, loop)) + "; move what they share into one module"


def test_the_rules_see_every_form_of_import_and_name_the_offending_line(tmp_path):
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "evaluate.py").write_text("import json\n\nfrom dcgan_faces.generate import latents\n")
    (tmp_path / "generate.py").write_text("from dcgan_faces import __version__\n")
    (tmp_path / "writers.py").write_text("def write():\n    from dcgan_faces import plots\n")
    (tmp_path / "plots.py").write_text("")
    (tmp_path / "config.py").write_text("from . import cli_types\n")
    (tmp_path / "cli_types.py").write_text("def check():\n    import dcgan_faces.models\n")
    (tmp_path / "models.py").write_text("from .config import TrainConfig\n")
    found = imports(tmp_path)
    assert command_imports(found, by_commands=True) == [
        "dcgan_faces/evaluate.py:3 imports generate, a command: no command imports another; move what both use "
        "into a library module"]
    assert command_imports(found, by_commands=False) == [
        "dcgan_faces/writers.py:2 imports plots, a command: the library imports no command; move what it uses "
        "into a library module"]
    assert [str(i) for i in cycle(found)] == ["dcgan_faces/cli_types.py:2 imports models",
                                              "dcgan_faces/models.py:1 imports config",
                                              "dcgan_faces/config.py:1 imports cli_types"]
    (tmp_path / "models.py").write_text("")
    assert cycle(imports(tmp_path)) == []


def test_the_rules_see_the_modules_of_a_subpackage(tmp_path):
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "plots.py").write_text("")
    (tmp_path / "data.py").write_text("from dcgan_faces.sources.base import Source\n")
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources/__init__.py").write_text("from dcgan_faces.sources.demo import DemoFaces\n")
    (tmp_path / "sources/demo.py").write_text("from .base import Source\nfrom dcgan_faces import plots\n")
    (tmp_path / "sources/base.py").write_text("from .. import config\nimport dcgan_faces.data\n")
    (tmp_path / "config.py").write_text("")
    found = imports(tmp_path)
    assert sorted(map(str, found)) == [
        "dcgan_faces/data.py:1 imports sources.base", "dcgan_faces/sources/__init__.py:1 imports sources.demo",
        "dcgan_faces/sources/base.py:1 imports config", "dcgan_faces/sources/base.py:2 imports data",
        "dcgan_faces/sources/demo.py:1 imports sources.base", "dcgan_faces/sources/demo.py:2 imports plots"]
    assert command_imports(found, by_commands=False) == [
        "dcgan_faces/sources/demo.py:2 imports plots, a command: the library imports no command; move what it "
        "uses into a library module"]
    assert [str(i) for i in cycle(found)] == ["dcgan_faces/data.py:1 imports sources.base",
                                              "dcgan_faces/sources/base.py:2 imports data"]


def test_the_package_s_subpackage_is_read():
    assert {i.importer for i in imports(PACKAGE)} >= {"sources", "sources.demo", "sources.folder"}


TENSORFLOW = ("tensorflow", "keras")


def _top_level(path: Path) -> list[ast.stmt]:
    return ast.parse(path.read_text(), str(path)).body


def loads_tensorflow(folder: Path) -> set[str]:
    """The modules whose import loads TensorFlow: they import it (or Keras) at the top, or a module that does."""
    modules = module_files(folder)
    direct: dict[str, set[str]] = {}
    loading = set()
    for importer, path in modules.items():
        package = _package_of(importer, path)
        for node in _top_level(path):
            direct.setdefault(importer, set()).update(_modules_named(node, package, modules))
            third_party = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            if any(name.split(".")[0] in TENSORFLOW for name in third_party):
                loading.add(importer)
    while grown := {m for m, imported in direct.items() if m not in loading and imported & loading}:
        loading |= grown
    return loading


def imports_deferred_without_reason(folder: Path) -> list[str]:
    """Imports inside functions, in a module that loads no TensorFlow, of a package module that loads none either:
    deferring an import is for TensorFlow (seconds) alone, everything else is imported at the top."""
    modules, heavy = module_files(folder), loads_tensorflow(folder)
    problems = []
    for importer, path in modules.items():
        if importer in heavy:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if node in tree.body:
                continue
            for name in sorted(_modules_named(node, _package_of(importer, path), modules) - heavy):
                problems.append(f"dcgan_faces/{path.relative_to(folder).as_posix()}:{node.lineno} imports {name} "
                                "inside a function; it loads no TensorFlow: import it at the top")
    return problems


def test_only_tensorflow_is_imported_late():
    problems = imports_deferred_without_reason(PACKAGE)
    assert not problems, "\n".join(problems)


def test_the_training_start_imports_tensorflow_s_modules_in_one_place():
    heavy = loads_tensorflow(PACKAGE)
    assert {"models", "trainer", "session", "keras_hooks"} <= heavy and not {"train", "writers", "runfolder"} & heavy
    late = [i for i in imports(PACKAGE) if i.importer == "train" and i.imported in heavy]
    assert len({i.line for i in late}) == 1, [str(i) for i in late]


def test_the_rule_tells_a_late_import_of_tensorflow_from_one_of_anything_else(tmp_path):
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "models.py").write_text("import keras\n")
    (tmp_path / "trainer.py").write_text("from dcgan_faces.models import build\n")
    (tmp_path / "config.py").write_text("")
    (tmp_path / "train.py").write_text("def start():\n    from dcgan_faces import trainer\n    from . import config\n")
    assert loads_tensorflow(tmp_path) == {"models", "trainer"}
    assert imports_deferred_without_reason(tmp_path) == [
        "dcgan_faces/train.py:3 imports config inside a function; it loads no TensorFlow: import it at the top"]
