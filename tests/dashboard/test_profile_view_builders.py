"""Pure builders of the profile and timeline views, without a browser: figures, hints, grid rows, URL parsing."""

from __future__ import annotations

import base64
import re
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from torchscope.dashboard.views.profile.memory import memory_figure
from torchscope.dashboard.profile_summary import breakdown_figure, step_hints, top_figure, utilization_figure
from torchscope.dashboard.views.timeline.figures import (
    DENSITY_TRACE, MATCH_TRACE, heat_shade, minimap_figure, timeline_figure,
)  # fmt: skip
from torchscope.dashboard.views.timeline.page import clamp_window, parse_relayout
from torchscope.storage.profile.reads import bucket_max
from torchscope.dashboard.views.profile import tables


def _breakdown(**shares: float) -> pd.DataFrame:
    wall = 1_000_000
    row = {"step": 7, "start": 0, "end": wall, "wall_ns": wall}
    cats = ("kernel", "communication", "memcpy", "memset", "runtime", "dataloader", "cpu", "idle")
    row.update({f"{c}_ns": int(shares.get(c, 0) * wall) for c in cats})
    return pd.DataFrame([row])


def test_breakdown_bars_stack_to_the_step_wall_time() -> None:
    frame = pd.concat([_breakdown(kernel=0.5, cpu=0.25, idle=0.25), _breakdown(idle=1.0).assign(step=8)])
    fig = breakdown_figure(frame)
    assert [t.name for t in fig.data] == ["kernel", "memcpy", "memset", "communication", "runtime", "dataloader", "cpu", "idle"]
    totals = np.sum([np.asarray(t.y, dtype=float) for t in fig.data], axis=0)
    assert totals.tolist() == [1.0, 1.0]  # ms
    # steps on a numeric axis (a few ticks however many steps), named in the hover; a trace without steps: one label
    assert list(fig.data[0].x) == [7, 8] and fig.layout.xaxis.title.text == "step" and fig.layout.xaxis.dtick == 1
    assert fig.data[0].hovertemplate.startswith("step %{x} · kernel: ")
    assert breakdown_figure(_breakdown(idle=1.0).assign(step=-1)).data[0].x[0] == "whole profile"
    many = breakdown_figure(pd.concat([_breakdown(idle=1.0).assign(step=s) for s in range(100, 830)]))
    assert list(many.data[0].x) == list(range(100, 830)) and many.layout.xaxis.dtick is None
    # more steps than bars a pixel wide: one stacked band per category (8 shapes to draw, not 5,840 bars)
    assert {t.type for t in many.data} == {"scatter"} and {t.stackgroup for t in many.data} == {"steps"}
    assert np.sum([np.asarray(t.y, dtype=float) for t in many.data], axis=0).tolist() == [1.0] * 730
    assert {t.type for t in fig.data} == {"bar"}  # two steps: bars


def test_of_thousands_of_steps_the_step_charts_draw_the_slowest_or_least_busy_of_every_few() -> None:
    steps = np.arange(2500)
    walls = (1 + (steps % 7)) * 1_000_000  # 1..7 ms, the slowest of every 7 steps at step % 7 == 6
    walls[1234] = 50_000_000  # one very slow step
    frame = pd.DataFrame({"step": steps, "wall_ns": walls, "kernel_ns": walls // 2, "idle_ns": walls - walls // 2})
    fig = breakdown_figure(frame)
    assert fig.layout.title.text == "Step time breakdown (the slowest of every 3 steps)"  # 2500 / 1000, rounded up
    kept = list(fig.data[0].x)
    assert len(kept) == 834 and 1234 in kept  # a real step per run of 3, the slow one among them
    assert all(walls[s] == walls[3 * (s // 3): 3 * (s // 3) + 3].max() for s in kept)
    assert np.sum([np.asarray(t.y, dtype=float) for t in fig.data], axis=0).tolist() == (walls[kept] / 1e6).tolist()
    busy = pd.DataFrame({"step": steps, "device": 0, "utilization": (steps % 5) / 5, "idle_ns": 0})
    util = utilization_figure(busy)
    assert util.layout.title.text.endswith("the least of every 3 steps")
    assert all(v == min((s % 5) / 5 * 100 for s in range(3 * (x // 3), min(3 * (x // 3) + 3, 2500)))
               for x, v in zip(util.data[0].x, util.data[0].y))  # fmt: skip


def _runtime(**shares: float) -> pd.DataFrame:
    wall = 1_000_000
    return pd.DataFrame([{"step": 7, "wall_ns": wall, **{f"{c}_ns": int(shares.get(c, 0) * wall)
                                                          for c in ("launch", "sync", "setup")}}])  # fmt: skip


@pytest.mark.parametrize(
    ("shares", "calls", "words"),
    [
        ({"idle": 0.6, "kernel": 0.4}, {}, "Step 7 is mostly idle: nothing ran on the CPU or the GPU for 60% of it."),
        ({"dataloader": 0.45, "kernel": 0.55}, {}, "Step 7 is data-loading bound: 45% of it waits for the DataLoader."),
        ({"runtime": 0.5, "kernel": 0.1, "cpu": 0.4}, {"launch": 0.5},
         "Step 7 is launch bound: 50% of it is spent launching kernels (CUDA runtime calls)"),
        ({"runtime": 0.5, "kernel": 0.1, "cpu": 0.4}, {"launch": 0.05, "setup": 0.45},
         "Step 7 is mostly CUDA set-up: 45% of it is spent creating the context and streams"),
    ],
)  # fmt: skip
def test_hints_name_what_bounds_a_step(shares: dict[str, float], calls: dict[str, float], words: str) -> None:
    hints = step_hints(_breakdown(**shares), runtime=_runtime(**calls))
    assert len(hints) == 1 and hints[0].startswith(words)


def test_runtime_time_alone_is_not_called_launch_bound() -> None:
    # half the step in runtime calls that wait for the device: neither launch bound nor set-up
    assert step_hints(_breakdown(runtime=0.5, kernel=0.1, cpu=0.4), runtime=_runtime(sync=0.5)) == []
    assert step_hints(_breakdown(runtime=0.5, kernel=0.1, cpu=0.4)) == []  # no split known: no claim


def test_no_hint_for_a_busy_gpu_step_but_a_compute_bound_note() -> None:
    util = pd.DataFrame({"step": [7], "device": [0], "wall_ns": [10], "busy_ns": [9], "kernel_ns": [9], "idle_ns": [1],
                         "utilization": [0.9]})  # fmt: skip
    assert step_hints(_breakdown(kernel=0.9, cpu=0.1)) == []
    assert step_hints(_breakdown(kernel=0.9, cpu=0.1), util)[0].startswith("The GPU is busy 90% of the time")
    fig = utilization_figure(util)
    assert fig.data[0].name == "GPU 0" and list(fig.data[0].y) == [90.0] and fig.data[0].type == "bar"
    steps = pd.concat([util.assign(step=s) for s in range(300)])
    lines = utilization_figure(steps)  # more steps than bars a pixel wide: a line per device
    assert fig.data[0].type == "bar" and lines.data[0].type == "scatter" and lines.data[0].mode == "lines"
    assert list(lines.data[0].x) == list(range(300)) and list(lines.data[0].y) == [90.0] * 300


def test_top_figure_lists_the_largest_first() -> None:
    frame = pd.DataFrame({"name": ["a", "b", "c"], "total_ns": [1000, 3000, 2000]})
    fig = top_figure(frame, "name", "total_ns", "Top", n=2)
    assert list(fig.data[0].y) == ["1. b", "2. c"] and list(fig.data[0].x) == [3.0, 2.0]
    same = pd.DataFrame({"name": ["k" * 70 + "1", "k" * 70 + "2"], "total_ns": [2, 1]})
    assert len(set(top_figure(same, "name", "total_ns", "Top").data[0].y)) == 2


def test_kernel_rows_in_microseconds_with_a_timeline_link() -> None:
    kernels = pd.DataFrame({
        "name": ["void k<(1)>"], "calls": [4], "total_ns": [10_000], "mean_ns": [2_500.0], "min_ns": [1_000],
        "max_ns": [4_000], "share": [0.25], "tensor_cores": [True], "mean_occupancy": [None],
        "mean_registers": [None], "mean_blocks_per_sm": [None],
    })  # fmt: skip
    spans = pd.DataFrame({"name": ["void k<(1)>"], "first_start": [100_000], "last_end": [600_000]}).set_index("name")
    (row,) = tables.kernel_rows(kernels, 3, spans)
    assert (row["total_us"], row["mean_us"], row["min_us"], row["max_us"]) == (10.0, 2.5, 1.0, 4.0)
    assert row["share_pct"] == 25.0 and row["tensor_cores"] == "yes" and row["occupancy_pct"] is None
    href = row["links"].split("](", 1)[1].rstrip(")")
    url = urlsplit(href.replace("%28", "(").replace("%29", ")"))
    assert url.path == "/timeline/3"
    assert parse_qs(url.query) == {"start": ["90000"], "end": ["610000"], "q": ["void k<(1)>"]}
    assert [c["field"] for c in tables.kernel_columns()][:3] == ["name", "calls", "total_us"]


def test_op_and_module_rows_link_to_the_graph_node() -> None:
    ops = pd.DataFrame({"name": ["aten::relu", "aten::mm"], "input_shapes": ["[[4,16]]", "[]"], "calls": [2, 1],
                        "host_total_ns": [5000, 100], "host_self_ns": [4000, 100], "device_total_ns": [0, 0],
                        "device_self_ns": [0, 0], "host_mean_ns": [2500.0, 100.0], "device_mean_ns": [0.0, 0.0]})  # fmt: skip
    rows = tables.op_rows(ops, 1, 9, None, {"aten::relu": "Sequential_0/ReLU_0"})
    assert "[graph](/graph/9?node=Sequential_0%2FReLU_0)" in rows[0]["links"]
    assert "graph" not in rows[1]["links"]
    assert rows[0]["input_shapes"] == "[[4,16]]" and rows[0]["host_self_us"] == 4.0
    assert "input_shapes" in [c["field"] for c in tables.op_columns(True)]
    assert "input_shapes" not in [c["field"] for c in tables.op_columns(False)]
    modules = pd.DataFrame({"module": ["Seq_0/Linear_1"], "calls": [2], "host_total_ns": [10], "host_self_ns": [10],
                            "device_total_ns": [0], "device_self_ns": [0]})  # fmt: skip
    (mrow,) = tables.module_rows(modules, 1, 9, None)
    assert "q=nn.Module%3A%20Linear_1" in mrow["links"] and "/graph/9?node=Seq_0%2FLinear_1" in mrow["links"]


def _lanes() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2], "position": [0, 1], "row0": [0, 3], "rows": [3, 1], "group": ["process 1", "GPU 0"],
                         "label": ["thread 1", "stream 7"], "kind": ["host", "device"], "device": [None, 0],
                         "stream": [None, 7], "event_count": [3, 1]})  # fmt: skip


def test_timeline_figure_uses_one_trace_per_kind_plus_density_and_matches() -> None:
    events = pd.DataFrame({"id": [10, 11, 12, 13], "row": [0, 1, 2, 3], "lane_id": [1, 1, 1, 2],
                           "kind": ["cpu_op", "cpu_op", "cuda_runtime", "kernel"], "name": ["a", "b", "cudaLaunchKernel", "k"],
                           "start": [0, 1000, 2000, 5000], "dur": [9000, 3000, 500, 2000], "depth": [0, 1, 2, 0]})  # fmt: skip
    blocks = pd.DataFrame({"row": [1], "start": [6000], "end": [7000], "count": [40], "busy": [0.5]})
    selected = {**events.iloc[3].to_dict(), "launched_by": [events.iloc[2].to_dict()], "launched": []}
    fig = timeline_figure(_lanes(), events, blocks, start_ns=0, end_ns=10_000, matches=events.iloc[[3]], selected=selected)
    data, layout = fig["data"], fig["layout"]
    assert [t["name"] for t in data] == ["cpu_op", "cuda_runtime", "kernel", DENSITY_TRACE, MATCH_TRACE]
    assert data[0]["customdata"].tolist() == [[10, "a", 0.009], [11, "b", 0.003]]  # id, name, duration ms
    assert data[0]["base"].tolist() == [0.0, 0.001] and data[0]["x"].tolist() == [0.009, 0.003]
    # the block is drawn by an image; an invisible line through it answers the pointer, every 1/150 of the window
    line = data[3]
    assert line["type"] == "scatter" and line["mode"] == "lines" and line["showlegend"] is False
    assert line["x"] == pytest.approx(np.linspace(0.006, 0.007, 16)) and set(line["y"].tolist()) == {1}
    assert line["customdata"].tolist() == [[-1, 40, 6000, 7000]] * 16
    assert layout["hoverdistance"] == 10
    (image,) = layout["images"]
    assert (image["x"], image["sizex"], image["y"], image["sizey"]) == (0.0, 0.01, 1, 1)
    assert image["layer"] == "below"  # under every trace: a search match in a block is drawn over it
    assert _svg(image["source"]) == (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1200 4" preserveAspectRatio="none" '
        'shape-rendering="crispEdges" fill="#5a5a5a"><path d="M720.00 1.1h120.00v.8h-120.00z" fill-opacity="0.50"/>'
        "</svg>"
    )
    assert data[4]["type"] == "scatter" and data[4]["mode"] == "markers" and data[4]["y"].tolist() == [3]
    (arrow,) = layout["annotations"]
    assert (arrow["ax"], arrow["ay"], arrow["x"], arrow["y"]) == (0.002, 2, 0.005, 3)
    assert layout["xaxis"]["range"] == [0.0, 0.01] and layout["yaxis"]["range"] == [3.5, -0.5]
    assert layout["yaxis"]["ticktext"] == ["process 1 · thread 1", "GPU 0 · stream 7"]
    go.Figure(fig)  # and plotly accepts it as a valid figure


def test_density_points_sit_at_a_narrow_blocks_centre_and_along_a_clipped_wide_one() -> None:
    blocks = pd.DataFrame({"row": [0, 2], "start": [100, -5000], "end": [150, 3000], "count": [3, 900],
                           "busy": [0.1, 1.0]})  # fmt: skip
    fig = timeline_figure(_lanes(), blocks.iloc[:0].assign(id=[], kind=[], name=[], dur=[]), blocks, start_ns=0,
                          end_ns=15_000)  # fmt: skip
    line = fig["data"][0]
    # the wide block is clipped to the window, [0, 3000], and points are at most 15000 / 150 = 100 ns apart
    assert line["x"] == pytest.approx([0.000125, *np.linspace(0, 0.003, 31)])
    assert line["customdata"].tolist() == [[-1, 3, 100, 150]] + [[-1, 900, -5000, 3000]] * 31
    assert _svg(fig["layout"]["images"][0]["source"]).count("<path") == 2  # a path per shade: 0.25 and 1.0


def test_minimap_is_a_heat_strip_image_under_a_line_that_answers_the_pointer() -> None:
    counts = pd.DataFrame([[1, 0, 2], [0, 5, 0]], index=[1, 2])
    counts.attrs.update(bin_ns=1_000_000, labels=["thread 1", "stream 7"])
    fig = minimap_figure(counts, duration_ns=3_000_000, start_ns=1_000_000, end_ns=2_000_000)
    (line,) = fig["data"]
    assert line["x"].tolist() == [0.5, 1.5, 2.5]  # a click gives the bin's centre (ms)
    assert line["customdata"].tolist() == [[1, "thread 1"], [5, "stream 7"], [2, "thread 1"]]
    layout = fig["layout"]
    assert layout["hovermode"] == "x" and layout["xaxis"]["range"] == [0, 3.0]
    shape = layout["shapes"][0]
    assert (shape["x0"], shape["x1"]) == (1.0, 2.0)
    empty = pd.DataFrame(np.zeros((0, 3), dtype=np.int64))  # no lanes: an empty strip, no error
    assert _svg(minimap_figure(empty, duration_ns=3, start_ns=0, end_ns=3)["layout"]["images"][0]["source"]).count(
        "<rect") == 0
    svg = _svg(layout["images"][0]["source"])
    rects = re.findall(r'<rect x="(\d+)" y="(\d+)" width="(\d+)" height="1" fill="(#[0-9a-f]{6})"/>', svg)
    # log(1 + count) / log(1 + 5) in 12 steps: 1 event -> step 5, 2 -> 8, 5 -> 12 (the darkest)
    assert rects == [("0", "0", "1", heat_shade(5)), ("2", "0", "1", heat_shade(8)), ("1", "1", "1", "#1f4e99")]
    go.Figure(fig)


def _svg(uri: str) -> str:
    assert uri.startswith("data:image/svg+xml;base64,")
    return base64.b64decode(uri.split(",", 1)[1]).decode()


def test_relayout_events_become_windows() -> None:
    assert parse_relayout({"xaxis.range[0]": 1.5, "xaxis.range[1]": 2.25}) == (1_500_000, 2_250_000)
    assert parse_relayout({"xaxis.range": [0, 1]}) == (0, 1_000_000)
    assert parse_relayout({"xaxis.autorange": True}) == "all"
    assert parse_relayout({"autosize": True}) is None and parse_relayout(None) is None
    assert clamp_window(None, None, 5000) == (0, 5001)
    assert clamp_window(-50, 10**9, 5000) == (0, 5001)
    assert clamp_window(2000, 2010, 10**6) == (1505, 2505)  # at least a microsecond wide


def test_memory_figure_keeps_the_peak_when_downsampled() -> None:
    ts = np.arange(100_000, dtype=np.int64)
    values = np.sin(ts / 5000.0)
    values[54_321] = 7.0
    x, y = bucket_max(ts, values, 500)
    assert len(x) <= 500 and 54_321 in x.tolist() and y.max() == 7.0
    timeline = pd.DataFrame({"ts": [0, 10, 20], "device_type": [0, 0, 0], "device": [-1, -1, -1],
                             "allocated": [1024, 3072, 2048]})  # fmt: skip
    peaks = pd.DataFrame({"device_type": [0], "device": [-1], "peak_allocated": [3072], "peak_at": [10],
                          "peak_reserved": [None], "events": [3]})  # fmt: skip
    fig = memory_figure(timeline, peaks)
    assert fig.data[0].name == "CPU allocated" and list(fig.data[0].y * 2**20) == [1024, 3072, 2048]
    assert fig.layout.annotations[0].text == "peak CPU: 0.003 MiB"


def test_charts_come_with_margins_that_hold_their_labels() -> None:
    # given up front, so that plotly need not grow them and draw each chart twice
    short = top_figure(pd.DataFrame({"name": ["mm"], "total_ns": [1]}), "name", "total_ns", "Top")
    long = top_figure(pd.DataFrame({"name": ["autograd::engine::evaluate_function: AddmmBackward0"], "total_ns": [1]}),
                      "name", "total_ns", "Top")  # fmt: skip
    assert short.layout.margin.l < 60 < 300 < long.layout.margin.l
    escaped = top_figure(pd.DataFrame({"name": ["k<relu>"], "total_ns": [1]}), "name", "total_ns", "Top")
    assert escaped.layout.margin.l == top_figure(pd.DataFrame({"name": ["k(relu)"], "total_ns": [1]}), "name",
                                                 "total_ns", "Top").layout.margin.l  # as shown, not as escaped
    few = breakdown_figure(pd.concat([_breakdown(kernel=1.0).assign(step=s) for s in range(3)]))
    many = breakdown_figure(pd.concat([_breakdown(kernel=1.0).assign(step=s) for s in range(114)]))
    assert few.layout.margin.b == many.layout.margin.b  # step numbers: a few short ticks and the axis title either way
    assert many.layout.legend.yref == "container" and many.layout.legend.y == 0  # under the labels, whatever they take
    whole = breakdown_figure(_breakdown(kernel=1.0).assign(step=-1))  # one category label, no axis title
    assert whole.layout.margin.b < few.layout.margin.b
