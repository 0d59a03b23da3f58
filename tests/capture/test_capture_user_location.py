"""Which frame is "the user's line" of a captured op: never one of torchscope's own capture/storage/view modules."""

from __future__ import annotations

from pathlib import Path

import pytest

import torchscope
from torchscope.capture.graph_record import user_location

PACKAGE = Path(torchscope.__file__).parent


def _call_from(path: Path) -> tuple[str | None, int | None]:
    """``user_location`` called by a function whose code says it lives at ``path``, itself called from here."""
    namespace = {"user_location": user_location}
    # the path as a constant too: code objects that differ only in their file compare equal, and are cached as such
    source = f"def call():\n    where = {str(path)!r}\n    return user_location(1)\n"
    exec(compile(source, str(path), "exec"), namespace)
    return namespace["call"]()  # type: ignore[operator,no-any-return]


@pytest.mark.parametrize("part", ["capture", "profiler", "io", "storage", "dashboard"])
def test_torchscope_machinery_is_never_the_users_line(part: str) -> None:
    assert (PACKAGE / part).is_dir()
    file, _ = _call_from(PACKAGE / part / "machinery.py")
    assert file == __file__


def test_the_demo_training_script_is_user_code() -> None:
    file, line = _call_from(PACKAGE / "cli" / "demo_train.py")
    assert (file, line) == (str(PACKAGE / "cli" / "demo_train.py"), 3)
