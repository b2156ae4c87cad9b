"""No import cycle in the package: the module-level imports of every module of `threadline` form a DAG.

Read from the source (ast), not by importing, so the check costs milliseconds and sees every module, the
CLI's and the local cloud's included. Imports inside functions (the lazy imports that keep cold starts short)
and under `if TYPE_CHECKING:` are not edges: they run after every module has loaded, or never.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "functions"

pytestmark = pytest.mark.unit


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((PACKAGE_ROOT / "threadline").rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
    return found


def _edges(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _top_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
            continue
        base = node.module or ""
        if node.level:
            anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{anchor}.{base}".rstrip(".")
        # `from a import b` depends on the module a.b when there is one, else on a.
        targets |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names}
    return {t for t in targets if t in modules and t != name}


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


def test_the_module_level_imports_of_the_package_have_no_cycle() -> None:
    # Given every module of the package and its module-level imports
    modules = _modules()
    graph = {name: _edges(name, path, modules) for name, path in modules.items()}

    # When the graph is walked depth first
    cycle = _find_cycle(graph)

    # Then no import path leads back to where it started
    assert len(modules) > 100
    assert graph["threadline.cli.main"] >= {"threadline.cli.admin", "threadline.cli.dev", "threadline.cli.invoke"}
    assert cycle == [], " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle() -> None:
    # Given a graph where c leads back to a
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}

    # When it is walked
    cycle = _find_cycle(graph)

    # Then the cycle is reported from where it closes
    assert cycle == ["a", "b", "c", "a"]
