"""The docs site builds with ``mkdocs build --strict`` (no broken link, no missing page or image) and holds the
quickstarts, the API reference generated from docstrings, and the schema generated from the store's metadata."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

import torchscope
from torchscope.io.importing import import_path
from torchscope.storage import tables

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
        cwd=ROOT, capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _text(page: Path) -> str:
    return unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def test_every_page_of_the_nav_is_built_with_its_screenshots(site: Path) -> None:
    for page in ("quickstart/inspect-graph", "quickstart/monitor-live", "quickstart/compare-profiles",
                 "quickstart/import-logs", "reference/api", "reference/schema", "capture", "profiler", "store"):  # fmt: skip
        assert (site / page / "index.html").is_file(), page
    for shot in ("run", "graph", "profile", "timeline", "compare"):
        assert (site / "screenshots" / f"{shot}.png").stat().st_size > 10_000, shot


def test_the_api_reference_holds_the_public_docstrings(site: Path) -> None:
    def words(text: str) -> str:  # markup (code spans, roles, links) aside: the words in their order
        return " ".join(re.sub(r"(:\w+:)|[^\w]+", " ", text).split())

    text = words(_text(site / "reference" / "api" / "index.html"))
    for obj in (torchscope.init, torchscope.open, torchscope.compare, torchscope.Run, torchscope.Store, import_path):
        first = inspect.getdoc(obj).split("\n\n")[0]
        assert words(first) in text, obj.__name__


def test_the_schema_page_lists_every_table_and_column_of_the_metadata(site: Path) -> None:
    text = _text(site / "reference" / "schema" / "index.html")
    for table in tables.metadata.tables.values():
        section = text[text.index(table.name) :]
        for column in table.columns:
            assert column.name in section, (table.name, column.name)
