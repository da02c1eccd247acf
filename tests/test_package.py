"""The package's shape: data flows one way, so no module imports one that imports it back."""

import ast
import subprocess
import sys
from pathlib import Path

import trainlab

PACKAGE = Path(trainlab.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def trainlab_imports(modules: set[str], path: Path) -> set[str]:
    """The trainlab modules ``path`` imports anywhere: at the top, inside functions, for type checking."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:  # trainlab.config.RunConfig -> trainlab.config
                name = name.rpartition(".")[0]
            if name:
                imported.add(name)
    return imported - {module_name(path)}


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A list of modules each importing the next and the last the first, or None."""
    state: dict[str, str] = {}  # "open" while its imports are being walked, then "done"
    path: list[str] = []

    def walk(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for other in sorted(graph[module]):
            if state.get(other) == "open":
                return path[path.index(other):]
            if other not in state and (cycle := walk(other)):
                return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := walk(module)):
            return cycle
    return None


def test_no_module_imports_one_that_imports_it_back():
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: trainlab_imports(set(paths), p) for m, p in paths.items()}
    assert "trainlab.config" in graph["trainlab.data"]  # the graph sees imports
    cycle = import_cycle(graph)
    assert cycle is None, " -> ".join([*cycle, cycle[0]])


def test_the_cycle_finder_finds_a_cycle():
    assert import_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c"]
    assert import_cycle({"a": {"b"}, "b": set()}) is None


def test_ruff_finds_no_unused_or_undefined_names():
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "trainlab", "tests", "benchmarks"],
                          cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
