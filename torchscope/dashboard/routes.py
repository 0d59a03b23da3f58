"""URL routing: every view has a URL that can be shared and reloaded. Maps a path to a page's layout."""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs

from dash import dcc, html

from torchscope.dashboard import views
from torchscope.errors import TorchscopeError
from torchscope.storage.store import Store


def _discover() -> list[ModuleType]:
    found = []
    for info in sorted(pkgutil.iter_modules(views.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{views.__name__}.{info.name}.page")
        if hasattr(module, "PATH"):
            found.append(module)
    return found


PAGES: list[ModuleType] = _discover()
"""Every ``dashboard/views/<view>/page.py`` with ``PATH`` (a regex with named groups, matched against the whole path),
``layout(store, refresh_ms=..., query=..., **groups)`` and ``register(app, store)`` for its callbacks."""


def render(store: Store, pathname: str, search: str, *, refresh_ms: int) -> Any:
    """The layout for ``pathname``; an error panel (with its HTTP-like code) for bad URLs and missing ids."""
    query = {k: v[-1] for k, v in parse_qs(search.lstrip("?")).items()}
    for page in PAGES:
        match = re.fullmatch(page.PATH, pathname.rstrip("/") or "/")
        if match:
            try:
                return page.layout(store, refresh_ms=refresh_ms, query=query, **match.groupdict())
            except TorchscopeError as exc:
                return error_panel(exc.http_code, str(exc))
    return error_panel(404, f"no page at {pathname}")


def error_panel(code: int, message: str) -> html.Div:
    """What a page shows instead of its content when the request cannot be served."""
    return html.Div(
        [html.H2(f"{code}", className="error-code"), html.P(message, className="error-message"), dcc.Link("All runs", href="/")],
        className="error-panel",
    )
