"""The product's layers, read from its source with `ast` (STYLE.md 16): no import loop, and each
layer imports only its own layer or lower ones. Imports inside functions count: a late import
that dodges a loop is still a loop."""
from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOT_PRODUCT = {"tests", "bench", "sandbox", "migrations", ".venv", "node_modules", "instance"}


@cache
def product_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every product module (outside tests, bench, sandbox...)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[0] in NOT_PRODUCT or parts[0].startswith("."):
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The modules an import statement loads: `from jobs import lifecycle` is jobs.lifecycle,
    `from jobs.queue import enqueue` jobs.queue, `from models import Exchange` the package."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:  # relative: resolve against the importing module's package
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module
                                                                     else []))
    else:
        base = node.module or ""
    modules = product_modules()
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
            for alias in node.names]


@cache
def import_graph() -> dict[str, set[str]]:
    """Module -> the product modules it imports, anywhere in its body (functions included)."""
    modules = product_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets: set[str] = set()
        for node in ast.walk(tree):
            for target in _imported(node, name, path.name == "__init__.py"):
                if target in modules and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _layer(module: str) -> str:
    return module.split(".")[0]


def _upward(layers: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    """'a -> b' for every import from a module of `layers` into one of `forbidden`."""
    return sorted(f"{source} -> {target}" for source, targets in import_graph().items()
                  if _layer(source) in layers for target in targets
                  if _layer(target) in forbidden)


def test_the_product_modules_are_found():
    modules = product_modules()
    assert {"app", "jobs.lifecycle", "blueprints.exchanges", "models.exchange"} <= set(modules)
    assert not any(_layer(m) in NOT_PRODUCT for m in modules)


def test_imports_inside_functions_count():
    tree = ast.parse("def f():\n    from jobs import exchange_steps\n")
    targets = [t for node in ast.walk(tree) for t in _imported(node, "jobs.lifecycle", False)]
    assert "jobs.exchange_steps" in targets


def test_no_import_loop_among_product_modules():
    assert _cycles(import_graph()) == []


def test_jobs_import_nothing_from_blueprints_or_app():
    assert _upward(("jobs",), ("blueprints", "app")) == []


@pytest.mark.xfail(strict=True, reason="issue 11 part 2: clients/ still reaches jobs.queue and "
                   "jobs.metrics (locks, counters) until they are handed over at init_app")
def test_clients_and_models_import_nothing_from_jobs_blueprints_or_app():
    assert _upward(("clients", "models"), ("jobs", "blueprints", "app")) == []
