"""A page that allows it comes with the app's layout when the browser opens its URL (Flask's test client on
``create_app``: the ``Referer`` of Dash's layout request is the page being opened)."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from torchscope.dashboard import routes
from torchscope.dashboard.app import create_app
from torchscope.io.importing import import_path
from torchscope.storage.store import Store


@pytest.fixture
def client(db_path: Path, cpu_trace: Path):
    import_path(db_path, cpu_trace)
    store = Store(db_path, read_only=True)
    yield create_app(store).server.test_client()
    store.close()
    gc.collect()  # a Dash app is a web of cycles: collect it (and the store it holds) before the next test


def _first_layout(client, referrer: str | None) -> tuple[object, object]:
    """The page slot's children and the shown address in the layout Dash's renderer fetches from ``referrer``."""
    headers = {"Referer": referrer} if referrer else {}
    layout = json.loads(client.get("/_dash-layout", headers=headers).data)
    found: dict[str, object] = {}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            props = node.get("props", {})
            if props.get("id") in ("page", "view-address"):
                found[props["id"]] = props.get("children") if props["id"] == "page" else props.get("data")
            walk(props.get("children"))
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(layout)
    return found.get("page"), found.get("view-address")


def test_the_profile_page_comes_with_the_layout_with_its_address(client) -> None:
    page, address = _first_layout(client, "http://localhost/profile/1?tab=kernels")
    assert address == {"href": "/profile/1?tab=kernels", "push": False}
    text = json.dumps(page)
    assert '"prof-kernels"' in text and '"prof-empty"' in text and "No device kernels" in text  # a CPU-only trace
    page, _ = _first_layout(client, "http://localhost/profile/1?tab=operators")
    assert '"prof-grid"' in json.dumps(page)
    page, address = _first_layout(client, "http://localhost/profile/1")
    assert address == {"href": "/profile/1", "push": False} and '"prof-overview"' in json.dumps(page)
    page, address = _first_layout(client, "http://localhost/profile/9")  # the router would show the same panel
    assert address == {"href": "/profile/9", "push": False} and '"404"' in json.dumps(page)


def test_the_timeline_comes_with_the_layout_with_its_window(client) -> None:
    page, address = _first_layout(client, "http://localhost/timeline/1?start=1000&end=900000")
    assert address == {"href": "/timeline/1?start=1000&end=900000", "push": False}
    text = json.dumps(page)
    assert '"tl-graph"' in text and '"tl-minimap"' in text and '"start": 1000, "end": 900000' in text


@pytest.mark.parametrize(
    "referrer",
    [None, "http://elsewhere.example/profile/1", "http://localhost/run/1", "http://localhost/",
     "http://localhost/no/such/page"],
)  # fmt: skip
def test_other_pages_and_unusable_referrers_leave_the_page_to_the_router(client, referrer: str | None) -> None:
    assert _first_layout(client, referrer) == (None, None)


def test_only_pages_that_say_so_come_with_the_layout() -> None:
    assert routes.in_first_layout("/profile/3") and routes.in_first_layout("/profile/3/")
    assert not routes.in_first_layout("/run/3") and not routes.in_first_layout("/nowhere")
    assert routes.in_first_layout("/timeline/3")
    assert sorted(view for view, page in routes.PAGES.items() if getattr(page, "IN_FIRST_LAYOUT", False)) == [
        "profile", "timeline"]


def test_the_layout_is_never_cached_for_another_page(client) -> None:
    response = client.get("/_dash-layout", headers={"Referer": "http://localhost/profile/1"})
    assert response.headers["Cache-Control"] == "no-store" and "Referer" in response.headers["Vary"]
    assert "no-store" not in client.get("/assets/style.css").headers.get("Cache-Control", "")
