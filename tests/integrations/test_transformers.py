"""The Hugging Face callback, tested by training a tiny BERT classifier (random init from a config in code, nothing
fetched from a hub) with ``transformers.Trainer`` on the CPU."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing comes from a hub: the model is built from a config in code
import transformers  # the `transformers` extra (the `test` extra installs it)

import torchscope
from torchscope.errors import TorchscopeWarning
from torchscope.integrations.transformers import callback_class

STEPS = 6
EVERY = 2
VOCAB = 50


class Tokens(torch.utils.data.Dataset):
    """Synthetic token ids (no tokenizer): the label is the parity of the first token."""

    def __init__(self, n: int = 32) -> None:
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, VOCAB, (n, 8), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i, 0] % 2}


class Spy(transformers.TrainerCallback):
    """Records exactly what the Trainer logged, with its global step."""

    def __init__(self) -> None:
        self.logs: list[tuple[int, dict[str, Any]]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        self.logs.append((state.global_step, dict(logs or {})))


def _tiny_bert() -> Any:
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=16, num_labels=2,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config)


def _args(tmp_path: Path, **kwargs: Any) -> Any:
    options = {
        "output_dir": str(tmp_path / "out"), "max_steps": STEPS, "per_device_train_batch_size": 8,
        "logging_steps": 2, "eval_strategy": "steps", "eval_steps": 3, "per_device_eval_batch_size": 8,
        "report_to": [], "save_strategy": "no", "use_cpu": True, "disable_tqdm": True, "learning_rate": 1e-3,
        **kwargs,
    }  # fmt: skip
    return transformers.TrainingArguments(**options)


def test_trainer_run_stores_logs_config_and_watched_steps(tmp_path: Path, db_path: Path) -> None:
    model = _tiny_bert()
    spy = Spy()
    callback = callback_class()("bert-tiny", db=db_path, config={"data": "parity"}, every=EVERY, system_metrics=False)
    trainer = transformers.Trainer(
        model=model, args=_args(tmp_path), train_dataset=Tokens(), eval_dataset=Tokens(16), callbacks=[callback, spy]
    )
    trainer.train()

    store = torchscope.open(db_path)
    runs = store.runs()
    assert list(runs["name"]) == ["bert-tiny"] and list(runs["status"]) == ["finished"]
    run_id = int(runs["id"].iloc[0])
    assert callback.run.id == run_id
    config = store.run(run_id)["config"]
    config = json.loads(config) if isinstance(config, str) else config
    assert config["data"] == "parity"
    assert (config["max_steps"], config["learning_rate"], config["logging_steps"]) == (STEPS, 1e-3, 2)
    assert config["model_config"]["hidden_size"] == 16 and config["model_config"]["num_hidden_layers"] == 1

    # every number the Trainer logged (training, evaluation, the final summary) at its global step
    expected = {(tag, step): v for step, logs in spy.logs for tag, v in logs.items() if isinstance(v, (int, float))}
    assert {"loss", "grad_norm", "learning_rate", "epoch", "eval_loss", "train_runtime"} <= {t for t, _ in expected}
    assert {s for t, s in expected if t == "loss"} == {2, 4, 6}
    assert {s for t, s in expected if t == "eval_loss"} == {3, 6}
    scalars = store.scalars(run_id)
    stored = {(tag, step): value for tag, step, value in zip(scalars["tag"], scalars["step"], scalars["value"])}
    assert stored.keys() == expected.keys()
    for key, value in expected.items():
        assert stored[key] == pytest.approx(value, rel=1e-6)

    # watched at global steps 0, 2, 4 of training; evaluation forwards left out
    stats = store.tensor_stats(run_id)
    assert sorted(set(stats["step"])) == [0, 2, 4]
    params = {name for name, _ in model.named_parameters()}
    for step in (0, 2, 4):
        at = stats[stats["step"] == step]
        assert set(at[at["kind"] == "param"]["name"]) == params
        assert {f"grad:{p}" for p in params} <= set(at[at["role"] == "grad"]["name"])
    nodes, _ = store.graph(run_id)
    modules = set(nodes[nodes["kind"] == "module"]["module"])
    assert {"bert.embeddings.word_embeddings", "bert.encoder.layer.0.attention.self.query", "classifier"} <= modules


def _ours(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, TorchscopeWarning)]


def test_a_store_that_cannot_be_opened_warns_once_and_training_goes_on(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    callback = callback_class()(db=tmp_path / "file" / "x.db", system_metrics=False)
    spy = Spy()
    trainer = transformers.Trainer(
        model=_tiny_bert(), args=_args(tmp_path, eval_strategy="no"), train_dataset=Tokens(), callbacks=[callback, spy]
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train()
    assert trainer.state.global_step == STEPS and [s for s, logs in spy.logs if "loss" in logs] == [2, 4, 6]
    ours = _ours(caught)
    assert len(ours) == 1 and "the Hugging Face integration records nothing in this process" in ours[0]
    assert callback.run is None


def test_a_failing_call_at_train_begin_warns_once_and_logs_are_still_stored(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchscope.integrations.transformers as integration

    def broken(args: Any, model: Any) -> Any:
        raise RuntimeError("config broke")

    monkeypatch.setattr(integration, "run_config", broken)
    callback = callback_class()("no-config", db=db_path, system_metrics=False)
    trainer = transformers.Trainer(
        model=_tiny_bert(), args=_args(tmp_path, eval_strategy="no"), train_dataset=Tokens(), callbacks=[callback]
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train()
    assert trainer.state.global_step == STEPS
    assert _ours(caught) == [
        "torchscope: the Hugging Face integration skipped on_train_begin and carries on: RuntimeError: config broke"
    ]
    store = torchscope.open(db_path)
    run_id = callback.run.id
    assert list(store.runs()["name"]) == ["no-config"] and store.run(run_id)["status"] == "finished"
    assert sorted(store.scalars(run_id, tags=["loss"])["step"]) == [2, 4, 6]
    assert store.tensor_stats(run_id).empty  # the watch was to start in the call that failed
