"""Chrome traces exported by torchscope read by HolisticTraceAnalysis (HTA) as the originals are.

Each test runs HTA's analyses on an original trace and on torchscope's export of it and asserts identical results:
the parsed events, kernel breakdown, temporal and idle breakdowns, memory-bandwidth summary, CUDA kernel launch stats
and rank detection. HTA rounds timestamps itself (``ceil(ts)``, ``floor(ts + dur)`` in ``round_down_time_stamps``);
the export writes each event's ``ts`` counting from the trace's own ``baseTimeNanoseconds`` with the nanoseconds the
original double held, so HTA rounds the same values the same way and no tolerance is needed. What HTA leaves out of
order (the launch-stats rows follow the file's event order, which the export does not keep) is sorted before the
comparison. The export is also checked against the JSON trace event format (fields each phase needs) and for every
arg the original events carry.
"""

from __future__ import annotations

import gzip
import logging
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from torchscope.cli.main import main
from torchscope.errors import ExportError
from torchscope.io.exporting import export_run
from torchscope.io.importing import import_path

hta_analysis = pytest.importorskip("hta.trace_analysis", reason="HolisticTraceAnalysis is a test dependency")
hta_trace_file = pytest.importorskip("hta.common.trace_file")

KINETO = ("a100_alexnet", "v100_train_rank0", "mi250_rocm_train", "cpu_only_rank34", "gpu_sampled_rank0")


def hta_figures(trace_dir: Path) -> dict[str, Any]:
    """What HTA reports for the traces in ``trace_dir``: an analysis that fails is kept as its error's type."""
    logging.disable(logging.WARNING)  # HTA logs a warning per trace about its ns rounding
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ta = hta_analysis.TraceAnalysis(trace_dir=str(trace_dir))
            ranks = sorted(ta.t.traces)
            out: dict[str, Any] = {"ranks": ranks, "steps": list(map(int, ta.get_profiler_steps()))}
            for rank in ranks:
                out[f"events {rank}"] = _events(ta, rank)
            analyses = {
                "kernel breakdown": lambda: ta.get_gpu_kernel_breakdown(visualize=False),
                "temporal breakdown": lambda: ta.get_temporal_breakdown(visualize=False),
                "idle breakdown": lambda: ta.get_idle_time_breakdown(ranks=ranks, visualize=False)[0],
                "memory bandwidth": lambda: ta.get_memory_bw_summary(ranks=ranks),
                "launch stats": lambda: {
                    r: f.sort_values("correlation", kind="stable").reset_index(drop=True)
                    for r, f in ta.get_cuda_kernel_launch_stats(ranks=ranks, visualize=False).items()
                },
            }
            for name, analysis in analyses.items():
                try:
                    out[name] = analysis()
                except (IndexError, ValueError, KeyError) as exc:  # HTA on a CPU-only trace: nothing to break down
                    out[name] = f"{type(exc).__name__}"
    finally:
        logging.disable(logging.NOTSET)
    return out


def _events(ta: Any, rank: int) -> pd.DataFrame:
    """HTA's parsed events of ``rank``, names decoded, in a stable order (HTA's row ids follow the file's order)."""
    frame = ta.t.get_trace(rank).copy()
    table = ta.t.symbol_table.get_sym_table()
    for column in ("name", "cat", "input_dims", "input_type", "input_strides"):
        if column in frame:
            frame[column] = [_symbol(table, i) for i in frame[column]]
    frame = frame.drop(columns=[c for c in ("index", "index_correlation") if c in frame])
    frame["ts"] = frame["ts"] - frame["ts"].min()  # the export may count from another base (a whole second)
    frame = frame.drop(columns=["end"]) if "end" in frame else frame
    frame = frame[sorted(frame.columns)]  # HTA orders them as the keys of the file's first event
    keys = ["ts", "pid", "tid", "name", "dur", "cat"]
    return frame.sort_values([*keys, *(c for c in frame.columns if c not in keys)]).reset_index(drop=True)


def _symbol(table: list[str], value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return repr(value)
    if isinstance(value, (int, np.integer)) and 0 <= value < len(table):
        return table[int(value)]
    return value


def assert_same_figures(original: dict[str, Any], exported: dict[str, Any]) -> None:
    assert list(original) == list(exported)
    for key, want in original.items():
        got = exported[key]
        for a, b in zip(_frames(want), _frames(got), strict=True):
            if isinstance(a, pd.DataFrame):
                pd.testing.assert_frame_equal(a, b, obj=key)
            else:
                assert a == b, key


def _frames(value: Any) -> list[Any]:
    if isinstance(value, tuple):
        return [f for v in value for f in _frames(v)]
    if isinstance(value, dict):
        return [*value.keys(), *(f for v in value.values() for f in _frames(v))]
    return [value]


def export_one(db: Path, run_id: int, path: Path) -> Path:
    list(export_run(db, run_id, chrome_trace=path))
    return path


def alone(path: Path, folder: Path) -> Path:
    """``folder`` holding a copy of ``path`` only (HTA reads every trace of a directory)."""
    folder.mkdir(parents=True)
    shutil.copy(path, folder / path.name)
    return folder


def read_trace(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    return orjson.loads(gzip.decompress(raw) if path.name.endswith(".gz") else raw)


def assert_trace_event_format(trace: dict[str, Any]) -> None:
    """The JSON Object Format of the Trace Event Format: the fields each phase needs, of the right types."""
    assert isinstance(trace["traceEvents"], list) and trace["traceEvents"]
    number = (int, float)
    for e in trace["traceEvents"]:
        ph = e["ph"]
        assert ph in ("X", "i", "M", "s", "f"), e
        assert isinstance(e["pid"], (int, str)) and isinstance(e["tid"], (int, str)), e
        assert isinstance(e["name"], str), e
        if ph == "M":
            assert e["name"] in ("process_name", "process_labels", "process_sort_index", "thread_name",
                                 "thread_sort_index") and isinstance(e["args"], dict), e  # fmt: skip
            continue
        assert isinstance(e["ts"], number), e
        if ph == "X":
            assert isinstance(e["dur"], number) and e["dur"] >= 0 and isinstance(e["args"], dict), e
            assert isinstance(e["cat"], str), e
        elif ph == "i":
            assert e["s"] in ("g", "p", "t"), e
        else:  # flow events: an id binds a start to its end; the end binds to its enclosing slice
            assert isinstance(e["id"], (int, str)) and isinstance(e["cat"], str), e
            assert ph == "s" or e["bp"] == "e", e


def assert_args_kept(original: dict[str, Any], exported: dict[str, Any]) -> None:
    """Every arg of every original X / i event, and every metadata event and top-level field, is in the export."""

    def key(e: dict[str, Any]) -> tuple[Any, ...]:
        return (e["ph"], e.get("name"), e.get("pid"), e.get("tid"), round(float(e.get("ts", 0)) * 1000))

    def shift(trace: dict[str, Any]) -> int:
        return round(float(trace.get("baseTimeNanoseconds", 0)))

    delta = shift(exported) - shift(original)
    written: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for e in exported["traceEvents"]:
        k = key(e)
        written.setdefault((*k[:4], k[4] + delta if e["ph"] != "M" else k[4]), []).append(e.get("args") or {})
    for e in original["traceEvents"]:
        if e["ph"] not in ("X", "i", "M"):
            continue
        candidates = written.get(key(e), [])
        args = e.get("args") or {}
        assert any(all(k in got and got[k] == v for k, v in args.items()) for got in candidates), (e, candidates)
    for field, value in original.items():
        if field not in ("traceEvents", "baseTimeNanoseconds"):
            assert exported[field] == value, field


def test_cpu_trace_export_gives_hta_the_same_figures(cpu_trace, tmp_path, db_path):
    result = import_path(db_path, cpu_trace)
    exported = export_one(db_path, result.run_id, tmp_path / "export" / "cpu_train.pt.trace.json.gz")
    original = hta_figures(alone(cpu_trace, tmp_path / "original"))
    assert original["steps"] == [1, 2, 3] and len(original["events 0"]) > 1000
    assert_same_figures(original, hta_figures(exported.parent))
    with gzip.open(exported) as fh:  # .gz means gzip
        trace = orjson.loads(fh.read())
    assert_trace_event_format(trace)
    assert_args_kept(orjson.loads(cpu_trace.read_bytes()), trace)


def test_two_rank_run_exports_one_file_per_rank_that_hta_reads_as_two_ranks(rank_traces, tmp_path, db_path, capsys):
    result = import_path(db_path, rank_traces)
    assert len(result.profiles) == 2
    out = tmp_path / "traces"
    main(["export", str(result.run_id), "--db", str(db_path), "--chrome-trace", str(out)])
    printed = capsys.readouterr().out.splitlines()
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 2 and len(printed) == 2
    span = files[0].split(".")[1]
    assert files == [f"rank0.{span}.pt.trace.json.gz", f"rank1.{span}.pt.trace.json.gz"]
    assert hta_trace_file.get_trace_files(str(out)) == {0: str(out / files[0]), 1: str(out / files[1])}
    original, exported = hta_figures(rank_traces), hta_figures(out)
    assert original["ranks"] == [0, 1]
    assert_same_figures(original, exported)
    for rank in (0, 1):
        text = gzip.decompress((out / files[rank]).read_bytes()).decode()
        assert re.search(r'"rank":\s+(\d+)', text).group(1) == str(rank)  # HTA's pattern, on the first match
        original_trace = orjson.loads(next(rank_traces.glob(f"*rank*{rank}*.json")).read_bytes())
        assert_args_kept(original_trace, orjson.loads(text))
    again = import_path(db_path, out)  # and torchscope reads the directory back as the same two ranks
    assert sorted(p["events"] for p in again.profiles) == sorted(p["events"] for p in result.profiles)


def test_one_profile_of_a_multi_rank_run_exports_as_one_file(rank_traces, tmp_path, db_path):
    result = import_path(db_path, rank_traces)
    second = result.profiles[1]["id"]
    out = tmp_path / "one.json"
    lines = list(export_run(db_path, result.run_id, chrome_trace=out, profile_id=second))
    assert lines == [f"wrote profile {second} ({result.profiles[1]['events']} events) as a Chrome trace to {out}"]
    assert out.read_bytes()[:1] == b"{"  # plain JSON for a .json name
    with pytest.raises(ExportError, match="is a file: the run's 2 profiles need a directory"):
        list(export_run(db_path, result.run_id, chrome_trace=out))


@pytest.mark.parametrize("trace", KINETO)
def test_reference_trace_export_gives_hta_the_same_figures(trace, shared_data, tmp_path, db_path):
    source = shared_data / "kineto" / f"{trace}.json.gz"
    result = import_path(db_path, source)
    exported = export_one(db_path, result.run_id, tmp_path / "export" / f"{trace}.pt.trace.json.gz")
    original = hta_figures(alone(source, tmp_path / "original"))
    assert_same_figures(original, hta_figures(exported.parent))
    exported_trace = read_trace(exported)
    assert_trace_event_format(exported_trace)
    assert_args_kept(read_trace(source), exported_trace)


def test_reference_figures_are_the_ones_the_issue_reported(shared_data, tmp_path, db_path):
    """The numbers the export got wrong before (gpu_user_annotation counted as kernels; bandwidth rows dropped)."""
    for trace in ("mi250_rocm_train", "gpu_sampled_rank0"):
        result = import_path(db_path, shared_data / "kineto" / f"{trace}.json.gz")
        export_one(db_path, result.run_id, tmp_path / trace / "x.pt.trace.json.gz")
    mi250 = hta_figures(tmp_path / "mi250_rocm_train")
    assert mi250["temporal breakdown"]["compute_time(us)"].tolist() == [96.0]
    bandwidth = hta_figures(tmp_path / "gpu_sampled_rank0")["memory bandwidth"]
    assert len(bandwidth) >= 2


def test_two_rank_nccl_reference_job_exports_as_two_ranks(shared_data, tmp_path, db_path):
    job = tmp_path / "job"
    job.mkdir()
    for rank in (0, 1):
        shutil.copy(shared_data / "kineto" / f"gpu_sampled_rank{rank}.json.gz", job / f"gpu_sampled_rank{rank}.json.gz")
    result = import_path(db_path, job)
    out = tmp_path / "out"
    list(export_run(db_path, result.run_id, chrome_trace=out))
    original, exported = hta_figures(job), hta_figures(out)
    assert original["ranks"] == exported["ranks"] == [0, 1]
    assert_same_figures(original, exported)
