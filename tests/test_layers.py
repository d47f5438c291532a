"""The product's layers, read from its source with `ast` (STYLE.md 16): no import loop, and each
layer imports only its own layer or lower ones. Imports inside functions count: a late import
that dodges a loop is still a loop. The sandbox is a neighbour, not a lodger: it meets the app
over HTTP only, as Shopify and Ongoing do, so it imports nothing of the product's; composition
roots (demo.py, the tests, bench/) may import both sides."""
from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

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


def test_clients_and_models_import_nothing_from_jobs_blueprints_or_app():
    assert _upward(("clients", "models"), ("jobs", "blueprints", "app")) == []


# The sandbox side: relative imports resolved, any product top-level name forbidden.
SIDES = {"sandbox", "tests", "bench", "migrations"}


def product_names() -> set[str]:
    """The product's top-level names: every module and package at the root but SIDES."""
    modules = {p.stem for p in ROOT.glob("*.py")}
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    return (modules | packages) - SIDES


def imports_in(source: str, package: tuple[str, ...]) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in `source`, wherever it stands (in a function, under
    TYPE_CHECKING); relative ones resolved against `package`."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            yield node.lineno, ".".join((*base, *filter(None, [node.module])))


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    """imports_in for a file of the repository."""
    return imports_in(path.read_text(), path.relative_to(ROOT).parent.parts)


def imports_from(folder: str, forbidden: set[str]) -> list[str]:
    """`file:line imports module` for each import under `folder` whose top name is forbidden."""
    return [f"{path.relative_to(ROOT)}:{line} imports {module}"
            for path in sorted((ROOT / folder).rglob("*.py"))
            for line, module in imports_of(path) if module.split(".")[0] in forbidden]


def test_the_product_names_are_found():
    assert {"app", "config", "logs", "demo", "models", "jobs", "clients",
            "blueprints"} <= product_names()


def test_imports_inside_functions_and_relative_ones_are_counted():
    source = ("def late():\n    from clients.ongoing import OngoingClient\n"
              "if TYPE_CHECKING:\n    import models.db\n"
              "from . import store\nfrom .. import scenario\n")
    assert sorted(imports_in(source, ("sandbox", "shopify"))) == [
        (2, "clients.ongoing"), (4, "models.db"), (5, "sandbox.shopify"), (6, "sandbox")]


def test_sandbox_imports_nothing_from_the_product():
    assert imports_from("sandbox", product_names()) == []
