"""The graph view's state machine (``views/graph/state.py``): ``step(model_of, state, event)`` on real graphs, no
browser; and the page's mapping of Dash triggers to events.

The run is NanNet with every step captured and a NaN planted at step 7 (:func:`models.record_nan_run`): step 7
ran graph version 2 (an extra ``sub_0``), every other step version 1. Node ids of version 1: ``0`` the root
module call ``NanNet``, ``2`` ``encoder.block.act`` (inside it ``3`` ``encoder.block.act.proj`` with ``6``
``linear_0``, and ``9`` ``log_0``), ``11`` ``head``; in version 2 ``log_0`` is ``10``.
"""

from __future__ import annotations

import gc
import warnings
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import dash
import pandas as pd
import pytest
from models import record_nan_run

import torchscope
from torchscope.dashboard.views.graph import page
from torchscope.dashboard.views.graph.data import GraphData
from torchscope.dashboard.views.graph.model import GraphModel, imported_model
from torchscope.dashboard.views.graph.render import model_for
from torchscope.dashboard.views.graph.state import (
    FIT, CollapseAll, ExpandAll, Find, Focus, GraphState, JumpTo, OpenCrumb, SetColour, SetHide, ShowGraph,
    ShowStep, Tap, step,
)  # fmt: skip
from torchscope.storage.store import Store

ROOT, ACT, PROJ, LINEAR, LOG, HEAD = 0, 2, 3, 6, 9, 11
LOG_V2 = 10


@pytest.fixture(scope="module")
def nan_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    db = tmp_path_factory.mktemp("graphstate") / "g.db"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the planted NaN is reported once: expected here
        run_id = record_nan_run(db)
    store = torchscope.open(db)
    yield store, run_id
    store.close()


@pytest.fixture(scope="module")
def data(nan_run: tuple[Store, int]) -> GraphData:
    return GraphData(nan_run[0])


@pytest.fixture
def first(nan_run: tuple[Store, int]) -> GraphState:
    """The first view of step 9, as the page opens it."""
    return GraphState(run=nan_run[1], source="captured", key=9, version=1, model="NanNet", expanded=(ROOT,))


def _step(data: GraphData, state: GraphState, *events: Any) -> GraphState:
    for event in events:
        state = step(partial(model_for, data), state, event)
    return state


def test_the_node_ids_these_tests_name(data: GraphData, first: GraphState) -> None:
    v1, v2 = data.captured(first.run, 1), data.captured(first.run, 2)
    assert [v1.nodes[i].name for i in (ROOT, ACT, PROJ, LINEAR, LOG, HEAD)] == [
        "NanNet", "encoder.block.act", "encoder.block.act.proj", "linear_0", "log_0", "head"
    ]  # fmt: skip
    assert v2.nodes[LOG_V2].name == "log_0"


def test_the_page_opens_the_first_view_of_the_last_step(data: GraphData, first: GraphState) -> None:
    assert page._initial_state(data, first.run, {}) == first


def test_a_tap_on_a_closed_module_opens_and_selects_it_keeping_its_top_edge(data: GraphData, first: GraphState) -> None:
    after = _step(data, first, Tap(ACT, (120.0, 80.0)))
    assert after == replace(first, expanded=(ROOT, ACT), selected=ACT, focus=Focus(ACT, (120.0, 80.0), "top"))


def test_tapping_a_module_twice_restores_the_expansion_and_keeps_its_centre(data: GraphData, first: GraphState) -> None:
    opened = _step(data, first, Tap(ACT), Tap(PROJ))
    assert opened.expanded == (ROOT, ACT, PROJ)
    closed = _step(data, opened, Tap(ACT, (5.0, 6.0)))
    assert closed.expanded == (ROOT,)  # what was open inside closes with it
    assert closed.selected == ACT and closed.focus == Focus(ACT, (5.0, 6.0), "centre")
    assert _step(data, first, Tap(HEAD), Tap(HEAD)) == replace(first, selected=HEAD, focus=Focus(HEAD, None, "centre"))


def test_toggling_a_module_twice_restores_the_view_but_what_was_open_inside_it(
    data: GraphData, first: GraphState
) -> None:
    model = data.captured(first.run, 1)
    everything = _step(data, first, ExpandAll())
    for start in (first, everything):
        for box in (n.id for n in model.nodes.values() if n.group):
            inside = set(model.descendants(box))
            expected = tuple(e for e in start.expanded if e not in inside)  # closing a box closes what is inside
            assert _step(data, start, Tap(box), Tap(box)).expanded == expected, model.nodes[box].name
    assert _step(data, everything, Tap(HEAD), Tap(HEAD)).expanded == everything.expanded  # nothing inside head
    assert _step(data, everything, Tap(ACT), Tap(ACT)).expanded == (ROOT, ACT, HEAD)  # proj closed with act


def test_a_tap_on_a_plain_node_selects_it_and_moves_nothing(data: GraphData, first: GraphState) -> None:
    shown = _step(data, first, Tap(ACT))
    assert _step(data, shown, Tap(LOG)) == replace(shown, selected=LOG, focus=None)
    assert _step(data, shown, Tap(9999)) == replace(shown, focus=None)  # not in this graph: nothing happens


def test_finding_a_node_deep_inside_closed_modules_opens_exactly_its_ancestors(
    data: GraphData, first: GraphState
) -> None:
    model = data.captured(first.run, 1)
    nothing_open = replace(first, expanded=())
    found = _step(data, nothing_open, Find(LINEAR, "linear_0"))
    assert found.expanded == (ROOT, ACT, PROJ) == tuple(sorted(model.ancestors(LINEAR)))
    assert found.selected == LINEAR and found.focus == Focus(LINEAR) and found.message == ""
    # what was open stays open
    assert _step(data, replace(first, expanded=(ROOT, HEAD)), Find(LOG, "log_0")).expanded == (ROOT, ACT, HEAD)


def test_a_search_that_finds_nothing_says_so_and_changes_nothing(data: GraphData, first: GraphState) -> None:
    assert _step(data, first, Find(None, "zzz")) == replace(first, message="nothing named 'zzz'")
    assert _step(data, first, Find(None, "")) == first


def test_the_url_node_opens_the_view_as_a_search_does(data: GraphData, first: GraphState) -> None:
    state = page._initial_state(data, first.run, {"node": "linear_0"})
    assert state == _step(data, first, Find(LINEAR, "linear_0"))
    assert state.focus is not None and state.focus.to_json(0) == {"id": str(LINEAR), "n": 0}


def test_tapping_the_selected_nodes_parent_closes_it_and_selects_the_parent(data: GraphData, first: GraphState) -> None:
    on_log = _step(data, first, Find(LOG, "log_0"))
    assert (on_log.expanded, on_log.selected) == ((ROOT, ACT), LOG)
    closed = _step(data, on_log, Tap(ACT))
    assert (closed.expanded, closed.selected) == ((ROOT,), ACT)


def test_collapse_all_keeps_the_selection_even_when_it_is_hidden(data: GraphData, first: GraphState) -> None:
    deep = _step(data, first, Find(LINEAR, "linear_0"))
    assert _step(data, deep, CollapseAll()) == replace(deep, expanded=(ROOT,), focus=FIT)


def test_a_breadcrumb_closes_what_is_inside_its_box_and_selects_it(data: GraphData, first: GraphState) -> None:
    deep = _step(data, first, Find(LINEAR, "linear_0"), Tap(HEAD))
    assert deep.expanded == (ROOT, ACT, PROJ, HEAD)
    assert _step(data, deep, OpenCrumb(ACT)) == replace(deep, expanded=(ROOT, ACT, HEAD), selected=ACT,
                                                        focus=Focus(ACT))  # fmt: skip
    assert _step(data, deep, OpenCrumb(ROOT)) == replace(deep, expanded=(ROOT,), selected=ROOT, focus=Focus(ROOT))


def test_expand_all_opens_every_module_and_fits_the_graph(data: GraphData, first: GraphState) -> None:
    assert _step(data, first, ExpandAll()) == replace(first, expanded=(ROOT, ACT, PROJ, HEAD), focus=FIT)
    hidden = _step(data, replace(first, hide=True), ExpandAll())
    assert hidden.expanded == (ROOT, ACT, PROJ, HEAD)  # proj and head still hold an op each


def test_another_step_of_the_same_graph_version_keeps_the_view(data: GraphData, first: GraphState) -> None:
    on_log = _step(data, first, Find(LOG, "log_0"))
    moved = _step(data, on_log, ShowStep(8, 1, "NanNet"))
    assert moved == replace(on_log, key=8, focus=None)


def test_a_step_of_another_graph_version_starts_from_its_first_view(data: GraphData, first: GraphState) -> None:
    """Today the expansion is kept only within one version: node ids are per version, so another version's view
    starts over (modules that exist in both versions are closed too)."""
    on_log = _step(data, first, Find(LOG, "log_0"))
    assert _step(data, on_log, ShowStep(7, 2, "NanNet")) == replace(first, key=7, version=2)


def test_jump_to_the_first_anomaly_opens_its_step_and_selects_the_origin(data: GraphData, first: GraphState) -> None:
    deep = _step(data, first, Find(LINEAR, "linear_0"), Tap(HEAD))
    jumped = _step(data, deep, JumpTo(7, 2, "NanNet", LOG_V2))
    assert jumped == replace(first, key=7, version=2, expanded=(ROOT, ACT), selected=LOG_V2, focus=Focus(LOG_V2))
    grad_of_log = data.captured(first.run, 2).grad_of[LOG_V2]  # an anomaly in the backward pass
    assert _step(data, first, JumpTo(7, 2, "NanNet", grad_of_log)).selected == LOG_V2


def test_colour_and_hidden_parameters_change_only_themselves(data: GraphData, first: GraphState) -> None:
    deep = _step(data, first, Find(LINEAR, "linear_0"))
    assert _step(data, deep, SetColour("anomaly")) == replace(deep, colour="anomaly", focus=None)
    assert _step(data, deep, SetHide(True)) == replace(deep, hide=True, focus=None)


def test_focus_and_message_belong_to_one_event(data: GraphData, first: GraphState) -> None:
    said = _step(data, first, Find(None, "zzz"))
    assert _step(data, said, SetHide(False)).message == ""
    assert _step(data, _step(data, first, ExpandAll()), SetColour("op")).focus is None


def test_the_stored_state_round_trips_and_the_inspector_sees_only_its_part(data: GraphData, first: GraphState) -> None:
    deep = _step(data, first, Find(LINEAR, "linear_0"), SetHide(True), SetColour("magnitude"))
    stored = {**deep.to_json(), "href": "/graph/1?step=9"}  # the page adds its URL
    assert GraphState.from_json(stored) == replace(deep, focus=None)
    assert deep.selection() == GraphState(first.run, "captured", 9, 1, "NanNet", selected=LINEAR)
    assert deep.selection() == _step(data, deep, ExpandAll(), SetColour("op")).selection()


def _imported(scopes: list[str]) -> GraphModel:
    names = [f"{s}/op" for s in scopes] + ["out"]
    nodes = pd.DataFrame({"graph_id": 1, "tag": "", "kind": "graph_def", "name": names, "op": "AddV2",
                          "scope": [*scopes, ""],
                          "inputs": [[]] * len(names), "device": None, "attrs": [{}] * len(names)})  # fmt: skip
    return imported_model(nodes, pd.DataFrame(columns=["graph_id", "source", "target"]))


def test_an_imported_graph_starts_closed_and_its_top_crumb_closes_everything() -> None:
    graphs = {1: _imported(["a", "a/b"]), 2: _imported(["c"])}
    model_of = lambda s: graphs[s.key]  # noqa: E731 - a test's model lookup
    a, b = graphs[1].by_module["a"], graphs[1].by_module["a/b"]
    first = GraphState(run=1, source="imported", key=1)
    opened = step(model_of, step(model_of, first, Tap(a)), Tap(b))
    assert opened.expanded == tuple(sorted((a, b)))
    assert step(model_of, opened, OpenCrumb(-1)) == replace(opened, expanded=(), focus=FIT)
    assert step(model_of, opened, ShowGraph(1)) == replace(opened, focus=None)  # the shown graph: nothing changes
    assert step(model_of, opened, ShowGraph(2)) == replace(first, key=2)


# -- the page: a trigger is one event --------------------------------------------------------------------------


def _event(data: GraphData, state: GraphState, trigger: Any, **values: Any) -> Any:
    given = {"tap": None, "crumbs": [], "search": None, "step": None, "colour": "op", "hide": [], **values}
    return page._event(data, state, trigger, given)


def test_each_trigger_of_the_page_is_one_event_resolved_against_the_store(data: GraphData, first: GraphState) -> None:
    tap = {"data": {"id": str(ACT)}, "renderedPosition": {"x": 3, "y": 4}}
    assert _event(data, first, "graph-cy", tap=tap) == Tap(ACT, (3, 4))
    assert _event(data, first, {"type": "graph-crumb", "index": ACT}, crumbs=[None, 1]) == OpenCrumb(ACT)
    assert _event(data, first, "graph-find", search="encoder.block.act.proj") == Find(PROJ, "encoder.block.act.proj")
    assert _event(data, first, "graph-search", search="nope") == Find(None, "nope")
    assert _event(data, first, "graph-step", step="7@NanNet") == ShowStep(7, 2, "NanNet")
    assert _event(data, first, "graph-jump") == JumpTo(7, 2, "NanNet", LOG_V2)
    assert _event(data, first, "graph-expand-all") == ExpandAll()
    assert _event(data, first, "graph-collapse-all") == CollapseAll()
    assert _event(data, first, "graph-colour", colour="anomaly") == SetColour("anomaly")
    assert _event(data, first, "graph-hide", hide=["hide"]) == SetHide(True)
    with pytest.raises(dash.exceptions.PreventUpdate):  # new breadcrumb buttons were drawn: not a click
        _event(data, first, {"type": "graph-crumb", "index": ACT}, crumbs=[None, None])


def test_the_page_keeps_one_cache_per_store_and_drops_it_with_the_store(tmp_path: Path) -> None:
    with torchscope.init(name="empty", db=tmp_path / "c.db"):
        pass
    store = torchscope.open(tmp_path / "c.db")
    cached = page.graph_data(store)
    assert page.graph_data(store) is cached and cached.store.run(1)["name"] == "empty"
    before = len(page._DATA)
    store.close()
    del store, cached
    gc.collect()
    assert len(page._DATA) == before - 1
