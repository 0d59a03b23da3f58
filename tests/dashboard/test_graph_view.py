"""The graph view's pure parts on real captured and imported graphs: collapse/expand, layout, colours, elements,
version differences, the profile join and the inspector's figures and tables (no browser)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import torch
from models import Branchy, NanNet, TinyMLP, TinyTransformer, line_of, record_nan_run

import torchscope
from torchscope.dashboard import routes
from torchscope.dashboard.views.graph import colors as graph_colors
from torchscope.dashboard.views.graph.elements import graph_elements
from torchscope.dashboard.views.graph.figures import histogram_figure, history_figure
from torchscope.dashboard.views.graph.state import (
    GraphState, collapse_below, default_expanded, expand_all, expand_to, toggle, visible_view,
)  # fmt: skip
from torchscope.dashboard.views.graph.data import GraphData
from torchscope.dashboard.views.graph.layout import MODULE_H, MODULE_W, NODE_H, NODE_W, layout
from torchscope.dashboard.views.graph.model import GraphModel, captured_model, imported_model
from torchscope.dashboard.views.graph.timing import aten_names, op_times
from torchscope.dashboard.views.graph.tables import node_facts, stats_rows
from torchscope.storage.store import Store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One database: NanNet with a NaN planted at step 7, Branchy with two graph versions, a 2-layer transformer,
    and a profiled TinyMLP."""
    db = tmp_path_factory.mktemp("graphview") / "g.db"
    record_nan_run(db)
    with torchscope.init(name="branchy", db=db) as run:
        model = Branchy()
        run.watch(model, every=1)
        for step in range(4):
            model(torch.full((2, 4), 1.0 if step % 2 == 0 else -1.0)).sum().backward()
    with torchscope.init(name="transformer", db=db) as run:
        model = TinyTransformer(layers=2, d=32, seq=16)
        run.watch(model, every=1)
        model(torch.randint(0, 256, (2, 16))).sum().backward()
    with torchscope.init(name="profiled", db=db) as run:
        model = TinyMLP()
        run.watch(model, every=1)
        with run.profile(wait=0, warmup=1, active=2, record_shapes=True, with_stack=True) as prof:
            for _ in range(4):
                model(torch.randn(8, 4)).sum().backward()
                prof.step()
    opened = torchscope.open(db)
    yield opened
    opened.close()


def _names(model: GraphModel, ids: Iterable[int]) -> set[str]:
    return {model.nodes[i].name for i in ids}


def test_first_view_shows_the_top_level_modules_closed(store: Store) -> None:
    model = captured_model(*store.graph(1, step=9))
    view = visible_view(model, default_expanded(model))
    assert _names(model, view.nodes) == {"input[0]", "encoder.block.act", "head", "sum_0", "output"}
    assert _names(model, view.boxes) == {"NanNet"}
    assert len(view.edges) == 4
    act, head = model.by_module["encoder.block.act"], model.by_module["head"]
    assert view.edges[(act, head)] == (1, ["[8, 4]"])


def test_opening_a_module_shows_exactly_its_ops_and_closed_submodules(store: Store) -> None:
    model = captured_model(*store.graph(1, step=9))
    act = model.by_module["encoder.block.act"]
    view = visible_view(model, toggle(model, act, default_expanded(model)))
    assert _names(model, view.nodes) == {
        "input[0]", "encoder.block.act.proj", "abs_0", "add_0", "log_0", "mul_0", "head", "sum_0", "output",
    }  # fmt: skip
    assert (len(view.nodes), len(view.boxes), len(view.edges)) == (9, 2, 8)
    proj = model.by_module["encoder.block.act.proj"]
    opened = toggle(model, proj, toggle(model, act, default_expanded(model)))
    with_params = visible_view(model, opened)
    proj_nodes = {"linear_0", "encoder.block.act.proj.weight", "encoder.block.act.proj.bias"}
    assert proj_nodes <= _names(model, with_params.nodes)
    assert len(with_params.nodes) == 11
    hidden = visible_view(model, opened, hide_params=True)
    assert len(hidden.nodes) == 9 and "encoder.block.act.proj.weight" not in _names(model, hidden.nodes)
    # closing the outer box closes what is open inside it
    assert toggle(model, act, opened) == default_expanded(model)
    assert collapse_below(model, act, opened) == opened - {proj}


def test_expand_all_opens_everything_or_stops_at_the_budget(store: Store) -> None:
    model = captured_model(*store.graph(3))
    expanded, complete = expand_all(model)
    view = visible_view(model, expanded)
    assert complete
    leaves = [n for n in model.nodes.values() if not n.group]
    assert len(view.nodes) == len(leaves)
    assert len(view.boxes) == sum(1 for n in model.nodes.values() if n.group)
    small, complete = expand_all(model, budget=12)
    assert not complete and len(visible_view(model, small).nodes) <= 12
    target = model.by_name["relu_1"]
    path = expand_to(model, target, default_expanded(model))
    assert target in visible_view(model, path).nodes


def test_layout_is_deterministic_flows_down_and_nothing_overlaps(store: Store) -> None:
    model = captured_model(*store.graph(3))
    expanded, _ = expand_all(model)
    view = visible_view(model, expanded)
    first, again = layout(model, view), layout(model, visible_view(model, expanded))
    assert first == again
    for a, b in view.edges:
        assert first[b][1] > first[a][1], (model.nodes[a].name, model.nodes[b].name)

    def rect(i: int) -> tuple[float, float, float, float]:
        w, h = (MODULE_W, MODULE_H) if model.nodes[i].group else (NODE_W, NODE_H)
        x, y = first[i]
        return x - w / 2, y - h / 2, x + w / 2, y + h / 2

    for a, b in itertools.combinations(view.nodes, 2):
        ra, rb = rect(a), rect(b)
        assert ra[2] <= rb[0] or rb[2] <= ra[0] or ra[3] <= rb[1] or rb[3] <= ra[1], (a, b)


def test_opening_a_module_moves_the_rows_above_it_rigidly(store: Store) -> None:
    model = captured_model(*store.graph(3))
    base = default_expanded(model)
    before = layout(model, visible_view(model, base))
    encoder = model.by_module["encoder"]
    after = layout(model, visible_view(model, toggle(model, encoder, base)))
    above = [i for i in before if before[i][1] < before[encoder][1]]
    shifts = {(round(after[i][0] - before[i][0], 1), round(after[i][1] - before[i][1], 1)) for i in above}
    assert len(above) >= 3 and len(shifts) == 1


def test_colour_by_anomaly_marks_the_nan_and_the_closed_module_holding_it(store: Store) -> None:
    data = GraphData(store)
    model = data.captured(1, data.version_of(1, 7))
    view = visible_view(model, default_expanded(model))
    values = graph_colors.node_values(model, data.step_stats(1, 7), "anomaly")
    fills = graph_colors.colours(model, view, values, "anomaly")
    act, head = model.by_module["encoder.block.act"], model.by_module["head"]
    assert fills[act] == graph_colors.BROKEN and fills[head] == graph_colors.BROKEN  # NaN flows on into head
    assert fills[model.by_name["input[0]"]] == graph_colors.HEALTHY
    model9 = data.captured(1, data.version_of(1, 9))
    values9 = graph_colors.node_values(model9, data.step_stats(1, 9), "anomaly")
    fills9 = graph_colors.colours(model9, visible_view(model9, default_expanded(model9)), values9, "anomaly")
    output = model9.by_name["output"]  # an output node only names the returned tensor: no statistics of its own
    assert fills9.pop(output) == graph_colors.NO_DATA and set(fills9.values()) == {graph_colors.HEALTHY}


def test_colour_by_magnitude_gives_a_closed_module_the_largest_value_inside(store: Store) -> None:
    model = captured_model(*store.graph(1, step=9))
    stats = store.step_stats(1, 9)
    values = graph_colors.node_values(model, stats, "magnitude")
    log = model.by_name["log_0"]
    row = stats[(stats["node"] == log) & (stats["role"] == "value")].iloc[0]
    assert values[log] == pytest.approx(row["norm"] / row["numel"] ** 0.5)
    view = visible_view(model, default_expanded(model))
    act = model.by_module["encoder.block.act"]
    inside = [values[d] for d in model.descendants(act) if d in values]
    assert graph_colors.visible_values(model, view, values, "magnitude")[act] == max(inside)
    grads = graph_colors.node_values(model, stats, "grad")
    assert grads[log] == pytest.approx(float(stats[(stats["node"] == model.grad_of[log])]["norm"].iloc[0]))
    fills = graph_colors.colours(model, view, values, "magnitude")
    with_value = graph_colors.visible_values(model, view, values, "magnitude")
    assert all(c.startswith("rgb") for n, c in fills.items() if n in with_value)
    linear = graph_colors.op_colour("F.linear")
    assert linear == graph_colors.op_colour("F.linear") != graph_colors.op_colour("torch.log")
    spec = graph_colors.legend(model, view, values, "magnitude")
    assert spec["scale"][0] <= spec["scale"][1]


def test_nodes_only_in_one_graph_version_are_found(store: Store) -> None:
    data = GraphData(store)
    v_pos, v_neg = data.version_of(2, 0), data.version_of(2, 1)
    assert v_pos != v_neg
    assert _names(data.captured(2, v_pos), data.only_here(2, v_pos)) == {"relu_0"}
    assert _names(data.captured(2, v_neg), data.only_here(2, v_neg)) == {"sigmoid_0", "mul_0"}
    model = data.captured(2, v_neg)
    view = visible_view(model, default_expanded(model))
    elements = graph_elements(model, view, layout(model, view), {}, only_here=data.only_here(2, v_neg))
    flagged = {e["data"]["id"] for e in elements if "only-version" in str(e.get("classes", ""))}
    assert flagged == {str(model.by_name["sigmoid_0"]), str(model.by_name["mul_0"])}


def test_elements_mark_the_origin_and_every_box_around_a_nan(store: Store) -> None:
    data = GraphData(store)
    model = data.captured(1, data.version_of(1, 7))
    log = model.by_name["log_0"]
    act = model.by_module["encoder.block.act"]
    opened = expand_to(model, log, default_expanded(model))
    view = visible_view(model, opened)
    elements = graph_elements(model, view, layout(model, view), {}, flagged={log}, origin=log)
    by_id = {e["data"]["id"]: e for e in elements}
    assert "origin" in by_id[str(log)]["classes"] and "anomaly" in by_id[str(log)]["classes"]
    assert by_id[str(act)]["classes"].split()[0] == "box" and "anomaly" in by_id[str(act)]["classes"]
    assert by_id[str(log)]["data"]["parent"] == str(act)
    assert by_id[str(log)]["data"]["label"] == "log\n[8×4]"
    edges = [e for e in elements if "source" in e["data"]]
    assert len(edges) == len(view.edges) and all(e["data"]["shapes"] for e in edges)
    anomaly = data.first_anomaly(1)
    assert (anomaly["step"], anomaly["name"], anomaly["module"]) == (7, "log_0", "encoder.block.act")
    assert anomaly["line"] == line_of(__import__("models").LogBlock.forward, "# <log>")


def test_inspector_facts_tables_and_figures(store: Store) -> None:
    model = captured_model(*store.graph(1, step=9))
    log = model.by_name["log_0"]
    facts = dict(node_facts(model, log))
    assert facts["op"] == "torch.log" and facts["module path"] == "encoder.block.act"
    assert facts["source"] == f"models.py:{line_of(__import__('models').LogBlock.forward, '# <log>')}"
    assert facts["inputs"] == "add_0 [8, 4] float32" and facts["outputs"] == "[8, 4] float32"
    act_facts = dict(node_facts(model, model.by_module["encoder.block.act"]))
    assert act_facts["class"] == "LogBlock" and act_facts["outputs"] == "mul_0 [8, 4] float32"
    stats = store.tensor_stats(1, log, step=9)
    rows = stats_rows(stats)
    assert rows[0][:5] == ["value", "[8, 4]", "float32", "cpu", "32"]
    hist = histogram_figure(stats, "h")
    assert len(hist.data) == 1 and sum(hist.data[0].y) == 32 and len(hist.data[0].x) == 32
    history = history_figure(store.tensor_stats(1, "log_0"), store.tensor_stats(1, "grad:log_0"), 9)
    value_traces = [t for t in history.data if t.name == "value"]
    assert len(value_traces) == 4 and list(value_traces[0].x) == list(range(10))
    assert list(value_traces[3].y) == [0] * 7 + [32] + [0] * 2  # the NaN count panel


def test_profiled_ops_are_joined_to_graph_nodes_by_name_and_shapes(store: Store) -> None:
    assert aten_names("F.linear") == ["aten::linear", "aten::addmm"]
    assert aten_names("Tensor.__add__") == ["aten::add"] and aten_names("torch.relu") == ["aten::relu"]
    data = GraphData(store)
    version = int(store.graph_steps(4)["version_id"].iloc[-1])
    profile_id, times = data.times(4, version)
    assert profile_id == int(store.profiles(4)["id"].iloc[-1])
    model = data.captured(4, version)
    linear = times[model.by_name["linear_0"]]
    assert linear["aten"] == "aten::linear" and linear["by_shape"] and linear["calls"] == 2
    assert times[model.by_name["relu_0"]]["aten"] == "aten::relu"
    events = store.op_events(profile_id, ["aten::linear"], max_items=10)
    assert len(events) == 4 and set(events["name"]) == {"aten::linear"}
    op_table = store.op_table(profile_id, group_by_shape=True)
    assert op_times(model, op_table.iloc[0:0]) == {}


@pytest.mark.parametrize("logs", ["written", pytest.param("reference", marks=pytest.mark.conformance)])
def test_imported_keras_and_op_graphs_group_by_name_scope(logs: str, tmp_path: Path, request) -> None:
    from tb_logs import write_logs

    from torchscope.io.importing import import_path

    if logs == "written":  # a TF op graph written here in the format tf.summary.trace_export uses
        write_logs(tmp_path / "logs")
        source = tmp_path / "logs" / "opgraph"
    else:
        source = request.getfixturevalue("shared_data") / "tensorboard_keras" / "opgraph"
    db = tmp_path / "i.db"
    import_path(db, source)
    with torchscope.open(db) as opened:
        nodes, edges = opened.imported_graph(1)
        first = nodes[nodes["graph_id"] == nodes["graph_id"].min()]
        model = imported_model(first, edges[edges["graph_id"] == first["graph_id"].iloc[0]])
        view = visible_view(model, default_expanded(model))
        assert _names(model, view.boxes) == set()
        assert {"block1", "block2"} <= _names(model, view.nodes)
        block1 = model.by_module["block1"]
        opened_view = visible_view(model, toggle(model, block1, set()))
        assert {"block1/Relu", "block1/MatMul"} <= _names(model, opened_view.nodes) | _names(model, opened_view.boxes)
        assert len(view.edges) > 0
        layout(model, opened_view)
        panel = routes.render(opened, "/graph/1", "?node=block1/Relu", refresh_ms=1000)
        assert "Relu" in str(panel)


def test_unknown_run_step_and_node_are_404(store: Store) -> None:
    for path, search, text in (
        ("/graph/999", "", "no run 999"),
        ("/graph/1", "?step=5000", "step 5000 of run 1 was not captured"),
        ("/graph/1", "?node=nope", "no node or module 'nope'"),
    ):
        panel = routes.render(store, path, search, refresh_ms=1000)
        assert "404" in str(panel) and text in str(panel), str(panel)[:300]
    assert "400" in str(routes.render(store, "/graph/1", "?step=x", refresh_ms=1000))


def test_inspector_of_a_profiled_op_links_its_calls_to_the_timeline(store: Store) -> None:
    from torchscope.dashboard.views.graph.inspector import inspector
    from torchscope.dashboard.views.graph.render import draw

    data = GraphData(store)
    steps = store.graph_steps(4)
    step, version = int(steps["step"].iloc[-1]), int(steps["version_id"].iloc[-1])
    model = data.captured(4, version)
    profile_id = int(store.profiles(4)["id"].iloc[-1])
    state = GraphState(run=4, source="captured", key=step, version=version, colour="time",
                       selected=model.by_name["linear_0"], expanded=tuple(sorted(model.nodes)))  # fmt: skip
    panel = str(inspector(data, state))
    assert f"/timeline/{profile_id}?start=" in panel and "q=aten%3A%3Alinear" in panel
    assert "aten::linear: host" in panel
    scene = draw(data, state)
    fills = {e["data"]["id"]: e["data"].get("color") for e in scene.elements if "source" not in e["data"]}
    assert fills[str(model.by_name["linear_0"])].startswith("rgb")  # on the time scale
    assert "time (profile)" in str(scene.legend)


def test_add_graph_of_a_torch_model_is_grouped_by_its_module_scopes(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    from torchscope.io.importing import import_path

    writer = SummaryWriter(str(tmp_path / "logs"))
    writer.add_graph(NanNet(), torch.randn(8, 4))
    writer.close()
    result = import_path(tmp_path / "a.db", tmp_path / "logs")
    with torchscope.open(tmp_path / "a.db") as opened:
        model = imported_model(*opened.imported_graph(result.runs[0]["id"]))
    first = visible_view(model, default_expanded(model))
    assert _names(model, first.nodes) == {"input", "output", "NanNet"} and not first.boxes
    expanded, complete = expand_all(model)
    everything = visible_view(model, expanded)
    assert complete and len(everything.nodes) == 17
    log = next(n for n in model.nodes.values() if n.op == "aten::log")
    assert model.nodes[log.parent].name == "NanNet/LogBlock[act]"
    assert dict(node_facts(model, log.id))["name scope"] == "NanNet/LogBlock[act]"


def test_a_run_watching_two_models_shows_each_graph_with_its_own_statistics(tmp_path: Path) -> None:
    from torchscope.dashboard.views.graph.inspector import inspector
    from torchscope.dashboard.views.graph.page import _initial_state, _step_options

    db = tmp_path / "two.db"
    torch.manual_seed(0)
    with torchscope.init(name="gan", db=db) as run:
        generator, critic = TinyMLP(), NanNet()
        run.watch(generator, every=1, name="generator")
        run.watch(critic, every=1, name="critic")
        for _ in range(2):
            generator(torch.randn(8, 4)).sum().backward()
            critic(torch.randn(8, 4)).backward()
    with torchscope.open(db) as opened:
        data = GraphData(opened)
        labels = [o["label"] for o in _step_options(data, run.id)]
        assert sorted(labels) == ["critic · step 0 (v2)", "critic · step 1 (v2)", "generator · step 0 (v1)",
                                  "generator · step 1 (v1)"]  # fmt: skip
        state = _initial_state(data, run.id, {"model": "critic", "step": "1", "node": "log_0"})
        assert state.model == "critic" and state.version == 2
        model = data.captured(run.id, state.version)
        stats = data.step_stats(run.id, 1, "critic")
        assert set(stats["node"]) <= set(model.nodes) | set(model.grad_of.values())
        assert len(stats) == len(opened.tensor_stats(run.id, step=1, model="critic"))
        panel = str(inspector(data, state))
        assert "Statistics at step 1" in panel and "model=critic" in panel
        assert "404" in str(routes.render(opened, f"/graph/{run.id}", "?model=nobody", refresh_ms=1000))


def test_search_for_a_gradient_finds_its_tensor_and_outputs_show_the_returned_tensor(store: Store) -> None:
    from torchscope.dashboard.views.graph.inspector import inspector
    from torchscope.dashboard.views.graph.render import draw

    data = GraphData(store)
    version = data.version_of(1, 9)
    model = data.captured(1, version)
    assert model.find("grad:head.weight") == model.by_name["head.weight"]
    output = model.by_name["output"]
    state = GraphState(run=1, source="captured", key=9, version=version, colour="time", selected=output,
                       expanded=tuple(sorted(default_expanded(model))))  # fmt: skip
    panel = str(inspector(data, state))
    assert "Statistics of sum_0, the returned tensor" in panel and "stats-table" in panel
    assert "this run has no profile" in str(draw(data, state).legend)


def test_a_flat_imported_graph_groups_crowds_by_op_type() -> None:
    import pandas as pd

    n = 600
    names = [f"c{i}" for i in range(n)] + [f"add{i}" for i in range(n)] + ["out"]
    ops = ["Const"] * n + ["AddV2"] * n + ["Identity"]
    inputs = [[] for _ in range(n)] + [[f"c{i}"] for i in range(n)] + [[f"add{n - 1}"]]
    nodes = pd.DataFrame({"graph_id": 1, "tag": "", "kind": "graph_def", "name": names, "op": ops, "scope": "",
                          "inputs": inputs, "device": None, "attrs": [{}] * len(names)})  # fmt: skip
    edges = pd.DataFrame([(1, src, dst) for dst, ins in zip(names, inputs) for src in ins],
                         columns=["graph_id", "source", "target"])  # fmt: skip
    model = imported_model(nodes, edges)
    view = visible_view(model, default_expanded(model))
    assert sorted(model.nodes[i].label for i in view.nodes) == ["AddV2 ×600", "Const ×600", "out"]
    assert len(view.edges) == 2  # Const box -> AddV2 box -> out
    assert model.find("c7") == model.by_name["c7"]


def test_compare_colours_nodes_by_the_change_of_their_norm_against_another_run(tmp_path: Path) -> None:
    from torchscope.dashboard.views.graph.compare import UNCHANGED, change_colour
    from torchscope.dashboard.views.graph.render import draw
    from torchscope.dashboard.views.graph.page import _initial_state

    db = tmp_path / "cmp.db"
    for seed, scale in ((0, 1.0), (0, 3.0)):
        torch.manual_seed(seed)
        with torchscope.init(name=f"x{scale}", db=db) as run:
            model = NanNet()
            run.watch(model, every=1)
            model(scale * torch.ones(8, 4)).backward()
    with torchscope.open(db) as opened:
        data = GraphData(opened)
        state = _initial_state(data, 2, {"compare": "1"})
        assert state.colour == "compare"
        scene = draw(data, state)
        fills = {e["data"]["id"]: e["data"]["color"] for e in scene.elements if "color" in e["data"]}
        model = data.captured(2, state.version)
        info, only_other = data.compare(2, 1, state.key)
        assert only_other == []
        assert fills[str(model.by_name["input[0]"])] == change_colour(2.0)  # its norm tripled: +200%
        act = model.by_module["encoder.block.act"]
        inside = [info[d]["change"] for d in model.descendants(act) if d in info and info[d]["change"] is not None]
        assert fills[str(act)] == change_colour(max(inside, key=abs)) != UNCHANGED
        assert "vs run 1" in str(scene.legend)
        assert "404" in str(routes.render(opened, "/graph/2", "?compare=99", refresh_ms=1000))
        assert "400" in str(routes.render(opened, "/graph/2", "?color=compare", refresh_ms=1000))


def test_the_profile_tables_module_links_select_the_module(store: Store) -> None:
    """The profile page links modules by the profiler's names (``TinyMLP_0/Linear_1``)."""
    data = GraphData(store)
    steps = store.graph_steps(4)
    state = {"run": 4, "source": "captured", "key": int(steps["step"].iloc[-1]),
             "version": int(steps["version_id"].iloc[-1])}  # fmt: skip
    model = data.captured(4, state["version"])
    assert data.find(state, "TinyMLP_0/Linear_1") == model.by_module["fc2"]
    assert data.find(state, "TinyMLP_0") == model.by_module[""]
    assert data.find(state, "fc1") == model.by_module["fc1"] and data.find(state, "Nothing_0/Here_3") is None
    panel = routes.render(store, "/graph/4", "?node=TinyMLP_0/Linear_0", refresh_ms=1000)
    assert "fc1" in str(panel) and "404" not in str(panel)


def test_a_closed_module_takes_the_profilers_own_module_time(store: Store) -> None:
    data = GraphData(store)
    version = int(store.graph_steps(4)["version_id"].iloc[-1])
    profile_id, times = data.times(4, version)
    model = data.captured(4, version)
    table = store.module_table(profile_id).set_index("module")
    fc2 = times[model.by_module["fc2"]]
    row = table.loc["TinyMLP_0/Linear_1"]
    assert fc2["host_ns"] == pytest.approx(row["host_total_ns"] / row["calls"]) and fc2["calls"] == row["calls"]
    view = visible_view(model, default_expanded(model))
    shown = graph_colors.visible_values(model, view, {k: float(v["host_ns"]) for k, v in times.items()}, "time")
    assert shown[model.by_module["fc2"]] == pytest.approx(fc2["host_ns"])


def test_a_module_called_twice_is_two_boxes_and_a_graph_without_statistics_draws(tmp_path: Path) -> None:
    from models import SharedTwice

    from torchscope.dashboard.views.graph.render import draw
    from torchscope.dashboard.views.graph.page import _initial_state

    db = tmp_path / "twice.db"
    with torchscope.init(name="twice", db=db) as run:
        model = SharedTwice()
        run.watch(model, every=1, tensors="none", grads=False)
        model(torch.randn(2, 4))
    with torchscope.open(db) as opened:
        data = GraphData(opened)
        state = _initial_state(data, run.id, {"color": "magnitude"})
        graph = data.captured(run.id, state.version)
        view = visible_view(graph, state.expanded)
        labels = sorted(graph.nodes[n].label for n in view.nodes if graph.nodes[n].group)
        assert labels == ["shared", "shared#1"]
        scene = draw(data, state)
        assert {e["data"].get("color") for e in scene.elements if e["data"].get("kind") == "module"} == {
            graph_colors.NO_DATA
        }
        state = dataclasses.replace(state, selected=graph.by_name["tanh_0"])
        from torchscope.dashboard.views.graph.inspector import inspector

        assert "No statistics were captured" in str(inspector(data, state))
