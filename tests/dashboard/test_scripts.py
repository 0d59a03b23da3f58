"""The page's scripts (Flask's test client on ``create_app``: no browser): plotly.js's basic bundle in place of the
full one while the two are the same plotly.js version, both loaded on demand; AG Grid and Cytoscape left for the pages
that show them; what the page opened draws first preloaded."""

from __future__ import annotations

import gc
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


def _bundles(page: str) -> dict:
    """``window.torchscopePlotly`` as the page writes it."""
    return json.loads(re.search(r"window.torchscopePlotly = (\{.*?\});</script>", page).group(1))


def _preloaded(page: str) -> list[str]:
    head = page[: page.index("</head>")]
    return re.findall(r'<link rel="preload" as="script" href="([^"]+)">', head)


def test_plotly_loads_on_demand_from_the_urls_the_page_names(client) -> None:
    page = client.get("/profile/1").get_data(as_text=True)
    tags = re.findall(r"<script [^>]*>", page)
    assert not [t for t in tags if "plotly-basic." in t or "plotly.min.js" in t or "/plotly/package_data/" in t]
    assert not [t for t in tags if 'src="/assets/vendor/' in t]  # Dash does not add the vendored files as assets
    bundles = _bundles(page)
    assert bundles["first"] == "basic" and _preloaded(page) == [bundles["basic"]]
    vendored = r"/_dash-component-suites/torchscope/assets/vendor/plotly-basic\.v[^/]+\.min\.js"
    assert re.fullmatch(vendored, bundles["basic"])
    assert client.get(bundles["basic"]).data.startswith(b"/**\n* plotly.js (basic - minified) v")
    assert bundles["full"] == "/_dash-component-suites/plotly/package_data/plotly.min.js"  # window._dashPlotlyJSURL
    full = client.get(bundles["full"])
    assert full.status_code == 200 and full.data.startswith(b"/**\n* plotly.js v")
    assert page.index("window.torchscopePlotly") < page.index("/assets/plotly_ready.js")
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
    assert plotly == {"relative_package_path": "package_data/plotly.min.js", "namespace": "plotly"}
    assert graph == {"relative_package_path": "dcc/async-graph.js", "namespace": "dash"}
    tag = '<script src="/_dash-component-suites/plotly/package_data/plotly.v7_1_0m1.min.js"></script>\n'
    kept, preload = scripts.plotly_on_demand("<a>" + tag + "<b>", "basic")
    full = "/_dash-component-suites/plotly/package_data/plotly.v7_1_0m1.min.js"
    assert _bundles(kept) == {"basic": None, "full": full, "first": "basic"} and preload == [full]
    assert kept.startswith("<a><script>window.torchscopePlotly") and kept.endswith("</script>\n<b>")


def test_ag_grid_and_cytoscape_are_left_for_the_pages_that_show_them(client) -> None:
    page = client.get("/profile/1").get_data(as_text=True)
    srcs = re.findall(r'<script src="([^"]+)"', page)
    assert not [s for s in srcs if "/dash_ag_grid/" in s or "/dash_cytoscape/" in s]
    urls = json.loads(re.search(r"window.torchscopeLazyLibraries = (\{.*?\});", page).group(1))
    assert sorted(urls) == ["dash_ag_grid", "dash_cytoscape"]
    for url in urls.values():  # still served, for assets/lazy_libraries.js (which comes after the map)
        assert client.get(url).status_code == 200
    assert page.index("window.torchscopeLazyLibraries") < page.index("/assets/lazy_libraries.js")
    assert "torchscopeComponentsAtOpen" not in page  # the overview shows no grid


def test_a_grid_shown_as_the_page_opens_is_preloaded_with_its_chunk(client) -> None:
    page = client.get("/profile/1?tab=kernels").get_data(as_text=True)
    assert json.loads(re.search(r"window.torchscopeComponentsAtOpen = (\[.*?\]);", page).group(1)) == [scripts.GRID]
    library = json.loads(re.search(r"window.torchscopeLazyLibraries = (\{.*?\});", page).group(1))["dash_ag_grid"]
    chunk = library.rsplit("/", 1)[0] + "/async-community.js"
    assert _preloaded(page) == [library, chunk]  # no chart on the kernels tab: no plotly.js either
    served = client.get(chunk)  # where AG Grid's bundle asks for its community grid
    assert served.status_code == 200 and b"AgGrid" in served.data


def test_defer_libraries_leaves_a_page_without_those_libraries_as_it_is() -> None:
    tags = '<script src="/_dash-component-suites/dash/deps/react@18.v4_4_1m1.3.1.min.js"></script>\n'
    assert scripts.defer_libraries(tags, [scripts.GRID]) == (tags, [])


@pytest.mark.parametrize(
    ("path", "bundle", "components"),
    [("/profile/1", "basic", []), ("/profile/1?tab=kernels", None, [scripts.GRID]),
     ("/profile/1?tab=memory", "basic", [scripts.GRID]), ("/run/1", "basic", []), ("/", None, [scripts.GRID]),
     ("/timeline/1", "basic", []), ("/hparams", "full", [scripts.GRID]), ("/graph/1", None, [scripts.CYTOSCAPE]),
     ("/graph/1?node=fc", "basic", [scripts.CYTOSCAPE]), ("/compare", None, []),
     ("/compare?a=1&b=2", "basic", [scripts.GRID])],
)  # fmt: skip
def test_each_page_preloads_what_it_draws_as_it_opens(client, path: str, bundle: str | None, components) -> None:
    page = client.get(path).get_data(as_text=True)
    bundles = _bundles(page)
    assert bundles["first"] == bundle
    at_open = re.search(r"window.torchscopeComponentsAtOpen = (\[.*?\]);", page)
    assert (json.loads(at_open.group(1)) if at_open else []) == components
    preloaded = _preloaded(page)
    assert [u for u in preloaded if "plotly" in u] == ([] if bundle is None else [bundles[bundle]])
    assert routes.first_paint(*(path.split("?") + [""])[:2]) == scripts.FirstPaint(bundle, tuple(components))
