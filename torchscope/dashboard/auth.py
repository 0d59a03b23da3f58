"""An access token in front of every route of a dashboard: pages, assets, Dash's callback endpoints, downloads.

The gate is WSGI middleware around the Flask server, so nothing that Dash or Flask routes (or fails to route) is
left out. A request passes with the token in one of three places:

- ``?token=TOKEN`` on a page address: the browser presents it once and is redirected to the same address without it,
  with a session cookie (``HttpOnly``, ``SameSite=Strict``) that carries a digest of the token, not the token;
- that cookie, on every request after;
- an ``Authorization: Bearer TOKEN`` header, for scripts and benchmarks.

Anything else gets ``401`` and one line of plain text. Every comparison is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from werkzeug.wrappers import Request, Response

from torchscope.errors import BadRequestError

COOKIE = "torchscope_session"
TOKEN_PARAM = "token"
UNAUTHORIZED = (
    "torchscope: 401 unauthorized: this dashboard needs its access token; open it once as "
    "http://HOST:PORT/?token=TOKEN (the token `torchscope serve --auth-token` was given)\n"
)
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (127.0.0.0/8, ::1, ``localhost``)."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to serve on an address other machines reach without an access token.

    Raises :class:`BadRequestError` (the CLI prints it as one line and exits non-zero).
    """
    if token is not None and not token.strip():
        raise BadRequestError("the access token is empty: give --auth-token a secret (or unset TORCHSCOPE_AUTH_TOKEN)")
    if token is None and not is_loopback(host):
        raise BadRequestError(
            f"refusing to serve on {host} without an access token: anyone who reaches it could read your runs; "
            "give --auth-token TOKEN (or set TORCHSCOPE_AUTH_TOKEN), or bind 127.0.0.1"
        )


def _digest(token: str) -> str:
    """What the session cookie holds: a keyed digest of the token, so the cookie never carries the token itself."""
    return hmac.new(token.encode(), b"torchscope session", hashlib.sha256).hexdigest()


def cookie_name(token: str) -> str:
    """The session cookie's name: :data:`COOKIE` and a short digest of the token, so that two dashboards on one host
    (cookies do not tell ports apart) with different tokens do not overwrite each other's cookie."""
    return f"{COOKIE}_{hmac.new(token.encode(), b'torchscope cookie name', hashlib.sha256).hexdigest()[:8]}"


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


class TokenGate:
    """WSGI middleware: passes a request that carries ``token`` (see the module), answers 401 to any other."""

    def __init__(self, app: WsgiApp, token: str) -> None:
        if not token:
            raise BadRequestError("the access token is empty")
        self.app = app
        self.token = token
        self.cookie = _digest(token)
        self.cookie_name = cookie_name(token)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        given = request.args.get(TOKEN_PARAM)
        if given is not None:
            if not _same(given, self.token):
                return _unauthorized()(environ, start_response)
            if request.method in ("GET", "HEAD"):
                return self._enter(request)(environ, start_response)
            return self.app(environ, start_response)
        if _same(request.cookies.get(self.cookie_name, ""), self.cookie):
            return self.app(environ, start_response)
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and _same(credentials.strip(), self.token):
            return self.app(environ, start_response)
        return _unauthorized()(environ, start_response)

    def _enter(self, request: Request) -> Response:
        """The same address without ``?token=``, with the session cookie set."""
        rest = [(k, v) for k, v in parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True)
                if k != TOKEN_PARAM]  # fmt: skip
        location = (request.script_root + request.path) + (f"?{urlencode(rest)}" if rest else "")
        response = Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})
        response.set_cookie(self.cookie_name, self.cookie, httponly=True, samesite="Strict", path="/")
        return response


def _unauthorized() -> Response:
    return Response(UNAUTHORIZED, status=401, mimetype="text/plain",
                    headers={"WWW-Authenticate": 'Bearer realm="torchscope"', "Cache-Control": "no-store"})  # fmt: skip


def require_token(server: Any, token: str) -> None:
    """Put a :class:`TokenGate` for ``token`` in front of every route of the Flask ``server`` (``app.server``)."""
    server.wsgi_app = TokenGate(server.wsgi_app, token)
