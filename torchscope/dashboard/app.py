"""``create_app(store)``: the Dash application. No global app: each call builds a fresh one."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dash
import flask
from dash import Input, Output, State, dcc, html

from torchscope.dashboard import auth, history, routes, scripts, urls
from torchscope.storage.store import Store

ASSETS = Path(__file__).resolve().parent.parent / "assets"


class _Dash(dash.Dash):
    """Dash, whose page loads only the scripts the page opened shows first, and fetches those from the start
    (:func:`scripts.first_paint_scripts`, :func:`routes.first_paint`)."""

    def interpolate_index(self, **kwargs: Any) -> str:
        opened = flask.request if flask.has_request_context() else None  # the page the browser opens
        first = routes.first_paint(opened.path, opened.query_string.decode()) if opened else scripts.FirstPaint()
        kwargs["scripts"], preload = scripts.first_paint_scripts(kwargs.get("scripts", ""), first)
        kwargs["css"] = preload + kwargs.get("css", "")
        return str(super().interpolate_index(**kwargs))


def create_app(
    store: Store, *, title: str = "torchscope", refresh_ms: int = 1000, auth_token: str | None = None
) -> dash.Dash:
    """Build the dashboard for ``store``; ``refresh_ms`` is how often live pages poll for new data.

    With ``auth_token``, every route answers 401 to a request without it (:mod:`torchscope.dashboard.auth`).
    """
    app = _Dash(
        __name__,
        title=title,
        assets_folder=str(ASSETS),
        suppress_callback_exceptions=True,
        update_title=None,
        eager_loading=False,  # Dash's other lazy chunks (MathJax, markdown, AG Grid enterprise ...) stay unloaded
        assets_ignore=scripts.VENDORED,  # loaded as scripts.page_scripts() says, not as every asset is
    )
    for script in scripts.page_scripts():  # charts draw as soon as the page's content arrives
        app.scripts.append_script(script)
    app.layout = lambda: _layout(store, *_first_page(store, refresh_ms))  # per load: the page the browser opens

    @app.callback(Output("page", "children"), Output(history.ADDRESS, "data"), Input("url", "pathname"),
                  Input("url", "search"), State(history.ADDRESS, "data"))
    def render(pathname: str | None, search: str | None, shown: dict | None) -> tuple[object, dict]:
        if not history.should_render(pathname, search, shown, first=dash.ctx.triggered_id is None):
            raise dash.exceptions.PreventUpdate  # the page on screen wrote this URL: it shows it already
        page = routes.render(store, pathname or "/", search or "", refresh_ms=refresh_ms)
        return page, history.address(history.href_of(pathname, search))

    history.register(app)

    @app.server.after_request
    def layout_is_per_page(response: flask.Response) -> flask.Response:
        """The layout holds the page it was fetched from (``_first_page``): no cache may hand it to another page."""
        if flask.request.path.endswith("/_dash-layout"):
            response.headers["Cache-Control"] = "no-store"
            response.vary.add("Referer")
        return response

    for page in routes.PAGES.values():
        page.register(app, store)
    if auth_token is not None:
        auth.require_token(app.server, auth_token)
    return app


def _layout(store: Store, page: Any = None, address: dict[str, Any] | None = None) -> html.Div:
    """The app's frame (top bar, the URL, the page's slot) holding ``page`` if given, showing ``address``."""
    return html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            dcc.Store(id=history.ADDRESS, data=address),  # the URL of the view on screen, which pages keep up to date
            html.Header(
                [
                    dcc.Link("torchscope", href=urls.runs(), className="brand"),
                    html.Nav([dcc.Link("Runs", href=urls.runs()), dcc.Link("Compare", href=urls.compare())],
                             className="nav"),
                    html.Span(store.display_url, className="db-url", title="database"),
                ],
                className="topbar",
            ),
            # a page whose content takes a while (a big profile's first read) shows a spinner, not the old page;
            # only the router's update counts, so live pages' polls never flash it
            dcc.Loading(html.Main(page, id="page", className="page"), target_components={"page": "children"},
                        delay_show=300, show_initially=False, type="circle", color="#3b6fd8",
                        parent_style={"minHeight": "60vh"}),
        ]
    )  # fmt: skip


def _first_page(store: Store, refresh_ms: int) -> tuple[Any, dict[str, Any] | None]:
    """The page the browser is opening and its address, rendered into the layout Dash fetches for it.

    Dash's renderer fetches the layout from the page it loads, so the request's ``Referer`` is that page's URL. With
    the page in the layout, the first paint needs no round trip through the router's callback (which then finds the
    address already shown, and does nothing). Only pages that allow it (:func:`routes.in_first_layout`) come this
    way. Without a usable ``Referer`` (a browser that sends none, another site's page, no request), or if rendering
    fails, the layout has no page and the router renders it as on any navigation (reporting the failure as
    callbacks do).
    """
    if not flask.has_request_context() or not flask.request.referrer:
        return None, None
    opened = urlsplit(flask.request.referrer)
    if opened.netloc != flask.request.host or not routes.in_first_layout(opened.path or "/"):
        return None, None
    search = f"?{opened.query}" if opened.query else ""
    try:
        page = routes.render(store, opened.path or "/", search, refresh_ms=refresh_ms)
    except Exception:  # noqa: BLE001 - the router's callback renders this page again and reports what went wrong
        return None, None
    return page, history.address(history.href_of(opened.path, search))
