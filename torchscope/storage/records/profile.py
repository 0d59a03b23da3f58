"""Records of the profile capability: handlers registered with :func:`torchscope.storage.records.handler`."""

from __future__ import annotations
