"""The read facade and the writer seam: Store delegates to per-subject reads, records are typed."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pandas as pd

import torchscope
from torchscope.storage.handlers import HANDLERS
from torchscope.storage.store import Store


def test_every_public_store_method_is_typed_and_documented() -> None:
    for name, method in inspect.getmembers(Store, inspect.isfunction):
        if name.startswith("_"):
            continue
        assert inspect.signature(method).return_annotation is not inspect.Signature.empty, name
        assert (method.__doc__ or "").strip(), name


def test_reads_keep_their_caches_on_their_own_objects_not_on_the_store(db_path: Path) -> None:
    with torchscope.init("cached", db=db_path) as run:
        for step in range(20):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
    with torchscope.open(db_path) as store:
        before = set(vars(store))
        first = store.scalars_downsampled(run.id, 100)
        store.scalars_downsampled(run.id, 100)
        assert set(vars(store)) == before
        pd.testing.assert_frame_equal(first, store.scalars(run.id))


def test_compare_is_a_store_method_and_the_public_function(db_path: Path) -> None:
    for name, lr in (("a", 0.1), ("b", 0.2)):
        with torchscope.init(name, db=db_path, config={"lr": lr}) as run:
            run.log({"loss": lr}, step=0)
    with torchscope.open(db_path) as store:
        ids = sorted(store.runs()["id"].tolist())
        method = store.compare(*ids)
        function = torchscope.compare(store, *ids)
        assert method.config["key"].tolist() == function.config["key"].tolist() == ["lr"]
        pd.testing.assert_frame_equal(store.diffs.config_diff(*ids), method.config)


def test_writer_records_are_named_tuples_or_frozen_dataclasses() -> None:
    for record_type in HANDLERS:
        named_tuple = issubclass(record_type, tuple) and hasattr(record_type, "_fields")
        params = getattr(record_type, "__dataclass_params__", None)
        frozen = dataclasses.is_dataclass(record_type) and params is not None and params.frozen
        assert named_tuple or frozen, record_type
