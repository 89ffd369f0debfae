"""The web server's defences, without a browser: loopback by default, the access token,
the tabs' own keys."""

import asyncio
import subprocess
import threading

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from web_helpers import BIN

from slicerfm_web.gateway.auth import (COOKIE, auth_middleware, cookie_value,
                                       loopback_host_middleware)
from slicerfm_web.settings import SettingsError, WebSettings, is_loopback
from slicerfm_web.tab.app import tab_key_middleware
from slicerfm_web.tab.config import TAB_KEY_HEADER, TabConfig

TOKEN = "a-web-token-of-enough-length"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.5.6.7", "::1", "[::1]", "localhost"])
def test_loopback_addresses_are_recognised(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_any_other_address_is_refused_without_an_access_token(host):
    with pytest.raises(SettingsError, match="without an access token"):
        WebSettings(host=host, local=True).validate()
    WebSettings(host=host, local=True, web_token=TOKEN).validate()


def test_a_short_token_and_two_backends_at_once_are_refused():
    with pytest.raises(SettingsError, match="at least 16"):
        WebSettings(host="0.0.0.0", local=True, web_token="short").validate()
    with pytest.raises(SettingsError, match="either --server URL or --local"):
        WebSettings(server_url="http://127.0.0.1:8765", local=True).validate()


def test_the_command_refuses_to_listen_on_all_addresses_without_a_token():
    completed = subprocess.run([str(BIN / "slicerfm-web"), "--host", "0.0.0.0", "--server",
                                "http://127.0.0.1:1"], capture_output=True, text=True, timeout=120,
                               env={"PATH": "/usr/bin:/bin"})
    assert completed.returncode == 2
    assert "refusing to listen on 0.0.0.0 without an access token" in completed.stderr


def _run(app, check):
    async def main():
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            await check(client)
        finally:
            await client.close()
    run_coroutine(main())


def run_coroutine(coroutine):
    """asyncio.run in a thread of its own: the browser tests' Playwright keeps an event loop
    running in this one when they share the session."""
    outcome = {}

    def target():
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as error:   # handed back to the test thread
            outcome["error"] = error
    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _app_with_token():
    async def page(_request):
        return web.Response(text="the page")
    app = web.Application(middlewares=[auth_middleware(TOKEN)])
    app.router.add_get("/", page)
    app.router.add_get("/t/{tab}/ws", page)
    return app


def test_without_the_token_a_browser_is_sent_to_the_login_page_and_scripts_get_401():
    async def check(client):
        response = await client.get("/", headers={"Accept": "text/html"}, allow_redirects=False)
        assert response.status == 302 and response.headers["Location"] == "/login"
        assert (await client.get("/t/abc/ws", allow_redirects=False)).status == 401
        assert (await client.get("/?token=wrong", allow_redirects=False)).status == 401
    _run(_app_with_token(), check)


def test_the_token_in_the_url_sets_a_cookie_that_does_not_hold_the_token():
    async def check(client):
        response = await client.get("/?token=" + TOKEN + "&x=1", allow_redirects=False)
        assert response.status == 302
        assert "token" not in response.headers["Location"] and "x=1" in response.headers["Location"]
        cookie = response.cookies[COOKIE]
        assert cookie.value == cookie_value(TOKEN) and TOKEN not in cookie.value
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        again = await client.get("/", allow_redirects=False)
        assert again.status == 200 and await again.text() == "the page"
    _run(_app_with_token(), check)


def test_a_bearer_token_works_for_scripts():
    async def check(client):
        response = await client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status == 200
        wrong = await client.get("/", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
    _run(_app_with_token(), check)


def test_without_a_token_only_requests_addressed_to_a_loopback_name_are_answered():
    async def page(_request):
        return web.Response(text="the page")
    app = web.Application(middlewares=[loopback_host_middleware(), auth_middleware("")])
    app.router.add_get("/", page)

    async def check(client):
        for host in ("127.0.0.1:8770", "localhost:8770", "[::1]:8770", "localhost"):
            assert (await client.get("/", headers={"Host": host})).status == 200, host
        for host in ("evil.example:8770", "evil.example", "192.168.1.5:8770"):
            assert (await client.get("/", headers={"Host": host})).status == 421, host
    _run(app, check)


def test_a_tab_answers_only_requests_that_carry_its_key():
    async def page(_request):
        return web.Response(text="tab")
    app = web.Application(middlewares=[tab_key_middleware("the-tab-key")])
    app.router.add_get("/", page)

    async def check(client):
        assert (await client.get("/")).status == 403
        assert (await client.get("/", headers={TAB_KEY_HEADER: "other"})).status == 403
        assert (await client.get("/", headers={TAB_KEY_HEADER: "the-tab-key"})).status == 200
    _run(app, check)


def test_a_tab_configuration_with_unknown_settings_is_refused_and_hides_its_secrets():
    config = TabConfig(tab_id="t", backend_url="http://127.0.0.1:1", backend_token="secret-1",
                       tab_key="secret-2")
    assert "secret" not in repr(config)
    assert TabConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="unknown tab settings: surprise"):
        TabConfig.from_json('{"tab_id": "t", "backend_url": "u", "surprise": 1}')


def test_a_plain_http_backend_on_another_machine_needs_the_opt_in_and_a_ca_bundle_must_exist(tmp_path, monkeypatch):
    monkeypatch.delenv("SLICERFM_ALLOW_INSECURE_HTTP", raising=False)
    with pytest.raises(SettingsError, match="--allow-insecure-http"):
        WebSettings(server_url="http://gpu.lab.example:8765").validate()
    WebSettings(server_url="http://gpu.lab.example:8765", allow_insecure_http=True).validate()
    with pytest.raises(SettingsError, match="CA bundle"):
        WebSettings(server_url="https://gpu.lab.example:8765", ca_bundle=str(tmp_path / "none.pem")).validate()
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    assert WebSettings(server_url="https://gpu.lab.example:8765",
                       ca_bundle=str(tmp_path / "ca.pem")).validate().ca_bundle == str(tmp_path / "ca.pem")


def test_the_tabs_reach_the_backend_with_the_gateways_ca_bundle_and_http_opt_in(tmp_path):
    from pathlib import Path

    from slicerfm_web.cli import parser, settings_from_args
    from slicerfm_web.gateway.tabs import TabPool, TabProcess

    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    settings = settings_from_args(parser().parse_args(
        ["--server", "https://gpu.lab.example:8765", "--ca-bundle", str(tmp_path / "ca.pem")]))
    pool = TabPool(settings, lambda: settings.server_url, Path(tmp_path))
    config = TabConfig.from_json(pool._config(TabProcess(tab_id="t1", key="k" * 32, log_path=tmp_path / "t.log"))
                                 .to_json())
    assert config.ca_bundle == str(tmp_path / "ca.pem") and not config.allow_insecure_http
