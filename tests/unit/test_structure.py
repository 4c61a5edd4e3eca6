"""The package structure: imports between app's packages form no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"


# modules that, like the composition root, look at every domain: nodes of their own
# (`bigthree check-config` checks each kind's settings, agents' included)
COMPOSITION_MODULES = frozenset({"app.core.config_check"})


def node_of(module: str) -> str:
    """`app.agents.service` → `app.agents`; a top-level module (`app.main`) is its own node."""
    if module in COMPOSITION_MODULES:
        return module
    parts = module.split(".")
    return ".".join(parts[:2])


def module_level(tree: ast.Module) -> list[ast.stmt]:
    """The statements run at import (a function's own imports run when it is called: a
    deliberate late dependency, not part of the package structure)."""
    found: list[ast.stmt] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        found.append(node)
        if isinstance(node, ast.If | ast.Try):
            pending.extend([*node.body, *node.orelse])
    return found


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in APP.rglob("*.py"):
        module = ".".join(path.relative_to(APP.parent).with_suffix("").parts)
        source = node_of(module.removesuffix(".__init__"))
        for node in module_level(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                if target.startswith("app.") and node_of(target) != source:
                    graph.setdefault(source, set()).add(node_of(target))
    return graph


def cycles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """Every elementary cycle, each listed once (starting at its smallest node)."""
    found: set[tuple[str, ...]] = set()

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in graph.get(node, ()):
            if nxt == start:
                found.add(tuple(path))
            elif nxt not in path and nxt > start:
                walk(start, nxt, [*path, nxt])

    for start in graph:
        walk(start, start, [start])
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    """The checker is real: a -> b -> a is reported."""
    assert cycles({"a": {"b"}, "b": {"a", "c"}}) == {("a", "b")}


def test_app_packages_import_without_cycles() -> None:
    """Routes reach their domain through its own deps module, the composition root wires
    the domains: no package imports one that imports it back (app.state once did)."""
    assert cycles(import_graph()) == set()
