"""The Keras callback, tested by fitting a small functional Keras 3 model on the PyTorch backend (CPU): no
TensorFlow needed."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported; the callback itself works on every backend
import keras

import torchscope
from torchscope.errors import TorchscopeWarning
from torchscope.integrations import keras as integration

EPOCHS = 3
BATCHES = 4  # 32 samples in batches of 8


class Spy(keras.callbacks.Callback):
    """Records what Keras handed to callbacks, and the weights and gradients at each epoch's end."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_logs: list[dict[str, float]] = []
        self.epoch_logs: list[dict[str, float]] = []
        self.weights: list[dict[str, np.ndarray]] = []
        self.grads: list[dict[str, np.ndarray]] = []

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.batch_logs.append({k: float(v) for k, v in logs.items()})

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.epoch_logs.append({k: float(v) for k, v in logs.items()})
        self.weights.append({v.path: v.value.detach().numpy().copy() for v in self.model.weights})
        self.grads.append({v.path: v.value.grad.detach().numpy().copy() for v in self.model.trainable_weights})


def _model() -> Any:
    keras.utils.set_random_seed(0)
    x = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    a = keras.layers.Dense(1, name="a")(hidden)
    b = keras.layers.Dense(1, name="b")(x)
    model = keras.Model(x, keras.layers.Add(name="sum")([a, b]), name="branches")
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01), loss="mse")
    return model


def _data() -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).standard_normal((32, 4)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def test_keras_backend_is_torch() -> None:
    assert keras.backend.backend() == "torch"


def test_fit_stores_logs_histograms_and_layer_graph(db_path: Path) -> None:
    model, spy = _model(), Spy()
    callback = integration.TorchscopeCallback(
        db=db_path, config={"data": "sum"}, update_freq=2, histogram_freq=2, system_metrics=False
    )
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=EPOCHS, validation_data=(x[:8], y[:8]), verbose=0, callbacks=[callback, spy])

    store = torchscope.open(db_path)
    runs = store.runs()
    assert list(runs["name"]) == ["branches"] and list(runs["status"]) == ["finished"]
    run_id = int(runs["id"].iloc[0])
    config = store.run(run_id)["config"]
    config = json.loads(config) if isinstance(config, str) else config
    assert (config["data"], config["epochs"], config["steps"]) == ("sum", EPOCHS, BATCHES)
    assert config["optimizer"]["name"] == "sgd" and config["optimizer"]["learning_rate"] == pytest.approx(0.01)

    # epoch logs at the epoch; batch logs of every 2nd batch at the batches done so far (1-based, across epochs)
    expected = {(f"epoch/{k}", e): v for e, logs in enumerate(spy.epoch_logs) for k, v in logs.items()}
    expected.update({(f"batch/{k}", i + 1): v for i, logs in enumerate(spy.batch_logs) if (i + 1) % 2 == 0
                     for k, v in logs.items()})  # fmt: skip
    assert {t for t, _ in expected} == {"epoch/loss", "epoch/val_loss", "batch/loss"}
    assert sorted(s for t, s in expected if t == "batch/loss") == [2, 4, 6, 8, 10, 12]
    scalars = store.scalars(run_id)
    stored = {(tag, step): value for tag, step, value in zip(scalars["tag"], scalars["step"], scalars["value"])}
    assert stored.keys() == expected.keys()
    for key, value in expected.items():
        assert stored[key] == pytest.approx(value, rel=1e-6)

    # a histogram of every weight and every gradient at epochs 0 and 2, matching the arrays at that epoch's end
    hist = store.histograms(run_id)
    paths = [v.path for v in model.weights]
    assert set(hist["tag"]) == {f"weights/{p}" for p in paths} | {f"grads/{p}" for p in paths}
    assert sorted(set(hist["step"])) == [0, 2]
    for row in hist.itertuples():
        kind, path = row.tag.split("/", 1)
        array = (spy.weights if kind == "weights" else spy.grads)[row.step][path].astype(np.float64)
        assert row.num == array.size and sum(c for _, _, c in row.buckets) == array.size
        assert (row.min, row.max) == (pytest.approx(array.min()), pytest.approx(array.max()))
        assert row.sum == pytest.approx(array.sum(), rel=1e-5, abs=1e-6)
        assert row.sum_squares == pytest.approx(np.square(array).sum(), rel=1e-5)

    # the layer graph, as the graph page shows an imported Keras graph
    nodes, edges = store.imported_graph(run_id)
    assert set(nodes["kind"]) == {"keras"} and set(nodes["tag"]) == {"branches"}
    assert dict(zip(nodes["name"], nodes["op"])) == {
        "branches/x": "InputLayer", "branches/hidden": "Dense", "branches/a": "Dense", "branches/b": "Dense",
        "branches/sum": "Add",
    }  # fmt: skip
    pairs = {(s.split("/")[1], t.split("/")[1]) for s, t in zip(edges["source"], edges["target"])}
    assert pairs == {("x", "hidden"), ("hidden", "a"), ("x", "b"), ("a", "sum"), ("b", "sum")}

    # and the graph page draws it (the page's own layout, without a browser): the model's box, opened on a layer
    from torchscope.dashboard.views.graph.page import layout

    page = repr(layout(store, refresh_ms=1000, query={"node": "branches/hidden"}, run_id=str(run_id)))
    assert "'source': 'imported'" in page and "5 nodes (5 ops) · 1 open boxes · 5 edges shown" in page
    layers = {"x": "InputLayer", "hidden": "Dense", "a": "Dense", "b": "Dense", "sum": "Add"}
    assert all(f"'label': '{layer}\\n{cls}'" in page for layer, cls in layers.items())  # name, then layer class


def test_sequential_graph_follows_layer_order() -> None:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d1"), keras.layers.Dense(1, name="d2")],
                             name="seq")  # fmt: skip
    nodes = integration.graph_nodes(model)
    assert [(name, op, inputs) for name, op, inputs, *_ in nodes] == [
        ("seq/input_layer", "InputLayer", []), ("seq/d1", "Dense", ["seq/input_layer"]), ("seq/d2", "Dense", ["seq/d1"]),
    ]  # fmt: skip


def test_a_subclassed_model_gives_its_layers_without_connections() -> None:
    class Subclassed(keras.Model):
        def __init__(self) -> None:
            super().__init__(name="sub")
            self.first = keras.layers.Dense(3, name="first")
            self.second = keras.layers.Dense(1, name="second")

        def call(self, x: Any) -> Any:
            return self.second(self.first(x))

    model = Subclassed()
    model(np.ones((2, 4), dtype="float32"))
    nodes = integration.graph_nodes(model)
    assert [(name, op, inputs) for name, op, inputs, *_ in nodes] == [
        ("sub/first", "Dense", []),
        ("sub/second", "Dense", []),
    ]


def test_a_store_that_cannot_be_opened_warns_once_and_fit_goes_on(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    model, spy = _model(), Spy()
    callback = integration.TorchscopeCallback(db=tmp_path / "file" / "x.db", update_freq=1, system_metrics=False)
    x, y = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[callback, spy])
    assert len(history.history["loss"]) == 2 and len(spy.batch_logs) == 2 * BATCHES
    ours = [w for w in caught if issubclass(w.category, TorchscopeWarning)]
    assert len(ours) == 1 and "records nothing in this process" in str(ours[0].message)
    assert callback.run is None


def test_a_failing_histogram_warns_once_and_the_rest_is_stored(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("histogram broke")

    monkeypatch.setattr(integration, "histogram", broken)
    model = _model()
    callback = integration.TorchscopeCallback(db=db_path, system_metrics=False)
    x, y = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, batch_size=8, epochs=EPOCHS, verbose=0, callbacks=[callback])
    assert len(history.history["loss"]) == EPOCHS
    ours = [str(w.message) for w in caught if issubclass(w.category, TorchscopeWarning)]
    assert ours == [
        "torchscope: the Keras integration skipped histograms and carries on: RuntimeError: histogram broke"
    ]
    store = torchscope.open(db_path)
    run_id = int(store.runs()["id"].iloc[0])
    assert store.histograms(run_id).empty
    assert sorted(store.scalars(run_id, tags=["epoch/loss"])["step"]) == list(range(EPOCHS))
    assert store.run(run_id)["status"] == "finished"
