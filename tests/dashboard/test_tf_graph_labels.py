"""Imported TF op graphs read as TensorBoard shows them: attributes as text (``float32``, ``(?, 8)``), not protobuf's
text format, and node labels of the op name's last scope part with the op type and output shape."""

from __future__ import annotations

from pathlib import Path

from tensorboard.compat.proto import attr_value_pb2, event_pb2, graph_pb2, tensor_shape_pb2, types_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

import torchscope
from torchscope.dashboard.views.graph import colors as graph_colors
from torchscope.dashboard.views.graph.elements import node_label
from torchscope.dashboard.views.graph.model import imported_model
from torchscope.dashboard.views.graph.state import visible_view
from torchscope.dashboard.views.graph.tables import node_facts
from torchscope.io.importing import import_path
from torchscope.io.tensorboard import graph_nodes


def _shape(*dims: int) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])


def tf_function_graph() -> graph_pb2.GraphDef:
    """A Keras-like function graph as ``tf.function`` traces it: ``_Arg`` inputs, scoped ops, a ``_Retval``."""
    attr = attr_value_pb2.AttrValue
    f32 = attr(type=types_pb2.DT_FLOAT)
    graph = graph_pb2.GraphDef()
    graph.node.add(name="x", op="_Arg", attr={
        "T": f32, "index": attr(i=0),
        "_output_shapes": attr(list=attr_value_pb2.AttrValue.ListValue(shape=[_shape(-1, 8)])),
    })  # fmt: skip
    graph.node.add(name="kernel", op="_Arg", attr={"T": attr(type=types_pb2.DT_RESOURCE), "index": attr(i=1)})
    graph.node.add(name="model/dense/MatMul/ReadVariableOp", op="ReadVariableOp", input=["kernel"],
                   attr={"dtype": f32})  # fmt: skip
    graph.node.add(name="model/dense/MatMul", op="MatMul", input=["x", "model/dense/MatMul/ReadVariableOp"], attr={
        "T": f32, "transpose_a": attr(b=False),
        "_output_shapes": attr(list=attr_value_pb2.AttrValue.ListValue(shape=[_shape(-1, 4)])),
        "_class": attr(list=attr_value_pb2.AttrValue.ListValue(s=[b"loc:@kernel"])),
    })  # fmt: skip
    graph.node.add(name="model/dense/Relu", op="Relu", input=["model/dense/MatMul"], attr={"T": f32})
    graph.node.add(name="Const", op="Const", attr={"dtype": attr(type=types_pb2.DT_INT32), "value": attr(
        tensor={"dtype": types_pb2.DT_INT32, "tensor_shape": _shape(2), "int_val": [0, 1]})})  # fmt: skip
    graph.node.add(name="identity_RetVal", op="_Retval", input=["model/dense/Relu:0", "^Const"],
                   attr={"T": f32, "index": attr(i=0)})  # fmt: skip
    return graph


def test_graph_def_attributes_read_as_text_not_protobuf() -> None:
    nodes = {name: (op, inputs, attrs) for name, op, inputs, _device, attrs in graph_nodes(tf_function_graph())}
    assert nodes["x"] == ("_Arg", [], {"T": "float32", "_output_shapes": "(?, 8)", "index": "0"})
    assert nodes["kernel"][2] == {"T": "resource", "index": "1"}
    assert nodes["model/dense/MatMul"] == (
        "MatMul", ["x", "model/dense/MatMul/ReadVariableOp"],
        {"T": "float32", "_output_shapes": "(?, 4)", "transpose_a": "False"},  # TF's own _class is left out
    )  # fmt: skip
    assert nodes["Const"][2] == {"dtype": "int32", "value": "int32 (2,)"}
    assert nodes["identity_RetVal"] == ("_Retval", ["model/dense/Relu", "Const"], {"T": "float32", "index": "0"})


def test_imported_tf_nodes_are_labelled_by_last_scope_part_op_type_and_shape(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    writer = EventFileWriter(str(logs))
    writer.add_event(event_pb2.Event(wall_time=1.0, step=0, graph_def=tf_function_graph().SerializeToString()))
    writer.close()
    result = import_path(tmp_path / "tf.db", logs)
    with torchscope.open(tmp_path / "tf.db") as store:
        model = imported_model(*store.imported_graph(result.runs[0]["id"]))
    labels = {model.nodes[i].name: node_label(model, i) for i in model.nodes}
    assert labels["x"] == "x\ninput (?, 8)"
    assert labels["kernel"] == "kernel\ninput"
    assert labels["identity_RetVal"] == "identity_RetVal\noutput"
    assert labels["model/dense/MatMul"] == "MatMul\nMatMul (?, 4)"
    assert labels["model/dense/Relu"] == "Relu\nRelu"
    assert labels["model/dense"] == "dense\nscope"
    facts = dict(node_facts(model, model.by_name["model/dense/MatMul"]))
    assert facts["T"] == "float32" and facts["_output_shapes"] == "(?, 4)" and facts["name scope"] == "model/dense"
    assert not any("{" in text or "DT_" in text for text in labels.values())
    view = visible_view(model, set(model.nodes), False)  # every scope open
    items = [text for _colour, text in graph_colors.legend(model, view, {}, "op")["items"]]
    assert "input (2)" in items and "output (1)" in items and not any(t.startswith("_") for t in items)


def test_the_keras_reference_op_graph_has_no_protobuf_text(shared_data: Path, tmp_path: Path) -> None:
    import_path(tmp_path / "k.db", shared_data / "tensorboard_keras" / "opgraph")
    with torchscope.open(tmp_path / "k.db") as store:
        nodes, edges = store.imported_graph(1)
    attrs = dict(zip(nodes["name"], nodes["attrs"]))
    assert attrs["x"] == {"T": "float32", "_output_shapes": "(2, 8)", "index": "0"}
    assert attrs["block1/MatMul/ReadVariableOp"] == {"dtype": "float32"}
    model = imported_model(nodes[nodes["graph_id"] == nodes["graph_id"].min()], edges)
    assert node_label(model, model.by_name["x"]) == "x\ninput (2, 8)"
    assert node_label(model, model.by_name["identity_RetVal"]) == "identity_RetVal\noutput"
