"""The plugin's modules import each other without a circle (lazy imports inside functions
count too), the sweep loop imports no optimiser library (those sit behind the adapter; Optuna
only _optuna.py imports), and without fcntl (Windows) the plugin says that it is POSIX-only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.toy_app.harness import ROOT, env

PLUGIN = ROOT / "hydra_plugins" / "smac_sweeper"


def _imports(path: Path) -> set[str]:
    """Absolute module names a file imports, at any depth of the file."""
    package = "hydra_plugins.smac_sweeper"
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x / from ._x import y
                base = f"{package}.{base}" if base else package
                if not node.module:
                    names |= {f"{package}.{a.name}" for a in node.names}
                    continue
            names.add(base)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def _graph() -> dict[str, set[str]]:
    modules = {f"hydra_plugins.smac_sweeper.{p.stem}": p for p in PLUGIN.glob("*.py")}
    modules["hydra_plugins.smac_sweeper"] = modules.pop("hydra_plugins.smac_sweeper.__init__")
    return {name: _imports(path) & set(modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for child in sorted(graph[node]):
            if state.get(child) == 1:
                return [*path[path.index(child) :], child] if child in path else [node, child]
            if child not in state and (found := visit(child, [*path, child])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_in_the_plugin():
    graph = _graph()
    assert (
        len(graph) >= 15
        and "hydra_plugins.smac_sweeper._pareto" in graph["hydra_plugins.smac_sweeper._outputs"]
    )
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_loop_imports_no_optimiser_library():
    for module in ("_impl", "_optimizer", "_adapters", "_journal", "_plan", "_budget", "_failures"):
        imported = _imports(PLUGIN / f"{module}.py")
        assert not {n for n in imported if n.split(".")[0] in ("smac", "optuna")}, module


def test_only_the_optuna_adapter_imports_optuna():
    importers = {
        p.name for p in PLUGIN.glob("*.py") if "optuna" in {n.split(".")[0] for n in _imports(p)}
    }
    assert importers == {"_optuna.py"}


def test_without_fcntl_the_journal_says_the_plugin_is_posix_only():
    """As on Windows: Hydra's plugin scan still imports the package; a sweep stops with a
    message that names the platform limit."""
    code = (
        "import sys\n"
        "sys.modules['fcntl'] = None  # import fcntl raises ImportError, as on Windows\n"
        "from hydra.core.plugins import Plugins\n"
        "from hydra.plugins.sweeper import Sweeper\n"
        "assert 'SMACSweeper' in [p.__name__ for p in Plugins.instance().discover(Sweeper)]\n"
        "try:\n"
        "    import hydra_plugins.smac_sweeper._journal\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "POSIX systems only (Linux, macOS)" in done.stdout and "fcntl" in done.stdout
