"""Importing TensorBoard logs: written here in TF2/Keras record formats (``tests/tb_logs.py``), by
torch.utils.tensorboard and by the tensorboard package's own summary functions (checked against what the test wrote),
and, as conformance tests, the reference logs TF/Keras wrote (checked against truth.json)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import summary_v2 as hparams_summary
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import summary_v2 as scalar_summary
from tensorboard.plugins.text import summary_v2 as text_summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util
from torch.utils.tensorboard import SummaryWriter

from tb_logs import write_logs
from traces import load_trace

import torchscope
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


def summary_writer_log(logdir: Path) -> dict[str, Any]:
    """A log as a PyTorch user writes one: scalars, text, images, audio, a graph and add_hparams. Returns the truth."""
    torch.manual_seed(0)
    images = [torch.rand(3, 4, 5) for _ in range(3)]
    with SummaryWriter(str(logdir)) as writer:
        for step in range(3):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
            writer.add_text("notes", f"**step** {step}\n\n- a list item", step)
            writer.add_image("samples", images[step], step)
        writer.add_audio("sound", torch.zeros(1, 100), 0)
        writer.add_graph(torch.nn.Linear(2, 3), torch.randn(1, 2))
        hparams = {"lr": 0.01, "optimizer": "adam", "layers": 3}
        writer.add_hparams(hparams, {"hparam/accuracy": 0.875, "hparam/loss": 0.25})
    return {"images": images}


def test_summary_writer_hparams_text_and_images_are_kept(tmp_path, db_path):
    truth = summary_writer_log(tmp_path / "tb")
    result = import_path(db_path, tmp_path / "tb", name="exp")
    names = [r["name"] for r in result.runs]
    assert names[0] == "exp" and names[1].startswith("exp/") and len(names) == 2  # add_hparams' own session folder
    main_run, session = (r["id"] for r in result.runs)
    with Store(db_path) as store:
        config = store.run(session)["config"]
        assert {k: config[k] for k in ("lr", "optimizer", "layers")} == {"lr": 0.01, "optimizer": "adam", "layers": 3}
        metrics = store.hparam_metrics([session])
        assert dict(zip(metrics["tag"], metrics["value"])) == {"hparam/accuracy": 0.875, "hparam/loss": 0.25}
        assert store.scalars(session).empty  # a metric logged once is a value, not a one-point chart
        hp = store.hparams()
        assert hp[hp["run_id"] == session][["kind", "key", "value"]].values.tolist() == [
            ["hparam", "layers", 3], ["hparam", "lr", 0.01], ["hparam", "optimizer", "adam"],
            ["metric", "hparam/accuracy", 0.875], ["metric", "hparam/loss", 0.25],
        ]  # fmt: skip
        texts = store.texts(main_run)
        assert texts["tag"].unique().tolist() == ["notes/text_summary"]  # the tag add_text writes
        assert texts["text"].tolist() == [f"**step** {s}\n\n- a list item" for s in range(3)]
        assert texts["step"].tolist() == [0, 1, 2]
        images = store.images(main_run)
        assert images[["tag", "step", "width", "height", "mime"]].values.tolist() == [
            ["samples", s, 5, 4, "image/png"] for s in range(3)
        ]
        for row, logged in zip(images.itertuples(), truth["images"]):
            mime, data = store.image(row.id)
            pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            expected = (logged.permute(1, 2, 0).numpy() * 255).clip(0, 255).round().astype(np.uint8)
            assert mime == "image/png" and np.abs(pixels.astype(int) - expected.astype(int)).max() <= 1
        assert len(store.scalars(main_run, tags=["loss"])) == 3
        assert store.imported_graphs(main_run)[["tag", "kind"]].values.tolist() == [["", "graph_def"]]
    assert dict(result.skipped) == {"audio": 1, "run_metadata": 1}  # add_graph's step stats, add_audio
    summary = result.summary()
    assert "not imported (torchscope does not keep these): 1 audio, 1 run_metadata" in summary
    assert f"imported run {session} ({names[1]}): 3 hparams" in summary
    assert "3 scalars, 0 histograms, 2 hparam metrics, 3 texts, 3 images" in summary


def write_events(logdir: Path, events: list[tuple[int, Any]]) -> None:
    """``(step, Summary)`` pairs into one event file, written by the tensorboard package's own writer."""
    logdir.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(logdir))
    for step, summary in events:
        writer.add_event(event_pb2.Event(wall_time=1.7e9 + step, step=step, summary=summary))
    writer.close()


def test_tensorboard_hparams_api_layout_and_tables_of_text(tmp_path, db_path):
    """TF's layout: the experiment (hparams_config) at the top, one session per subfolder with its hparams; a metric
    logged at several steps stays a curve too. Text as a 2-D table, images as the images plugin's tensor."""
    root = tmp_path / "hp"
    lr, units = hparams_summary.HParam("lr"), hparams_summary.HParam("units")
    metrics = [hparams_summary.Metric("val/acc"), hparams_summary.Metric("val/loss")]
    config = hparams_summary.hparams_config_pb([lr, units], metrics)
    write_events(root, [(0, config)])
    png = (tmp_path / "pixel.png")
    Image.new("RGB", (2, 3), (255, 0, 0)).save(png)
    for i, (rate, width) in enumerate([(0.1, 8), (0.01, 16)]):
        events = [(0, hparams_summary.hparams_pb({lr: rate, units: width}))]
        events += [(s, scalar_summary.scalar_pb("val/acc", 0.5 + 0.1 * s + i)) for s in range(3)]
        events += [(2, scalar_summary.scalar_pb("val/loss", 1.0 - i / 4))]
        table = np.array([["a", "b|c"], ["1", "2"]])
        events += [(1, text_summary.text_pb("table", table))]
        image = summary_pb2.Summary(value=[summary_pb2.Summary.Value(
            tag="pics", metadata=image_metadata.create_summary_metadata(display_name="pics", description=""),
            tensor=tensor_util.make_tensor_proto([b"2", b"3", png.read_bytes(), png.read_bytes()]),
        )])  # fmt: skip
        events += [(1, image)]
        write_events(root / f"session{i}", events)
    result = import_path(db_path, root, name="hp")
    assert [r["name"] for r in result.runs] == ["hp", "hp/session0", "hp/session1"]
    assert result.skipped == {}
    with Store(db_path) as store:
        hp = store.hparams()
        by_run = {rid: dict(zip(g["key"], g["value"])) for rid, g in hp.groupby("run_id")}
        assert by_run == {
            2: {"lr": 0.1, "units": 8, "val/acc": pytest.approx(0.7), "val/loss": 1.0},
            3: {"lr": 0.01, "units": 16, "val/acc": pytest.approx(1.7), "val/loss": 0.75},
        }
        assert store.scalars(2, tags=["val/acc"])["step"].tolist() == [0, 1, 2]  # a curve stays a curve
        assert store.scalars(2, tags=["val/loss"]).empty  # one point: the metric's value
        assert store.texts(2)["text"].tolist() == ["|   |   |\n|---|---|\n| a | b\\|c |\n| 1 | 2 |"]
        images = store.images(3)
        assert images[["tag", "step", "sample", "width", "height"]].values.tolist() == [
            ["pics", 1, 0, 2, 3], ["pics", 1, 1, 2, 3]
        ]
        assert store.image(int(images["id"].iloc[1])) == ("image/png", png.read_bytes())


def test_keras_logs_import_with_nothing_skipped(shared_data, tmp_path, db_path):
    result = import_path(db_path, shared_data / "tensorboard_keras", name="keras")
    assert result.skipped == {} and "not imported" not in result.summary()
    assert result.texts == result.images == result.metrics == 0


def test_hparams_text_and_images_on_each_backend(any_db, tmp_path):
    truth = summary_writer_log(tmp_path / "tb")
    result = import_path(any_db, tmp_path / "tb", name="exp")
    main_run = result.run_id
    with Store(any_db) as store:
        hp = store.hparams()
        assert dict(zip(hp["key"], hp["value"])) == {"layers": 3, "lr": 0.01, "optimizer": "adam",
                                                     "hparam/accuracy": 0.875, "hparam/loss": 0.25}  # fmt: skip
        assert store.texts(main_run)["text"].tolist()[0] == "**step** 0\n\n- a list item"
        images = store.images(main_run)
        mime, data = store.image(int(images["id"].iloc[2]))
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        assert mime == "image/png" and pixels.shape == (4, 5, 3)
        assert np.abs(pixels / 255 - truth["images"][2].permute(1, 2, 0).numpy()).max() <= 1 / 255  # 8-bit PNG


def test_a_schema_5_store_is_migrated_and_takes_text_and_images(any_db, tmp_path):
    import sqlalchemy

    from torchscope.storage.schema import SCHEMA_VERSION

    with torchscope.init("old", db=any_db, system_metrics=False) as old:
        old.log({"loss": 1.0}, step=0)
    engine = sqlalchemy.create_engine(any_db if "://" in any_db else f"sqlite:///{any_db}")
    with engine.begin() as conn:  # back to schema 5: no imported text, images or hparam metrics
        for table in ("tb_texts", "tb_images", "tb_hparam_metrics"):
            conn.exec_driver_sql(f"DROP TABLE {table}")
        conn.exec_driver_sql("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    summary_writer_log(tmp_path / "tb")
    result = import_path(any_db, tmp_path / "tb")
    with Store(any_db) as store:
        assert store.scalars(old.id)["value"].tolist() == [1.0]
        assert len(store.texts(result.run_id)) == 3 and len(store.images(result.run_id)) == 3
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'schema_version'").scalar()
    engine.dispose()
    assert version == str(SCHEMA_VERSION)
