"""The address bar follows the view: every page writes the URL of what it shows, so a reload or a shared link opens
the same view, and back/forward step through the views the user chose.

A page's callback writes ``{"href": ..., "push": bool}`` to the app's :data:`ADDRESS` store (built by the URL
builders of :mod:`torchscope.dashboard.urls`): ``push`` for a deliberate step the user may want to go back to (a tab,
a focused node, a picked tag, a selected event), a replace for continuous controls (a smoothing slider, a zoom or a
pan), which would otherwise fill the history. One clientside callback (:func:`register`) writes it with
``history.pushState``/``replaceState`` and tells ``dcc.Location`` the new query, so that going back to the previous
entry is a change it sees; the router (:func:`should_render`) does not redraw a page for the URL that page wrote.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State

ADDRESS = "view-address"
"""The ``dcc.Store`` (in the app's layout) holding the URL the page shows: ``{"href": path?query, "push": bool}``."""


def address(href: str, *, push: bool = False) -> dict[str, Any]:
    """What a page writes to :data:`ADDRESS` for the view at ``href``."""
    return {"href": href, "push": bool(push)}


def href_of(pathname: str | None, search: str | None) -> str:
    """``path?query`` of a ``dcc.Location`` (the form :func:`address` takes)."""
    search = search or ""
    if search and not search.startswith("?"):
        search = "?" + search
    return (pathname or "/") + (search if search != "?" else "")


def should_render(
    pathname: str | None, search: str | None, shown: dict[str, Any] | None, *, first: bool = False
) -> bool:
    """Whether the router draws the page for a new location: not when the page on screen wrote that URL itself.

    ``first``: Dash's first call of the router, for the URL the page was opened at. A page that came with the app's
    layout (which then holds its address) is on screen already, and the location this call carries may be older
    than the address, which the page may have changed since (a quick search typed before the call was sent).
    """
    if first and shown:
        return False
    return not shown or shown.get("href") != href_of(pathname, search)


WRITE = """
function(address, search) {
    const no = window.dash_clientside.no_update;
    if (!address || !address.href) { return [no, no]; }
    const here = window.location.pathname + window.location.search;
    if (address.href === here && (search || '') === window.location.search) { return [no, no]; }
    const target = new URL(address.href, window.location.origin);
    if (target.pathname !== window.location.pathname) { return [no, no]; }  // written by a page already left
    if (address.href !== here) {
        if (address.push) { window.history.pushState(null, '', address.href); }
        else { window.history.replaceState(null, '', address.href); }
    }
    return [window.location.search, window.location.href];
}
"""
"""Write the address bar (no navigation, no Dash routing) and return the query and the whole URL for
``dcc.Location``'s ``search`` and ``href``: with its props equal to the address bar, going back to the previous
entry is a change it reports, and it never writes back an ``href`` it held before (which it would, with
``refresh="callback-nav"``, for a page that came with the app's layout: its ``href`` is still the one it was opened
at)."""


def register(app: dash.Dash, location: str = "url") -> None:
    """The clientside callback that keeps the address bar (and ``dcc.Location`` ``location``) on the view."""
    app.clientside_callback(
        WRITE,
        Output(location, "search", allow_duplicate=True),
        Output(location, "href", allow_duplicate=True),
        Input(ADDRESS, "data"),
        State(location, "search"),
        prevent_initial_call=True,
    )
