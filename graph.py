"""Print app packages that import each other (lazy imports inside functions included)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path("app")


def package_of(path: Path) -> str:
    """`app/<pkg>/...` -> pkg; a top-level module (app/main.py) -> its stem."""
    parts = path.relative_to(ROOT).parts
    return parts[0] if len(parts) > 1 else Path(parts[0]).stem


def imported(tree: ast.AST) -> set[str]:
    """Packages under `app` named by any import statement in `tree`."""
    found: set[str] = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "app":
                names = [f"app.{alias.name}" for alias in node.names]
        found |= {n.split(".")[1] for n in names if n.startswith("app.") and n.count(".") >= 1}
    return found


edges: dict[str, set[str]] = {}
for file in ROOT.rglob("*.py"):
    src = package_of(file)
    edges.setdefault(src, set()).update(imported(ast.parse(file.read_text())) - {src})
pairs = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if a in edges.get(b, ())})
for a, b in pairs:
    print(f"{a} <-> {b}")
if "-v" in sys.argv:
    for a in sorted(edges):
        print(a, "->", ", ".join(sorted(edges[a])))
