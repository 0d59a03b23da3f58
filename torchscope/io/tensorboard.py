"""Reading TensorBoard event files for ``torchscope import``: scalars, histograms, graphs, hparams, text and images,
with TensorBoard's own protos. One torchscope run per log directory (what TensorBoard shows as a run).

What is not imported (run metadata, audio, other plugins' data) is counted by kind in the import's result, which
prints it. The hparams plugin's ``session_start_info`` becomes the run's config; a metric its ``experiment`` names
becomes the run's hparam metric (``Store.hparam_metrics``), and is only also a scalar series when it was logged at more
than one step (``add_hparams`` logs each metric once: that is a value, not a curve).
"""

from __future__ import annotations

import json
import struct
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError
from tensorboard.compat.proto import config_pb2, event_pb2, graph_pb2, types_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.hparams.error import HParamsError
from tensorboard.util import tensor_util
from tqdm import tqdm

from torchscope.errors import TraceImportError
from torchscope.io.tensorboard_values import image_values, skipped_kind, text_value
from torchscope.storage.bulk import Interner
from torchscope.storage.runs.records import ScalarLog
from torchscope.storage.runs.scalar_writes import write_scalars
from torchscope.storage.runs.span import set_run_span
from torchscope.storage.runs.writes import create_run
from torchscope.storage.tensorboard.writes import (
    insert_graph, insert_histograms, insert_images, insert_metrics, insert_texts,
)  # fmt: skip

GRAPH_PLUGINS = ("graph_run_metadata_graph", "graph_run_metadata")
_MAX_WALL_S = 2.0**62 / 1e9  # wall times in int64 nanoseconds
_RESERVED_STEP = -(2**63)  # the scalar pyramid's "absent" mark (storage/runs/buckets.py ABSENT)
_ADVICE = "re-write the log, or import the directory without this file"
Node = tuple[str, str, list[str], str, dict[str, Any]]  # name, op, inputs, device, attrs


def read_records(path: Path) -> Iterator[bytes]:
    """The records of a TFRecord file, checking both CRCs: TraceImportError for a truncated or corrupt file."""
    raw = path.read_bytes()
    pos, size = 0, len(raw)
    while pos < size:
        if pos + 12 > size:
            raise TraceImportError(f"{path}: truncated TensorBoard event file (record header at byte {pos})")
        (length,) = struct.unpack_from("<Q", raw, pos)
        (length_crc,) = struct.unpack_from("<I", raw, pos + 8)
        if masked_crc32c(raw[pos : pos + 8]) != length_crc:
            raise TraceImportError(f"{path}: corrupt TensorBoard event file (bad record header at byte {pos})")
        data_end = pos + 12 + length
        if data_end + 4 > size:
            raise TraceImportError(f"{path}: truncated TensorBoard event file (record at byte {pos} is cut)")
        data = raw[pos + 12 : data_end]
        if masked_crc32c(data) != struct.unpack_from("<I", raw, data_end)[0]:
            raise TraceImportError(f"{path}: corrupt TensorBoard event file (bad checksum at byte {pos})")
        yield data
        pos = data_end + 4


def read_events(path: Path) -> Iterator[event_pb2.Event]:
    """Decoded ``Event`` protos of one event file."""
    for data in read_records(path):
        try:
            yield event_pb2.Event.FromString(data)
        except DecodeError as exc:
            raise TraceImportError(f"{path}: a record is not a TensorBoard event ({exc})") from exc


def graph_nodes(graph: graph_pb2.GraphDef) -> list[Node]:
    """Nodes of a GraphDef with inputs cleaned of control (``^``) and output-index (``:1``) marks, and their
    attributes as readable text (:func:`attr_text`: ``float32``, ``(?, 10)``), not protobuf's text format."""
    nodes: list[Node] = []
    for node in graph.node:
        inputs = [i.lstrip("^").split(":")[0] for i in node.input]
        attrs: dict[str, Any] = {}
        for key in sorted(node.attr):
            if key.startswith("_") and key != "_output_shapes":
                continue  # TF's own bookkeeping (_class, _has_manual_control_dependencies, ...)
            text = attr_text(node.attr[key])
            if text:
                attrs[key] = text[:200]
        nodes.append((node.name, node.op, inputs, node.device or "", attrs))
    return nodes


_DTYPES = {"float": "float32", "double": "float64", "half": "float16", "complex64": "complex64"}


def _dtype_text(dtype: int) -> str:
    """``DT_FLOAT`` -> ``float32``, ``DT_INT64`` -> ``int64``, ``DT_RESOURCE`` -> ``resource``."""
    try:
        name = types_pb2.DataType.Name(dtype)
    except ValueError:
        return f"dtype {dtype}"
    name = name.removeprefix("DT_").lower()
    return _DTYPES.get(name, name)


def _shape_text(shape: Any) -> str:
    """A TensorShapeProto as ``(?, 10)`` (``?``: unknown size), ``()`` for a scalar, ``<unknown>`` without a rank."""
    if shape.unknown_rank:
        return "<unknown>"
    dims = ["?" if d.size < 0 else str(d.size) for d in shape.dim]
    return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"


def attr_text(attr: Any) -> str:
    """One ``AttrValue`` of a GraphDef node as a short readable text: a dtype as ``float32``, a shape as
    ``(?, 10)``, a list as its items joined by ``, ``, a tensor as its dtype and shape, a function as its name."""
    which = attr.WhichOneof("value")
    if which == "type":
        return _dtype_text(attr.type)
    if which == "shape":
        return _shape_text(attr.shape)
    if which == "s":
        return attr.s.decode("utf-8", "replace")
    if which in ("i", "f", "b"):
        return str(getattr(attr, which))
    if which == "tensor":
        return f"{_dtype_text(attr.tensor.dtype)} {_shape_text(attr.tensor.tensor_shape)}"
    if which == "func":
        return attr.func.name
    if which == "list":
        items = list(attr.list.s) or list(attr.list.i) or list(attr.list.f) or list(attr.list.b)
        if attr.list.type:
            items = [_dtype_text(t) for t in attr.list.type]
        elif attr.list.shape:
            items = [_shape_text(s) for s in attr.list.shape]
        elif attr.list.func:
            items = [f.name for f in attr.list.func]
        return ", ".join(i.decode("utf-8", "replace") if isinstance(i, bytes) else str(i) for i in items)
    return ""


def keras_nodes(config: dict[str, Any]) -> list[Node]:
    """Layers of a Keras model config as nodes ``model/layer``; inputs from Sequential order or inbound nodes."""
    model = config.get("config", {})
    scope = model.get("name", "model")
    nodes: list[Node] = []
    previous: str | None = None
    for layer in model.get("layers", []):
        name = layer.get("config", {}).get("name") or layer.get("name")
        inbound = sorted(set(_histories(layer.get("inbound_nodes", []))))
        if config.get("class_name") == "Sequential":
            inputs = [f"{scope}/{previous}"] if previous else []
        else:
            inputs = [f"{scope}/{i}" for i in inbound]
        attrs = {k: layer.get("config", {}).get(k) for k in ("units", "activation", "rate", "batch_shape") if
                 k in layer.get("config", {})}  # fmt: skip
        nodes.append((f"{scope}/{name}", layer.get("class_name", ""), inputs, "", attrs))
        previous = name
    return nodes


def _histories(value: Any) -> Iterator[str]:
    """Layer names a Keras 2 (``[["dense", 0, 0, {}]]``) or Keras 3 (``keras_history``) inbound spec points at."""
    if isinstance(value, dict):
        if "keras_history" in value:
            yield value["keras_history"][0]
        for item in value.values():
            yield from _histories(item)
    elif isinstance(value, list):
        if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):
            yield value[0]
        else:
            for item in value:
                yield from _histories(item)


class _RunCollector:
    """Everything read from one log directory, written once all its files were read."""

    def __init__(self, metric_tags: set[str]) -> None:
        self.scalars: dict[tuple[int, int], dict[str, float]] = defaultdict(dict)
        self.histograms: list[tuple[str, int, int, Any]] = []
        self.graphs: list[tuple[str, str, int, int, list[Node]]] = []
        self.texts: list[tuple[str, int, int, str]] = []
        self.images: list[tuple[str, int, int, int, int, int, str, bytes]] = []
        self.hparams: dict[str, Any] = {}
        self.metric_tags = metric_tags  # shared by the directories of one import: an experiment names them once
        self.skipped: Counter[str] = Counter()

    def add(self, event: event_pb2.Event, where: Path) -> None:
        step = int(event.step)
        if step == _RESERVED_STEP:
            raise TraceImportError(f"{where}: an event has step {step}, the one step the store reserves; {_ADVICE}")
        if not abs(event.wall_time) < _MAX_WALL_S:  # NaN fails the comparison too
            raise TraceImportError(
                f"{where}: the event of step {step} has wall_time {event.wall_time!r}, not a time in seconds since the "
                f"epoch: the file is corrupt; {_ADVICE}"
            )
        wall = int(event.wall_time * 1e9)
        what = event.WhichOneof("what")
        if what == "graph_def":
            graph = graph_pb2.GraphDef.FromString(event.graph_def)
            self.graphs.append(("", "graph_def", step, wall, graph_nodes(graph)))
        if what != "summary":
            if what not in (None, "file_version", "graph_def"):
                self.skipped["run_metadata" if what == "tagged_run_metadata" else what] += 1
            return
        for value in event.summary.value:
            try:
                self._value(value, step, wall)
            except (DecodeError, ValueError, TypeError, KeyError, IndexError, AttributeError, HParamsError) as exc:
                plugin = value.metadata.plugin_data.plugin_name or value.WhichOneof("value")
                raise TraceImportError(
                    f"{where}: the value of tag {value.tag!r} at step {step} ({plugin}) cannot be read: "
                    f"{type(exc).__name__}: {exc}; {_ADVICE}"
                ) from exc

    def _value(self, value: Any, step: int, wall: int) -> None:
        plugin = value.metadata.plugin_data.plugin_name
        which = value.WhichOneof("value")
        if which == "simple_value":
            self.scalars[(step, wall)][value.tag] = float(value.simple_value)
        elif which == "histo":
            h = value.histo
            limits = list(h.bucket_limit)
            lefts = [h.min, *limits[:-1]]
            buckets = [[l, r, c] for l, r, c in zip(lefts, limits, h.bucket)]
            self.histograms.append((value.tag, step, wall, (h.min, h.max, h.num, h.sum, h.sum_squares, buckets)))
        elif which == "tensor" and plugin == "scalars":
            array = tensor_util.make_ndarray(value.tensor)
            if array.size != 1 or array.dtype.kind not in "biuf":
                shape = list(array.shape)
                raise ValueError(f"a scalar must be one number, found a {array.dtype} tensor of shape {shape}")
            self.scalars[(step, wall)][value.tag] = float(array.reshape(()))
        elif which == "tensor" and plugin == "histograms":
            array = np.asarray(tensor_util.make_ndarray(value.tensor), dtype=np.float64).reshape(-1, 3)
            buckets = array.tolist()
            lo = float(array[0, 0]) if len(array) else None
            hi = float(array[-1, 1]) if len(array) else None
            self.histograms.append((value.tag, step, wall, (lo, hi, float(array[:, 2].sum()), None, None, buckets)))
        elif which == "tensor" and plugin in GRAPH_PLUGINS:
            meta = config_pb2.RunMetadata.FromString(value.tensor.string_val[0])
            for i, function in enumerate(meta.function_graphs):
                tag = value.tag if len(meta.function_graphs) == 1 else f"{value.tag}/{i}"
                self.graphs.append((tag, "op_graph", step, wall, graph_nodes(function.pre_optimization_graph)))
        elif which == "tensor" and plugin == "graph_keras_model":
            config = json.loads(value.tensor.string_val[0])
            if not isinstance(config, dict):
                raise ValueError(f"a Keras model config is a JSON object, found a {type(config).__name__}")
            self.graphs.append((value.tag, "keras", step, wall, keras_nodes(config)))
        elif plugin == hparams_metadata.PLUGIN_NAME:
            self._hparams(value.tag, value.metadata.plugin_data.content)
        elif which == "tensor" and plugin == "text":
            self.texts.append((value.tag, step, wall, text_value(tensor_util.make_ndarray(value.tensor))))
        elif which == "image" or (which == "tensor" and plugin == "images"):
            for index, (width, height, mime, data) in enumerate(image_values(value)):
                self.images.append((value.tag, step, wall, index, width, height, mime, data))
        else:
            self.skipped[skipped_kind(which, plugin)] += 1

    def _hparams(self, tag: str, content: bytes) -> None:
        """The hparams plugin's summaries: the experiment names the metrics, a session's start holds its hparams."""
        if tag == hparams_metadata.EXPERIMENT_TAG:
            experiment = hparams_metadata.parse_experiment_plugin_data(content)
            self.metric_tags.update(m.name.tag for m in experiment.metric_infos)
        elif tag == hparams_metadata.SESSION_START_INFO_TAG:
            start = hparams_metadata.parse_session_start_info_plugin_data(content)
            for name, item in start.hparams.items():
                kind = item.WhichOneof("kind")
                self.hparams[name] = None if kind in (None, "null_value") else getattr(item, kind)
        # session_end_info: a status only, which an imported run's own status stands for

    def metrics(self) -> tuple[list[tuple[str, int, int, float]], set[str]]:
        """The hparam metrics of a run with hparams: ``(tag, step, wall, value)`` of each metric tag's last point,
        and the tags logged at one step only (kept as a value, not as a one-point chart)."""
        if not self.hparams:
            return [], set()
        points: dict[str, list[tuple[int, int, float]]] = defaultdict(list)
        for (step, wall), values in self.scalars.items():
            for tag, number in values.items():
                if tag in self.metric_tags:
                    points[tag].append((step, wall, number))
        last = [(tag, *max(found)) for tag, found in sorted(points.items())]
        return last, {tag for tag, found in points.items() if len({step for step, _, _ in found}) == 1}


def import_event_files(
    conn: Any, interner: Interner, root: Path, files: list[Path], base_name: str, result: Any, progress: bool
) -> None:
    """Import TensorBoard event files as one run per directory; adds to ``result`` (an ``ImportResult``).

    Directories are read parents first, so an hparams experiment written at the top of a log directory (TF's
    ``hparams_config``) names the metrics of the session runs below it."""
    by_dir: dict[Path, list[Path]] = defaultdict(list)
    for file in files:
        by_dir[file.parent].append(file)
    metric_tags: set[str] = set()
    for directory in sorted(by_dir):
        rel = "" if directory == root or root.is_file() else str(directory.relative_to(root))
        name = f"{base_name}/{rel}" if rel else base_name
        collected = _RunCollector(metric_tags)
        for file in tqdm(sorted(by_dir[directory]), desc=f"import {name}", disable=not progress, leave=False):
            try:
                for event in read_events(file):
                    collected.add(event, file)
            except (DecodeError, ValueError, UnicodeDecodeError, KeyError, IndexError) as exc:
                raise TraceImportError(f"{file}: cannot read a TensorBoard event ({exc})") from exc
        _write_run(conn, interner, directory, name, collected, result)


def _write_run(conn: Any, interner: Interner, directory: Path, name: str, collected: _RunCollector,
               result: Any) -> None:  # fmt: skip
    """Store what was read from one log directory as one run."""
    config = {"imported_from": str(directory), **collected.hparams}
    run_id = create_run(conn, name=name, config=config, started_at=time.time_ns(), source="import", status="finished")
    result.runs.append({"id": run_id, "name": name, "hparams": len(collected.hparams)})
    metrics, one_point = collected.metrics()
    walls = [w for _, w in collected.scalars] + [h[2] for h in collected.histograms] + [g[3] for g in collected.graphs]
    walls += [t[2] for t in collected.texts] + [i[2] for i in collected.images]
    if walls:
        set_run_span(conn, interner, run_id, min(walls), max(walls))
    payloads = []
    for (step, wall), values in sorted(collected.scalars.items()):
        kept = {tag: v for tag, v in values.items() if tag not in one_point}
        if kept:
            payloads.append(ScalarLog(run_id, step, wall, kept))
    if payloads:
        write_scalars(conn, interner, payloads)
    result.scalars += sum(len(p.values) for p in payloads)
    insert_metrics(conn, interner, run_id, metrics)
    result.metrics += len(metrics)
    insert_histograms(conn, interner, run_id, collected.histograms)
    result.histograms += len(collected.histograms)
    insert_texts(conn, interner, run_id, collected.texts)
    result.texts += len(collected.texts)
    insert_images(conn, interner, run_id, collected.images)
    result.images += len(collected.images)
    result.skipped.update(collected.skipped)
    for tag, kind, step, wall, nodes in collected.graphs:
        insert_graph(conn, run_id, tag, kind, step, wall, nodes)
        result.graphs.append({"run_id": run_id, "tag": tag, "kind": kind, "nodes": len(nodes)})
