"""An access token in front of every route of the dashboard (Flask's test client on ``create_app``: no browser)."""

from __future__ import annotations

import gc
import json
import re
from pathlib import Path

import pytest

import torchscope
from torchscope.dashboard import auth
from torchscope.dashboard.app import create_app
from torchscope.storage.store import Store

TOKEN = "s3cret-Tøken"


@pytest.fixture(autouse=True)
def _collect_apps():
    """A Dash app is a web of cycles: collect each test's apps (and the stores they hold) before the next test."""
    yield
    gc.collect()


@pytest.fixture
def client(db_path: Path):
    with torchscope.init(name="guarded", db=db_path) as run:
        run.log({"loss": 1.0}, step=0)
    store = Store(db_path, read_only=True)
    app = create_app(store, auth_token=TOKEN)
    yield app.server.test_client()
    store.close()


def _render_callback(pathname: str) -> dict:
    """The body a browser POSTs to ``/_dash-update-component`` for the page router."""
    return {
        "output": "..page.children...view-address.data..",
        "outputs": [{"id": "page", "property": "children"}, {"id": "view-address", "property": "data"}],
        "inputs": [{"id": "url", "property": "pathname", "value": pathname},
                   {"id": "url", "property": "search", "value": ""}],
        "state": [{"id": "view-address", "property": "data", "value": None}],
        "changedPropIds": ["url.pathname"],
    }  # fmt: skip


def _asset_paths(client) -> list[str]:
    """The script and style addresses the index page names (Dash's component suites and torchscope's assets)."""
    page = client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    return sorted(set(re.findall(r'(?:src|href)="(/(?:_dash-component-suites|assets)/[^"?]+)', page)))


def test_every_kind_of_route_answers_401_without_the_token(client) -> None:
    assets = _asset_paths(client)
    suites = [p for p in assets if p.startswith("/_dash-component-suites/")]
    assert suites and "/assets/style.css" in assets
    gets = ["/", "/run/1", "/graph/1", "/profile/1", "/timeline/1", "/compare", "/_dash-layout", "/_dash-dependencies",
            "/_favicon.ico", "/assets/style.css", suites[0], "/no/such/page"]  # fmt: skip
    for path in gets:
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.mimetype == "text/plain"
        assert response.get_data(as_text=True) == auth.UNAUTHORIZED
    response = client.post("/_dash-update-component", json=_render_callback("/run/1"))
    assert response.status_code == 401
    assert response.get_data(as_text=True).count("\n") == 1


def test_token_in_the_address_becomes_a_cookie_and_is_dropped_from_the_address(client) -> None:
    response = client.get("/run/1", query_string={"token": TOKEN, "x": "1"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/run/1?x=1"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{auth.cookie_name(TOKEN)}=")
    assert auth.cookie_name(TOKEN).startswith(auth.COOKIE + "_")
    assert auth.cookie_name(TOKEN) != auth.cookie_name("another token")  # two dashboards on one host keep theirs
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= {part.strip() for part in cookie.split(";")}
    assert TOKEN not in cookie and "s3cret" not in cookie
    # the test client keeps the cookie, as a browser does: every route now answers
    assert client.get("/run/1?x=1").status_code == 200
    assert client.get("/_dash-layout").status_code == 200
    assert client.get("/assets/style.css").status_code == 200
    for path in _asset_paths(client):
        assert client.get(path).status_code == 200, path
    response = client.post("/_dash-update-component", json=_render_callback("/run/1"))
    assert response.status_code == 200
    assert "guarded" in json.dumps(response.get_json())


def test_wrong_token_wrong_cookie_and_wrong_bearer_are_401(client) -> None:
    assert client.get("/", query_string={"token": "s3cret"}).status_code == 401
    assert client.get("/", query_string={"token": ""}).status_code == 401
    client.set_cookie(auth.cookie_name(TOKEN), TOKEN)  # the token itself is not the session cookie
    assert client.get("/").status_code == 401
    client.delete_cookie(auth.cookie_name(TOKEN))
    assert client.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 401
    assert client.get("/", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_without_a_token_the_app_is_open(db_path: Path) -> None:
    torchscope.init(name="open", db=db_path).finish()
    with Store(db_path, read_only=True) as store:
        assert create_app(store).server.test_client().get("/").status_code == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.org", False)],
)  # fmt: skip
def test_only_loopback_addresses_serve_without_a_token(host: str, loopback: bool) -> None:
    assert auth.is_loopback(host) is loopback
    auth.check_exposure(host, "a-token")
    if loopback:
        auth.check_exposure(host, None)
    else:
        with pytest.raises(torchscope.TorchscopeError, match=f"refusing to serve on {re.escape(host)} without"):
            auth.check_exposure(host, None)


def test_the_page_never_shows_the_database_password(postgres_url: str) -> None:
    from torchscope.storage.engine import open_engine

    url = postgres_url.replace("postgres@", "postgres:hunter2@")  # the test server trusts local users: unused
    open_engine(url, create=True).dispose()
    with Store(url, read_only=True) as store:
        assert store.display_url.startswith("postgresql+psycopg://postgres:***@/torchscope?host=")
        layout = create_app(store).server.test_client().get("/_dash-layout").get_data(as_text=True)
    assert "hunter2" not in layout and "postgres:***@" in layout
