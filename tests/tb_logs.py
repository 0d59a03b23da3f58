"""TensorBoard logs for tests, written here with the tensorboard package in the record formats TF2/Keras and
``torch.utils.tensorboard`` use (no reference data, no TensorFlow needed).

``write_logs(root)`` lays out what a Keras ``TensorBoard`` callback and ``tf.summary`` produce::

    root/summary/      tf.summary style: tensor scalars ``demo/wave`` (steps 0-49), tensor histograms ``demo/dist``
                       (steps 0, 10, ..., 40; 30 buckets)
    root/fit/train/    Keras fit style: ``epoch_loss``/``epoch_accuracy`` per epoch, weight histograms, the model
                       config (plugin ``graph_keras_model``)
    root/fit/validation/  ``epoch_loss`` per epoch
    root/opgraph/      ``tf.summary.trace_export`` style: a RunMetadata op graph with name scopes ``block1``/``block2``

and returns what was written, for exact expectations.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from tensorboard.compat.proto import config_pb2, graph_pb2, node_def_pb2
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

START = 1_790_000_000.0  # wall time of the first event, s
LAYERS = [("InputLayer", "input_layer", {"batch_shape": [None, 20]}), ("Dense", "encoder", {"units": 16}),
          ("Dropout", "drop", {"rate": 0.1}), ("Dense", "logits", {"units": 3})]  # fmt: skip


def _tensor_value(tag: str, plugin: str, array: object) -> Summary.Value:
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=plugin))
    return Summary.Value(tag=tag, metadata=meta, tensor=tensor_util.make_tensor_proto(array))


def _write(folder: Path, values: list[tuple[int, float, Summary.Value]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(folder))
    for step, wall, value in values:
        writer.add_event(Event(step=step, wall_time=wall, summary=Summary(value=[value])))
    writer.close()


def _buckets(samples: np.ndarray, count: int = 30) -> np.ndarray:
    """``[left, right, count]`` rows, as ``tf.summary.histogram`` writes them."""
    counts, edges = np.histogram(samples, bins=count)
    return np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)


def _op_graph() -> bytes:
    graph = graph_pb2.GraphDef()
    for name, op, inputs in [
        ("x", "Placeholder", []), ("block1/MatMul/ReadVariableOp", "ReadVariableOp", []),
        ("block1/MatMul", "MatMul", ["x", "block1/MatMul/ReadVariableOp"]), ("block1/Relu", "Relu", ["block1/MatMul"]),
        ("block2/MatMul/ReadVariableOp", "ReadVariableOp", []),
        ("block2/MatMul", "MatMul", ["block1/Relu", "block2/MatMul/ReadVariableOp:0"]),
        ("Identity", "Identity", ["block2/MatMul", "^block1/Relu"]),
    ]:  # fmt: skip
        graph.node.append(node_def_pb2.NodeDef(name=name, op=op, input=inputs))
    meta = config_pb2.RunMetadata()
    meta.function_graphs.add().pre_optimization_graph.CopyFrom(graph)
    return meta.SerializeToString()


def write_logs(root: Path, epochs: int = 3) -> dict:
    """Write the logs described in the module docstring under ``root``; returns what they hold."""
    rng = np.random.default_rng(0)
    wave = {step: 2.0 * math.cos(step * 0.15) for step in range(50)}
    dist = {step: _buckets(rng.normal(step / 10, 1.0, 500)) for step in range(0, 50, 10)}
    _write(root / "summary", [(s, START + s, _tensor_value("demo/wave", "scalars", np.float32(v)))
                              for s, v in wave.items()]
           + [(s, START + s + 0.5, _tensor_value("demo/dist", "histograms", b)) for s, b in dist.items()])  # fmt: skip
    history = {"loss": [1.0 / (e + 1) for e in range(epochs)], "accuracy": [0.5 + 0.1 * e for e in range(epochs)],
               "val_loss": [1.2 / (e + 1) for e in range(epochs)]}  # fmt: skip
    config = {"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"module": "keras.layers", "class_name": cls, "config": {"name": name, **extra}} for cls, name, extra in LAYERS
    ]}}  # fmt: skip
    weights = [f"sequential/{layer}/{w}/histogram" for layer in ("encoder", "logits") for w in ("kernel", "bias")]
    train = [(0, START, _tensor_value("keras", "graph_keras_model", np.array(json.dumps(config).encode(), object)))]
    for e in range(epochs):
        train += [(e, START + 60 + e, _tensor_value("epoch_loss", "scalars", np.float32(history["loss"][e]))),
                  (e, START + 60 + e, _tensor_value("epoch_accuracy", "scalars", np.float32(history["accuracy"][e])))]
        train += [(e, START + 60 + e, _tensor_value(t, "histograms", _buckets(rng.normal(0, 1, 64)))) for t in weights]
    _write(root / "fit" / "train", train)
    _write(root / "fit" / "validation", [(e, START + 60.5 + e, _tensor_value("epoch_loss", "scalars",
                                          np.float32(history["val_loss"][e]))) for e in range(epochs)])  # fmt: skip
    _write(root / "opgraph", [(0, START + 120, _tensor_value(
        "op_graph", "graph_run_metadata_graph", np.array(_op_graph(), object)))])  # fmt: skip
    return {"wave": wave, "dist": dist, "history": history, "weights": weights, "layers": [n for _, n, _ in LAYERS],
            "layer_classes": [c for c, _, _ in LAYERS], "epochs": epochs}  # fmt: skip
