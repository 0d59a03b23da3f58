"""The store keeps exactly what a run logs: values, steps, tags, statuses; and refuses what it cannot read."""

from __future__ import annotations

import math
import random
import sqlite3
from pathlib import Path

import pytest

import torchscope
from torchscope.storage.engine import open_engine
from torchscope.storage.schema import SCHEMA_VERSION


def test_ten_thousand_scalars_round_trip_with_exact_values(db_path: Path) -> None:
    rng = random.Random(7)
    specials = [math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1.7976931348623157e308, -1e-300]
    expected: dict[tuple[str, int], float] = {}
    with torchscope.init(name="roundtrip", db=db_path, config={"seed": 7}) as run:
        for step in range(2500):
            values = {
                "train/loss": rng.uniform(-1e6, 1e6),
                "train/tiny": rng.uniform(-1e-12, 1e-12),
                "count": rng.randrange(-(2**52), 2**52),
                "special": specials[step % len(specials)],
            }
            run.log(values, step=step)
            expected.update({(tag, step): float(value) for tag, value in values.items()})
    frame = torchscope.open(db_path).scalars(run.id)
    assert len(frame) == 10_000
    assert list(frame.columns) == ["run_id", "step", "tag", "value", "wall_time"]
    assert (frame["run_id"] == run.id).all()
    for tag, step, value in zip(frame["tag"], frame["step"], frame["value"]):
        want = expected[(tag, step)]
        if math.isnan(want):
            assert math.isnan(value)
        else:
            assert value == want  # bit-exact; SQLite folds -0.0 into 0.0, which compares equal
    assert frame["wall_time"].dtype == "int64"


def test_step_auto_increments_when_omitted(db_path: Path) -> None:
    with torchscope.init(db=db_path) as run:
        run.log({"a": 1.0})
        run.log({"a": 2.0})
        run.log({"a": 10.0}, step=10)
        run.log({"a": 11.0})
    frame = torchscope.open(db_path).scalars(run.id)
    assert frame["step"].tolist() == [0, 1, 10, 11]
    assert frame["value"].tolist() == [1.0, 2.0, 10.0, 11.0]


def test_tensor_and_numpy_values_are_stored_as_floats(db_path: Path) -> None:
    import numpy as np
    import torch

    with torchscope.init(db=db_path) as run:
        run.log({"t": torch.tensor(0.25), "n": np.float32(0.5), "b": True, "i": np.int64(3)}, step=0)
    frame = torchscope.open(db_path).scalars(run.id)
    assert dict(zip(frame["tag"], frame["value"])) == {"b": 1.0, "i": 3.0, "n": 0.5, "t": 0.25}


def test_runs_have_documented_columns_and_final_status(db_path: Path) -> None:
    with torchscope.init(name="ok", db=db_path, config={"lr": 0.1}) as ok:
        ok.log({"loss": 1.0}, step=4)
    with pytest.raises(RuntimeError, match="boom"):
        with torchscope.init(name="bad", db=db_path) as bad:
            raise RuntimeError("boom")
    runs = torchscope.open(db_path).runs().set_index("id")
    for column in ("name", "status", "started_at", "ended_at"):
        assert column in runs.columns
    assert runs.loc[ok.id, "status"] == "finished"
    assert runs.loc[ok.id, "config"] == {"lr": 0.1}
    assert runs.loc[ok.id, "last_step"] == 4
    assert runs.loc[bad.id, "status"] == "failed"
    assert runs.loc[bad.id, "error"] == "RuntimeError: boom"
    assert runs.loc[ok.id, "ended_at"] >= runs.loc[ok.id, "started_at"]
    one = torchscope.open(db_path).run(ok.id)
    assert one["error"] is None and one["last_step"] == 4  # None stays None in a single run's dict, not NaN


def test_keyboard_interrupt_marks_run_interrupted(db_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with torchscope.init(db=db_path) as run:
            raise KeyboardInterrupt
    assert torchscope.open(db_path).run(run.id)["status"] == "interrupted"


def test_finish_is_idempotent_and_log_after_finish_is_dropped_not_raised(db_path: Path) -> None:
    run = torchscope.init(db=db_path)
    run.log({"x": 1.0})
    run.finish()
    run.finish()
    with pytest.warns(RuntimeWarning, match="records are being dropped"):
        run.log({"x": 2.0})
    assert run.dropped == 1
    assert torchscope.open(db_path).scalars(run.id)["value"].tolist() == [1.0]


def test_unknown_run_is_a_not_found_error(db_path: Path) -> None:
    torchscope.init(db=db_path).finish()
    with pytest.raises(torchscope.NotFoundError, match="no run 99"):
        torchscope.open(db_path).run(99)


def test_missing_database_gives_actionable_error(tmp_path: Path) -> None:
    with pytest.raises(torchscope.StoreError, match="no torchscope database at .*torchscope demo"):
        torchscope.open(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(torchscope.StoreError, match="not a torchscope store"):
        torchscope.open(path)
    with pytest.raises(torchscope.StoreError, match="not a torchscope store"):
        torchscope.init(db=path)


def test_text_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("hello\n" * 100)
    with pytest.raises(torchscope.StoreError, match="not a SQLite database"):
        torchscope.open(path)
    assert path.read_text() == "hello\n" * 100


def test_newer_schema_is_refused_with_upgrade_hint(db_path: Path) -> None:
    torchscope.init(db=db_path).finish()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(torchscope.SchemaVersionError, match="newer torchscope.*upgrade"):
        torchscope.open(db_path)


def test_sqlite_store_uses_wal_and_stores_schema_version(db_path: Path) -> None:
    open_engine(db_path, create=True).dispose()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


def test_tag_names_are_interned_once(db_path: Path) -> None:
    with torchscope.init(db=db_path) as run:
        for step in range(100):
            run.log({"train/loss": 1.0, "train/acc": 0.5}, step=step)
    with sqlite3.connect(db_path) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT name FROM names")) == ["train/acc", "train/loss"]


def test_downsampling_keeps_a_single_spike_and_nan(db_path: Path) -> None:
    with torchscope.init(db=db_path) as run:
        for step in range(20_000):
            value = 1.0
            if step == 12_345:
                value = 1e9
            elif step == 777:
                value = math.nan
            run.log({"loss": value}, step=step)
    frame = torchscope.open(db_path).scalars(run.id, max_items=400)
    assert len(frame) <= 400 + 7
    assert 1e9 in frame["value"].tolist()
    assert frame.loc[frame["step"] == 777, "value"].isna().all() and (frame["step"] == 777).any()
