"""The ``torchscope`` console script: tables, version, and one-line errors with a non-zero exit code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import torchscope
from torchscope.cli.main import cli
from torchscope.storage.engine import resolve_url
from torchscope.storage.store import Store

EXE = shutil.which("torchscope", path=os.path.dirname(sys.executable)) or "torchscope"


def _cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_runs_prints_a_table_of_runs(db_path: Path) -> None:
    with torchscope.init(name="alpha", db=db_path) as run:
        for step in range(10):
            run.log({"train/loss": 1.0 / (step + 1), "sys/cpu": 50.0}, step=step)
    result = _cli("runs", str(db_path))
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == ["id", "name", "status", "started", "duration", "steps", "train/loss"]
    fields = row.split()
    assert fields[:3] == [str(run.id), "alpha", "finished"]
    assert fields[-2:] == ["10", "0.1"]


def test_db_option_and_environment_variable_select_the_database(db_path: Path, tmp_path: Path) -> None:
    torchscope.init(name="from-env", db=db_path).finish()
    by_option = _cli("runs", "--db", str(db_path))
    by_env = _cli("runs", env={**os.environ, "TORCHSCOPE_DB": str(db_path)}, cwd=tmp_path)
    assert "from-env" in by_option.stdout and "from-env" in by_env.stdout


def test_missing_database_is_one_line_on_stderr(tmp_path: Path) -> None:
    result = _cli("runs", str(tmp_path / "missing.db"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("torchscope: error: no torchscope database at")
    assert not (tmp_path / "missing.db").exists()


def test_non_torchscope_file_is_one_line_on_stderr(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"\x00garbage" * 100)
    result = _cli("serve", str(bogus), "--port", "1")
    assert result.returncode == 2
    assert result.stderr == f"torchscope: error: {bogus} is not a SQLite database (and so not a torchscope store)\n"


def test_version_prints_the_package_version() -> None:
    result = _cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"torchscope, version {torchscope.__version__}"


def test_empty_database_says_how_to_get_runs(db_path: Path) -> None:
    from torchscope.storage.engine import open_engine

    open_engine(db_path, create=True).dispose()
    result = _cli("runs", str(db_path))
    assert result.returncode == 0
    assert result.stdout.strip() == "no runs yet: train with torchscope.init(...) or run `torchscope demo`"


def test_demo_trains_a_run_into_the_database(db_path: Path) -> None:
    result = _cli("demo", "--db", str(db_path), "--seconds", "3", "--no-serve")
    assert result.returncode == 0, result.stderr
    store = torchscope.open(db_path)
    run = store.runs().iloc[0]
    assert (run["name"], run["status"]) == ("demo-cnn", "finished")
    assert {"train/loss", "train/accuracy", "train/lr", "val/loss", "val/accuracy"} <= set(store.tags(int(run["id"])))
    assert run["last_step"] >= 4  # the profiled window alone trains 5 steps, however slow the machine
    assert store.profiles(int(run["id"]))["name"].tolist() == ["window 1"]
    assert store.graph_steps(int(run["id"]))["step"].iloc[0] == 0


def test_environment_database_is_only_a_default(db_path: Path, tmp_path: Path) -> None:
    torchscope.init(name="explicit", db=db_path).finish()
    other = tmp_path / "other.db"
    torchscope.init(name="from-env", db=other).finish()
    result = _cli("runs", str(db_path), env={**os.environ, "TORCHSCOPE_DB": str(other)})
    assert result.returncode == 0, result.stderr
    assert "explicit" in result.stdout and "from-env" not in result.stdout


def test_importing_a_missing_file_is_one_line(tmp_path: Path) -> None:
    result = _cli("import", str(tmp_path / "nowhere.json.gz"), "--db", str(tmp_path / "t.db"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("torchscope: error:")
    assert "nowhere.json.gz" in result.stderr


# -- serve is the default command (its server patched out: nothing is left listening) ------------------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """What ``serve`` would have served: the store's URL, host and port of every call, instead of a server."""
    calls: list[dict[str, object]] = []

    def fake_serve(store: Store, *, host: str, port: int, debug: bool) -> None:
        calls.append({"url": store.url, "host": host, "port": port, "read_only": store.read_only})
        store.close()

    monkeypatch.setattr("torchscope.dashboard.app.create_app", lambda store, **_: store)  # the "app" is the store
    monkeypatch.setattr("torchscope.dashboard.server.serve", fake_serve)
    return calls


@pytest.mark.parametrize(
    "args",
    [["serve", "{db}"], ["{db}"], ["--db", "{db}"], ["{db}", "--port", "8050"], []],
    ids=["serve-db", "db", "db-option", "db-and-serve-option", "nothing"],
)
def test_serve_is_the_default_command(args: list[str], db_path: Path, served: list[dict[str, object]]) -> None:
    torchscope.init(name="served", db=db_path).finish()
    argv = [arg.format(db=db_path) for arg in args]
    result = CliRunner().invoke(cli, argv, env={"TORCHSCOPE_DB": str(db_path)})
    assert result.exit_code == 0, result.output
    assert served == [{"url": resolve_url(db_path), "host": "127.0.0.1", "port": 8050, "read_only": True}]
    assert result.stderr.startswith(f"torchscope: serving {served[0]['url']} at http://127.0.0.1:8050/")


def test_serve_options_reach_the_default_command(db_path: Path, served: list[dict[str, object]]) -> None:
    torchscope.init(name="served", db=db_path).finish()
    result = CliRunner().invoke(cli, ["--host", "0.0.0.0", "--auth-token", "t0ken", "--port", "9001", str(db_path)])
    assert result.exit_code == 0, result.output
    assert [(call["host"], call["port"]) for call in served] == [("0.0.0.0", 9001)]


def test_a_mistyped_command_is_not_served_as_a_database(tmp_path: Path) -> None:
    result = _cli("expotr", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such command 'expotr'" in result.stderr
    assert not list(tmp_path.iterdir())


def test_default_command_with_a_missing_database_is_one_line(tmp_path: Path) -> None:
    result = _cli(str(tmp_path / "missing.db"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("torchscope: error: no torchscope database at")
