"""Helpers for tests that read back what a live run recorded."""

from __future__ import annotations

import torchscope


def flushed_store(run: torchscope.Run) -> torchscope.Store:
    """The store of ``run`` once everything the run has logged or captured so far is written."""
    run.flush()
    return torchscope.open(run.url)
