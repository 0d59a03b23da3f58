"""``torchscope export --tensorboard``: event files read back by TensorBoard's own readers (``EventAccumulator`` and
the scalar / histogram / distribution plugins over TensorBoard's data provider, as ``tensorboard --logdir`` serves
them): scalars exactly, watched tensors' histograms, no doubled points."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard import context as tb_context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins import base_plugin
from tensorboard.plugins.distribution.distributions_plugin import DistributionsPlugin
from tensorboard.plugins.histogram.histograms_plugin import HistogramsPlugin
from tensorboard.plugins.hparams import api_pb2, hparams_plugin, list_session_groups
from tensorboard.plugins.scalar.scalars_plugin import OutputFormat, ScalarsPlugin
from tensorboard.plugins.text.text_plugin import TextPlugin
from torch.utils.tensorboard import SummaryWriter

from tb_logs import write_logs

import torchscope
from torchscope.cli.main import main
from torchscope.errors import ExportError
from torchscope.io.exporting import export_run
from torchscope.io.importing import import_path
from torchscope.storage.store import Store


class TensorBoardReader:
    """TensorBoard's plugins over its multiplexer data provider, on one log directory (the run ``"."``)."""

    def __init__(self, logdir: Path) -> None:
        mux = plugin_event_multiplexer.EventMultiplexer()
        mux.AddRunsFromDirectory(str(logdir))
        mux.Reload()
        provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
        tb = base_plugin.TBContext(logdir=str(logdir), multiplexer=mux, data_provider=provider)
        self.ctx = tb_context.RequestContext()
        self.provider = provider
        self.hparams_plugin = hparams_plugin.HParamsPlugin(tb)
        self.text_plugin = TextPlugin(tb)
        self.scalars_plugin = ScalarsPlugin(tb)
        self.histograms_plugin = HistogramsPlugin(tb)
        self.distributions_plugin = DistributionsPlugin(tb)

    def scalars(self, tag: str, run: str = ".") -> list[tuple[int, float]]:
        body, _ = self.scalars_plugin.scalars_impl(self.ctx, tag, run, "", OutputFormat.JSON)
        return [(step, value) for _, step, value in body]

    def sessions(self) -> list[tuple[dict[str, object], dict[str, float], int]]:
        """The HParams dashboard's sessions: ``(hparams, metric values, status)``, sorted."""
        request = api_pb2.ListSessionGroupsRequest(
            start_index=0, slice_size=100, include_metrics=True,
            allowed_statuses=[api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS, api_pb2.STATUS_FAILURE,
                              api_pb2.STATUS_RUNNING],
        )  # fmt: skip
        groups = list_session_groups.Handler(self.ctx, self.hparams_plugin._context, "", request).run()
        out = []
        for group in groups.session_groups:
            hparams = {k: getattr(v, v.WhichOneof("kind")) for k, v in group.hparams.items()}
            for session in group.sessions:
                metrics = {m.name.tag: m.value for m in session.metric_values}
                out.append((hparams, metrics, session.status))
        return sorted(out, key=repr)

    def texts(self, run: str, tag: str) -> list[tuple[int, str]]:
        return [(d["step"], d["text"]) for d in self.text_plugin.text_impl(self.ctx, run, tag, "", True)]

    def images(self, run: str, tag: str) -> list[tuple[int, list[bytes]]]:
        found = self.provider.read_blob_sequences(self.ctx, experiment_id="", plugin_name="images", downsample=100)
        found = found[run][tag]
        return [(d.step, [self.provider.read_blob(self.ctx, blob_key=b.blob_key) for b in d.values[2:]])
                for d in found]  # fmt: skip

    def histogram_tags(self) -> set[str]:
        return set(self.histograms_plugin.index_impl(self.ctx, experiment="").get(".", {}))

    def histograms(self, tag: str) -> list[tuple[int, list[list[float]]]]:
        body, _ = self.histograms_plugin.histograms_impl(self.ctx, tag, ".", experiment="")
        return [(step, buckets) for _, step, buckets in body]

    def distributions(self, tag: str) -> list[tuple[int, list[tuple[int, float]]]]:
        body, _ = self.distributions_plugin.distributions_impl(self.ctx, tag, ".", experiment="")
        return [(step, compressed) for _, step, compressed in body]


def accumulator(logdir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_scalars_are_read_back_by_tensorboard(tmp_path, db_path):
    run = torchscope.init("tb", db=db_path)
    for step in range(5):
        run.log({"loss": 1.0 / (step + 1), "odd": float("nan") if step == 2 else step}, step=step)
    run.finish()
    logdir = tmp_path / "tb"
    lines = list(export_run(db_path, run.id, tensorboard_dir=logdir))
    assert lines == [f"wrote 10 scalars (2 tags) and 0 histograms (0 of watched tensors) of run {run.id} to {logdir}"]
    acc = accumulator(logdir)
    loss = acc.Scalars("loss")
    assert [e.step for e in loss] == [0, 1, 2, 3, 4]
    assert [e.value for e in loss] == pytest.approx([1.0, 0.5, 1 / 3, 0.25, 0.2], rel=1e-6)
    odd = [e.value for e in acc.Scalars("odd")]
    assert math.isnan(odd[2]) and odd[:2] == [0.0, 1.0]
    with Store(db_path) as store:
        walls = store.scalars(run.id, tags=["loss"])["wall_time"].tolist()
    assert all(abs(e.wall_time * 1e9 - w) < 1000 for e, w in zip(loss, walls))  # float64 seconds hold the µs


def test_values_outside_float32_are_written_exactly_as_float64_tensors(tmp_path, db_path):
    run = torchscope.init("wide", db=db_path)
    huge, tiny = [1e300, -3e39, 5.0], [1e-50, 2e-45, 0.0]
    for step in range(3):
        run.log({"huge": huge[step], "tiny": tiny[step], "plain": step + 0.5}, step=step)
    run.finish()
    logdir = tmp_path / "tb"
    (line,) = export_run(db_path, run.id, tensorboard_dir=logdir)
    assert line.endswith("; 2 tag(s) hold values outside float32 and were written as float64 tensors (huge, tiny)")
    reader = TensorBoardReader(logdir)
    assert reader.scalars("huge") == [(0, 1e300), (1, -3e39), (2, 5.0)]  # exact, not inf
    assert reader.scalars("tiny") == [(0, 1e-50), (1, 2e-45), (2, 0.0)]  # exact, not 0
    assert reader.scalars("plain") == [(0, 0.5), (1, 1.5), (2, 2.5)]
    acc = accumulator(logdir)
    assert acc.Tags()["scalars"] == ["plain"]  # the plain tag stays simple_value, readable by any tool
    assert [float(np.asarray(e.tensor_proto.double_val)[0]) for e in acc.Tensors("huge")] == huge


def watched_run(db_path: Path, steps: int = 3) -> tuple[int, torch.nn.Module]:
    torch.manual_seed(0)
    run = torchscope.init("watched", db=db_path)
    model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    run.watch(model, every=1, grads=True)
    for step in range(steps):
        model(torch.randn(9, 6)).pow(2).mean().backward()
        run.log({"loss": float(step)}, step=step)
    run.finish()
    return run.id, model


def test_watched_tensors_export_as_histograms_and_distributions(tmp_path, db_path):
    run_id, model = watched_run(db_path)
    logdir = tmp_path / "tb"
    with Store(db_path) as store:
        stats = store.tensor_stats(run_id)
    (line,) = export_run(db_path, run_id, tensorboard_dir=logdir)
    assert f"and {len(stats)} histograms ({len(stats)} of watched tensors)" in line
    reader = TensorBoardReader(logdir)
    tags = {f"Sequential/{name}" for name in stats["name"]}
    assert reader.histogram_tags() == tags
    assert {"Sequential/0.weight", "Sequential/grad:0.weight", "Sequential/linear_0"} <= tags
    weight = stats[stats["name"] == "2.weight"].sort_values("step")
    read = reader.histograms("Sequential/2.weight")
    assert [step for step, _ in read] == weight["step"].tolist() == [0, 1, 2]
    for (_, buckets), row in zip(read, weight.itertuples()):
        edges = np.linspace(row.hist_lo, row.hist_hi, 33)
        assert [b[2] for b in buckets] == row.hist.tolist()  # the 32 counts
        assert [b[0] for b in buckets] == pytest.approx(edges[:-1].tolist(), rel=1e-6)  # TB reads edges as float32
        assert [b[1] for b in buckets] == pytest.approx(edges[1:].tolist(), rel=1e-6)
        assert sum(b[2] for b in buckets) == row.numel == 4
    final = model[2].weight.detach().numpy().ravel()
    (_, last_buckets) = read[-1]
    assert last_buckets[0][0] == pytest.approx(final.min(), rel=1e-6)
    assert last_buckets[-1][1] == pytest.approx(final.max(), rel=1e-6)
    distributions = reader.distributions("Sequential/grad:0.weight")
    assert [step for step, _ in distributions] == [0, 1, 2]
    for _, compressed in distributions:  # the distribution view's percentile bands, min to max
        values = [v for _, v in compressed]
        assert [bp for bp, _ in compressed] == [0, 668, 1587, 3085, 5000, 6915, 8413, 9332, 10000]
        assert values == sorted(values) and values[0] < values[-1]


def test_exporting_twice_into_one_folder_refuses_then_replaces(tmp_path, db_path, capsys):
    run = torchscope.init("twice", db=db_path)
    for step in range(4):
        run.log({"loss": float(step)}, step=step)
    run.finish()
    logdir = tmp_path / "tb"
    list(export_run(db_path, run.id, tensorboard_dir=logdir))
    (first,) = list(logdir.iterdir())
    with pytest.raises(ExportError, match=r"already holds 1 TensorBoard event file.*every point twice.*--replace"):
        list(export_run(db_path, run.id, tensorboard_dir=logdir))
    assert list(logdir.iterdir()) == [first]
    with pytest.raises(SystemExit) as exited:
        main(["export", str(run.id), "--db", str(db_path), "--tensorboard", str(logdir)])
    assert exited.value.code != 0
    err = capsys.readouterr().err
    assert "already holds 1 TensorBoard event file" in err and "Traceback" not in err
    main(["export", str(run.id), "--db", str(db_path), "--tensorboard", str(logdir), "--replace"])
    assert "(replaced 1 event file(s))" in capsys.readouterr().out
    (second,) = list(logdir.iterdir())
    assert second != first and second.name.endswith(".torchscope")
    assert TensorBoardReader(logdir).scalars("loss") == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)]  # once each


def test_imported_histograms_export_to_tensorboard_histograms(tmp_path, db_path):
    written = write_logs(tmp_path / "written")  # TF2's record formats, written by the tensorboard package
    result = import_path(db_path, tmp_path / "written" / "summary")
    logdir = tmp_path / "tb"
    list(export_run(db_path, result.run_id, tensorboard_dir=logdir))
    acc = accumulator(logdir)
    with Store(db_path) as store:
        stored = store.histograms(result.run_id, tags=["demo/dist"])
    read = acc.Histograms("demo/dist")
    assert [e.step for e in read] == stored["step"].tolist()
    for event, buckets in zip(read, stored["buckets"]):
        assert list(event.histogram_value.bucket) == [b[2] for b in buckets]
        assert list(event.histogram_value.bucket_limit) == pytest.approx([b[1] for b in buckets])
    assert [e.value for e in acc.Scalars("demo/wave")] == pytest.approx(list(written["wave"].values()), rel=1e-6)


def test_hparams_text_and_images_round_trip_through_tensorboard(tmp_path, db_path):
    """A SummaryWriter log imported and exported again: TensorBoard's HParams, text and image readers give the same
    on the export as on the original."""
    original = tmp_path / "original"
    with SummaryWriter(str(original)) as writer:
        for step in range(3):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
            writer.add_text("notes", f"**step** {step} | `code`", step)
            writer.add_image("pic", torch.rand(3, 4, 6), step)
        writer.add_hparams({"lr": 0.01, "optimizer": "adam", "deep": True}, {"hparam/acc": 0.875})
    result = import_path(db_path, original, name="orig")
    exported = tmp_path / "exported"
    for run in result.runs:
        rel = run["name"].removeprefix("orig").lstrip("/")
        (line,) = export_run(db_path, run["id"], tensorboard_dir=exported / rel)
    session = result.runs[1]["id"]
    assert line.endswith(f"(0 of watched tensors), 3 hparams, 1 hparam metrics of run {session} to {exported / rel}")
    before, after = TensorBoardReader(original), TensorBoardReader(exported)
    assert after.sessions() == before.sessions() == [
        ({"deep": 1.0, "lr": 0.01, "optimizer": "adam"}, {"hparam/acc": 0.875}, api_pb2.STATUS_SUCCESS)
    ]  # add_hparams writes True as 1.0
    assert after.texts(".", "notes/text_summary") == before.texts(".", "notes/text_summary")
    assert "<td><p><strong>step</strong> 0 | <code>code</code></p></td>" in after.texts(".", "notes/text_summary")[0][1]
    assert after.images(".", "pic") == before.images(".", "pic")
    assert [(step, len(blobs)) for step, blobs in after.images(".", "pic")] == [(0, 1), (1, 1), (2, 1)]
    assert after.scalars("loss") == before.scalars("loss")


def test_a_run_config_is_a_tensorboard_hparams_session(tmp_path, db_path):
    config = {"lr": 3e-4, "model": {"width": 64, "act": "gelu"}, "amp": False}
    with torchscope.init("cfg", db=db_path, config=config, system_metrics=False) as run:
        run.log({"loss": 2.0, "acc": 0.5}, step=0)
        run.log({"loss": 1.5, "acc": 0.75}, step=1)
    (line,) = export_run(db_path, run.id, tensorboard_dir=tmp_path / "tb")
    assert ", 4 hparams of run" in line
    assert TensorBoardReader(tmp_path / "tb").sessions() == [
        ({"amp": False, "lr": 3e-4, "model.act": "gelu", "model.width": 64.0}, {"acc": 0.75, "loss": 1.5},
         api_pb2.STATUS_SUCCESS),
    ]  # fmt: skip
