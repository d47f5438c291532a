"""Layers, and no loops (STYLE.md 16): models/ <- clients/ <- jobs/ <- blueprints/ <- app.py."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function, as written."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom):  # relative: resolve against the file's package
            parts = path.parent.relative_to(ROOT).parts
            package = parts[:len(parts) - node.level + 1]
            base = ".".join((*package, node.module) if node.module else package)
            found |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    return found


def _upward(module: str) -> bool:
    top = module.split(".")[0]
    return top in ("jobs", "blueprints", "app")


def test_clients_and_models_import_nothing_from_jobs_blueprints_or_app():
    files = sorted((ROOT / "clients").rglob("*.py")) + sorted((ROOT / "models").rglob("*.py"))
    assert files
    upward = {f"{path.relative_to(ROOT)} imports {module}"
              for path in files for module in _imported(path) if _upward(module)}
    assert upward == set()


def test_the_layer_check_sees_imports_inside_functions(tmp_path):
    probe = tmp_path / "late.py"
    probe.write_text("def late():\n    from jobs import metrics\n    import blueprints.health\n"
                     "    import app\n")
    assert {m for m in _imported(probe) if _upward(m)} >= {"jobs", "blueprints.health", "app"}
