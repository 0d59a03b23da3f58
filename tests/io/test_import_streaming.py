"""Streaming import: a trace read in bounded batches gives exactly what reading it whole gives, whatever its layout;
a truncated or corrupt file, or Ctrl-C, leaves the store as it was."""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pandas as pd
import pytest

import torchscope.io.decode_workers as decode_workers
import torchscope.io.json_stream as json_stream
from torchscope.errors import TraceImportError
from torchscope.io.importing import import_path
from torchscope.io.json_stream import TraceReader
from torchscope.storage.store import Store
from traces import trace_events


def _layouts(fields: dict, events: list) -> dict[str, bytes]:
    """The same trace written the ways real files are: Kineto's indented text (fields before and after the events),
    one compact line, a bare event array."""
    head = {k: v for k, v in fields.items() if k != "traceName"}
    kineto = (
        b"{\n" + b"".join(b"  " + orjson.dumps(k) + b": " + orjson.dumps(v) + b",\n" for k, v in head.items())
        + b'  "traceEvents": [\n' + b",\n".join(b"  " + orjson.dumps(e, option=orjson.OPT_INDENT_2) for e in events)
        + b'\n  ],\n  "INFO": ["a ] b", "[c]"],\n  "traceName": ' + orjson.dumps(fields.get("traceName", "t")) + b"\n}\n"
    )  # fmt: skip
    return {
        "kineto": kineto,
        "compact": orjson.dumps({**fields, "traceEvents": events}),
        "bare": b"  " + orjson.dumps(events) + b"\n",
    }


def _tricky(events: list) -> list:
    """Events whose text holds what a boundary search could mistake for one: '}, {' in a name, dicts in lists."""
    extra = [
        {"ph": "X", "cat": "cpu_op", "name": 'weird }, { "ph": "X" name', "pid": 1, "tid": 1, "ts": 10.0, "dur": 1.0,
         "args": {"nested": [{"a": 1}, {"b": [2, {"c": 3}]}], "External id": 7}},
        {"ph": "X", "cat": "user_annotation", "name": "]}", "pid": 1, "tid": 1, "ts": 11.0, "dur": 0.5},
    ]  # fmt: skip
    return events + extra * 50


@pytest.mark.parametrize("layout", ["kineto", "compact", "bare"])
def test_batches_equal_the_whole_document(cpu_trace, tmp_path, layout):
    fields, events = trace_events(cpu_trace)
    events = _tricky(events)
    path = tmp_path / "t.json.gz"
    path.write_bytes(gzip.compress(_layouts(fields, events)[layout], compresslevel=1))
    reader = TraceReader(path, block=4096)  # a few events per batch: hundreds of cuts
    batches = list(reader.batches())
    assert len(batches) > 20
    assert [e for b in batches for e in b] == events
    if layout == "bare":
        assert reader.fields == {}
    else:
        expected = dict(fields)
        if layout == "kineto":
            expected["INFO"] = ["a ] b", "[c]"]
        assert reader.fields == expected


def test_multi_member_gzip_reads_as_one_file(cpu_trace, tmp_path):
    fields, events = trace_events(cpu_trace)
    text = orjson.dumps({**fields, "traceEvents": events})
    path = tmp_path / "t.json.gz"
    path.write_bytes(gzip.compress(text[: len(text) // 3]) + gzip.compress(text[len(text) // 3 :]))
    assert [e for b in TraceReader(path, block=4096).batches() for e in b] == events


def _events_table(db: Path, pid: int | None = None) -> pd.DataFrame:
    """A profile's events with ids relative to its first event (so two profiles of one trace compare equal)."""
    with Store(db) as store:
        pid = int(store.profiles()["id"].iloc[-1]) if pid is None else pid
        first = int(store.profile(pid)["first_event_id"])
        frame = store.events(pid, max_items=10**9).reset_index(drop=True)
    for column in ("id", "parent", "link"):
        frame[column] = frame[column] - first
    return frame.drop(columns=["lane_id"])


def test_streamed_import_equals_one_batch_import(cpu_trace, tmp_path, monkeypatch):
    whole = import_path(tmp_path / "whole.db", cpu_trace)
    monkeypatch.setattr(json_stream, "BLOCK", 2048)
    streamed = import_path(tmp_path / "streamed.db", cpu_trace)
    assert streamed.profiles[0]["events"] == whole.profiles[0]["events"] > 1000
    pd.testing.assert_frame_equal(_events_table(tmp_path / "streamed.db"), _events_table(tmp_path / "whole.db"))
    with Store(tmp_path / "streamed.db") as a, Store(tmp_path / "whole.db") as b:
        pd.testing.assert_frame_equal(a.memory_timeline(1), b.memory_timeline(1))
        pd.testing.assert_frame_equal(a.flows(1), b.flows(1))
        assert a.flows(1).shape[0] == 28  # every fwdbwd flow of the trace resolved to its two events


def test_a_directory_of_rank_traces_decodes_in_worker_processes(cpu_trace, tmp_path):
    ranks = tmp_path / "ranks"
    ranks.mkdir()
    fields, events = trace_events(cpu_trace)
    tiles = -(-decode_workers.WORKER_MIN_BYTES // len(orjson.dumps(events))) + 1  # big enough for a worker
    tiled = [{**e, "ts": e["ts"] + k * 1e6} if "ts" in e else e for k in range(tiles) for e in events]
    for rank in (0, 1):
        data = {**fields, "distributedInfo": {"rank": rank, "world_size": 2}, "traceEvents": tiled}
        (ranks / f"rank-{rank}.pt.trace.json").write_bytes(orjson.dumps(data))
    exe = str(Path(sys.executable).with_name("torchscope"))
    done = subprocess.run([exe, "import", str(ranks), "--db", str(tmp_path / "w.db")], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert done.stdout.count("(decoded by a worker process)") == 2, done.stdout
    import_path(tmp_path / "one.db", ranks / "rank-0.pt.trace.json")  # in this process: the reference
    with Store(tmp_path / "w.db") as store:
        profiles = store.profiles()
    assert sorted(profiles["rank"].tolist()) == [0, 1]
    reference = _events_table(tmp_path / "one.db")
    for pid in profiles["id"].tolist():
        pd.testing.assert_frame_equal(_events_table(tmp_path / "w.db", pid), reference)


@pytest.mark.parametrize("cut", ["mid-event", "before-end"])
def test_a_truncated_trace_stores_nothing(cpu_trace, tmp_path, monkeypatch, cut):
    db = tmp_path / "t.db"
    import_path(db, cpu_trace)  # something already there, which must stay as it is
    text = cpu_trace.read_bytes()
    end = text.rfind(b"]")
    broken = text[: len(text) * 2 // 3] if cut == "mid-event" else text[:end]
    path = tmp_path / "broken.json.gz"
    path.write_bytes(gzip.compress(broken))
    monkeypatch.setattr(json_stream, "BLOCK", 4096)
    with pytest.raises(TraceImportError, match="truncated|not valid JSON"):
        import_path(db, path)
    with Store(db) as store:
        assert store.runs()["id"].tolist() == [1]
        assert store.profiles()["id"].tolist() == [1]


def test_a_corrupt_gzip_stream_is_refused(cpu_trace, tmp_path):
    raw = bytearray(gzip.compress(cpu_trace.read_bytes()))
    raw[len(raw) // 2 : len(raw) // 2 + 64] = bytes(64)
    path = tmp_path / "corrupt.json.gz"
    path.write_bytes(bytes(raw))
    with pytest.raises(TraceImportError, match="gzip file is corrupt|not valid JSON|truncated"):
        import_path(tmp_path / "c.db", path)


def test_ctrl_c_during_an_import_leaves_the_store_as_it_was(cpu_trace, tmp_path):
    fields, events = trace_events(cpu_trace)
    big = tmp_path / "big.json"
    with big.open("wb") as fh:  # the trace 60 times over, shifted in time: an import that takes a while
        fh.write(b'{"traceEvents": [')
        for k in range(60):
            shifted = [{**e, "ts": e["ts"] + k * 1e6} if "ts" in e else e for e in events]
            fh.write((b"," if k else b"") + orjson.dumps(shifted)[1:-1])
        fh.write(b"]}")
    db = tmp_path / "i.db"
    import_path(db, cpu_trace)
    exe = str(Path(sys.executable).with_name("torchscope"))
    proc = subprocess.Popen([exe, "import", str(big), "--db", str(db), "--progress"], stderr=subprocess.PIPE)
    seen = b""
    while b"events" not in seen:  # the progress bar has counted decoded events: the import is under way
        chunk = proc.stderr.read1(256)  # type: ignore[union-attr]
        assert chunk, f"torchscope import ended before any progress: {seen!r}"
        seen += chunk
    proc.send_signal(signal.SIGINT)
    proc.stderr.read()  # type: ignore[union-attr]
    assert proc.wait(60) != 0
    with Store(db) as store:
        assert store.runs()["id"].tolist() == [1]
        assert store.profiles()["event_count"].tolist() == [_events_table(db).shape[0]]


@pytest.mark.parametrize("large_lane", [None, 100], ids=["beside-the-insert", "large-lanes-after-it"])
def test_the_timeline_built_from_the_imported_arrays_equals_one_built_from_the_stored_events(
    cpu_trace, tmp_path, monkeypatch, large_lane
):
    import sqlite3
    import threading

    from torchscope.storage.engine import open_engine
    from torchscope.storage.timeline import build
    from torchscope.storage.timeline.build import build_timeline

    waits = []
    if large_lane is not None:  # lanes above 100 events: their pyramid waits until the events are inserted
        monkeypatch.setattr(build, "LARGE_LANE", large_lane)
        compute = build.compute_timeline

        def watched(*args):  # type: ignore[no-untyped-def]
            *rest, before_large = args
            return compute(*rest, lambda: waits.append(before_large()))

        monkeypatch.setattr("torchscope.storage.profile.writes.compute_timeline", watched)
    db = tmp_path / "t.db"
    import_path(db, cpu_trace)  # built from the importer's arrays, in a thread beside the insert
    assert waits == ([] if large_lane is None else [True])  # Event.wait returns True once the insert has ended
    assert not [t for t in threading.enumerate() if t.name.startswith("torchscope-timeline")]  # joined, not idle

    def tables() -> dict[str, list]:
        with sqlite3.connect(db) as conn:
            return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
                    for t in ("timeline_lanes", "timeline_tiles", "timeline_names")}  # fmt: skip

    imported = tables()
    engine = open_engine(db, create=False, writer=True)
    with engine.begin() as conn:
        build_timeline(conn, 1)  # read back from profile_events
    engine.dispose()
    assert all(imported.values()) and tables() == imported


def test_ids_beyond_int32_in_some_batches_are_kept_exactly(gpu_trace, tmp_path, monkeypatch):
    # the importer keeps a batch's correlation and External ids as int32 when they fit; batches where they do not
    # fit stay int64, and a trace mixing both keeps every id and every kernel -> launch link
    data = orjson.loads(gzip.decompress(gpu_trace.read_bytes()))
    events = data.pop("traceEvents")
    corrs = sorted({e["args"]["correlation"] for e in events if "correlation" in e.get("args", {})})
    late = corrs[len(corrs) // 2]
    for i, e in enumerate(events):
        args = e.get("args", {})
        if "correlation" in args and args["correlation"] >= late:
            args["correlation"] += 2**35
        if "External id" in args and i > len(events) // 2:
            args["External id"] += 2**40
    path = tmp_path / "wide.json"
    path.write_bytes(orjson.dumps({**data, "traceEvents": events}))
    monkeypatch.setattr(json_stream, "BLOCK", 4096)
    import_path(tmp_path / "wide.db", path)
    import_path(tmp_path / "plain.db", gpu_trace)
    expected = sorted((e["name"], e["args"].get("External id"), e["args"].get("correlation")) for e in events
                      if e.get("ph") == "X" and e.get("args"))  # fmt: skip
    with Store(tmp_path / "wide.db") as wide, Store(tmp_path / "plain.db") as plain:
        got = wide.events(1, 0, int(wide.profile(1)["duration_ns"]) + 1, max_items=10**9)
        stored = sorted((n, None if pd.isna(x) else int(x), None if pd.isna(c) else int(c))
                        for n, x, c in zip(got["name"], got["ext_id"], got["corr"])
                        if not (pd.isna(x) and pd.isna(c)))  # fmt: skip
        assert stored == [t for t in expected if t[1] is not None or t[2] is not None]
        assert max(t[1] or 0 for t in stored) > 2**40 and min(t[1] for t in stored if t[1] is not None) < 2**31
        plain_events = plain.events(1, 0, int(plain.profile(1)["duration_ns"]) + 1, max_items=10**9)
        assert got["link"].notna().sum() == plain_events["link"].notna().sum() > 0


@pytest.mark.parametrize("block", [None, 2048], ids=["one-batch", "many-batches"])
def test_metadata_events_are_kept_as_the_trace_wrote_them(cpu_trace, tmp_path, monkeypatch, block):
    # events decode into a struct of the fields torchscope reads; a metadata event is kept whole: every key, in order
    fields, events = trace_events(cpu_trace)
    odd = [{"args": {"name": "loader"}, "tid": 9, "pid": 1, "ph": "M", "name": "thread_name", "cname": "good"},
           {"name": "process_labels", "ph": "M", "pid": 1, "args": {"labels": "CPU"}, "tts": 5, "id": 3}]  # fmt: skip
    ts = next(e["ts"] for e in events if e.get("ph") == "X")
    loading = {"ph": "X", "cat": "cpu_op", "name": "load", "pid": 1, "tid": 9, "ts": ts, "dur": 1.0}
    mixed = events[: len(events) // 2] + odd + events[len(events) // 2 :] + [loading]
    path = tmp_path / "meta.json"
    path.write_bytes(orjson.dumps({**fields, "traceEvents": mixed}))
    if block:
        monkeypatch.setattr(json_stream, "BLOCK", block)
    import_path(tmp_path / "m.db", path)
    with Store(tmp_path / "m.db") as store:
        kept = orjson.loads(store.profile(1)["info"])["torchscope_metadata_events"]
        lanes = store.lanes(1)
    written = [e for e in mixed if e.get("ph") == "M"]
    assert len(written) > len(odd) and [orjson.dumps(e) for e in kept] == [orjson.dumps(e) for e in written]
    assert "loader" in lanes["label"].tolist()  # and read: the thread's name labels its lane
