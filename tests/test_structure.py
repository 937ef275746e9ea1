"""The package's structure is its data flow: shared <- data <- training <- evaluation.

- no module imports one of a later stage (lazily or not), and module-level imports form no loop;
- nothing under ``dfdetect/data`` imports Keras (MTCNN's TensorFlow only inside the face detector);
- every module that does not import Keras at module level imports no deep-learning framework at all
  (data-prep jobs and the command line start in well under 2 s).

The layers come from the folders, so a new module is covered without a list to keep.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dfdetect"
LAYERS = {"shared": 0, "data": 1, "training": 2, "evaluation": 3}
# cli.py is the entry point (it dispatches to every stage); testkit/ builds inputs for tests and benchmarks.
OUTSIDE_LAYERS = {"dfdetect.cli", "dfdetect.testkit"}
HEAVY = ("tensorflow", "keras", "jax", "torch", "mtcnn")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str | None:
    if module == "dfdetect":
        return "shared"
    if any(module == outside or module.startswith(outside + ".") for outside in OUTSIDE_LAYERS):
        return None
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in LAYERS else "shared"


def imports(path: Path, module_level_only: bool = False) -> list[tuple[str, int]]:
    """(imported module, line) for every import in a file (``from X import Y``: X.Y when that is a module)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.append((submodule if submodule in MODULES else node.module, node.lineno))
    return found


def test_layers_cover_the_package():
    assert {layer_of(module) for module in MODULES} == {None, *LAYERS}
    folders = {module.split(".")[1] for module in MODULES if module.count(".") >= 2}
    assert folders <= {*LAYERS, "testkit"}, f"a folder that is no stage: {folders - {*LAYERS, 'testkit'}}"


@pytest.mark.parametrize("module", [module for module in MODULES if layer_of(module) is not None])
def test_no_import_runs_back_up_a_layer(module):
    rank = LAYERS[layer_of(module)]
    for target, line in imports(MODULES[module]):
        if target.startswith("dfdetect.") and target in MODULES:
            assert layer_of(target) is not None, f"{module}:{line} imports {target}, which is test support"
            assert LAYERS[layer_of(target)] <= rank, (
                f"{module}:{line} ({layer_of(module)}) imports {target} ({layer_of(target)}), a later stage"
            )


def test_module_level_imports_form_no_loop():
    graph = {
        module: {
            target for target, _ in imports(path, module_level_only=True) if target in MODULES and target != module
        }
        for module, path in MODULES.items()
    }
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in graph[module]:
            if state.get(target) == "open":
                raise AssertionError("import loop: " + " -> ".join(trail[trail.index(target) :] + [module, target]))
            if target not in state:
                visit(target, trail + [module])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [])


@pytest.mark.parametrize("module", [module for module in MODULES if layer_of(module) == "data"])
def test_the_data_stage_never_imports_keras(module):
    for target, line in imports(MODULES[module]):
        assert target.split(".")[0] != "keras", f"{module}:{line} imports {target}"
        if target.split(".")[0] in ("tensorflow", "mtcnn"):
            assert module == "dfdetect.data.faces.detect", f"{module}:{line}: only the face detector may load MTCNN"


def test_modules_without_keras_import_no_framework():
    """One interpreter imports them all (fast when it passes); on failure each is tried alone to name it."""
    keras_modules = {
        module
        for module, path in MODULES.items()
        if any(target.split(".")[0] == "keras" for target, _ in imports(path, module_level_only=True))
    }
    light = [module for module in MODULES if module not in keras_modules]
    assert "dfdetect.data.store" in light and "dfdetect.training.models" in keras_modules
    loaded = heavy_modules_after_import(light)
    if loaded:
        culprits = {module: heavy for module in light if (heavy := heavy_modules_after_import([module]))}
        raise AssertionError(f"these modules pull in a framework at import: {culprits}")


def heavy_modules_after_import(modules: list[str]) -> list[str]:
    code = (
        "import sys\n"
        f"for name in {modules!r}:\n"
        "    __import__(name)\n"
        f"print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [name for name in done.stdout.strip().split(",") if name]
