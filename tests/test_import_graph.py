"""No module of ours imports another that imports it back, directly or round a longer circle.

Every import counts, including those inside functions and under ``TYPE_CHECKING``: a
circle there still ties the two modules' designs together. An import of ``a.b.c`` is an
edge to ``a.b.c`` only (Python also initialises the packages ``a`` and ``a.b`` on the way,
but an ``__init__`` that re-exports its own submodules is not a circle of design).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Each top-level package of ours and the folder it sits in.
PACKAGES = {
    "shared": ROOT,
    "chat_statistics": ROOT,
    "ingestor": ROOT,
    "analytics_api": ROOT,
    "chatlog": ROOT,
    "insights": ROOT,
    "chatlog_client": ROOT / "client",
    "bench": ROOT,
}


def module_files() -> dict[str, Path]:
    """Every module of our packages by dotted name (a package by its own name)."""
    modules: dict[str, Path] = {}
    for package, base in PACKAGES.items():
        for path in sorted((base / package).rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported(name: str, path: Path, modules: set[str]) -> set[str]:
    """The modules of ours that the module ``name`` (in ``path``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    found.add(f"{base}.{alias.name}")
                elif base in modules:
                    found.add(base)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    """Each module of ours and the modules of ours it imports."""
    files = module_files()
    names = set(files)
    return {name: imported(name, path, names) for name, path in files.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_graph_covers_the_packages() -> None:
    graph = import_graph()
    assert "ingestor.app" in graph and "chatlog_client._core" in graph
    assert "ingestor.writer" in graph["ingestor.app"]


def test_finds_a_circle_when_there_is_one() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles() -> None:
    assert circles(import_graph()) == []
