"""Every URL of the dashboard: built here, parsed here. A page never assembles ``/graph/...`` by hand.

Each view has one path (``ROUTES``, a regex with named groups matched against the whole path) and a builder that
takes typed arguments and returns the path with its query string. ``parse_query`` reads ``dcc.Location.search``.
Query values that are None are left out; everything is quoted so that names with spaces, ``/`` or ``#`` survive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

ROUTES: dict[str, str] = {
    "runs": r"/",
    "run": r"/run/(?P<run_id>\d+)",
    "graph": r"/graph/(?P<run_id>\d+)",
    "profile": r"/profile/(?P<profile_id>\d+)",
    "timeline": r"/timeline/(?P<profile_id>\d+)",
    "compare": r"/compare",
    "hparams": r"/hparams",
}
"""The path pattern of each view, by view name (the folder under ``dashboard/views``)."""


def _with_query(path: str, query: Mapping[str, Any]) -> str:
    kept = {k: v for k, v in query.items() if v is not None}
    return f"{path}?{urlencode(kept, quote_via=quote)}" if kept else path


def match(pathname: str) -> tuple[str, dict[str, str]] | None:
    """``(view, groups)`` for a path (a trailing ``/`` ignored), or None when no view has that path."""
    path = pathname.rstrip("/") or "/"
    for view, pattern in ROUTES.items():
        found = re.fullmatch(pattern, path)
        if found:
            return view, found.groupdict()
    return None


def parse_query(search: str | None) -> dict[str, str]:
    """The query string of a ``dcc.Location`` (``?a=1&b=x``) as a dict; the last value wins for repeated keys."""
    return {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items()}


def runs() -> str:
    """The runs page."""
    return "/"


def run(
    run_id: int,
    *,
    x: str | None = None,
    smoothing: float | None = None,
    log: bool = False,
    tags: str | None = None,
    hist: str | None = None,
    hmode: str | None = None,
) -> str:
    """The live page of one run: charts against ``x`` (``wall_time``; default ``step``), ``smoothing`` (0 to 0.99),
    ``log`` scale, only the tags matching ``tags`` (a regular expression), the histogram ``hist`` (``tb:<tag>`` or
    ``tensor:<name>``) drawn as ``hmode`` (``ridge`` or ``distribution``). Defaults are left out of the URL."""
    query = {"x": None if x in (None, "step") else x, "smoothing": f"{smoothing:g}" if smoothing else None,
             "log": 1 if log else None, "tags": tags or None, "hist": hist, "hmode": hmode}  # fmt: skip
    return _with_query(f"/run/{int(run_id)}", query)


def graph(
    run_id: int,
    *,
    step: int | None = None,
    graph_id: int | None = None,
    model: str | None = None,
    node: str | None = None,
    compare: int | None = None,
    color: str | None = None,
    params: int | None = None,
    view: str | None = None,
) -> str:
    """The graph page: a captured ``step`` or an imported ``graph_id``, a selected ``node`` (module path or node
    name), colouring against another run (``compare``), a ``color`` mode, ``params=0`` to hide parameters,
    ``view="fx"`` to show the FX graphs torch.compile made (the page's "executed | FX" toggle; always last)."""
    query = {"step": step, "graph": graph_id, "model": model, "node": node, "compare": compare, "color": color,
             "params": params, "view": view}  # fmt: skip
    return _with_query(f"/graph/{int(run_id)}", query)


def profile(profile_id: int, *, tab: str | None = None, **query: Any) -> str:
    """A tab of the profile page (``overview`` when None); extra ``query`` values are the tab's own controls."""
    return _with_query(f"/profile/{int(profile_id)}", {"tab": tab, **query})


def timeline(
    profile_id: int,
    *,
    start: int | None = None,
    end: int | None = None,
    q: str | None = None,
    event: int | None = None,
    ranks: bool = False,
    step: int | None = None,
) -> str:
    """The timeline over ``[start, end]`` (ns from the profile's start), searching for ``q``, with ``event``
    selected; ``ranks=True`` draws every rank of the profile's group side by side, aligned on ``ProfilerStep#step``
    (default: the first step all ranks have)."""
    query = {"start": start, "end": end, "q": q, "event": event, "ranks": 1 if ranks else None, "step": step}
    return _with_query(f"/timeline/{int(profile_id)}", query)


def timeline_around(profile_id: int, start: int, end: int, *, q: str | None = None, room: float = 0.5) -> str:
    """The timeline centred on ``[start, end]`` with ``room`` times its length (at least 1 µs) on each side."""
    pad = max(int((end - start) * room), 1000)
    return timeline(profile_id, start=max(start - pad, 0), end=end + pad, q=q)


def compare(a: int | str | None = None, b: int | str | None = None, **query: Any) -> str:
    """The compare page of two references (a run ``3`` or a profile ``p12``); the bare page when either is None."""
    if a is None or b is None:
        return "/compare"
    return _with_query("/compare", {"a": a, "b": b, **query})


def hparams(*, color: str | None = None) -> str:
    """The hyperparameters of every run, the figure coloured by metric ``color``."""
    return _with_query("/hparams", {"color": color})
