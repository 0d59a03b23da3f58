"""Many ranks in real headless Chromium: the profile page of a 2-rank group shows the rank table and the straggling
steps, a straggler's link opens the timeline with both ranks side by side on that step; the runs page shows a job as
one row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import torchscope
from torchscope.io.importing import import_path

pytestmark = pytest.mark.browser


def test_the_profile_page_of_two_ranks_links_a_straggling_step_to_both_ranks_on_the_timeline(
    rank_traces: Path, db_path: Path, serve, page
) -> None:
    result = import_path(db_path, rank_traces)
    first, second = (int(p["id"]) for p in result.profiles)
    store = torchscope.open(db_path)
    steps = store.rank_steps(first)
    stragglers = steps[steps["straggler"]]
    assert len(stragglers) >= 1  # rank 1's slow step 2 at least
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/profile/{first}")
    tab.wait_for_selector("#prof-ranks-steps .js-plotly-plot")
    rows = tab.locator("#prof-ranks-table tbody tr")
    assert rows.count() == 2
    summary = store.rank_summary(first)
    for i, rec in enumerate(summary.to_dict("records")):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[0] == str(rec["rank"]) and cells[1] == f"#{rec['profile_id']}" and cells[2] == "3"
        assert cells[3] == f"{rec['step_ns'] / 1e6:.3f} ms" and cells[8] == str(rec["stragglers"])
    bars = tab.evaluate("document.querySelector('#prof-ranks-steps .js-plotly-plot').data.map(t => t.name)")
    assert bars == ["rank 0", "rank 1"]
    links = tab.locator("#prof-stragglers .prof-straggler")
    assert links.count() == len(stragglers)
    slow = stragglers[(stragglers["rank"] == 1) & (stragglers["step"] == 2)]
    assert len(slow) == 1
    link = tab.get_by_role("link", name=re.compile(r"^rank 1 · step 2:"))
    link.click()
    tab.wait_for_url(re.compile(rf".*/timeline/{second}\?start=\d+&end=\d+&ranks=1&step=2$"))
    tab.wait_for_selector("#tl-graph .js-plotly-plot")
    ticks = tab.evaluate("document.querySelector('#tl-graph .js-plotly-plot').layout.yaxis.ticktext")
    assert any(t.startswith("rank 0 ·") for t in ticks) and any(t.startswith("rank 1 ·") for t in ticks)
    title = tab.evaluate("document.querySelector('#tl-graph .js-plotly-plot').layout.xaxis.title.text")
    assert title.endswith("ranks aligned on ProfilerStep#2")
    # the window is rank 1's step 2; rank 0's step 2 is drawn starting at the same instant
    drawn = tab.evaluate(
        "document.querySelector('#tl-graph .js-plotly-plot').data.flatMap(t => (t.customdata || [])"
        ".map((c, i) => [c[1], t.base ? t.base[i] : null]))"
    )
    starts = [base for name, base in drawn if name == "ProfilerStep#2"]
    assert len(starts) == 2 and starts[0] == pytest.approx(starts[1], abs=1e-6)
    tab.click("#tl-ranks")  # back to this rank alone
    tab.wait_for_url(re.compile(rf".*/timeline/{second}\?start=\d+&end=\d+$"))
    assert not problems, problems


def test_the_runs_page_shows_a_job_as_one_row_linking_each_rank(db_path: Path, serve, page, monkeypatch) -> None:
    ids = []
    for rank in (1, 0):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        with torchscope.init("train", db=db_path, job="job-42", system_metrics=False) as run:
            run.log({"loss": 1.0 + rank}, step=rank)
        ids.append(run.id)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    with torchscope.init("alone", db=db_path, system_metrics=False) as alone:
        alone.log({"loss": 0.5}, step=0)
    url = serve(db_path)
    tab, problems = page
    tab.goto(url + "/")
    tab.wait_for_selector(f".ag-row[row-id='{max(ids)}']")
    assert tab.locator(".ag-center-cols-container .ag-row").count() == 2
    name = tab.locator(f".ag-row[row-id='{max(ids)}'] [col-id='name']")
    assert name.inner_text().split("\n") == ["job-42 · job, 2 ranks", "rank 0 · rank 1"]
    assert tab.locator(f".ag-row[row-id='{max(ids)}'] [col-id='loss']").inner_text() == "1"  # rank 0's value
    name.get_by_role("link", name="rank 1").click()
    tab.wait_for_url(re.compile(rf".*/run/{ids[0]}$"))
    assert not problems, problems
