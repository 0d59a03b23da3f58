"""The page's scripts beyond Dash's own, chosen for a fast first paint (:func:`first_paint_scripts`):
regenerator-runtime in place of Dash's ``@babel/polyfill`` (:func:`drop_polyfill`), plotly.js loaded when the page
needs it (:func:`plotly_on_demand`), AG Grid and Cytoscape left for the pages that show them
(:func:`defer_libraries`), and what the page opened shows first preloaded.

Dash would either load plotly.js only once a chart is on the page (two more round trips before the first chart
draws) or, with ``eager_loading``, together with every lazy chunk of every component library (MathJax, markdown,
AG Grid enterprise ...: 16 MB of JavaScript run before the page asks for its content). Charts start with plotly.js's
basic bundle (``assets/vendor/plotly-basic.min.js``: ``scatter``, ``bar`` and ``pie``, every chart but the hparams
page's): on a 2-core machine it starts in about 0.2 s where the full bundle takes 0.75-1 s of the browser's main
thread. A figure with another trace type loads the full bundle (``assets/plotly_ready.js``), which then replaces the
basic one. No script runs before Dash has asked for the page's content: the page's first bundle and libraries are
preloaded by the head and run while the content is on its way.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Literal

REGENERATOR = "assets/vendor/regenerator-runtime.js"
"""regenerator-runtime (MIT, from npm), which Dash's renderer and dcc call as a global: the one part of Dash's
``@babel/polyfill`` that a current browser lacks (:func:`drop_polyfill`)."""
BASIC_BUNDLE = "assets/vendor/plotly-basic.min.js"
"""plotly.js's basic bundle, relative to the ``torchscope`` package (the same version as the full one to be used)."""
BASIC_TRACES = ("scatter", "bar", "pie")
"""The trace types the basic bundle draws (``assets/plotly_ready.js`` holds the same list)."""

_PACKAGE = Path(__file__).resolve().parent.parent
VENDORED = r"^(plotly-basic\.min|regenerator-runtime)\.js$"
"""The scripts of ``assets/vendor/`` (file names, for Dash's ``assets_ignore``: ``assets_path_ignore`` needs Dash
3.1), which the page loads as :func:`page_scripts` says, not as an asset."""
LAZY_LIBRARIES = ("dash_ag_grid", "dash_cytoscape")
"""Component libraries loaded when a page first shows one of their components (:func:`defer_libraries`)."""
LIBRARY_CHUNKS = {"dash_ag_grid": ("async-community.js",)}
"""The lazy chunks (next to the library's bundle) that a library's component loads as it first draws: preloaded
with the library for a page that shows the component as it opens."""
FULL_BUNDLE = "_dash-component-suites/plotly/package_data/plotly.min.js"
"""Dash's URL of the full plotly.js (``window._dashPlotlyJSURL``), after the app's ``requests_pathname_prefix``."""
_LIBRARY = re.compile(
    r'<script src="([^"]*/_dash-component-suites/(' + "|".join(LAZY_LIBRARIES) + r')/[^"]*)"></script>\n?'
)
_PLOTLY_TAG = re.compile(
    r'<script src="(([^"]*)_dash-component-suites/(?:torchscope/' + re.escape(BASIC_BUNDLE.rsplit(".", 2)[0])
    + r'|plotly/package_data/plotly)[^"]*)"[^>]*></script>\n?'
)
_POLYFILL = re.compile(r'<script src="[^"]*/_dash-component-suites/dash/deps/polyfill@[^"]*"></script>\n?')
_VERSION = re.compile(r"plotly\.js(?: \([^)]*\))? v(\d+\.\d+\.\d+)")


@dataclass(frozen=True)
class FirstPaint:
    """What a page draws as soon as it opens, so that the browser fetches the scripts it needs from the start.

    ``plotly`` is the plotly.js bundle its first charts need: ``"basic"`` (scatter, bar, pie), ``"full"`` (any other
    trace type) or None (no chart until the user asks for one: the bundle loads then). ``components`` are the
    lazily loaded components it shows (``"dash_ag_grid.AgGrid"``; see ``scripts.LAZY_LIBRARIES``).
    """

    plotly: Literal["basic", "full"] | None = "basic"
    components: tuple[str, ...] = ()


GRID = "dash_ag_grid.AgGrid"
"""The data grid's component (:func:`torchscope.dashboard.components.data_grid`), for :attr:`FirstPaint.components`."""
CYTOSCAPE = "dash_cytoscape.Cytoscape"
"""The graph view's canvas, for :attr:`FirstPaint.components`."""


def bundle_version(path: Path) -> str | None:
    """The plotly.js version in the header comment of a bundle (``* plotly.js (basic - minified) v4.1.1``)."""
    with path.open(encoding="utf-8") as file:
        head = file.read(300)
    found = _VERSION.search(head)
    return found.group(1) if found else None


@lru_cache(maxsize=1)
def basic_bundle_usable() -> bool:
    """Whether the vendored basic bundle is the version of the full plotly.js that the ``plotly`` package ships.

    Only then may a page drawn with the one go on with the other; with another ``plotly`` installed, pages load the
    full bundle from the start, as Dash would.
    """
    from plotly.offline import get_plotlyjs_version

    return bundle_version(_PACKAGE / BASIC_BUNDLE) == get_plotlyjs_version()


def drop_polyfill(scripts_html: str) -> str:
    """Dash's script tags without ``@babel/polyfill`` (core-js 2 and regenerator-runtime, for browsers of 2015).

    On a current Chromium it costs 50-80 ms to start, and core-js, whose whitespace check the browser fails,
    replaces ``parseFloat`` with a slower one that plotly.js calls all the time while it draws. The page loads
    :data:`REGENERATOR` instead (:func:`page_scripts`).
    """
    return _POLYFILL.sub("", scripts_html)


def defer_libraries(scripts_html: str, at_open: Iterable[str] = ()) -> tuple[str, list[str]]:
    """Dash's script tags with :data:`LAZY_LIBRARIES`' bundles left for ``assets/lazy_libraries.js`` to load, and
    the URLs to preload for the components ``at_open`` (``"dash_ag_grid.AgGrid"``) that the page shows as it opens.

    AG Grid (1.3 MB) and Cytoscape (0.5 MB) took about 0.1 s of a 2-core machine's main thread to start, on every
    page, with or without a grid or a graph. Their tags give way to the map of their URLs, which
    ``lazy_libraries.js`` reads (it runs after them, with the other assets), and to the list of ``at_open``
    components and their libraries' :data:`LIBRARY_CHUNKS`, which it starts to load, and runs, while Dash fetches the
    page's content (a chunk would otherwise be fetched and run only once the component draws).
    """
    found: dict[str, str] = {}

    def take(match: re.Match[str]) -> str:
        first = not found
        found[match.group(2)] = match.group(1)
        return "\x00" if first else ""

    kept = _LIBRARY.sub(take, scripts_html)
    if not found:
        return scripts_html, []
    wanted = [name for name in at_open if name.split(".")[0] in found]
    preload, chunks = [], []
    for namespace in dict.fromkeys(name.split(".")[0] for name in wanted):
        url = found[namespace]
        chunks += [url.rsplit("/", 1)[0] + "/" + chunk for chunk in LIBRARY_CHUNKS.get(namespace, ())]
        preload.append(url)
    tags = f"<script>window.torchscopeLazyLibraries = {_script_json(found)};"
    if wanted:
        tags += (f" window.torchscopeComponentsAtOpen = {_script_json(wanted)};"
                 f" window.torchscopeChunksAtOpen = {_script_json(chunks)};")  # fmt: skip
    return kept.replace("\x00", tags + "</script>\n"), preload + chunks


def plotly_on_demand(scripts_html: str, first: str | None) -> tuple[str, list[str]]:
    """Dash's script tags with plotly.js's tag (:func:`page_scripts`) giving way to the bundles' URLs, which
    ``assets/plotly_ready.js`` loads when a chart asks, and the URL to preload for ``first``, the bundle the page's
    first charts need (``"basic"``, ``"full"``; None: no chart as the page opens).

    A deferred script would run before Dash asks for the page's content, and so delay it by as long as plotly.js
    takes to start; ``plotly_ready.js`` runs the preloaded bundle once the browser is idle, while the content is on
    its way.
    """
    found = _PLOTLY_TAG.search(scripts_html)
    if found is None:
        return scripts_html, []
    url, prefix = found.group(1), found.group(2)
    basic = url if "/plotly-basic." in url else None
    full = prefix + FULL_BUNDLE if basic else url
    bundles = {"basic": basic, "full": full, "first": first}
    tag = f"<script>window.torchscopePlotly = {_script_json(bundles)};</script>\n"
    preload = [] if first is None else [basic if first == "basic" and basic else full]
    return scripts_html[: found.start()] + tag + scripts_html[found.end() :], preload


def preload_links(urls: Iterable[str]) -> str:
    """``<link rel="preload">`` tags, for the page's head, that fetch these scripts while the page starts."""
    return "".join(f'<link rel="preload" as="script" href="{html.escape(url)}">\n' for url in urls)


def first_paint_scripts(scripts_html: str, first: FirstPaint) -> tuple[str, str]:
    """Dash's script tags for a page that draws ``first`` as it opens, and the preload links for its head."""
    scripts_html = drop_polyfill(scripts_html)
    scripts_html, libraries = defer_libraries(scripts_html, first.components)
    scripts_html, bundle = plotly_on_demand(scripts_html, first.plotly)
    return scripts_html, preload_links(bundle + libraries)


def _script_json(value: Any) -> str:
    """``value`` as JSON that an inline ``<script>`` may hold."""
    return json.dumps(value).replace("<", "\\u003c")


def page_scripts() -> list[dict[str, Any]]:
    """Script resources (for ``app.scripts.append_script``): regenerator-runtime, a plotly.js bundle (whose tag
    :func:`plotly_on_demand` replaces with its URL), then dcc.Graph's chunk. They come after React and the component
    libraries, and before Dash's renderer and dcc."""
    if basic_bundle_usable():
        plotly = {"relative_package_path": BASIC_BUNDLE, "namespace": "torchscope"}
    else:
        plotly = {"relative_package_path": "package_data/plotly.min.js", "namespace": "plotly"}
    return [{"relative_package_path": REGENERATOR, "namespace": "torchscope"}, plotly,
            {"relative_package_path": "dcc/async-graph.js", "namespace": "dash"}]  # fmt: skip
