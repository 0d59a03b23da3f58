"""The pure builders of the live run page: charts, their incremental extension, insertion of new tags, alerts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from torchscope.dashboard.views.run import live
from torchscope.dashboard.views.run.header import alert_block, dropped_text, rate_text, steps_text
from torchscope.dashboard.views.run.scalars import BAD, RAW, SMOOTH, ema, group_tags, scalar_figure, x_mode_for

T0 = 1_700_000_000_000_000_000


def points(steps: list[int], values: list[float], wall_step_ns: int = 250_000_000) -> pd.DataFrame:
    return pd.DataFrame({"step": steps, "value": values, "wall_time": [T0 + s * wall_step_ns for s in steps]})


def concat_traces(figure: dict, extend: list) -> list[dict]:
    """What Plotly.extendTraces makes of ``figure`` after ``extend`` (``[columns, indices]``)."""
    columns, indices = extend
    traces = [dict(t) for t in figure["data"]]
    for key, lists in columns.items():
        for i, values in zip(indices, lists):
            traces[i][key] = list(traces[i].get(key, [])) + list(values)
    return traces


def test_extending_a_chart_equals_drawing_it_whole_smoothing_included() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=100).tolist()
    values[70] = math.nan
    values[80] = math.inf
    whole = points(list(range(100)), values)
    full, _ = scalar_figure(whole, "loss", smoothing=0.6)
    first, state = scalar_figure(whole.iloc[:60], "loss", smoothing=0.6)
    extend, cursor = live.extension(whole.iloc[60:], live.cursor_for(whole.iloc[:60], ema_state=state), x="step",
                                    t0=0, smoothing=0.6)  # fmt: skip
    grown = concat_traces(first, extend)
    for key in ("x", "y", "customdata", "text"):
        assert [t.get(key, []) for t in grown] == [t.get(key, []) for t in full["data"]], key
    assert cursor == {"step": 99, "wall": str(T0 + 99 * 250_000_000), "n": 100, "ema": cursor["ema"],
                      "bad": [70, "NaN"]}  # fmt: skip
    assert cursor["ema"][4] == 99  # the average has reached the last finite step


def test_nan_and_inf_are_marked_not_drawn_and_hover_shows_exact_values() -> None:
    figure, _ = scalar_figure(points([0, 1, 2, 3, 4], [0.1, math.nan, 0.30000000000000004, math.inf, -math.inf]), "l")
    raw, bad = figure["data"][RAW], figure["data"][BAD]
    assert raw["x"] == [0, 2] and raw["y"] == [0.1, 0.30000000000000004]
    assert raw["customdata"] == raw["y"] and raw["hovertemplate"].startswith("%{customdata}")
    assert bad["x"] == [1, 3, 4] and bad["text"] == ["NaN", "+Inf", "-Inf"] and bad["yaxis"] == "y2"
    assert all(t["type"] == "scatter" for t in figure["data"])  # SVG: no WebGL context per chart
    assert figure["data"][SMOOTH]["visible"] is False


def test_wall_time_axis_is_seconds_since_run_start_and_system_tags_always_use_it() -> None:
    figure, _ = scalar_figure(points([0, 4], [1.0, 2.0]), "sys/cpu_percent", x="wall_time", t0=T0)
    assert figure["data"][RAW]["x"] == [0.0, 1.0]
    assert figure["layout"]["xaxis"]["title"]["text"] == "seconds"
    assert x_mode_for("sys/gpu0/temp_c", "step") == "wall_time"
    assert x_mode_for("train/loss", "step") == "step"


def test_log_toggle_sets_a_log_y_axis() -> None:
    figure, _ = scalar_figure(points([0, 1], [1.0, 10.0]), "l", log_y=True)
    assert figure["layout"]["yaxis"]["type"] == "log"


def test_resumed_ema_matches_one_pass() -> None:
    values = np.linspace(0, 1, 50)
    whole, _ = ema(values, 0.9)
    head, state = ema(values[:20], 0.9)
    tail, _ = ema(values[20:], 0.9, state)
    assert np.array_equal(np.r_[head, tail], whole)
    assert ema(values, 0.0)[0].tolist() == values.tolist()


def test_smoothing_a_constant_series_gives_the_constant_exactly() -> None:
    smoothed, state = ema(np.array([0.3] * 40 + [math.nan] + [0.3] * 10), 0.95)
    assert smoothed[:40].tolist() == [0.3] * 40 and math.isnan(smoothed[40]) and smoothed[41:].tolist() == [0.3] * 10
    assert state[2:] == (0.3, 0.3, 49)


def test_smoothing_downsampled_points_follows_the_whole_series() -> None:
    steps = np.arange(10_000)
    values = np.linspace(1.0, 0.0, len(steps))  # a linear decay, like a learning-rate schedule
    every, _ = ema(values, 0.9, steps=steps)
    kept = steps[::100]  # what a chart of 100 points holds
    thinned, _ = ema(values[kept], 0.9, steps=kept)
    assert np.abs(thinned - every[kept]).max() < 0.01  # without steps, the lag would be 100x longer
    unaware, _ = ema(values[kept], 0.9)
    assert np.abs(unaware - every[kept]).max() > 0.05


def _apply(sections: list[list[str]], ops: list[tuple[str, int, int, str]]) -> list[list[str]]:
    for kind, index, position, tag in ops:
        if kind == "section":
            sections.insert(index, [tag])
        else:
            sections[index].insert(position, tag)
    return sections


def test_new_tags_are_inserted_where_a_full_draw_would_put_them() -> None:
    known = ["train/loss", "val/loss"]
    new = ["val/acc", "lr", "sys/cpu", "train/acc", "train/zeta"]
    ops = live.insertions(known, new)
    assert ops == [
        ("section", 0, 0, "lr"),
        ("section", 3, 0, "sys/cpu"),
        ("chart", 1, 0, "train/acc"),
        ("chart", 1, 2, "train/zeta"),
        ("chart", 2, 0, "val/acc"),
    ]
    sections = _apply([list(tags) for tags in group_tags(known).values()], ops)
    assert sections == list(group_tags(known + new).values())
    assert live.insertions(known, ["train/loss"]) == []


def test_a_chart_past_the_point_budget_is_redrawn_instead_of_extended() -> None:
    cursor = {"n": live.REDRAW_POINTS - 10}
    assert not live.needs_redraw(cursor, 10)
    assert live.needs_redraw(cursor, 11)


def test_a_single_point_is_drawn_as_a_marker_and_redrawn_as_a_line_when_the_second_arrives() -> None:
    one, _ = scalar_figure(points([5], [0.25]), "val/acc")
    assert one["data"][RAW]["mode"] == "lines+markers" and one["data"][RAW]["x"] == [5]
    two, _ = scalar_figure(points([5, 6], [0.25, 0.5]), "val/acc")
    assert two["data"][RAW]["mode"] == "lines"
    nan_then_one, _ = scalar_figure(points([1, 2], [math.nan, 0.5]), "val/acc")  # one finite point among two
    assert nan_then_one["data"][RAW]["mode"] == "lines+markers"
    assert live.needs_redraw(live.cursor_for(points([5], [0.25])), 1)  # extending would keep the markers
    assert not live.needs_redraw(live.cursor_for(points([5, 6], [0.25, 0.5])), 1)


def test_alerts_list_first_nonfinite_per_tag_earliest_first_and_link_to_graph() -> None:
    cursors = {
        "a": {"bad": [40, "NaN"]},
        "b": {"bad": None},
        "c": {"bad": [7, "+Inf"]},
    }
    assert live.alerts(cursors) == [("c", 7, "+Inf"), ("a", 40, "NaN")]
    block = alert_block(5, live.alerts(cursors))
    assert block.className == "alert alert-nonfinite"
    link = block.children[-1]
    assert link.href == "/graph/5?step=7"
    assert [li.children for li in block.children[1].children] == ["c: +Inf at step 7", "a: NaN at step 40"]
    assert alert_block(5, []) is None


def test_anomalies_from_graph_capture_show_in_the_alert() -> None:
    artifacts = pd.DataFrame(
        [("graph", 1, "12 ops", 0, T0), ("anomaly", 3, "forward: linear.out", 9, T0)],
        columns=["kind", "id", "name", "step", "created_at"],
    )
    block = alert_block(2, [], artifacts)
    assert block.children[0].children == "NaN/Inf produced inside the model"
    assert block.children[1].children[0].children.href == "/graph/2?step=9"


def test_steps_per_second_uses_recent_samples_then_falls_back_to_the_average() -> None:
    samples: list[list[int]] = []
    for second, step in [(0, 0), (1, 100), (2, 300), (2, 300)]:
        samples = live.add_sample(samples, T0 + second * 1_000_000_000, step)
    assert len(samples) == 3 and samples[0] == [T0 // 1_000_000, 0]
    assert live.steps_per_second(samples, T0 - 10**9, 300, T0 + 2 * 10**9) == 150.0
    assert live.steps_per_second([], T0, 99, T0 + 4 * 10**9) == 25.0
    assert live.steps_per_second([], T0, None, None) is None
    assert rate_text(25.0) == "25 steps/s" and rate_text(None) == "- steps/s" and rate_text(12345.6) == "12,346 steps/s"
    assert steps_text(None) == "steps -" and steps_text(99) == "steps 100"


def test_store_cursors_parse_wall_times_kept_as_strings() -> None:
    cursor = live.cursor_for(points([3], [1.0]))
    assert cursor["wall"] == str(T0 + 3 * 250_000_000)
    assert live.store_cursors({"x": cursor}) == {"x": (3, T0 + 3 * 250_000_000)}


def test_dropped_line_counts_each_kind_and_is_absent_when_nothing_was_dropped() -> None:
    run = {"dropped": 4003, "dropped_scalars": 4000, "dropped_steps": 2, "dropped_profiles": 1}
    assert dropped_text(run) == (
        "not stored: 4,000 scalar values, 2 captured steps, 1 profile window (the database could not be written or "
        "the writer could not keep up; the training process warned why)"
    )
    old = {"dropped": 7, "dropped_scalars": 0, "dropped_steps": 0, "dropped_profiles": 0}  # counted before kinds
    assert dropped_text(old).startswith("not stored: 7 other records (")
    assert dropped_text({"dropped": 0, "dropped_scalars": 0, "dropped_steps": 0, "dropped_profiles": 0}) is None
