"""The pure parts of comparing: diff joins, id parsing, text, figures and grid rows, without a store or browser."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from torchscope.dashboard.formatting import fmt_ns, fmt_pct
from torchscope.storage.compare.records import parse_ref, ref_text
from torchscope.dashboard.views.compare.figures import FASTER, SLOWER, breakdown_bars, change_bars, scalar_overlay
from torchscope.dashboard.views.graph.compare import NEW, UNCHANGED, change_colour, node_colours
from torchscope.dashboard.views.compare.tables import diff_rows, graph_node_rows
from torchscope.errors import BadRequestError
from torchscope.storage.compare import diff

A = pd.DataFrame({"name": ["mm", "add", "relu"], "calls": [2, 4, 1], "total_ns": [1000, 400, 50]})
B = pd.DataFrame({"name": ["mm", "add", "gelu"], "calls": [2, 5, 1], "total_ns": [700, 500, 80]})


def test_table_diff_joins_fills_missing_with_zero_and_sorts_by_absolute_change() -> None:
    got = diff.table_diff(A, B, ["name"], ["calls", "total_ns"], {"mean_ns": "total_ns"})
    assert got.attrs["sort_by"] == "total_ns"
    assert got[["name", "status", "total_ns_a", "total_ns_b", "total_ns_delta"]].values.tolist() == [
        ["mm", diff.BOTH, 1000, 700, -300],
        ["add", diff.BOTH, 400, 500, 100],
        ["gelu", diff.ONLY_B, 0, 80, 80],
        ["relu", diff.ONLY_A, 50, 0, -50],
    ]
    assert got["calls_delta"].tolist() == [0, 1, 1, -1]
    add = got.set_index("name").loc["add"]
    assert (add["mean_ns_a"], add["mean_ns_b"], add["mean_ns_delta"]) == (100.0, 100.0, 0.0)
    assert math.isnan(got.set_index("name").loc["gelu", "mean_ns_a"])
    assert got["pct_change"].tolist()[:2] == [-0.3, 0.25] and math.isnan(got["pct_change"][2])
    totals = diff.totals(got, ["calls", "total_ns"])
    assert totals.values.tolist() == [["calls", 7, 8, 1], ["total_ns", 1450, 1280, -170]]


def test_table_diff_of_two_empty_tables_is_empty_with_all_columns() -> None:
    empty = A.iloc[0:0]
    got = diff.table_diff(empty, empty, ["name"], ["calls", "total_ns"])
    assert got.empty and {"status", "calls_delta", "total_ns_delta", "pct_change"} <= set(got.columns)


def test_config_diff_flattens_nested_keys_and_lists_only_differences() -> None:
    a = {"lr": 0.1, "opt": {"name": "sgd", "beta": [0.9, 0.99]}, "seed": 1}
    b = {"lr": 0.2, "opt": {"name": "sgd", "beta": [0.9, 0.999]}, "layers": 3}
    assert diff.config_diff(a, b).values.tolist() == [
        ["layers", diff.ONLY_B, None, "3"],
        ["lr", "changed", "0.1", "0.2"],
        ["opt.beta", "changed", "[0.9, 0.99]", "[0.9, 0.999]"],
        ["seed", diff.ONLY_A, "1", None],
    ]


def _scalars(points: list[tuple[str, int, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(points, columns=["tag", "step", "value", "wall_time"])


def test_scalar_diff_by_step_and_by_relative_time() -> None:
    a = _scalars([("loss", 0, 4.0, 100), ("loss", 1, 3.0, 200), ("loss", 2, 2.0, 300), ("acc", 0, 0.5, 100)])
    b = _scalars([("loss", 1, 2.5, 1_000_000_050), ("loss", 1, 2.0, 1_000_000_060), ("loss", 3, 1.0, 1_000_000_070)])
    by_step = diff.scalar_diff(a, b)
    loss = by_step[by_step["tag"] == "loss"]
    assert loss["x"].tolist() == [0, 1, 2, 3]
    assert loss["value_a"].tolist()[:3] == [4.0, 3.0, 2.0] and math.isnan(loss["value_a"].tolist()[3])
    assert loss["value_b"].isna().tolist() == [True, False, True, False]  # the logged values only...
    assert loss["value_b"].tolist()[1] == 2.0  # (a step logged twice: the last value)
    # ...while the difference interpolates B at step 2, between its own steps 1 and 3, and needs both runs' ranges
    assert loss["delta"].isna().tolist() == [True, False, False, True]
    assert loss["delta"].tolist()[1:3] == [2.0 - 3.0, 1.5 - 2.0]
    assert by_step[by_step["tag"] == "acc"]["delta"].isna().all()
    a_time = _scalars([("loss", 0, 0.0, 0), ("loss", 1, 10.0, 2_000_000_000)])
    b_time = _scalars([("loss", 0, 5.0, 1_000_000_000 + 500), ("loss", 1, 5.0, 1_000_000_000 + 1_000_000_500)])
    by_time = diff.scalar_diff(a_time, b_time, align="time", t0_a=0, t0_b=500)
    assert by_time["x"].tolist() == [0.0, 1.0, 2.0]  # seconds since each run's own start
    assert by_time["value_a"].isna().tolist() == [False, True, False]
    assert by_time["value_b"].isna().tolist() == [True, False, False]
    assert by_time["delta"].isna().tolist() == [True, False, False]  # before B's first point: no difference
    assert by_time["delta"].tolist()[1:] == [5.0 - 5.0, 5.0 - 10.0]  # A interpolated at B's first point
    with pytest.raises(ValueError):
        diff.scalar_diff(a, b, align="epoch")


def _nodes(rows: list[tuple]) -> pd.DataFrame:
    cols = ["id", "kind", "name", "op", "module", "parent", "call", "target", "out_shapes"]
    return pd.DataFrame(rows, columns=cols).astype({"parent": "Int64", "call": "Int64", "target": "Int64"})


def test_node_keys_follow_module_calls_not_counter_names() -> None:
    nodes = _nodes([
        (0, "module", "Net", "Net", "", None, 0, None, None),
        (1, "module", "block", "Linear", "block", 0, 0, None, None),
        (2, "op", "linear_0", "F.linear", "block", 1, None, None, [[2, 4]]),
        (3, "module", "block", "Linear", "block", 0, 1, None, None),  # the same module called again
        (4, "op", "linear_1", "F.linear", "block", 3, None, None, [[2, 4]]),
        (5, "op", "add_0", "Tensor.add", "", 0, None, None, [[2, 4]]),
        (6, "param", "block.weight", None, "block", 1, None, None, [[4, 4]]),
        (7, "grad", "grad:linear_1", None, "block", 3, None, 4, [[2, 4]]),
    ])  # fmt: skip
    assert diff.node_keys(nodes) == {
        0: "module:", 1: "module:block", 2: "op:block/F.linear#0", 3: "module:block#1", 4: "op:block#1/F.linear#0",
        5: "op:/Tensor.add#0", 6: "param:block.weight", 7: "grad:op:block#1/F.linear#0",
    }  # fmt: skip
    assert diff.profiler_module_names(nodes) == {"Net_0": "", "Net_0/Linear_0": "block"}
    fewer = nodes[nodes["id"].isin([0, 1, 2, 5, 6])]
    structure = diff.graph_diff(fewer, nodes)
    assert structure[structure["status"] == diff.ONLY_B]["key"].tolist() == [
        "module:block#1", "op:block#1/F.linear#0", "grad:op:block#1/F.linear#0"
    ]  # fmt: skip
    modules = diff.graph_module_diff(fewer, nodes).set_index("module")
    assert modules.loc["block", ["status", "calls_a", "calls_b", "ops_a", "ops_b"]].tolist() == [diff.BOTH, 1, 2, 1, 2]


def test_text_formats() -> None:
    assert [fmt_ns(311_000), fmt_ns(311_000, True), fmt_ns(-4000, True), fmt_ns(0), fmt_ns(1.5e9), fmt_ns(None)] == [
        "311µs", "+311µs", "-4µs", "0ns", "1.5s", "-"
    ]  # fmt: skip
    assert (fmt_pct(-1 / 3), fmt_pct(float("nan"))) == ("-33.3%", "new")
    assert [parse_ref(x) for x in (3, "3", "run:3", "r3", "p12", "profile:12", " P7 ")] == [
        ("run", 3), ("run", 3), ("run", 3), ("run", 3), ("profile", 12), ("profile", 12), ("profile", 7)
    ]  # fmt: skip
    assert (ref_text("run", 3), ref_text("profile", 12)) == ("3", "p12")
    for bad in ("", "x3", "p", "3.5", "-1"):
        with pytest.raises(BadRequestError):
            parse_ref(bad)


def test_change_bars_draw_the_largest_changes_at_the_top_and_skip_unchanged_rows() -> None:
    table = diff.table_diff(A, B, ["name"], ["calls", "total_ns"])
    table = pd.concat([table, table.iloc[[0]].assign(name="same", total_ns_delta=0)], ignore_index=True)
    figure = change_bars(table, "name", "total_ns", top=3)
    bar = figure["data"][0]
    assert bar["y"] == ["gelu", "add", "mm"] and bar["x"] == [0.08, 0.1, -0.3]  # µs, bottom to top
    assert bar["marker"]["color"] == [SLOWER, SLOWER, FASTER]


def test_scalar_overlay_and_breakdown_figures() -> None:
    points = pd.DataFrame({"x": [0, 1], "value_a": [1.0, np.nan], "value_b": [2.0, 3.0], "delta": [1.0, np.nan]})
    figure = scalar_overlay(points, "loss")
    assert [t["name"] for t in figure["data"]] == ["A", "B", "B - A"]
    assert figure["data"][0]["y"] == [1.0, None] and figure["data"][2]["yaxis"] == "y2"
    breakdown = pd.DataFrame({"category": ["wall", "kernel", "idle"], "mean_ns_a": [3e6, 1e6, 2e6],
                              "mean_ns_b": [2e6, 1.5e6, 0.5e6]})  # fmt: skip
    bars = breakdown_bars(breakdown)
    assert [t["name"] for t in bars["data"]] == ["kernel", "idle"]
    assert bars["data"][0]["x"] == [1.0, 1.5] and bars["layout"]["barmode"] == "stack"


def test_grid_rows_and_graph_colours() -> None:
    table = diff.table_diff(A, B, ["name"], ["calls", "total_ns"], {"mean_ns": "total_ns"})
    rows = diff_rows(table, "name", "total_ns", "mean_ns")
    assert rows[0] == {"id": 0, "key": "mm", "status": diff.BOTH, "calls_a": 2, "calls_b": 2, "calls_delta": 0,
                       "time_a": 1.0, "time_b": 0.7, "time_delta": -0.3, "change": -0.3, "mean_a": 0.5,
                       "mean_b": 0.35}  # fmt: skip
    assert rows[2]["change"] is None and rows[2]["mean_a"] is None
    structure = pd.DataFrame({
        "key": ["op:a", "op:b", "op:c", "op:d"], "kind": ["op"] * 4,
        "status": [diff.BOTH, diff.BOTH, diff.ONLY_B, diff.ONLY_A], "name_a": ["a", "b", None, "d"],
        "name_b": ["a", "b", "c", None], "id_a": pd.array([1, 2, None, 3], dtype="Int64"),
        "id_b": pd.array([1, 2, 3, None], dtype="Int64"), "module": ["", "", "", ""], "op": ["x"] * 4,
        "out_shapes_a": ["[[1]]", "[[1]]", None, "[[1]]"], "out_shapes_b": ["[[1]]", "[[2]]", "[[1]]", None],
        "shape_changed": [False, True, False, False],
    })  # fmt: skip
    changes = pd.DataFrame({"id_b": [1, 2], "norm_change": [2.0, -0.5]})
    colours = node_colours(structure, changes)
    assert colours[1] == {"status": diff.BOTH, "change": 2.0, "colour": "#d62728"}  # saturated: larger norm
    assert colours[2]["colour"] == change_colour(-0.5) != UNCHANGED and colours[3]["colour"] == NEW
    assert set(colours) == {1, 2, 3}
    assert change_colour(0.0) == change_colour(float("nan")) == UNCHANGED
    assert [r["key"] for r in graph_node_rows(structure)] == ["op:b", "op:c", "op:d"]
