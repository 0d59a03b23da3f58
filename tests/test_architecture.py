"""The layering of DESIGN.md, checked on the source, with no allowlist of exceptions.

Data flows one way: capture/, profiler/ and io/ produce records -> storage/ writes them -> the ``Store`` facade reads
them -> dashboard/ renders them. The import graph is read from the source (every ``import``, function-level and
relative ones included), so a cycle or a wrong-way import fails here before it fails at run time.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "torchscope"
SQL_LIBRARIES = ("sqlalchemy", "sqlite3", "psycopg")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Every module a file imports: ``from a.b import c`` is ``a.b.c`` when that is a module, else ``a.b``."""
    modules = _modules()
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = _module_name(path).split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join([*base, module] if module else base)
            for alias in node.names:
                full = f"{module}.{alias.name}"
                found.add(full if full in modules else module)
    return found


@cache
def import_graph() -> nx.DiGraph:
    """torchscope's modules and the torchscope modules each one imports."""
    graph = nx.DiGraph()
    modules = _modules()
    for name, path in modules.items():
        graph.add_node(name)
        for target in _imports(path):
            if target in modules and target != name:
                graph.add_edge(name, target)
    return graph


def _edges_from(part: str) -> list[tuple[str, str]]:
    prefix = f"torchscope.{part}"
    return [(a, b) for a, b in import_graph().edges if a == prefix or a.startswith(prefix + ".")]


def _in(module: str, *parts: str) -> bool:
    return any(module == f"torchscope.{p}" or module.startswith(f"torchscope.{p}.") for p in parts)


def test_the_graph_reader_sees_relative_and_function_level_imports() -> None:
    graph = import_graph()
    assert graph.number_of_nodes() == len(_modules()) > 50
    # app.py imports routes at module level; routes finds the pages through the views package
    assert graph.has_edge("torchscope.dashboard.app", "torchscope.dashboard.routes")
    assert graph.has_edge("torchscope.dashboard.routes", "torchscope.dashboard.views")
    # run.py imports watch() inside Run.watch
    assert graph.has_edge("torchscope.capture.run", "torchscope.capture.watch")


def test_no_import_cycles_anywhere_in_the_package() -> None:
    cycles = [sorted(c) for c in nx.strongly_connected_components(import_graph()) if len(c) > 1]
    assert cycles == []


def test_storage_imports_no_producer_view_or_command() -> None:
    bad = [(a, b) for a, b in _edges_from("storage") if _in(b, "capture", "profiler", "io", "dashboard", "cli")]
    bad += [(a, b) for a, b in _edges_from("storage") if b == "torchscope"]
    assert bad == []


@pytest.mark.parametrize("part", ["capture", "profiler", "io"])
def test_producers_never_import_the_dashboard_or_the_cli(part: str) -> None:
    assert [(a, b) for a, b in _edges_from(part) if _in(b, "dashboard", "cli")] == []


def _is_read_side(module: str) -> bool:
    """What the dashboard may take from storage: the Store facade and the record types it returns."""
    leaf = module.rsplit(".", 1)[-1]
    return module == "torchscope.storage.store" or leaf in ("records", "types")


def test_dashboard_reads_only_through_the_store_facade() -> None:
    bad = [
        (a, b)
        for a, b in _edges_from("dashboard")
        if (_in(b, "storage") and not _is_read_side(b)) or _in(b, "capture", "profiler", "io", "cli")
    ]
    assert bad == []


def test_a_view_never_imports_another_views_modules() -> None:
    def view(module: str) -> str | None:
        parts = module.split(".")
        return parts[3] if parts[:3] == ["torchscope", "dashboard", "views"] and len(parts) > 3 else None

    bad = [(a, b) for a, b in _edges_from("dashboard.views") if view(b) is not None and view(a) != view(b)]
    assert bad == []


def test_only_storage_knows_sql() -> None:
    bad = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for name_, path in _modules().items()
        if not _in(name_, "storage")
        for name in _imports(path)
        if name.startswith(SQL_LIBRARIES)
    }
    assert bad == set()


def test_public_api_is_what_design_names() -> None:
    import torchscope

    public = {name for name in dir(torchscope) if not name.startswith("_")}
    modules = {"capture", "cli", "dashboard", "errors", "integrations", "io", "notebook", "profiler", "storage",
               "user_code"}  # fmt: skip  (submodules: bound on the package once imported)
    assert public - modules == set(torchscope.__all__) - {"__version__"}
    for name in ("init", "open", "compare", "Run", "Store", "TorchscopeError", "TorchscopeWarning"):
        assert name in public, name
