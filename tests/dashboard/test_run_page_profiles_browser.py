"""The run page of an imported trace: its profile's summary, not an empty chart area."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

import torchscope
from torchscope.io.importing import import_path

pytestmark = pytest.mark.browser


def test_imported_trace_run_page_shows_the_profile_summary(cpu_trace: Path, db_path: Path, serve, page) -> None:
    result = import_path(db_path, cpu_trace)
    with torchscope.open(db_path) as store:
        pid = int(store.profiles(result.run_id)["id"].iloc[0])
        meta = store.profile(pid)
        steps = store.step_breakdown(pid)
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/run/{result.run_id}")
    card = tab.locator(f"#run-profile-{pid}")
    card.wait_for()
    assert card.locator("h4").inner_text() == meta["name"]
    facts = card.locator(".meta").inner_text()
    assert f"{meta['event_count']:,} events" in facts and "CPU only" in facts
    tab.wait_for_selector(f"#run-profile-{pid}-breakdown .js-plotly-plot")
    bars = tab.evaluate(f"document.querySelector('#run-profile-{pid}-breakdown .js-plotly-plot')._fullData[0].x")
    assert bars == steps["step"].tolist()  # one bar per recorded ProfilerStep, on a numeric step axis
    tab.wait_for_selector(f"#run-profile-{pid}-top .js-plotly-plot")
    assert not tab.locator(".controls").first.is_visible()  # no scalar will come: no smoothing or axis controls
    assert tab.locator("#run-artifacts").inner_text().split()[:2] == ["imported", "profile"]
    card.locator("h4 a").click()
    tab.wait_for_url(f"{url}/profile/{pid}")
    tab.wait_for_selector("#prof-breakdown .js-plotly-plot")
    assert not problems, problems


def test_profile_facts_name_a_gpu_the_trace_did_not_describe(tmp_path: Path, db_path: Path, serve, page) -> None:
    events = [
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 0, "dur": 5,
         "args": {"correlation": 7}},
        {"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 10, "dur": 20,
         "args": {"correlation": 7, "device": 0, "stream": 7}},
    ]  # fmt: skip
    path = tmp_path / "no_device_properties.json"
    path.write_bytes(orjson.dumps({"traceEvents": events}))  # no deviceProperties: the GPU has no name
    result = import_path(db_path, path)
    url = serve(db_path)
    tab, problems = page
    tab.goto(f"{url}/run/{result.run_id}")
    tab.locator(".run-profile .meta").wait_for()
    assert "GPU (not named in the trace)" in tab.locator(".run-profile .meta").inner_text()
    assert not problems, problems
