"""The run page's callback for its imported images: a tag's step slider shows that step's images."""

from __future__ import annotations

from typing import Any

import dash
from dash import MATCH, Input, Output, State

from torchscope.dashboard.views.run.media import image_children
from torchscope.storage.store import Store


def register(app: dash.Dash, store: Store) -> None:
    """A slider moved (or drawn): the step it points at and the images of that step."""

    @app.callback(
        Output({"type": "run-image", "tag": MATCH}, "children"),
        Output({"type": "run-image-step", "tag": MATCH}, "children"),
        Input({"type": "run-image-slider", "tag": MATCH}, "value"),
        State({"type": "run-image-steps", "tag": MATCH}, "data"),
        State("run-id", "data"),
    )
    def show(position: Any, steps: list[int], run_id: int) -> tuple[Any, str]:
        if not steps:
            return dash.no_update, dash.no_update
        step = int(steps[min(max(int(position or 0), 0), len(steps) - 1)])
        tag = dash.ctx.outputs_list[0]["id"]["tag"]
        images = store.images(int(run_id), tags=[tag])
        return image_children(images, step, store.image), f"step {step}"
