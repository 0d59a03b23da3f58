"""The layering of DESIGN.md, checked on the source: data flows hooks/profiler -> storage -> dashboard."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "torchscope"


def _imports(path: Path) -> set[str]:
    """Every name a file imports, as ``module.name`` for ``from module import name`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = path.relative_to(PACKAGE.parent).with_suffix("").parts[: -node.level]
                module = ".".join([*base, module] if module else base)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _files(part: str) -> list[Path]:
    return sorted((PACKAGE / part).rglob("*.py"))


@pytest.mark.parametrize("part", ["storage"])
def test_storage_imports_no_producer_or_view(part: str) -> None:
    bad = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in _files(part)
        for name in _imports(path)
        if name.startswith(("torchscope.capture", "torchscope.profiler", "torchscope.dashboard", "torchscope.io",
                            "torchscope.cli"))
    }
    assert bad == set()


@pytest.mark.parametrize("part", ["capture", "profiler", "io"])
def test_producers_never_import_the_dashboard(part: str) -> None:
    assert _files(part), f"no torchscope/{part}/: a stale folder name would pass vacuously"
    bad = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in _files(part)
        for name in _imports(path)
        if name.startswith("torchscope.dashboard")
    }
    assert bad == set()


def test_dashboard_reads_only_through_the_store() -> None:
    # The read side: Store, and the record types its reads return (a Comparison, its Sides, diff row statuses).
    allowed = (
        "torchscope.dashboard", "torchscope.storage.store", "torchscope.errors", "torchscope.storage.compare.records",
    )  # fmt: skip
    bad = set()
    for path in _files("dashboard"):
        for name in _imports(path):
            if name.startswith("sqlalchemy"):
                bad.add(f"{path.relative_to(PACKAGE)}: {name}")
            elif name.startswith("torchscope") and not name.startswith(allowed):
                bad.add(f"{path.relative_to(PACKAGE)}: {name}")
    assert bad == set()


def test_only_storage_knows_sql() -> None:
    bad = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in PACKAGE.rglob("*.py")
        if "storage" not in path.relative_to(PACKAGE).parts
        for name in _imports(path)
        if name.startswith(("sqlalchemy", "sqlite3", "psycopg"))
    }
    assert bad == set()


def test_public_api_is_what_design_names() -> None:
    import torchscope

    for name in ("init", "open", "compare", "Run", "Store", "TorchscopeError"):
        assert hasattr(torchscope, name), name
