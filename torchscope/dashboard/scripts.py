"""The page's scripts beyond Dash's own, chosen for a fast first paint: regenerator-runtime in place of Dash's
``@babel/polyfill`` (:func:`drop_polyfill`), and plotly.js and dcc.Graph's lazy chunk, so that the first chart draws
as soon as the page's content arrives.

Dash would either load them only once a chart is on the page (two more round trips before the first chart draws) or,
with ``eager_loading``, together with every lazy chunk of every component library (MathJax, markdown, AG Grid
enterprise ...: 16 MB of JavaScript run before the page asks for its content). The page starts with plotly.js's
basic bundle (``assets/vendor/plotly-basic.min.js``: ``scatter``, ``bar`` and ``pie``, every chart but the
timeline's and the hparams page's): on a 2-core machine it starts in about 0.2 s where the full
bundle takes 0.75-1 s of the browser's main thread. A figure with another trace type loads the full bundle first
(``assets/plotly_ready.js``), which then replaces the basic one. The basic bundle is deferred: it runs once the page
is parsed, while Dash fetches the page's content; until then ``window.Plotly`` is a promise of it, which dcc.Graph
waits on. webpack finds the chunk the second script registers.
"""

from __future__ import annotations

import html
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

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
_LIBRARY = re.compile(
    r'<script src="([^"]*/_dash-component-suites/(' + "|".join(LAZY_LIBRARIES) + r')/[^"]*)"></script>\n?'
)
_BASIC_TAG = re.compile(
    r'<script src="([^"]*)_dash-component-suites/torchscope/' + re.escape(BASIC_BUNDLE.rsplit(".", 2)[0])
    + r'[^>]*></script>'
)
_POLYFILL = re.compile(r'<script src="[^"]*/_dash-component-suites/dash/deps/polyfill@[^"]*"></script>\n?')
_VERSION = re.compile(r"plotly\.js(?: \([^)]*\))? v(\d+\.\d+\.\d+)")


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


def _loaded(bundle: str) -> str:
    return f"window.torchscopePlotlyLoaded && window.torchscopePlotlyLoaded('{bundle}')"


def full_plotly_first(scripts_html: str) -> str:
    """Dash's script tags with the full plotly.js (deferred, like the basic one) in place of the basic
    bundle, for a page that draws a trace type the basic bundle lacks: it would load both, one after the other."""
    def full(match: re.Match[str]) -> str:
        src = f"{match.group(1)}_dash-component-suites/plotly/package_data/plotly.min.js"  # window._dashPlotlyJSURL
        return f'<script src="{src}" defer="defer" onload="{html.escape(_loaded("full"))}"></script>'

    return _BASIC_TAG.sub(full, scripts_html)


def drop_polyfill(scripts_html: str) -> str:
    """Dash's script tags without ``@babel/polyfill`` (core-js 2 and regenerator-runtime, for browsers of 2015).

    On a current Chromium it costs 50-80 ms to start, and core-js, whose whitespace check the browser fails,
    replaces ``parseFloat`` with a slower one that plotly.js calls all the time while it draws. The page loads
    :data:`REGENERATOR` instead (:func:`page_scripts`).
    """
    return _POLYFILL.sub("", scripts_html)


def defer_libraries(scripts_html: str) -> str:
    """Dash's script tags with :data:`LAZY_LIBRARIES`' bundles left for ``assets/lazy_libraries.js`` to load.

    AG Grid (1.3 MB) and Cytoscape (0.5 MB) took about 0.1 s of a 2-core machine's main thread to start, on every
    page, with or without a grid or a graph. Their tags give way to the map of their URLs, which
    ``lazy_libraries.js`` reads (it runs after them, with the other assets).
    """
    found: dict[str, str] = {}

    def take(match: re.Match[str]) -> str:
        first = not found
        found[match.group(2)] = match.group(1)
        return "\x00" if first else ""

    kept = _LIBRARY.sub(take, scripts_html)
    if not found:
        return scripts_html
    urls = json.dumps(found).replace("<", "\\u003c")
    return kept.replace("\x00", f"<script>window.torchscopeLazyLibraries = {urls};</script>\n")


def page_scripts() -> list[dict[str, Any]]:
    """Script resources (for ``app.scripts.append_script``): regenerator-runtime, a plotly.js bundle, then dcc.Graph's
    chunk. They come after React and the component libraries, and before Dash's renderer and dcc."""
    if basic_bundle_usable():
        plotly = {"relative_package_path": BASIC_BUNDLE, "namespace": "torchscope",
                  "attributes": {"defer": "defer", "onload": _loaded("basic")}}  # fmt: skip
    else:
        plotly = {"relative_package_path": "package_data/plotly.min.js", "namespace": "plotly",
                  "attributes": {"defer": "defer", "onload": _loaded("full")}}  # fmt: skip
    return [{"relative_package_path": REGENERATOR, "namespace": "torchscope"}, plotly,
            {"relative_package_path": "dcc/async-graph.js", "namespace": "dash"}]  # fmt: skip
