"""Tables of captured graphs and tensor values (issue: graph capture). Registered on the shared ``metadata``."""

from __future__ import annotations

from torchscope.storage.schema import metadata  # noqa: F401 - tables below register on it
