"""The page's chart scripts (Flask's test client on ``create_app``: no browser): plotly.js's basic bundle, deferred,
in place of the full one, while the two are the same plotly.js version."""

from __future__ import annotations

import gc
import html
import json
import re
from pathlib import Path

import pytest
from plotly.offline import get_plotlyjs_version

import torchscope
from torchscope.dashboard import routes, scripts
from torchscope.dashboard.app import create_app
from torchscope.storage.store import Store


@pytest.fixture
def client(db_path: Path):
    with torchscope.init(name="charts", db=db_path) as run:
        run.log({"loss": 1.0}, step=0)
    store = Store(db_path, read_only=True)
    yield create_app(store).server.test_client()
    store.close()
    gc.collect()  # a Dash app is a web of cycles: collect it (and the store it holds) before the next test


def test_the_vendored_basic_bundle_is_the_version_of_plotlys_full_bundle() -> None:
    path = Path(scripts.__file__).resolve().parent.parent / scripts.BASIC_BUNDLE
    assert scripts.bundle_version(path) == get_plotlyjs_version()
    assert scripts.basic_bundle_usable()


def test_the_page_loads_the_basic_bundle_deferred_and_serves_the_full_one_on_demand(client) -> None:
    page = client.get("/profile/1").get_data(as_text=True)
    tags = re.findall(r"<script [^>]*>", page)
    basic = [t for t in tags if "/_dash-component-suites/torchscope/assets/vendor/plotly-basic." in t]
    assert len(basic) == 1 and ' defer="defer"' in basic[0] and "torchscopePlotlyLoaded('basic')" in basic[0]
    assert not [t for t in tags if "plotly.min.js" in t or "/plotly/package_data/" in t]
    assert not [t for t in tags if 'src="/assets/vendor/' in t]  # Dash does not add the vendored files as assets
    src = re.search(r'src="([^"]+)"', basic[0]).group(1)
    assert client.get(src).data.startswith(b"/**\n* plotly.js (basic - minified) v")
    full = client.get("/_dash-component-suites/plotly/package_data/plotly.min.js")  # window._dashPlotlyJSURL
    assert full.status_code == 200 and full.data.startswith(b"/**\n* plotly.js v")
    assert client.get("/assets/plotly_ready.js").status_code == 200


def test_the_page_loads_regenerator_runtime_instead_of_dashs_polyfill(client) -> None:
    page = client.get("/").get_data(as_text=True)
    srcs = re.findall(r'<script src="([^"]+)"', page)
    assert not [s for s in srcs if "polyfill" in s]
    regenerator = [i for i, s in enumerate(srcs) if "/torchscope/assets/vendor/regenerator-runtime." in s]
    renderer = [i for i, s in enumerate(srcs) if "/dash-renderer/" in s]
    dcc = [i for i, s in enumerate(srcs) if "/dcc/dash_core_components" in s]
    assert len(regenerator) == 1 and regenerator[0] < min(renderer + dcc)  # they call it as they start
    assert b"regeneratorRuntime = runtime" in client.get(srcs[regenerator[0]]).data


def test_drop_polyfill_removes_only_dashs_polyfill_tag() -> None:
    tags = ('<script src="/_dash-component-suites/dash/deps/polyfill@7.v4_4_1m1.12.1.min.js"></script>\n'
            '<script src="/_dash-component-suites/dash/deps/react@18.v4_4_1m1.3.1.min.js"></script>')  # fmt: skip
    assert scripts.drop_polyfill(tags) == tags.split("\n")[1]


def test_without_a_basic_bundle_of_the_same_version_the_page_loads_the_full_one(monkeypatch) -> None:
    monkeypatch.setattr(scripts, "basic_bundle_usable", lambda: False)
    regenerator, plotly, graph = scripts.page_scripts()
    assert regenerator == {"relative_package_path": scripts.REGENERATOR, "namespace": "torchscope"}
    assert plotly["relative_package_path"] == "package_data/plotly.min.js" and plotly["namespace"] == "plotly"
    assert plotly["attributes"]["defer"] == "defer" and "'full'" in plotly["attributes"]["onload"]
    assert graph == {"relative_package_path": "dcc/async-graph.js", "namespace": "dash"}


def test_ag_grid_and_cytoscape_are_left_for_the_pages_that_show_them(client) -> None:
    page = client.get("/profile/1").get_data(as_text=True)
    srcs = re.findall(r'<script src="([^"]+)"', page)
    assert not [s for s in srcs if "/dash_ag_grid/" in s or "/dash_cytoscape/" in s]
    urls = json.loads(re.search(r"window.torchscopeLazyLibraries = (\{.*?\});</script>", page).group(1))
    assert sorted(urls) == ["dash_ag_grid", "dash_cytoscape"]
    for url in urls.values():  # still served, for assets/lazy_libraries.js (which comes after the map)
        assert client.get(url).status_code == 200
    assert page.index("window.torchscopeLazyLibraries") < page.index("/assets/lazy_libraries.js")


def test_defer_libraries_leaves_a_page_without_those_libraries_as_it_is() -> None:
    tags = '<script src="/_dash-component-suites/dash/deps/react@18.v4_4_1m1.3.1.min.js"></script>\n'
    assert scripts.defer_libraries(tags) == tags


@pytest.mark.parametrize(
    ("path", "bundle"),
    [("/profile/1", "basic"), ("/profile/1?tab=kernels", "basic"), ("/profile/1?tab=memory", "basic"),
     ("/run/1", "basic"), ("/", "basic"), ("/timeline/1", "full"), ("/hparams", "full")],
)  # fmt: skip
def test_a_page_that_needs_the_full_plotly_bundle_loads_it_at_once(client, path: str, bundle: str) -> None:
    tags = re.findall(r"<script [^>]*>", client.get(path).get_data(as_text=True))
    plotly = [t for t in tags if "/plotly-basic." in t or "/plotly/package_data/plotly.min.js" in t]
    assert len(plotly) == 1 and ' defer="defer"' in plotly[0]
    assert ("/plotly-basic." in plotly[0]) == (bundle == "basic")
    assert f"torchscopePlotlyLoaded({bundle!r})" in html.unescape(plotly[0])
    assert routes.needs_full_plotly(*(path.split("?") + [""])[:2]) == (bundle == "full")
