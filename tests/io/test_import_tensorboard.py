"""Importing TensorBoard logs: written here in TF2/Keras record formats (``tests/tb_logs.py``) and by
torch.utils.tensorboard, and, as conformance tests, the reference logs TF/Keras wrote (checked against truth.json)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torch.utils.tensorboard import SummaryWriter

from tb_logs import write_logs
from traces import load_trace

from torchscope.errors import TraceImportError
from torchscope.io.importing import import_path
from torchscope.storage.store import Store


@pytest.fixture(scope="module", params=["written", pytest.param("reference", marks=pytest.mark.conformance)])
def logs(request, tmp_path_factory):
    """(store, run ids by role, what the logs hold) of one import of a TensorBoard log tree: ``written`` here by
    ``tests/tb_logs.py`` in TF2/Keras record formats, or the ``reference`` logs written by TF/Keras (../shared/data)."""
    folder = tmp_path_factory.mktemp("tb")
    if request.param == "written":
        truth = write_logs(folder / "logs")
        source, prefix, op_graph = folder / "logs", "keras", ("opgraph", "op_graph")
        names = {"summary": "summary", "train": "fit/train", "validation": "fit/validation", "opgraph": "opgraph"}
    else:
        source = request.getfixturevalue("shared_data") / "tensorboard_keras"
        raw = json.loads((source / "truth.json").read_text())
        truth = {"wave": {int(k): v for k, v in raw["wave"].items()}, "history": raw["keras_history"]}
        truth |= {"weights": [f"sequential/{l}/{w}/histogram" for l in ("encoder", "logits") for w in ("kernel", "bias")],
                  "layers": ["input_layer", "encoder", "drop", "logits"],
                  "layer_classes": ["InputLayer", "Dense", "Dropout", "Dense"]}  # fmt: skip
        prefix, op_graph = "keras", ("opgraph", "op_graph/0")
        names = {"summary": "summary", "train": "keras/train", "validation": "keras/validation", "opgraph": "opgraph"}
    result = import_path(folder / "tb.db", source, name=prefix)
    ids = {r["name"]: r["id"] for r in result.runs}
    truth["names"] = sorted(f"{prefix}/{n}" for n in names.values())
    truth["op_graph_tag"] = op_graph[1]
    with Store(folder / "tb.db") as store:
        yield store, {role: ids[f"{prefix}/{name}"] for role, name in names.items()}, truth


def test_each_log_directory_becomes_an_imported_run(logs):
    store, runs, truth = logs
    assert sorted(store.runs()["name"]) == truth["names"]
    assert set(store.runs()["source"]) == {"import"}


def test_tf2_tensor_scalars_hold_the_values_that_were_written(logs):
    store, runs, truth = logs
    wave = store.scalars(runs["summary"], tags=["demo/wave"])
    assert wave["step"].tolist() == list(truth["wave"])
    assert wave["value"].tolist() == pytest.approx(list(truth["wave"].values()), rel=1e-6)
    latest = store.last_scalars([runs["summary"]]).set_index("tag")
    assert latest.loc["demo/wave", "step"] == 49 and latest.loc["demo/wave", "count"] == 50
    assert store.run(runs["summary"])["last_step"] == 49
    history = truth["history"]
    train = store.scalars(runs["train"])
    val = store.scalars(runs["validation"])
    assert train[train["tag"] == "epoch_loss"]["value"].tolist() == pytest.approx(history["loss"], rel=1e-6)
    assert train[train["tag"] == "epoch_accuracy"]["value"].tolist() == pytest.approx(history["accuracy"], rel=1e-6)
    assert val[val["tag"] == "epoch_loss"]["value"].tolist() == pytest.approx(history["val_loss"], rel=1e-6)


def test_histograms_keep_their_buckets(logs):
    store, runs, truth = logs
    dist = store.histograms(runs["summary"], tags=["demo/dist"])
    assert dist["step"].tolist() == [0, 10, 20, 30, 40]
    for row in dist.itertuples():
        assert len(row.buckets) == 30
        assert sum(b[2] for b in row.buckets) == row.num
        assert row.min == row.buckets[0][0] and row.max == row.buckets[-1][1]
        if "dist" in truth:  # the written buckets, exactly
            assert np.asarray(row.buckets).tolist() == truth["dist"][row.step].tolist()
    keras = store.histograms(runs["train"])
    assert set(keras["tag"]) == set(truth["weights"])


def test_keras_conceptual_graph_is_the_model_layers_in_order(logs):
    store, runs, truth = logs
    nodes, edges = store.imported_graph(runs["train"])
    names = [f"sequential/{layer}" for layer in truth["layers"]]
    assert nodes["name"].tolist() == names
    assert nodes["op"].tolist() == truth["layer_classes"]
    assert set(nodes["kind"]) == {"keras"} and set(nodes["tag"]) == {"keras"}
    assert list(zip(edges["source"], edges["target"])) == list(zip(names, names[1:]))


def test_tf2_trace_export_op_graph_keeps_name_scopes(logs):
    store, runs, truth = logs
    nodes, edges = store.imported_graph(runs["opgraph"], tag=truth["op_graph_tag"])
    assert set(nodes["kind"]) == {"op_graph"}
    by_name = nodes.set_index("name")
    assert by_name.loc["block1/MatMul", "op"] == "MatMul"
    assert by_name.loc["block1/MatMul", "scope"] == "block1"
    assert by_name.loc["block2/MatMul", "inputs"] == ["block1/Relu", "block2/MatMul/ReadVariableOp"]
    assert {"block1", "block2"} <= set(nodes["scope"])
    assert ("block1/Relu", "block2/MatMul") in set(zip(edges["source"], edges["target"]))


def test_add_graph_graph_def_from_torch_imports(tmp_path, db_path):
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = torch.nn.Linear(4, 8)
            self.fc2 = torch.nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc2(torch.relu(self.fc1(x)))

    logdir = tmp_path / "tb"
    with SummaryWriter(str(logdir)) as writer:
        writer.add_graph(Net(), torch.randn(3, 4))
    result = import_path(db_path, logdir)
    with Store(db_path) as store:
        nodes, edges = store.imported_graph(result.run_id)
    assert set(nodes["kind"]) == {"graph_def"}
    linear = nodes[nodes["op"] == "aten::linear"]
    assert linear["scope"].tolist() == ["Net/Linear[fc1]", "Net/Linear[fc2]"]
    relu = nodes[nodes["op"] == "aten::relu"].iloc[0]
    assert ((linear.iloc[0]["name"], relu["name"]) in set(zip(edges["source"], edges["target"])))


def test_truncated_event_file_raises_and_leaves_nothing(tmp_path, db_path):
    write_logs(tmp_path / "written")
    logdir = tmp_path / "logs"
    shutil.copytree(tmp_path / "written" / "summary", logdir / "ok")
    (logdir / "bad").mkdir()
    source = next((tmp_path / "written" / "fit" / "train").iterdir())
    (logdir / "bad" / source.name).write_bytes(source.read_bytes()[:-7])
    with pytest.raises(TraceImportError, match="truncated TensorBoard event file"):
        import_path(db_path, logdir)
    with Store(db_path) as store:
        assert store.runs().empty


def test_imported_log_runs_span_their_event_wall_times(logs):
    store, runs, _ = logs
    run = store.run(runs["summary"])
    wave = store.scalars(runs["summary"])
    assert run["started_at"] == wave["wall_time"].min()
    assert run["ended_at"] >= wave["wall_time"].max()


def test_log_dir_with_profiler_plugin_traces_imports_both(gpu_trace, tmp_path, db_path):
    write_logs(tmp_path / "written")
    logdir = tmp_path / "logs"
    shutil.copytree(tmp_path / "written" / "summary", logdir / "train")
    plugin = logdir / "plugins" / "profile" / "run1"
    plugin.mkdir(parents=True)
    shutil.copy(gpu_trace, plugin / "host_1.pt.trace.json.gz")
    kernels = sum(1 for e in load_trace(gpu_trace)["traceEvents"] if e.get("cat") == "kernel")
    (logdir / "notes.json").write_text('{"not": "a trace"}')  # other JSON in a log dir is not a trace
    result = import_path(db_path, logdir, name="exp")
    assert [r["name"] for r in result.runs] == ["exp", "exp/train"]
    with Store(db_path) as store:
        profiles = store.profiles(result.runs[0]["id"])
        assert profiles["kernel_count"].tolist() == [kernels]
        assert len(store.scalars(result.runs[1]["id"], tags=["demo/wave"])) == 50
