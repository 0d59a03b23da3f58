"""The run page's sections for what an imported TensorBoard log holds besides scalars: text (``add_text``, rendered
as markdown, every step of a tag) and images (``add_image``, one tag at a time with a step slider), and links to its
imported graphs. Pure builders; the page wires the image slider (:func:`image_children` answers it).
"""

from __future__ import annotations

import base64
from typing import Any

import pandas as pd
from dash import dcc, html

from torchscope.dashboard import urls
from torchscope.dashboard.formatting import fmt_value

MAX_TEXT_STEPS = 50
"""Steps of a text tag shown on the page (the newest); the rest are counted."""


def text_section(texts: pd.DataFrame) -> Any:
    """Every text tag: its steps newest first, each as rendered markdown (raw HTML is not rendered). None without
    text."""
    if texts.empty:
        return None
    blocks = []
    for tag, group in texts.groupby("tag", sort=True):
        group = group.sort_values("step", ascending=False)
        shown = group.head(MAX_TEXT_STEPS)
        items = [
            html.Div([html.Div(f"step {int(step)}", className="run-text-step"),
                      dcc.Markdown(text, className="run-text-body", dangerously_allow_html=False)],
                     className="run-text-item", **{"data-step": str(int(step))})
            for step, text in zip(shown["step"], shown["text"])
        ]  # fmt: skip
        if len(group) > len(shown):
            items.append(html.P(f"... and {len(group) - len(shown)} earlier steps", className="muted"))
        blocks.append(html.Div([html.H4(str(tag)), *items], className="run-text-tag", **{"data-tag": str(tag)}))
    return html.Section([html.H3("text"), *blocks], className="run-texts", id="run-texts")


def image_section(images: pd.DataFrame) -> Any:
    """One block per image tag: a step slider (marks at the first and last step) and the images of the chosen step,
    the last step at first. The images themselves come from :func:`image_children`. None without images."""
    if images.empty:
        return None
    blocks = []
    for tag, group in images.groupby("tag", sort=True):
        steps = sorted({int(s) for s in group["step"]})
        last = len(steps) - 1
        marks = {0: str(steps[0]), last: str(steps[-1])} if last else {0: str(steps[0])}
        slider = dcc.Slider(id={"type": "run-image-slider", "tag": str(tag)}, min=0, max=max(last, 1), step=1,
                            value=last, marks=marks, disabled=last == 0, updatemode="drag",
                            allow_direct_input=False)  # positions, not steps: no number box  # fmt: skip
        blocks.append(html.Div(
            [html.H4(str(tag)), slider,
             html.Div(id={"type": "run-image-step", "tag": str(tag)}, className="run-image-step"),
             html.Div(id={"type": "run-image", "tag": str(tag)}, className="run-image-frames"),
             dcc.Store(id={"type": "run-image-steps", "tag": str(tag)}, data=steps)],
            className="run-image-tag", **{"data-tag": str(tag)},
        ))  # fmt: skip
    return html.Section([html.H3("images"), *blocks], className="run-images", id="run-images")


def image_children(images: pd.DataFrame, step: int, load: Any) -> list[Any]:
    """The ``<img>`` of each image of one tag at ``step`` (``images``: that tag's rows of ``Store.images``);
    ``load(image_id)`` gives ``(mime, bytes)`` (``Store.image``)."""
    out = []
    for row in images[images["step"] == step].sort_values("sample").itertuples():
        mime, data = load(int(row.id))
        src = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        out.append(html.Img(src=src, width=_shown_width(row.width), alt=f"{row.tag} step {step}",
                            className="run-image", **{"data-step": str(step), "data-sample": str(row.sample)}))  # fmt: skip
    return out


def _shown_width(width: int) -> int:
    """Small images are enlarged to 256 px (their pixels stay crisp, see style.css); large ones shrink to 512 px."""
    return min(max(int(width), 256), 512)


def imported_graph_links(run_id: int, graphs: pd.DataFrame) -> Any:
    """Links to the graphs a TensorBoard import brought into the run (``Store.imported_graphs``); None when none."""
    if graphs.empty:
        return None
    links = [
        dcc.Link(f"graph {tag or kind} ({kind}, {int(n)} nodes)", href=urls.graph(run_id, graph_id=int(g)),
                 className="artifact")
        for g, tag, kind, n in zip(graphs["id"], graphs["tag"], graphs["kind"], graphs["nodes"])
    ]  # fmt: skip
    return html.Div([html.Span("imported", className="muted"), *links], className="artifacts", id="run-imported")


def hparam_metrics_block(metrics: pd.DataFrame) -> Any:
    """The metrics an imported ``add_hparams`` session reported (``Store.hparam_metrics`` of the run), with a link to
    the hyperparameters of every run; None when there are none."""
    if metrics.empty:
        return None
    values = [html.Span([html.B(tag), f" {fmt_value(float(v))}"], className="latest", title=repr(float(v)))
              for tag, v in zip(metrics["tag"], metrics["value"])]  # fmt: skip
    return html.Div([html.Span("hparam metrics", className="muted"), *values,
                     dcc.Link("all runs' hyperparameters", href=urls.hparams())],
                    className="latest-values", id="run-hparam-metrics")  # fmt: skip
