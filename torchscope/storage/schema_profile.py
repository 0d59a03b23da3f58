"""Tables of profiles and their events (issue: profiler). Registered on the shared ``metadata``."""

from __future__ import annotations

from torchscope.storage.schema import metadata  # noqa: F401 - tables below register on it
