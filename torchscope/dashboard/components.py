"""Widgets that more than one view uses."""

from __future__ import annotations

from dash import dcc, html

from torchscope.dashboard import urls


def error_panel(code: int, message: str) -> html.Div:
    """What a page shows instead of its content when the request cannot be served (``code`` is HTTP-like)."""
    return html.Div(
        [html.H2(f"{code}", className="error-code"), html.P(message, className="error-message"),
         dcc.Link("All runs", href=urls.runs())],
        className="error-panel",
    )  # fmt: skip
