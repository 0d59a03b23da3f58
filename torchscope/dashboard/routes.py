"""URL routing: every view has a URL that can be shared and reloaded. Maps a path to a page's layout.

Paths and queries are parsed by :mod:`torchscope.dashboard.urls`; a page is found by its view name there (the
folder under ``dashboard/views``), so a page module carries no path of its own.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from torchscope.dashboard import urls, views
from torchscope.dashboard.scripts import FirstPaint
from torchscope.dashboard.components import error_panel
from torchscope.errors import TorchscopeError
from torchscope.storage.store import Store


def _discover() -> dict[str, ModuleType]:
    return {view: importlib.import_module(f"{views.__name__}.{view}.page") for view in urls.ROUTES}


PAGES: dict[str, ModuleType] = _discover()
"""``dashboard/views/<view>/page.py`` of every view in :data:`urls.ROUTES`, by view name: each has
``layout(store, refresh_ms=..., query=..., **groups)`` and ``register(app, store)`` for its callbacks, and may set
``IN_FIRST_LAYOUT = True`` (see :func:`in_first_layout`) and ``first_paint(query)`` (see :func:`first_paint`)."""



def in_first_layout(pathname: str) -> bool:
    """Whether the page at ``pathname`` may be rendered into the app's layout when the browser opens its URL.

    Dash fires a ``prevent_initial_call`` callback whose input is inserted by another callback (here, the router)
    while its output is outside the inserted page; in the app's first layout it does not. A page whose callbacks do
    not depend on that difference says so with ``IN_FIRST_LAYOUT = True``; any other is rendered by the router.
    """
    return bool(getattr(_page_of(pathname), "IN_FIRST_LAYOUT", False))


def first_paint(pathname: str, search: str) -> FirstPaint:
    """What the page at ``pathname`` draws first, opened from its URL (``scripts.first_paint_scripts``).

    A page says so with ``first_paint(query) -> FirstPaint``; a page without it draws charts with plotly.js's basic
    bundle.
    """
    says = getattr(_page_of(pathname), "first_paint", None)
    return says(urls.parse_query(search)) if says is not None else FirstPaint()


def _page_of(pathname: str) -> ModuleType | None:
    """The page module of the view at ``pathname``, None for a path no view has."""
    found = urls.match(pathname)
    return PAGES[found[0]] if found is not None else None


def render(store: Store, pathname: str, search: str, *, refresh_ms: int) -> Any:
    """The layout for ``pathname``; an error panel (with its HTTP-like code) for bad URLs and missing ids."""
    found = urls.match(pathname)
    if found is None:
        return error_panel(404, f"no page at {pathname}")
    view, groups = found
    try:
        return PAGES[view].layout(store, refresh_ms=refresh_ms, query=urls.parse_query(search), **groups)
    except TorchscopeError as exc:
        return error_panel(exc.http_code, str(exc))
