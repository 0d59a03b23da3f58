"""Pure builders of the ranks views: the runs grid's job row, the straggler links and the step-time bars."""

from __future__ import annotations

import pandas as pd

from torchscope.dashboard.views.profile.ranks import step_time_figure, straggler_links
from torchscope.dashboard.views.runs.tables import compare_href, runs_rows


def _runs() -> pd.DataFrame:
    rows = [  # newest first, as Store.run_summaries gives them
        {"id": 5, "name": "alone", "status": "finished", "started_at": 50, "duration_ns": 1_000_000_000,
         "last_step": 9, "job_id": None, "rank": None, "world_size": None, "loss": 0.5},
        {"id": 4, "name": "train", "status": "running", "started_at": 41, "duration_ns": 3_000_000_000,
         "last_step": 7, "job_id": "j", "rank": 0, "world_size": 4, "loss": 1.0},
        {"id": 3, "name": "train", "status": "failed", "started_at": 40, "duration_ns": 2_000_000_000,
         "last_step": 3, "job_id": "j", "rank": 1, "world_size": 4, "loss": 2.0},
        {"id": 2, "name": "solo-job", "status": "finished", "started_at": 30, "duration_ns": 5_000_000_000,
         "last_step": 1, "job_id": "k", "rank": 0, "world_size": 1, "loss": 3.0},
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_a_jobs_runs_are_one_row_with_the_worst_status_the_lowest_ranks_values_and_a_link_per_rank() -> None:
    rows = runs_rows(_runs(), ["loss"])
    assert [r["id"] for r in rows] == [5, 4, 2]
    job = rows[1]
    assert job["name"] == "**j** · job, 2 ranks of 4  \n[rank 0](/run/4) · [rank 1](/run/3)"
    assert (job["status"], job["duration"], job["steps"], job["loss"], job["job"]) == ("running", "3.0s", 8, "1", "j")
    assert rows[2]["name"] == "[solo\\-job](/run/2)"  # a job of one run stays a run
    assert compare_href([{"id": 4, "job": "j"}, {"id": 5}, {"id": 2}]) == "/compare?a=2&b=5"


def _steps() -> pd.DataFrame:
    return pd.DataFrame({
        "rank": [0, 1, 0, 1], "profile_id": [7, 8, 7, 8], "step": [1, 1, 2, 2],
        "start_ns": [1_000, 2_000, 11_000, 12_500], "step_ns": [10_000, 10_000, 10_000, 12_000],
        "compute_ns": [3_000, 3_100, 2_000, 9_000], "comm_ns": [6_000, 6_000, 7_000, 1_000],
        "overlap_ns": [0, 0, 0, 0], "idle_ns": [1_000, 900, 1_000, 2_000],
        "straggler": [False, False, False, True], "reason": ["", "", "", "step+compute"],
    })  # fmt: skip


def test_a_straggling_step_links_its_ranks_timeline_window_with_every_rank_aligned_on_that_step() -> None:
    links = straggler_links(_steps(), {7: 500, 8: 1_500}, room=0.25)
    assert [(link["rank"], link["step"]) for link in links] == [(1, 2)]
    # rank 1's step 2 starts 11,000 ns into its profile and lasts 12,000 ns: a quarter of that either side
    assert links[0]["href"] == "/timeline/8?start=8000&end=26000&ranks=1&step=2"
    assert links[0]["text"] == ("rank 1 · step 2: 0.012 ms (median 0.011 ms), compute 0.009 ms, comm 0.001 ms · "
                                "slow step+compute")  # fmt: skip


def test_step_time_bars_group_ranks_by_step_and_outline_only_straggling_steps() -> None:
    fig = step_time_figure(_steps())
    assert [t["name"] for t in fig["data"]] == ["rank 0", "rank 1"]
    assert fig["data"][1]["x"] == ["step 1", "step 2"] and fig["data"][1]["y"] == [0.01, 0.012]
    assert [t["marker"]["line"]["width"] for t in fig["data"]] == [[0, 0], [0, 3]]
