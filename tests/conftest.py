"""Shared pytest fixtures: a fresh database per test, the reference data, a served dashboard and a browser."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import torchscope

sys.path.insert(0, str(Path(__file__).parent))  # tests/ helpers (procs, postgres, models) import by name

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a database file that does not exist yet, in the test's own directory."""
    return tmp_path / "torchscope.db"


@pytest.fixture
def run(db_path: Path) -> Iterator[torchscope.Run]:
    """A live run recording into the test's database, finished after the test."""
    active = torchscope.init("test", db=db_path)
    yield active
    active.finish()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (other machines' Kineto traces, TensorBoard logs). A test using it is a conformance test:
    marked ``conformance`` and, when the data is absent, not run (counted in one summary line)."""
    return SHARED_DATA


# -- conformance (reference data) and CUDA tests: selected when their inputs exist, counted in one line otherwise ------

_NOT_RUN: dict[str, tuple[int, str]] = {}  # group -> (tests deselected, the input they need)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests using ``shared_data`` as ``conformance``; deselect conformance tests when ``../shared/data`` is
    absent and ``gpu`` tests without a CUDA device (each group is then reported by :func:`pytest_terminal_summary`)."""
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.conformance)
    absent = {}
    if not SHARED_DATA.is_dir():
        absent["conformance"] = f"need {SHARED_DATA} (absent)"
    if any(item.get_closest_marker("gpu") for item in items) and not _cuda_available():
        absent["gpu"] = "need a CUDA device (none here)"
    keep, dropped = [], []
    for item in items:
        group = next((g for g in absent if item.get_closest_marker(g)), None)
        (keep if group is None else dropped).append(item)
        if group is not None:
            _NOT_RUN[group] = (_NOT_RUN.get(group, (0, ""))[0] + 1, absent[group])
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per group of tests not run for a missing input, e.g. ``conformance: 71 tests need ... : not run``."""
    for group, (count, need) in _NOT_RUN.items():
        terminalreporter.write_line(f"{group}: {count} tests {need}: not run (deselected)")


@pytest.fixture(scope="session")
def rank_traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory ``rank-0.json``, ``rank-1.json``: real CPU traces of a 2-rank gloo DDP job recorded by
    ``tests/ddp_ranks.py`` (3 profiled steps; rank 1 computes 60 ms more in step 2, rank 0 waits for it)."""
    from ddp_ranks import start_job

    folder = tmp_path_factory.mktemp("job")
    start_job(folder, str(folder / "unused.db"), 2, job="traces", steps=2, mode="file")
    return folder / "traces"


# -- a served dashboard and a real headless Chromium -------------------------------------------------------------------

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]  # fmt: skip


@pytest.fixture
def serve() -> Iterator[Callable[[Path], str]]:
    """Start ``torchscope serve DB`` (the real console script) on a free port; returns the base URL."""
    from contextlib import ExitStack

    from torchscope.dashboard.server import serve_in_subprocess

    with ExitStack() as servers:
        yield lambda db: servers.enter_context(serve_in_subprocess(db))


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Chromium (Debian's ``/usr/bin/chromium``, or ``$TORCHSCOPE_CHROMIUM``) driven by Playwright."""
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("TORCHSCOPE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        raise RuntimeError("Chromium not found: install Debian's chromium (make test does) or set TORCHSCOPE_CHROMIUM")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class PageProblems:
    """Console errors, uncaught page errors and failed Dash callbacks seen by a page."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def __repr__(self) -> str:
        return "\n".join(self.items)


@pytest.fixture
def page(browser: object) -> Iterator[tuple[object, PageProblems]]:
    """A fresh browser page (1400x900) and the problems it records; the test asserts there are none."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    new_page = context.new_page()
    problems = PageProblems()
    new_page.on("console", lambda msg: problems.items.append(f"console: {msg.text}") if msg.type == "error" else None)
    new_page.on("pageerror", lambda exc: problems.items.append(f"pageerror: {exc}"))
    new_page.on(
        "response",
        lambda r: problems.items.append(f"HTTP {r.status} {r.url}") if r.status >= 400 and "_dash" in r.url else None,
    )
    yield new_page, problems
    context.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a private PostgreSQL server started for this test session."""
    from postgres import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store on each backend: a SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "torchscope.db")
        return
    import uuid

    import sqlalchemy

    base = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield base.replace("/torchscope?", f"/{name}?")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


@pytest.fixture(scope="session")
def cpu_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real torch.profiler trace of a few CPU training steps (``.json``), recorded once per session."""
    from traces import record_cpu_trace

    return record_cpu_trace(tmp_path_factory.mktemp("cpu_trace") / "cpu_train.pt.trace.json")


@pytest.fixture(scope="session")
def gpu_trace(cpu_trace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cpu_trace`` with CUDA activity added as Kineto writes it (kernels on two streams, memcpy, memset, launches
    and their flows): a ``.json.gz`` made by :func:`traces.gpu_shaped_trace`, for GPU features without a GPU."""
    from traces import gpu_shaped_trace

    return gpu_shaped_trace(cpu_trace, tmp_path_factory.mktemp("gpu_trace") / "gpu_train.pt.trace.json.gz")


@pytest.fixture
def trace_file(request: pytest.FixtureRequest) -> Path:
    """The trace a test is parametrized with (``indirect``): ``cpu_trace`` or ``gpu_trace`` built here, ``rank0_trace``
    (rank 0 of ``rank_traces``), or the name of a reference trace in ``../shared/data/kineto`` (a conformance param,
    see :func:`traces.reference`)."""
    name = request.param
    if name in ("cpu_trace", "gpu_trace"):
        return request.getfixturevalue(name)
    if name == "rank0_trace":
        return request.getfixturevalue("rank_traces") / "rank-0.json"
    return SHARED_DATA / "kineto" / f"{name}.json.gz"
