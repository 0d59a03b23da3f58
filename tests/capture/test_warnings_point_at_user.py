"""Every TorchscopeWarning of a run points at the line of the user's script that led to it, once per run.

The lines are looked up from marker comments in this file, never hard-coded. Python's default warning filter is
used where it matters: it shows a warning once per line and text, and torchscope's per-run registry must still show
the same warning again for the next run.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

import torchscope
from torchscope.errors import TorchscopeWarning
from torchscope.profiler.session import trace_loader
from torchscope.storage.profile.records import ProfileWindow

from models import NanNet, TinyMLP

SOURCE = Path(__file__).read_text().splitlines()


def line(marker: str) -> int:
    """The line of this file that ends with the comment ``# <marker>``."""
    return next(i for i, text in enumerate(SOURCE, 1) if text.rstrip().endswith(f"# <{marker}>"))


@contextmanager
def recorded(action: str = "always") -> Iterator[list[warnings.WarningMessage]]:
    """TorchscopeWarnings emitted in the block, under the warning filter ``action``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore")
        warnings.simplefilter(action, TorchscopeWarning)
        ours: list[warnings.WarningMessage] = []
        yield ours
    ours += [w for w in caught if issubclass(w.category, TorchscopeWarning)]


def where(caught: list[warnings.WarningMessage]) -> list[tuple[str, int]]:
    return [(w.filename, w.lineno) for w in caught]


def test_a_bad_run_log_value_points_at_the_log_call_once_per_run_and_again_for_a_new_run(db_path):
    with recorded("default") as caught:
        for name in ("first", "second"):
            run = torchscope.init(name, db=db_path, system_metrics=False)
            for step in range(3):
                run.log({"loss": "0.5", "acc": 0.9}, step=step)  # <log>
            run.finish()
            assert run.dropped == 3
    assert where(caught) == [(__file__, line("log"))] * 2
    assert [str(w.message) for w in caught] == [
        "torchscope: run.log dropped the value of 'loss': str '0.5' is not a single real number; log one real "
        "number per tag, e.g. run.log({'loss': loss.item()})"
    ] * 2


def test_first_nan_warning_points_at_the_model_call_or_the_backward_call(db_path):
    run = torchscope.init("nan", db=db_path, system_metrics=False)
    model = NanNet()
    model.encoder.block.act.poison = True
    x = torch.randn(3, 4)
    with run.watch(model, every=1), recorded() as caught:
        with torch.no_grad():
            model(x)  # <no-grad forward>
    run.finish()
    run = torchscope.init("nan, trained", db=db_path, system_metrics=False)  # a new run warns again
    with run.watch(model, every=1), recorded() as trained:
        loss = model(x)
        loss.backward()  # <backward>
    run.finish()
    assert where(caught) == [(__file__, line("no-grad forward"))]
    assert str(caught[0].message).startswith("torchscope: first NaN of step 0 (forward) comes from torch.log")
    assert where(trained) == [(__file__, line("backward"))]  # the step, and its anomaly, end with its backward


def test_a_capture_failure_points_at_the_model_call_once_per_run(db_path, monkeypatch):
    from torchscope.capture import graph_record

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(graph_record.StepRecord, "on_op", broken)
    model = TinyMLP()
    with recorded() as caught:
        for name in ("first", "second"):
            run = torchscope.init(name, db=db_path, system_metrics=False)
            with run.watch(model, every=1):
                for _ in range(3):
                    model(torch.randn(2, 4))  # <capture>
            run.finish()
            assert run.dropped == 3
    assert where(caught) == [(__file__, line("capture"))] * 2
    assert {str(w.message) for w in caught} == {"torchscope: graph capture skipped a step: RuntimeError: boom"}


def test_a_profiler_window_that_cannot_be_exported_points_at_prof_step(db_path, monkeypatch):
    def disk_full(self: object, path: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch.profiler.profile, "export_chrome_trace", disk_full)
    run = torchscope.init("p", db=db_path, system_metrics=False)
    model = TinyMLP()
    with recorded() as caught, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*acc_events.*")
        with run.profile(wait=0, warmup=1, active=1, repeat=2) as prof:
            for _ in range(4):
                model(torch.randn(2, 4)).sum().backward()
                prof.step()  # <prof.step>
    run.finish()
    assert where(caught) == [(__file__, line("prof.step"))]
    assert "could not be exported" in str(caught[0].message)


def test_a_warning_from_the_writer_thread_points_at_the_init_call(db_path, tmp_path):
    with recorded() as caught:
        run = torchscope.init("w", db=db_path, system_metrics=False)  # <init>
        for i in range(2):  # two windows that fail alike: one warning
            broken = tmp_path / f"broken{i}.json"  # (the writer deletes a window's file once read)
            broken.write_bytes(b'{"traceEvents": [')
            run.writer.put(ProfileWindow(run.id, "broken", trace_loader(str(broken))))
            run.flush()
        run.finish()
        run.log({"late": 1.0})  # <after finish>
    assert where(caught) == [(__file__, line("init")), (__file__, line("after finish"))]
    assert "profiler window 'broken' was not stored" in str(caught[0].message)
    assert "records are being dropped" in str(caught[1].message)
