"""Importing TensorBoard logs written by TF2/Keras and by torch.utils.tensorboard, checked against truth.json."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from torch.utils.tensorboard import SummaryWriter

from torchscope.errors import TraceImportError
from torchscope.io.importing import import_path
from torchscope.storage.store import Store


@pytest.fixture(scope="module")
def keras_store(shared_data, tmp_path_factory):
    db = tmp_path_factory.mktemp("tb") / "tb.db"
    result = import_path(db, shared_data / "tensorboard_keras", name="keras")
    with Store(db) as store:
        yield store, {r["name"]: r["id"] for r in result.runs}


def test_each_log_directory_becomes_an_imported_run(keras_store):
    store, runs = keras_store
    assert sorted(runs) == ["keras/keras/train", "keras/keras/validation", "keras/opgraph", "keras/summary"]
    assert set(store.runs()["source"]) == {"import"}


def test_tf2_tensor_scalars_hold_the_values_that_were_written(keras_store, shared_data):
    store, runs = keras_store
    truth = json.loads((shared_data / "tensorboard_keras" / "truth.json").read_text())
    wave = store.scalars(runs["keras/summary"], tags=["demo/wave"])
    assert wave["step"].tolist() == [int(s) for s in truth["wave"]]
    assert wave["value"].tolist() == pytest.approx(list(truth["wave"].values()), rel=1e-6)
    latest = store.last_scalars([runs["keras/summary"]]).set_index("tag")
    assert latest.loc["demo/wave", "step"] == 49 and latest.loc["demo/wave", "count"] == 50
    assert store.run(runs["keras/summary"])["last_step"] == 49
    history = truth["keras_history"]
    train = store.scalars(runs["keras/keras/train"])
    val = store.scalars(runs["keras/keras/validation"])
    assert train[train["tag"] == "epoch_loss"]["value"].tolist() == pytest.approx(history["loss"], rel=1e-6)
    assert train[train["tag"] == "epoch_accuracy"]["value"].tolist() == pytest.approx(history["accuracy"], rel=1e-6)
    assert val[val["tag"] == "epoch_loss"]["value"].tolist() == pytest.approx(history["val_loss"], rel=1e-6)


def test_histograms_keep_their_buckets(keras_store):
    store, runs = keras_store
    dist = store.histograms(runs["keras/summary"], tags=["demo/dist"])
    assert dist["step"].tolist() == [0, 10, 20, 30, 40]
    for row in dist.itertuples():
        assert len(row.buckets) == 30
        assert sum(b[2] for b in row.buckets) == row.num
        assert row.min == row.buckets[0][0] and row.max == row.buckets[-1][1]
    keras = store.histograms(runs["keras/keras/train"])
    assert set(keras["tag"]) == {f"sequential/{l}/{w}/histogram" for l in ("encoder", "logits") for w in ("kernel", "bias")}


def test_keras_conceptual_graph_is_the_model_layers_in_order(keras_store):
    store, runs = keras_store
    nodes, edges = store.imported_graph(runs["keras/keras/train"])
    assert nodes["name"].tolist() == ["sequential/input_layer", "sequential/encoder", "sequential/drop", "sequential/logits"]
    assert nodes["op"].tolist() == ["InputLayer", "Dense", "Dropout", "Dense"]
    assert set(nodes["kind"]) == {"keras"} and set(nodes["tag"]) == {"keras"}
    assert list(zip(edges["source"], edges["target"])) == [
        ("sequential/input_layer", "sequential/encoder"), ("sequential/encoder", "sequential/drop"),
        ("sequential/drop", "sequential/logits"),
    ]  # fmt: skip


def test_tf2_trace_export_op_graph_keeps_name_scopes(keras_store):
    store, runs = keras_store
    nodes, edges = store.imported_graph(runs["keras/opgraph"], tag="op_graph/0")
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


def test_truncated_event_file_raises_and_leaves_nothing(shared_data, tmp_path, db_path):
    logdir = tmp_path / "logs"
    shutil.copytree(shared_data / "tensorboard_keras" / "summary", logdir / "ok")
    (logdir / "bad").mkdir()
    source = next((shared_data / "tensorboard_keras" / "keras" / "train").iterdir())
    (logdir / "bad" / source.name).write_bytes(source.read_bytes()[:-7])
    with pytest.raises(TraceImportError, match="truncated TensorBoard event file"):
        import_path(db_path, logdir)
    with Store(db_path) as store:
        assert store.runs().empty


def test_imported_log_runs_span_their_event_wall_times(keras_store):
    store, runs = keras_store
    run = store.run(runs["keras/summary"])
    wave = store.scalars(runs["keras/summary"])
    assert run["started_at"] == wave["wall_time"].min()
    assert run["ended_at"] >= wave["wall_time"].max()


def test_log_dir_with_profiler_plugin_traces_imports_both(shared_data, tmp_path, db_path):
    logdir = tmp_path / "logs"
    shutil.copytree(shared_data / "tensorboard_keras" / "summary", logdir / "train")
    plugin = logdir / "plugins" / "profile" / "run1"
    plugin.mkdir(parents=True)
    shutil.copy(shared_data / "kineto" / "mi250_rocm_train.json.gz", plugin / "host_1.pt.trace.json.gz")
    (logdir / "notes.json").write_text('{"not": "a trace"}')  # other JSON in a log dir is not a trace
    result = import_path(db_path, logdir, name="exp")
    assert [r["name"] for r in result.runs] == ["exp", "exp/train"]
    with Store(db_path) as store:
        profiles = store.profiles(result.runs[0]["id"])
        assert profiles["kernel_count"].tolist() == [14]
        assert len(store.scalars(result.runs[1]["id"], tags=["demo/wave"])) == 50
