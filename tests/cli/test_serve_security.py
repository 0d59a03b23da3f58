"""``torchscope serve``: no open dashboard on a non-loopback address, the token from the environment, and
``--workers N`` as N gunicorn processes."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

import torchscope
from torchscope.cli.main import main
from torchscope.dashboard.server import serve_in_subprocess


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5"])
def test_serving_a_non_loopback_address_without_a_token_refuses_to_start(
    host: str, db_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TORCHSCOPE_AUTH_TOKEN", raising=False)
    torchscope.init(name="private", db=db_path).finish()
    with pytest.raises(SystemExit) as exited:
        main(["serve", str(db_path), "--host", host, "--port", "1"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        f"torchscope: error: refusing to serve on {host} without an access token: anyone who reaches it could read "
        "your runs; give --auth-token TOKEN (or set TORCHSCOPE_AUTH_TOKEN), or bind 127.0.0.1\n"
    )


def test_demo_refuses_a_non_loopback_address_without_a_token_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TORCHSCOPE_AUTH_TOKEN", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--db", str(tmp_path / "demo.db"), "--host", "0.0.0.0", "--port", "1"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("torchscope: error: refusing to serve on 0.0.0.0 without an access token")
    assert not list(tmp_path.iterdir())  # nothing trained, nothing created


def test_an_empty_token_is_refused(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torchscope.init(name="private", db=db_path).finish()
    with pytest.raises(SystemExit) as exited:
        main(["serve", str(db_path), "--auth-token", " ", "--port", "1"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("torchscope: error: the access token is empty")


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Server"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Server"]


def test_workers_serve_from_several_gunicorn_processes_with_the_token_from_the_environment(db_path: Path) -> None:
    torchscope.init(name="shared", db=db_path).finish()
    # serve_in_subprocess hands the token over as $TORCHSCOPE_AUTH_TOKEN, not on the command line
    with serve_in_subprocess(db_path, auth_token="env-token", workers=2) as url:
        assert _get(url + "/") == (401, "gunicorn")
        assert _get(url + "/_dash-layout", "env-token") == (200, "gunicorn")
        port = url.rsplit(":", 1)[1]
        serving = [p for p in psutil.process_iter(["cmdline"])
                   if p.info["cmdline"] and "serve" in p.info["cmdline"] and port in p.info["cmdline"]]  # fmt: skip
        masters = [p for p in serving if p.ppid() not in {q.pid for q in serving}]
        assert len(masters) == 1
        # gunicorn forks its workers a random 0-0.1 s apart: the first may answer before the second exists
        deadline = time.monotonic() + 30
        while len(masters[0].children()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(masters[0].children()) == 2
