"""Screenshots for the docs site, taken by the browser tests when ``TORCHSCOPE_DOC_SCREENSHOTS=1`` (``make docs``)."""

from __future__ import annotations

import os
from pathlib import Path

SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def doc_screenshot(tab: object, name: str) -> None:
    """Save the page as ``docs/screenshots/<name>.png`` once the network is idle, when the env var asks for it."""
    if os.environ.get("TORCHSCOPE_DOC_SCREENSHOTS") != "1":
        return
    tab.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
    SCREENSHOTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"))  # type: ignore[attr-defined]
