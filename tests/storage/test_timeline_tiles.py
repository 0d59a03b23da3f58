"""The stored timeline (depths, rows, density pyramid, names) and the SQL read path of large profiles built on it.

The reference is the loaded-index read path on the same profile: both must draw the same events and the same
density blocks window by window, find the same events and describe them alike. The profile is recorded for real
with torch.profiler on the CPU.
"""

from __future__ import annotations

import random
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import torchscope
from torchscope.errors import NotFoundError
from torchscope.io.importing import import_path
from torchscope.storage.schema import SCHEMA_VERSION
from torchscope.storage.summaries import SUMMARIES
from torchscope.storage.timeline import build, reads, tiles
from traces import reference


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A store holding one live profile of a 12-layer MLP training for 3 steps (shapes and Python stacks on)."""
    import torch

    db = tmp_path_factory.mktemp("recorded") / "torchscope.db"
    run = torchscope.init("tiles", db=db, system_metrics=False)
    torch.manual_seed(0)
    layers = [m for _ in range(6) for m in (torch.nn.Linear(32, 32), torch.nn.ReLU())]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        with run.profile(wait=0, warmup=0, active=3, record_shapes=True, with_stack=True) as prof:
            for _ in range(3):
                opt.zero_grad()
                model(torch.randn(16, 32)).pow(2).mean().backward()
                opt.step()
                prof.step()
    run.finish()
    with torchscope.open(db) as store:
        return db, int(store.profiles(run.id)["id"].iloc[0])


def _windows(duration: int) -> list[tuple[int | None, int | None, int, int, int]]:
    """Whole-profile views with tight budgets, then zooms from a quarter of the profile down to 300 ns."""
    rng = random.Random(0)
    out: list[tuple[int | None, int | None, int, int, int]] = [
        (None, None, 800, 3000, 2000), (None, None, 100_000, 40, 2000), (None, None, 1200, 3000, 3),
    ]  # fmt: skip
    for width in (duration // 4, duration // 40, duration // 400, duration // 4000, 20_000, 300):
        for _ in range(4):
            a = rng.randrange(0, max(duration - width, 1))
            out.append((a, a + width, rng.choice([300, 1200]), rng.choice([5, 3000]), rng.choice([10, 2000])))
    return out


def _answers(store: torchscope.Store, pid: int, windows: list) -> list:
    drawn = store.timeline_window(pid, px=10**6, max_items=10**6)[0]
    sample = drawn["id"].sample(30, random_state=1).tolist()
    sample += drawn[drawn["kind"].isin(["cpu_op", "python_function"])]["id"].head(10).tolist()
    return [
        *(store.timeline_window(pid, a, b, px=px, max_items=items, max_blocks=blocks)
          for a, b, px, items, blocks in windows),
        store.timeline_search(pid, "aten::"), store.timeline_search(pid, "LINEAR", max_items=7),
        store.timeline_search(pid, "mm", *next(w[:2] for w in windows if w[0] is not None), max_items=5),
        store.timeline_lanes(pid), store.name_spans(pid), [store.timeline_event(pid, int(i)) for i in sample],
    ]  # fmt: skip


def test_sql_path_draws_what_the_loaded_index_draws_window_by_window(
    recorded: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, pid = recorded
    with torchscope.open(db) as store:
        windows = _windows(int(store.profile(pid)["duration_ns"]))
        indexed = _answers(store, pid, windows)
    monkeypatch.setattr(reads, "INDEX_MAX_EVENTS", 0)  # every profile is "large": SQL and the stored pyramid
    with torchscope.open(db) as store:
        from_sql = _answers(store, pid, windows)
        assert store._timeline._large(pid) is not None and not store._timeline._indexes._loaded
        with pytest.raises(NotFoundError):
            store.timeline_event(pid, 10**9)
    whole = from_sql[0][0]
    assert len(whole) > 0 and whole.attrs["in_window"] == len(whole) + from_sql[0][1]["count"].sum() > 1000
    zoomed_blocks = sum(len(blocks) for _, blocks in from_sql[3 : len(windows)])
    assert zoomed_blocks > 20  # the comparison covers density blocks, not only drawn events (how many: timing)
    for (events, blocks), (ref_events, ref_blocks) in zip(from_sql[: len(windows)], indexed[: len(windows)]):
        pd.testing.assert_frame_equal(events, ref_events)
        pd.testing.assert_frame_equal(blocks, ref_blocks)
        assert events.attrs == ref_events.attrs
    for got, ref in zip(from_sql[len(windows) : -1], indexed[len(windows) : -1]):
        pd.testing.assert_frame_equal(got, ref, check_dtype=False)
        assert got.attrs == ref.attrs
    assert from_sql[-1] == indexed[-1]


def test_sql_path_minimap_counts_every_event_of_each_lane(
    recorded: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, pid = recorded
    monkeypatch.setattr(reads, "INDEX_MAX_EVENTS", 0)
    with torchscope.open(db) as store:
        counts = store.timeline_minimap(pid, bins=64)
        lanes = store.timeline_lanes(pid).set_index("id")
    assert counts.shape == (len(lanes), 64)
    assert counts.sum(axis=1).to_dict() == lanes["event_count"].to_dict()
    assert counts.index.tolist() == lanes.sort_values("row0").index.tolist()


def test_every_stored_level_counts_each_event_once_in_its_row_and_start_bin(recorded: tuple[Path, int]) -> None:
    db, pid = recorded
    with torchscope.open(db) as store:
        raw = store.events(pid)
        index = store._timeline._timeline(pid).ix  # depths as the loaded index computes them from parents
    raw["depth"] = index.depth[raw["id"].to_numpy() - index.base]
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT shift, tile, lane_id, cells FROM timeline_tiles WHERE profile_id = ?", (pid,))
        stored = stored.fetchall()
        finest = dict(conn.execute("SELECT lane_id, finest_shift FROM timeline_lanes WHERE profile_id = ?", (pid,)))
    assert min(finest.values()) >= build.MIN_SHIFT and len({s for s, *_ in stored}) > 5
    got: dict[tuple[int, int, int, int], tuple[int, int]] = {}
    for shift, tile, lane, blob in stored:
        c = tiles.decode_cells(blob, tile)
        assert ((c.bin >> tiles.TILE_BITS) == tile).all()
        for depth, b, n, busy in zip(c.row.tolist(), c.bin.tolist(), c.count.tolist(), c.busy.tolist()):
            got[(shift, lane, depth, b)] = (n, busy)
    expected: dict[tuple[int, int, int, int], list[int]] = {}
    for shift in sorted({s for s, *_ in stored}):
        for lane, depth, start, dur in raw[["lane_id", "depth", "start", "dur"]].itertuples(index=False):
            if finest[lane] > shift:
                continue
            b = start >> shift
            cell = expected.setdefault((shift, lane, depth, b), [0, 0])
            cell[0] += 1
            cell[1] += min(dur, ((b + 1) << shift) - start)
    assert got == {k: tuple(v) for k, v in expected.items()}


def test_building_in_small_chunks_stores_the_same_timeline(
    recorded: tuple[Path, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, pid = recorded
    copy = tmp_path / "copy.db"
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    monkeypatch.setattr(build, "CHUNK", 37)  # chunk edges fall inside call trees: depths must carry across them
    monkeypatch.setattr(build, "PYRAMID_SLICE", 5)  # slice edges cut cells: their counts must add up across them
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"sqlite:///{copy}")
    with engine.begin() as conn:
        build.build_timeline(conn, pid)
    engine.dispose()
    tables = ("timeline_lanes", "timeline_tiles")
    queries = [f"SELECT * FROM {t} WHERE profile_id = ? ORDER BY 1, 2, 3, 4" for t in tables]
    queries.append("SELECT * FROM timeline_names WHERE profile_id = ? ORDER BY name_id, lane_id")
    with sqlite3.connect(db) as a, sqlite3.connect(copy) as b:
        for query in queries:
            rows = a.execute(query, (pid,)).fetchall()
            assert rows and rows == b.execute(query, (pid,)).fetchall()


@pytest.mark.parametrize("trace_file", ["gpu_trace", *reference("a100_alexnet")], indirect=True)
def test_a_schema_3_store_gets_its_timeline_and_summaries_built_on_open(db_path: Path, trace_file: Path) -> None:
    import_path(db_path, trace_file)
    with torchscope.open(db_path) as store:
        before = store.timeline_window(1, 0, 10**9, px=900)
        lanes = len(store.timeline_lanes(1))
    with sqlite3.connect(db_path) as conn:
        for table in ("timeline_lanes", "timeline_tiles", "timeline_names", "profile_summaries"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
        conn.execute("UPDATE profiles SET first_event_id = NULL")  # as profiles stored by older versions
    with torchscope.open(db_path) as store:
        after = store.timeline_window(1, 0, 10**9, px=900)
        assert store.profile(1)["first_event_id"] == 1
    pd.testing.assert_frame_equal(after[0], before[0])
    pd.testing.assert_frame_equal(after[1], before[1])
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        assert conn.execute("SELECT COUNT(*) FROM timeline_lanes").fetchone()[0] == lanes
        assert conn.execute("SELECT COUNT(*) FROM profile_summaries WHERE profile_id = 1").fetchone()[0] == len(SUMMARIES)


def test_pure_cells_and_blocks() -> None:
    # bins of 8 ns: row 0 holds events at 0 (lasting 20 ns: busy clipped at the bin end, 8) and 3, and at 17;
    # row 1 one at 9; the drawn event at 3 leaves the cells; adjacent bins of a row join into one block
    c = tiles.count_cells(np.array([0, 0, 1, 0]), np.array([0, 3, 9, 17]), np.array([20, 2, 1, 4]), 3)
    assert [x.tolist() for x in c] == [[0, 0, 1], [0, 2, 1], [2, 1, 1], [10, 4, 1]]
    drawn = tiles.count_cells(np.array([0]), np.array([3]), np.array([2]), 3)
    left = tiles.subtract(c, drawn, 0, 2)
    assert [x.tolist() for x in left] == [[0, 0, 1], [0, 2, 1], [1, 1, 1], [8, 4, 1]]
    blocks = tiles.merge_runs(left, 3, 0, 20)
    assert blocks.row.tolist() == [0, 0, 1] and blocks.start.tolist() == [0, 16, 8]
    assert blocks.end.tolist() == [8, 20, 16] and blocks.count.tolist() == [1, 1, 1]
    assert blocks.busy.tolist() == pytest.approx([1.0, 1.0, 1 / 8])
    assert [x.tolist() for x in tiles.decode_cells(tiles.encode_cells(c, 0), 0)] == [x.tolist() for x in c]
    assert tiles.chunk_depth(np.array([1, 2, 3, -1]), 2, np.array([0, 1], dtype=np.int16)).tolist() == [2, 3, 4, 0]


def test_kept_starts_bound_the_ids_of_every_time_range() -> None:
    rng = np.random.default_rng(0)
    for count in (0, 1, tiles.START_STEP, 5 * tiles.START_STEP + 17):
        start = np.sort(rng.integers(0, 10 * count + 1, count))  # many equal starts: ties at the kept ones too
        starts = tiles.decode_starts(tiles.encode_starts(start[:: tiles.START_STEP]))
        assert starts.tolist() == start[:: tiles.START_STEP].tolist()
        for t0, t1 in [(-5, 0), (0, 10**9), *(sorted(rng.integers(-3, 10 * count + 3, 2)) for _ in range(200))]:
            lo, hi = tiles.starting_within(starts, count, int(t0), int(t1))
            inside = np.flatnonzero((start >= t0) & (start < t1))
            assert 0 <= lo <= hi <= count
            assert (inside >= lo).all() and (inside < hi).all()
            first = int(np.searchsorted(start, t0)) if len(inside) == 0 else int(inside[0])
            assert first - lo <= tiles.START_STEP and hi - max(first, lo) <= len(inside) + tiles.START_STEP


@pytest.mark.parametrize("any_db", ["postgresql"], indirect=True)  # SQLite: the recorded profile's test above
@pytest.mark.parametrize("trace_file", ["gpu_trace", *reference("a100_alexnet")], indirect=True)
def test_sql_path_answers_alike_on_postgresql(
    any_db: str, trace_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = trace_file
    import_path(any_db, path)
    import_path(tmp_path / "reference.db", path)
    with torchscope.open(tmp_path / "reference.db") as reference:
        windows = _windows(int(reference.profile(1)["duration_ns"]))[:12]
        expected = _answers(reference, 1, windows)  # the loaded index on SQLite
    monkeypatch.setattr(reads, "INDEX_MAX_EVENTS", 0)
    with torchscope.open(any_db) as store:
        got = _answers(store, 1, windows)
        minimap = store.timeline_minimap(1, bins=30)
    for (events, blocks), (ref_events, ref_blocks) in zip(got[: len(windows)], expected[: len(windows)]):
        pd.testing.assert_frame_equal(events, ref_events)
        pd.testing.assert_frame_equal(blocks, ref_blocks)
    for frame, ref in zip(got[len(windows) : -1], expected[len(windows) : -1]):
        pd.testing.assert_frame_equal(frame, ref, check_dtype=False)
    assert got[-1] == expected[-1]
    assert minimap.sum(axis=1).to_dict() == got[len(windows) + 3].set_index("id")["event_count"].to_dict()
