"""No import cycle in the package: the module-level imports of every module of `threadline` form a DAG.

Read from the source (infra/build/imports.py, ast), not by importing, so the check costs milliseconds and
sees every module, the CLI's and the local cloud's included.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.build.imports import find_cycle, import_graph, module_files

SOURCE_ROOT = Path(__file__).resolve().parents[2] / "functions"

pytestmark = pytest.mark.unit


def test_the_module_level_imports_of_the_package_have_no_cycle() -> None:
    # Given every module of the package and its module-level imports
    modules = module_files(SOURCE_ROOT, "threadline")
    graph = import_graph(modules)

    # When the graph is walked depth first
    cycle = find_cycle(graph)

    # Then no import path leads back to where it started
    assert len(modules) > 100
    assert graph["threadline.cli.main"] >= {"threadline.cli.admin", "threadline.cli.dev", "threadline.cli.invoke"}
    assert cycle == [], " -> ".join(cycle)


def test_a_cycle_is_found_and_named_from_where_it_closes() -> None:
    # Given a graph where c leads back to a
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}

    # When it is walked
    cycle = find_cycle(graph)

    # Then the cycle is reported from where it closes
    assert cycle == ["a", "b", "c", "a"]


def test_a_lazy_import_is_an_edge_only_of_the_lazy_graph(tmp_path: Path) -> None:
    # Given a package whose module a imports b inside a function and c under TYPE_CHECKING
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n"
        "def f():\n    from pkg.b import thing\n    return thing\n"
    )
    (tmp_path / "pkg" / "b.py").write_text("from . import a\nthing = 1\n")
    (tmp_path / "pkg" / "c.py").write_text("")
    modules = module_files(tmp_path, "pkg")

    # When both graphs are built
    loading, lazy = import_graph(modules), import_graph(modules, lazy=True)

    # Then b -> a loads with the module, a -> b only when f runs, and c never
    assert loading["pkg.a"] == set() and loading["pkg.b"] == {"pkg.a"}
    assert lazy["pkg.a"] == {"pkg.b"}
    assert find_cycle(loading) == [] and find_cycle(lazy) == ["pkg.a", "pkg.b", "pkg.a"]
