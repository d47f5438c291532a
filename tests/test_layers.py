"""Who may import whom, read from the source with `ast` (imports inside functions count too).

The sandbox is a neighbour of the product, not a lodger: it meets the app over HTTP only, as
Shopify and Ongoing do, so it imports nothing of the product's. Composition roots (demo.py, the
tests, bench/) may import both sides. Inside the product, layers (STYLE.md 16): models/ <- clients/
<- jobs/ <- blueprints/ <- app.py.
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_PRODUCT = {"sandbox", "tests", "bench", "migrations"}


def product_modules() -> set[str]:
    """The product's top-level names: every module and package at the root but NOT_PRODUCT."""
    modules = {p.stem for p in ROOT.glob("*.py")}
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    return (modules | packages) - NOT_PRODUCT


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


def test_the_product_is_found():
    assert {"app", "config", "logs", "demo", "models", "jobs", "clients",
            "blueprints"} <= product_modules()


def test_imports_inside_functions_and_relative_ones_are_counted():
    source = ("def late():\n    from clients.ongoing import OngoingClient\n"
              "if TYPE_CHECKING:\n    import models.db\n"
              "from . import store\nfrom .. import scenario\n")
    assert sorted(imports_in(source, ("sandbox", "shopify"))) == [
        (2, "clients.ongoing"), (4, "models.db"), (5, "sandbox.shopify"), (6, "sandbox")]


def test_sandbox_imports_nothing_from_the_product():
    assert imports_from("sandbox", product_modules()) == []


def test_clients_and_models_import_nothing_from_jobs_blueprints_or_app():
    upward = {"jobs", "blueprints", "app"}
    assert imports_from("clients", upward) + imports_from("models", upward) == []
