"""The shape of app/: no import cycle between its packages, no module over 400 lines.

The walker reads the source with `ast` (nothing is imported), so an import inside a
function or under TYPE_CHECKING counts like any other: a lazy import hides a cycle from
Python, not from the layering. The top-level modules (main, worker, models, __main__) form
the package "_top", which may import anything; their own imports are not edges.
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict, deque
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
TOP = "_top"
MAX_LINES = 400

Site = tuple[str, int]  # "app/alerts/routes.py", line
Edges = dict[tuple[str, str], list[Site]]


def _modules(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _package_of(root: Path, path: Path) -> str:
    parts = path.relative_to(root).parts
    return TOP if len(parts) == 1 else parts[0]


def _target(root: Path, dotted: list[str]) -> str | None:
    """The package of module `dotted` ("app.alerts.routes" -> "alerts"), or None if outside."""
    if len(dotted) < 2 or dotted[0] != root.name:
        return None
    return dotted[1] if (root / dotted[1]).is_dir() else TOP


def _imported(root: Path, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The packages of root that one import statement of `path` reaches."""
    if isinstance(node, ast.Import):
        found = (_target(root, alias.name.split(".")) for alias in node.names)
        return [t for t in found if t is not None]
    if node.level:
        module = [root.name, *path.relative_to(root).with_suffix("").parts]
        package = module[:-1]  # __init__.py's package is its directory: the same slice
        if node.level - 1 >= len(package):
            return []
        base = package[: len(package) - (node.level - 1)]
    else:
        base = []
    dotted = base + (node.module.split(".") if node.module else [])
    if dotted == [root.name]:  # `from app import alerts, models`: each name is a module
        found = (_target(root, [root.name, alias.name]) for alias in node.names)
        return [t for t in found if t is not None]
    target = _target(root, dotted)
    return [] if target is None else [target]


def package_imports(root: Path) -> Edges:
    """Every import between two packages of `root`, with the file:line of each."""
    edges: Edges = defaultdict(list)
    for path in _modules(root):
        source = _package_of(root, path)
        if source == TOP:
            continue
        where = path.relative_to(root.parent).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _imported(root, path, node):
                    if target != source:
                        edges[source, target].append((where, node.lineno))
    return {edge: sorted(sites) for edge, sites in sorted(edges.items())}


def _components(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def cycles(edges: Edges) -> list[list[str]]:
    """For each import inside a cycle, the shortest cycle through it: ["a", "b", "a"].

    Every arrow that takes part in some cycle shows up in at least one of them, without
    listing the (possibly very many) longer cycles that combine the same arrows.
    """
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target in edges:
        graph[source].add(target)
    seen: set[tuple[str, ...]] = set()
    result: list[list[str]] = []
    for component in _components(graph):
        for source, target in sorted(edges):
            if source not in component or target not in component:
                continue
            # Shortest way back from target to source, inside the component.
            came_from = {target: target}
            queue = deque([target])
            while source not in came_from:
                node = queue.popleft()
                for nxt in sorted(graph[node] & component):
                    came_from.setdefault(nxt, node)
                    queue.append(nxt)
            ring = [source]  # walked backwards: source <- ... <- target
            while ring[-1] != target:
                ring.append(came_from[ring[-1]])
            ring = [source, *reversed(ring[1:])]  # source -> target -> ... -> (source)
            start = ring.index(min(ring))
            key = tuple(ring[start:] + ring[:start])
            if key not in seen:
                seen.add(key)
                result.append([*key, key[0]])
    return sorted(result, key=lambda c: (len(c), c))


def describe(found: list[list[str]], edges: Edges) -> str:
    """The cycles, each arrow with one import that makes it (and how many others do)."""
    lines = [f"{len(found)} import cycle(s) between packages of app/:"]
    for cycle in found:
        lines.append("  " + " -> ".join(cycle))
        for source, target in itertools.pairwise(cycle):
            sites = edges[source, target]
            more = f" (+{len(sites) - 1} more)" if len(sites) > 1 else ""
            lines.append(f"      {source} -> {target}: {sites[0][0]}:{sites[0][1]}{more}")
    return "\n".join(lines)


def oversized(root: Path, limit: int = MAX_LINES) -> list[tuple[str, int]]:
    """Modules of `root` over `limit` lines, longest first."""
    sizes = (
        (
            path.relative_to(root.parent).as_posix(),
            len(path.read_text(encoding="utf-8").splitlines()),
        )
        for path in _modules(root)
    )
    return sorted((s for s in sizes if s[1] > limit), key=lambda s: (-s[1], s[0]))


def _module_names(root: Path, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted modules (or names in a module) one import statement of `path` names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = [root.name, *path.relative_to(root).with_suffix("").parts][:-1]
        base = package[: len(package) - (node.level - 1)]
    else:
        base = []
    module = ".".join(base + (node.module.split(".") if node.module else []))
    return [module, *(f"{module}.{alias.name}" for alias in node.names)]


def route_imports(root: Path) -> list[Site]:
    """Where a module of a package imports a `routes` module (only the top level may)."""
    sites: list[Site] = []
    for path in _modules(root):
        if _package_of(root, path) == TOP:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = _module_names(root, path, node)
                if any(n.startswith(f"{root.name}.") and n.endswith(".routes") for n in names):
                    sites.append((path.relative_to(root.parent).as_posix(), node.lineno))
    return sites


# --- the checks on app/ -----------------------------------------------------------------


def test_no_import_cycle_between_packages():
    edges = package_imports(APP)
    found = cycles(edges)
    assert not found, describe(found, edges)


def test_only_the_app_factory_imports_routes():
    sites = route_imports(APP)
    assert not sites, "routes imported outside app/main.py: " + ", ".join(
        f"{path}:{line}" for path, line in sites
    )


def test_no_module_over_400_lines():
    offenders = oversized(APP)
    listing = "\n".join(f"  {path}: {count} lines" for path, count in offenders)
    assert not offenders, f"{len(offenders)} module(s) over {MAX_LINES} lines:\n{listing}"


# --- the walker itself, on a small tree -------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "app"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


LAYERED = {
    "__init__.py": "",
    "main.py": "from app.b import y\nfrom app.a import x\n",  # _top may import anything
    "models.py": "",
    "a/__init__.py": "",
    "a/x.py": "import os\nfrom . import z\nfrom .z import helper\n",
    "a/z.py": "def helper():\n    return 1\n",
    "b/__init__.py": "",
    "b/y.py": "from app.a.x import helper\nimport app.models\n",
    "c/__init__.py": "from ..b import y\nfrom app import a, models\n",
    "c/deep/w.py": "from ...a import z\n",
}


def test_walker_maps_every_kind_of_import(tmp_path):
    edges = package_imports(_tree(tmp_path, LAYERED))
    assert edges == {
        ("b", "_top"): [("app/b/y.py", 2)],
        ("b", "a"): [("app/b/y.py", 1)],
        ("c", "_top"): [("app/c/__init__.py", 2)],
        ("c", "a"): [("app/c/__init__.py", 2), ("app/c/deep/w.py", 1)],
        ("c", "b"): [("app/c/__init__.py", 1)],
    }
    assert cycles(edges) == []


def test_walker_finds_lazy_and_type_checking_cycles(tmp_path):
    files = dict(LAYERED)
    files["a/x.py"] += "\n\ndef later():\n    from app.c import deep\n"  # a -> c, lazily
    typing_only = "\nif TYPE_CHECKING:\n    from ..b.y import helper\n"  # a -> b
    files["a/z.py"] += "\nfrom typing import TYPE_CHECKING\n" + typing_only
    edges = package_imports(_tree(tmp_path, files))
    assert edges["a", "c"] == [("app/a/x.py", 7)]
    assert edges["a", "b"] == [("app/a/z.py", 7)]
    found = cycles(edges)
    # c -> b was harmless alone; now a -> c -> b -> a is a cycle too, and shown as one.
    assert found == [["a", "b", "a"], ["a", "c", "a"], ["a", "c", "b", "a"]]
    assert describe(found, edges).splitlines() == [
        "3 import cycle(s) between packages of app/:",
        "  a -> b -> a",
        "      a -> b: app/a/z.py:7",
        "      b -> a: app/b/y.py:1",
        "  a -> c -> a",
        "      a -> c: app/a/x.py:7",
        "      c -> a: app/c/__init__.py:2 (+1 more)",
        "  a -> c -> b -> a",
        "      a -> c: app/a/x.py:7",
        "      c -> b: app/c/__init__.py:1",
        "      b -> a: app/b/y.py:1",
    ]


def test_walker_reports_a_longer_cycle_once(tmp_path):
    root = _tree(
        tmp_path,
        {
            "a/m.py": "from app.b import m\n",
            "b/m.py": "from app.c import m\n",
            "c/m.py": "from app.a import m\n",
            "d/m.py": "from app.a import m\n",  # into the cycle, not part of it
        },
    )
    assert cycles(package_imports(root)) == [["a", "b", "c", "a"]]


def test_route_imports_are_found_in_every_form(tmp_path):
    root = _tree(
        tmp_path,
        {
            "main.py": "from app.a.routes import router\n",
            "a/routes.py": "",
            "a/service.py": "",
            "b/x.py": "from app.a import routes as a_routes\n",
            "b/y.py": "def f():\n    import app.a.routes\n",
            "b/z.py": "from ..a.routes import router\n",
            "b/ok.py": "from app.a import service\nfrom app.a.service import routes_of\n",
        },
    )
    assert sorted(route_imports(root)) == [("app/b/x.py", 1), ("app/b/y.py", 2), ("app/b/z.py", 1)]


def test_oversized_lists_long_modules(tmp_path):
    root = _tree(tmp_path, {"a/long.py": "x = 1\n" * 401, "a/ok.py": "x = 1\n" * 400})
    assert oversized(root) == [("app/a/long.py", 401)]
