"""Shared pytest fixtures: a fresh database per test, the reference data, a served dashboard and a browser."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a database file that does not exist yet, in the test's own directory."""
    return tmp_path / "torchscope.db"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (Kineto traces, TensorBoard logs); tests that need it skip cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA
