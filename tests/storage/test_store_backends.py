"""The same store code on SQLite and PostgreSQL: what a run logs reads back the same on both."""

from __future__ import annotations

import math

import pytest

import torchscope


def test_scalars_round_trip_on_both_backends(any_db: str) -> None:
    values = [0.1, -2.5e300, math.inf, -math.inf, math.nan, 1e-310, 12345678901234.0]
    with torchscope.init(name="backend", db=any_db, config={"backend": any_db.split(":")[0]}) as run:
        for step, value in enumerate(values):
            run.log({"train/loss": value, "train/step_x2": 2.0 * step}, step=step)
    store = torchscope.open(any_db)
    frame = store.scalars(run.id, tags=["train/loss"])
    assert frame["step"].tolist() == list(range(len(values)))
    for got, want in zip(frame["value"], values):
        assert (math.isnan(got) and math.isnan(want)) or got == want
    run_row = store.run(run.id)
    assert run_row["status"] == "finished"
    assert run_row["last_step"] == len(values) - 1
    assert run_row["scalar_count"] == 2 * len(values)
    last = store.last_scalars([run.id]).set_index("tag")
    assert last.loc["train/step_x2", "value"] == 2.0 * (len(values) - 1)
    assert last.loc["train/step_x2", "count"] == len(values)


def test_two_runs_share_interned_tags_on_both_backends(any_db: str) -> None:
    for name in ("a", "b"):
        with torchscope.init(name=name, db=any_db) as run:
            run.log({"loss": 1.0, "a-very-long-kernel-name-" + "x" * 5000: 2.0}, step=0)
    store = torchscope.open(any_db)
    runs = store.runs()
    assert runs["name"].tolist() == ["b", "a"]
    for run_id in runs["id"]:
        assert len(store.tags(int(run_id))) == 2


def test_unreachable_server_is_a_clear_store_error() -> None:
    with pytest.raises(torchscope.StoreError, match="cannot open database"):
        torchscope.open("postgresql+psycopg://nobody@/nowhere?host=/nonexistent-socket-dir")


def test_integer_columns_insert_with_null_markers_on_both_backends(any_db: str) -> None:
    import numpy as np
    from sqlalchemy import text

    from torchscope.storage.bulk import MAX_PARAMS, insert_columns
    from torchscope.storage.engine import open_engine
    from torchscope.storage.profile.schema import profile_memory

    # more rows than one statement takes; -1 stands for NULL in "addr" only, -2**63 in "allocated" only
    rows = np.arange(3 * MAX_PARAMS, dtype=np.int64).reshape(-1, 3)
    rows[::7, 1] = -1
    rows[1, 2] = -(1 << 63)
    rows[2, 2] = (1 << 63) - 1
    rows[3, 2] = -1
    columns = ("ts", "addr", "allocated")
    engine = open_engine(any_db, create=True, writer=True)
    try:
        with engine.begin() as conn:
            constant = np.zeros((len(rows), 5), dtype=np.int64)  # profile_id, lane_id, device_type, device, bytes
            insert_columns(conn, profile_memory, (*columns, "profile_id", "lane_id", "device_type", "device", "bytes"),
                           np.column_stack((rows, constant)), {"addr": -1, "allocated": -(1 << 63)})  # fmt: skip
        with engine.connect() as conn:
            stored = conn.execute(text(f"SELECT {', '.join(columns)} FROM profile_memory ORDER BY ts")).all()
    finally:
        engine.dispose()
    expected = [tuple(row) for row in rows.tolist()]
    expected = [(a, None if b == -1 else b, None if c == -(1 << 63) else c) for a, b, c in expected]
    assert stored == expected
    assert sum(row[1] is None for row in stored) == len(range(0, len(rows), 7))
