"""dashboard/urls.py: every URL is built and parsed in one place; builders and the router agree."""

from __future__ import annotations

import pytest

from torchscope.dashboard import urls


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (urls.runs(), "/"),
        (urls.run(3), "/run/3"),
        (urls.run(3, x="step", smoothing=0, log=False, tags="", hist=None, hmode=None), "/run/3"),
        (urls.run(3, x="wall_time", smoothing=0.6, log=True), "/run/3?x=wall_time&smoothing=0.6&log=1"),
        (urls.run(3, tags="^train/", hist="tb:layer 1/w", hmode="distribution"),
         "/run/3?tags=%5Etrain%2F&hist=tb%3Alayer%201%2Fw&hmode=distribution"),
        (urls.profile(7, tab="operators", q="aten::mm"), "/profile/7?tab=operators&q=aten%3A%3Amm"),
        (urls.graph(3), "/graph/3"),
        (urls.graph(3, step=5, node="encoder.layers.0 attn"), "/graph/3?step=5&node=encoder.layers.0%20attn"),
        (urls.graph(3, graph_id=2, params=0), "/graph/3?graph=2&params=0"),
        (urls.graph(3, step=1, color="grad", view="fx"), "/graph/3?step=1&color=grad&view=fx"),
        (urls.profile(7), "/profile/7"),
        (urls.profile(7, tab="kernels"), "/profile/7?tab=kernels"),
        (urls.timeline(7, start=0, end=10, q="aten::mm#1"), "/timeline/7?start=0&end=10&q=aten%3A%3Amm%231"),
        (urls.timeline_around(7, 5000, 7000), "/timeline/7?start=4000&end=8000"),
        (urls.timeline_around(7, 100, 200, q="k"), "/timeline/7?start=0&end=1200&q=k"),
        (urls.timeline_around(3, 5000, 6000, q="aten::log"), "/timeline/3?start=4000&end=7000&q=aten%3A%3Alog"),
        (urls.timeline_around(3, 100_000, 600_000, q="k", room=0.02), "/timeline/3?start=90000&end=610000&q=k"),
        (urls.compare(), "/compare"),
        (urls.compare(3, "p4"), "/compare?a=3&b=p4"),
    ],
)
def test_builders_spell_each_view(built: str, expected: str) -> None:
    assert built == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", ("runs", {})),
        ("/run/12/", ("run", {"run_id": "12"})),
        ("/graph/4", ("graph", {"run_id": "4"})),
        ("/profile/9", ("profile", {"profile_id": "9"})),
        ("/timeline/9", ("timeline", {"profile_id": "9"})),
        ("/compare", ("compare", {})),
        ("/run/x", None),
        ("/nowhere", None),
    ],
)
def test_match_finds_the_view_of_a_path(path: str, expected: object) -> None:
    assert urls.match(path) == expected


def test_parse_query_reads_what_the_builders_write() -> None:
    built = urls.graph(3, step=5, node="a b/c#d", compare=2)
    path, _, search = built.partition("?")
    assert urls.match(path) == ("graph", {"run_id": "3"})
    assert urls.parse_query("?" + search) == {"step": "5", "node": "a b/c#d", "compare": "2"}
    assert urls.parse_query("") == {}
    assert urls.parse_query("?a=1&a=2") == {"a": "2"}


def test_every_view_in_routes_has_a_page_found_by_its_name() -> None:
    from torchscope.dashboard import routes

    assert list(routes.PAGES) == list(urls.ROUTES)
    for view, page in routes.PAGES.items():
        assert page.__name__ == f"torchscope.dashboard.views.{view}.page"
        assert callable(page.layout) and callable(page.register)


def test_a_path_no_view_has_renders_a_404_panel() -> None:
    from torchscope.dashboard import routes

    panel = str(routes.render(None, "/nowhere", "", refresh_ms=1000))  # type: ignore[arg-type]
    assert "404" in panel and "no page at /nowhere" in panel


def test_the_run_page_reads_back_the_controls_its_url_holds() -> None:
    built = urls.run(3, x="wall_time", smoothing=0.25, log=True, tags="loss|acc", hist="tensor:fc1.weight",
                     hmode="ridge")  # fmt: skip
    path, _, search = built.partition("?")
    assert urls.match(path) == ("run", {"run_id": "3"})
    assert urls.parse_query("?" + search) == {"x": "wall_time", "smoothing": "0.25", "log": "1", "tags": "loss|acc",
                                              "hist": "tensor:fc1.weight", "hmode": "ridge"}  # fmt: skip


def test_the_router_leaves_alone_a_page_that_wrote_its_own_url() -> None:
    from torchscope.dashboard import history

    assert history.href_of("/run/3", "?log=1") == "/run/3?log=1" == history.href_of("/run/3", "log=1")
    assert history.href_of(None, None) == "/" and history.href_of("/run/3", "?") == "/run/3"
    assert history.address("/run/3?log=1", push=True) == {"href": "/run/3?log=1", "push": True}
    assert history.should_render("/run/3", "", None)  # first load
    assert not history.should_render("/run/3", "?log=1", history.address("/run/3?log=1"))  # the page wrote it
    assert history.should_render("/run/3", "", history.address("/run/3?log=1"))  # back to an earlier entry
    assert history.should_render("/graph/3", "?log=1", history.address("/run/3?log=1"))  # another page
    # the first call for a page that came with the layout: on screen already, whatever the page wrote since
    assert not history.should_render("/profile/3", "", history.address("/profile/3?q=x"), first=True)
    assert history.should_render("/profile/3", "", None, first=True)  # the layout had no page


def test_run_view_href_leaves_defaults_out() -> None:
    from torchscope.dashboard.views.run.page import view_href

    options = [{"label": "a", "value": "tb:a"}, {"label": "b", "value": "tb:b"}]
    assert view_href(3, 0, [], "step", "", "tb:a", options, "ridge") == "/run/3"
    assert view_href(3, 0.6, ["log"], "wall_time", " ^tr ", "tb:b", options, "distribution") == (
        "/run/3?x=wall_time&smoothing=0.6&log=1&tags=%5Etr&hist=tb%3Ab&hmode=distribution"
    )
    assert view_href(3, None, None, None, None, None, [], None) == "/run/3"
