"""Take the README's screenshots: train the demo briefly into a temporary store, serve it, photograph pages.

    .venv/bin/python docs/screenshots.py            # writes docs/img/*.png

Uses Debian's headless Chromium through Playwright, as the browser tests do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from torchscope.dashboard.server import serve_in_subprocess

OUT = Path(__file__).resolve().parent / "img"
PAGES = [
    ("runs", "/", ".ag-row"),
    ("run", "/run/1", ".chart .js-plotly-plot"),
    # profile views: {gpu} is the imported GPU trace when ../shared/data is there, else the demo's own profile
    ("profile", "/profile/{gpu}", "#prof-breakdown .js-plotly-plot"),
    ("profile-kernels", "/profile/{gpu}?tab=kernels", "#prof-grid .ag-row"),
    ("profile-memory", "/profile/1?tab=memory", "#prof-memory .js-plotly-plot"),
    ("timeline", "/timeline/{gpu}?start=95000000&end=135000000&q=addmm", "#tl-graph .js-plotly-plot"),
    ("graph", "/graph/1?node=features.3&color=magnitude", "#inspector-history .js-plotly-plot"),
]
"""(file name, URL path, selector to wait for); later views add their pages here."""
GPU_TRACE = Path(__file__).resolve().parents[2] / "shared" / "data" / "kineto" / "v100_train_rank0.json.gz"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    exe = Path(sys.executable).with_name("torchscope")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "demo.db"
        subprocess.run([exe, "demo", "--db", str(db), "--seconds", "20", "--no-serve"], check=True)
        gpu = 1
        if GPU_TRACE.exists():
            from torchscope.io.importing import import_path

            gpu = import_path(db, GPU_TRACE, name="v100 trace").profiles[0]["id"]
        with serve_in_subprocess(db) as base:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=os.environ.get("TORCHSCOPE_CHROMIUM", "/usr/bin/chromium"),
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync"],
                )
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                for name, path, selector in PAGES:
                    page.goto(f"{base}{path.format(gpu=gpu)}")
                    page.wait_for_selector(selector, timeout=30_000)
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(OUT / f"{name}.png"))
                    print(f"wrote {OUT / f'{name}.png'}")
                browser.close()


if __name__ == "__main__":
    main()
