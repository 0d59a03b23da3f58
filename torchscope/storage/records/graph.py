"""Records of the graph capability: handlers registered with :func:`torchscope.storage.records.handler`."""

from __future__ import annotations
