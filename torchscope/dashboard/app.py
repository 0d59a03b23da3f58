"""``create_app(store)``: the Dash application. No global app: each call builds a fresh one."""

from __future__ import annotations

from pathlib import Path

import dash
from dash import Input, Output, dcc, html

from torchscope.dashboard import auth, routes, urls
from torchscope.storage.store import Store

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def create_app(
    store: Store, *, title: str = "torchscope", refresh_ms: int = 1000, auth_token: str | None = None
) -> dash.Dash:
    """Build the dashboard for ``store``; ``refresh_ms`` is how often live pages poll for new data.

    With ``auth_token``, every route answers 401 to a request without it (:mod:`torchscope.dashboard.auth`).
    """
    app = dash.Dash(
        __name__,
        title=title,
        assets_folder=str(ASSETS),
        suppress_callback_exceptions=True,
        update_title=None,
        eager_loading=True,  # plotly.js loads with the app, not after the first chart arrives (live run page)
    )
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            html.Header(
                [
                    dcc.Link("torchscope", href=urls.runs(), className="brand"),
                    html.Nav([dcc.Link("Runs", href=urls.runs()), dcc.Link("Compare", href=urls.compare())],
                             className="nav"),
                    html.Span(store.display_url, className="db-url", title="database"),
                ],
                className="topbar",
            ),
            html.Main(id="page", className="page"),
        ]
    )

    @app.callback(Output("page", "children"), Input("url", "pathname"), Input("url", "search"))
    def render(pathname: str | None, search: str | None) -> object:
        return routes.render(store, pathname or "/", search or "", refresh_ms=refresh_ms)

    for page in routes.PAGES.values():
        page.register(app, store)
    if auth_token is not None:
        auth.require_token(app.server, auth_token)
    return app
