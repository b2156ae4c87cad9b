"""The import graph of a package, read from its source (ast): what the packager and the tests check it for.

Two views: the module-level imports (what runs when a module loads: the graph that must have no cycle) and
every import, those inside functions included (the lazy imports that keep cold starts short: what a handler
may reach at run time, so what the Lambda artifact must hold). Imports under `if TYPE_CHECKING:` never run
and are not edges. Reading the source costs milliseconds, where importing every module costs seconds.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path


def module_files(source_root: Path, package: str) -> dict[str, Path]:
    """Every module of `package` under `source_root` (the folder holding the package), by dotted name."""
    modules: dict[str, Path] = {}
    for path in sorted((source_root / package.replace(".", "/")).rglob("*.py")):
        parts = list(path.relative_to(source_root).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.Module, *, lazy: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node):
            continue
        elif lazy or isinstance(node, ast.If | ast.Try | ast.With | ast.ExceptHandler):
            # Module level: only the statements that run when the module loads (if/try/with bodies).
            pending += [
                child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt | ast.excepthandler)
            ]


def _targets(node: ast.Import | ast.ImportFrom, package: str, modules: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:
        anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        base = f"{anchor}.{base}".rstrip(".")
    # `from a import b` depends on the module a.b when there is one, else on a.
    return {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names}


def import_graph(modules: dict[str, Path], *, lazy: bool = False) -> dict[str, set[str]]:
    """Each module's imports of other modules of `modules`; `lazy` counts the imports inside functions too."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8")), lazy=lazy):
            targets |= _targets(node, package, modules)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle (its modules, the first repeated at the end), or [] when the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
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


def reachable(graph: dict[str, set[str]], starts: Iterable[str]) -> dict[str, list[str]]:
    """Every module reachable from `starts`, each with the import chain that reaches it."""
    chains = {start: [start] for start in starts if start in graph}
    pending = list(chains)
    while pending:
        node = pending.pop()
        for nxt in sorted(graph[node]):
            if nxt not in chains:
                chains[nxt] = [*chains[node], nxt]
                pending.append(nxt)
    return chains
