"""The Lightning logger, tested by training a small real LightningModule on the CPU with ``lightning.pytorch``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl  # the `lightning` extra (the `test` extra installs it)
import pytest
import torch

import torchscope
from torchscope.errors import TorchscopeWarning
from torchscope.integrations.lightning import logger_class

STEPS = 8
EVERY = 3
PARAMS = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


class Regressor(pl.LightningModule):
    """Two linear layers; ``training_step`` calls ``self(x)``, as most LightningModules do."""

    def __init__(self, hidden: int = 8, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.fc1 = torch.nn.Linear(4, hidden)
        self.fc2 = torch.nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class Spy(pl.loggers.Logger):
    """A logger beside torchscope's that records exactly what Lightning handed to loggers."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[tuple[int, dict[str, float]]] = []

    name = "spy"
    version = 0

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.metrics.append((step, dict(metrics)))

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass


def _loaders() -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = x.sum(dim=1, keepdim=True)
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)  # 8 batches an epoch
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:16], y[:16]), batch_size=8)
    return train, val


def _trainer(loggers: list[Any], tmp_path: Path, **kwargs: Any) -> Any:
    options = {
        "max_steps": STEPS, "log_every_n_steps": 2, "val_check_interval": 4, "num_sanity_val_steps": 2,
        "accelerator": "cpu", "devices": 1, "enable_checkpointing": False, "enable_progress_bar": False,
        "enable_model_summary": False, "default_root_dir": str(tmp_path), **kwargs,
    }  # fmt: skip
    return pl.Trainer(logger=loggers, **options)


def test_lightning_fit_stores_metrics_hparams_and_watched_steps(tmp_path: Path, db_path: Path) -> None:
    torch.manual_seed(0)
    model = Regressor()
    spy = Spy()
    logger = logger_class()("lit", db=db_path, config={"data": "synthetic"}, every=EVERY, system_metrics=False)
    train, val = _loaders()
    _trainer([logger, spy], tmp_path).fit(model, train, val)

    store = torchscope.open(db_path)
    runs = store.runs()
    assert list(runs["name"]) == ["lit"] and list(runs["status"]) == ["finished"]
    run_id = int(runs["id"].iloc[0])
    assert logger.version == run_id and logger.name == "lit"
    config = store.run(run_id)["config"]
    config = json.loads(config) if isinstance(config, str) else config
    assert config == {"data": "synthetic", "hidden": 8, "lr": 0.05}

    # every number Lightning gave its loggers, at the same step, and nothing else
    expected = {(tag, step): value for step, metrics in spy.metrics for tag, value in metrics.items()}
    assert {tag for tag, _ in expected} == {"train_loss", "val_loss", "epoch"}
    scalars = store.scalars(run_id)
    stored = {(tag, step): value for tag, step, value in zip(scalars["tag"], scalars["step"], scalars["value"])}
    assert stored.keys() == expected.keys()
    for key, value in expected.items():
        assert stored[key] == pytest.approx(value, rel=1e-6)

    # the module was watched at global steps 0, 3, 6 of training only (not the sanity check or validation)
    stats = store.tensor_stats(run_id)
    assert sorted(set(stats["step"])) == [0, EVERY, 2 * EVERY]
    for step in (0, EVERY, 2 * EVERY):
        at = stats[stats["step"] == step]
        assert set(at[at["kind"] == "param"]["name"]) == PARAMS
        assert {f"grad:{p}" for p in PARAMS} <= set(at[at["role"] == "grad"]["name"])
    nodes, _ = store.graph(run_id)
    modules = set(nodes[nodes["kind"] == "module"]["module"])
    assert {"fc1", "fc2"} <= modules, modules


class Wrapper(pl.LightningModule):
    """A LightningModule whose ``training_step`` calls its submodule ``net``, never ``self(x)``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def _ours(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, TorchscopeWarning)]


def test_watch_names_the_submodule_training_step_calls(tmp_path: Path, db_path: Path) -> None:
    torch.manual_seed(0)
    logger = logger_class()(db=db_path, watch="net", every=4, system_metrics=False)
    train, _ = _loaders()
    _trainer([logger], tmp_path, limit_val_batches=0).fit(Wrapper(), train)
    store = torchscope.open(db_path)
    stats = store.tensor_stats(logger.version)
    assert sorted(set(stats["step"])) == [0, 4]
    assert set(stats[stats["kind"] == "param"]["name"]) == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_an_unwatched_module_is_pointed_out_once(tmp_path: Path, db_path: Path) -> None:
    logger = logger_class()(db=db_path, system_metrics=False)
    train, _ = _loaders()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _trainer([logger], tmp_path, limit_val_batches=0).fit(Wrapper(), train)
    expected = (
        "torchscope: the LightningModule itself was never called while it trained, so no graph was captured; if "
        "training_step calls a submodule (self.net(x)), name it: TorchscopeLogger(watch='net')"
    )
    assert [m for m in _ours(caught) if "never called" in m] == [expected]


def test_a_store_that_cannot_be_opened_warns_once_and_fit_goes_on(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    logger = logger_class()(db=tmp_path / "file" / "x.db", system_metrics=False)
    spy = Spy()
    train, val = _loaders()
    trainer = _trainer([logger, spy], tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(Regressor(), train, val)
    assert trainer.global_step == STEPS and len(spy.metrics) > 0
    ours = _ours(caught)
    assert len(ours) == 1 and "the Lightning integration records nothing in this process" in ours[0]
    assert logger.experiment is None and logger.version is None


def test_a_failing_call_inside_the_logger_warns_once_and_the_rest_is_stored(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchscope.integrations._common as integration  # where every integration turns logs into scalars

    def broken(metrics: Any) -> Any:
        raise RuntimeError("metrics broke")

    monkeypatch.setattr(integration, "scalars", broken)
    logger = logger_class()(db=db_path, every=EVERY, system_metrics=False)
    train, val = _loaders()
    trainer = _trainer([logger], tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(Regressor(), train, val)
    assert trainer.global_step == STEPS
    assert _ours(caught) == [
        "torchscope: the Lightning integration skipped log_metrics and carries on: RuntimeError: metrics broke"
    ]
    store = torchscope.open(db_path)
    assert store.scalars(logger.version).empty
    assert sorted(set(store.tensor_stats(logger.version)["step"])) == [0, EVERY, 2 * EVERY]
    assert store.run(logger.version)["status"] == "finished"


def test_the_logger_works_with_the_pytorch_lightning_package_too(tmp_path: Path, db_path: Path) -> None:
    import pytorch_lightning as ptl  # what `lightning` installs beside itself, under its older import name

    class Linear(ptl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            loss = torch.nn.functional.mse_loss(self(batch[0]), batch[1])
            self.log("loss", loss)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.05)

    cls = logger_class("pytorch_lightning")
    assert issubclass(cls, ptl.loggers.Logger) and not issubclass(cls, pl.loggers.Logger)
    logger = cls(db=db_path, every=2, system_metrics=False)
    train, _ = _loaders()
    trainer = ptl.Trainer(
        logger=logger, max_steps=4, log_every_n_steps=1, accelerator="cpu", enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path),
    )  # fmt: skip
    trainer.fit(Linear(), train)
    store = torchscope.open(db_path)
    scalars = store.scalars(logger.version, tags=["loss"])
    assert list(scalars["step"]) == [0, 1, 2, 3]
    assert sorted(set(store.tensor_stats(logger.version)["step"])) == [0, 2]


def test_a_given_run_gets_the_hyperparameters_and_stays_open(tmp_path: Path, db_path: Path) -> None:
    run = torchscope.init("mine", db=db_path, config={"lr": 0.5, "data": "synthetic"}, system_metrics=False)
    logger = logger_class()(run=run, every=EVERY)
    train, val = _loaders()
    _trainer([logger], tmp_path).fit(Regressor(), train, val)
    assert run.status == "running" and logger.experiment is run and logger.version == run.id
    run.log({"after_fit": 1.0}, step=100)
    run.finish()
    store = torchscope.open(db_path)
    row = store.run(run.id)
    config = json.loads(row["config"]) if isinstance(row["config"], str) else row["config"]
    assert config == {"lr": 0.5, "data": "synthetic", "hidden": 8}  # the keys given to init win over hparams
    assert run.config == config and row["status"] == "finished"
    assert list(store.scalars(run.id, tags=["after_fit"])["step"]) == [100]


def test_a_fit_that_raises_ends_the_run_as_failed_and_the_error_reaches_the_user(tmp_path: Path, db_path: Path) -> None:
    class Exploding(Regressor):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            if self.global_step == 3:
                raise ValueError("bad batch")
            return super().training_step(batch, batch_idx)

    logger = logger_class()(db=db_path, every=EVERY, system_metrics=False)
    train, val = _loaders()
    with pytest.raises(ValueError, match="bad batch"):
        _trainer([logger], tmp_path).fit(Exploding(), train, val)
    store = torchscope.open(db_path)
    assert store.run(logger.version)["status"] == "failed"
    assert sorted(set(store.tensor_stats(logger.version)["step"])) == [0]
