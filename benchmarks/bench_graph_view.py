"""Graph view speed on a 12-layer transformer captured with ``run.watch``: first view, expansions, first paint.

    .venv/bin/python benchmarks/bench_graph_view.py [--layers 12] [--no-browser]

Prints the server time to build the page (cold: nothing cached, as on the first visit), to redraw after opening
the encoder, one layer and everything (expand all, bounded), the elements each view sends to Cytoscape, and — with
Debian's Chromium present — the time from navigation to the graph drawn in a real browser, and to a module opened
by a click.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import torchscope
from torchscope.dashboard import routes
from torchscope.dashboard.views.graph.state import GraphState, expand_all, toggle
from torchscope.dashboard.views.graph.data import GraphData
from torchscope.dashboard.views.graph.render import draw
from torchscope.dashboard.server import serve_in_subprocess


class Attention(nn.Module):
    """Causal self-attention written out op by op, as minGPT/nanoGPT do (so every op is a graph node)."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q = q.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        k = k.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        v = v.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        mask = torch.ones(t, t, dtype=torch.bool).tril()
        att = att.masked_fill(~mask, torch.finfo(att.dtype).min)  # -inf would be reported as an anomaly
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, d)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(d), Attention(d, heads)
        self.ln2, self.fc, self.out = nn.LayerNorm(d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, layers: int, d: int = 64, heads: int = 4, vocab: int = 128, seq: int = 32) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def _timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _browser(db: Path, run_id: int, encoder_id: int) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("browser: playwright not installed, skipped")
        return
    chromium = os.environ.get("TORCHSCOPE_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        print("browser: no Chromium, skipped")
        return
    cy = "[...document.querySelectorAll('#graph-cy, #graph-cy div')].find(d => d._cyreg && d._cyreg.cy)?._cyreg.cy"
    with serve_in_subprocess(db) as base:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            for label in ("first visit (server cache cold)", "second visit"):
                start = time.perf_counter()
                page.goto(f"{base}/graph/{run_id}")
                page.wait_for_function(f"(() => {{ const c = {cy}; return c && c.nodes().length > 0; }})()")
                print(f"browser: navigation to graph drawn, {label}: {time.perf_counter() - start:.2f} s")
            n = page.evaluate(f"{cy}.elements().length")
            box = page.locator("#graph-cy").bounding_box()
            where = f"{cy}.getElementById('{encoder_id}').renderedPosition()"
            x, y = page.evaluate(f"(() => {{ const p = {where}; return [p.x, p.y]; }})()")
            start = time.perf_counter()
            page.mouse.click(box["x"] + x, box["y"] + y)
            page.wait_for_function(f"{cy}.elements().length > {n}")
            print(f"browser: click on a closed module to opened module drawn: {time.perf_counter() - start:.2f} s")
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        model = GPT(args.layers)
        with torchscope.init(name="gpt", db=db) as run:
            run.watch(model, every=1)
            for _ in range(2):
                model(torch.randint(0, 128, (4, 32))).sum().backward()
        store = torchscope.open(db)
        nodes, edges = store.graph(run.id)
        kinds = nodes["kind"].value_counts().to_dict()
        print(f"model: GPT, {args.layers} layers; captured graph: {len(nodes)} nodes ({kinds.get('op', 0)} ops, "
              f"{kinds.get('module', 0)} module calls, {kinds.get('param', 0)} params, {kinds.get('grad', 0)} grads), "
              f"{len(edges)} edges")  # fmt: skip
        page, cold = _timed(lambda: routes.render(store, f"/graph/{run.id}", "", refresh_ms=1000))
        _, warm = _timed(lambda: routes.render(store, f"/graph/{run.id}", "", refresh_ms=1000))
        print(f"server: first view (page layout with elements and inspector), cold: {cold * 1000:.0f} ms, "
              f"cached: {warm * 1000:.0f} ms")  # fmt: skip
        data = GraphData(store)
        version = int(store.graph_steps(run.id)["version_id"].iloc[-1])
        step = int(store.graph_steps(run.id)["step"].iloc[-1])
        gm = data.captured(run.id, version)
        base = {r for r in gm.roots}
        state = GraphState(run=run.id, source="captured", key=step, version=version, expanded=tuple(sorted(base)))
        scene, t = _timed(lambda: draw(data, state))
        print(f"server: draw first view: {t * 1000:.0f} ms, {len(scene.elements)} elements")
        blocks = gm.by_module["blocks.0"]
        for label, opened in (
            ("open blocks.0", toggle(gm, blocks, base)),
            ("open blocks.0 and blocks.0.attn", toggle(gm, gm.by_module["blocks.0.attn"], toggle(gm, blocks, base))),
            ("expand all (bounded)", expand_all(gm)[0]),
        ):
            for mode in ("op", "magnitude"):
                scene, t = _timed(lambda: draw(data, replace(state, expanded=tuple(sorted(opened)), colour=mode)))
                shown = len(scene.elements)
                print(f"server: redraw after {label}, colour by {mode}: {t * 1000:.0f} ms, {shown} elements")
        del page
        if not args.no_browser:
            _browser(db, run.id, blocks)
        store.close()


if __name__ == "__main__":
    main()
