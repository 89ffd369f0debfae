"""Sessions, tokens and versions against a real server on loopback."""

import logging
import time

import pytest
import requests

from slicerfm_backend.auth.identity import LOCAL
from slicerfm_backend.errors import DomainError
from slicerfm_backend.sessions import SessionManager
from slicerfm_backend.settings import Settings
from slicerfm_client import errors, protocol


def test_a_claimed_session_beats_and_is_released(a_server):
    client = a_server.client()
    client.connect("tests", heartbeat=False)
    assert len(a_server.state.sessions) == 1
    client.heartbeat()
    client.close()
    assert len(a_server.state.sessions) == 0


def test_an_unknown_session_answers_410_telling_the_client_to_claim_a_new_one(a_server):
    client = a_server.client()
    client.session_token = "0123456789abcdef.not-a-real-secret"
    with pytest.raises(errors.SessionExpiredError, match="claim a new session"):
        client.segments()


def test_a_right_session_id_with_a_wrong_secret_is_refused(a_server):
    client = a_server.client()
    client.connect("tests", heartbeat=False)
    session_id = client.session_token.split(".")[0]
    intruder = a_server.client()
    intruder.session_token = session_id + ".guessed"
    with pytest.raises(errors.SessionExpiredError):
        intruder.segments()
    client.segments()  # the owner is unaffected


def test_a_silent_client_loses_its_session_after_the_liveness_timeout(a_server_factory):
    server = a_server_factory(liveness_timeout_s=0.3, heartbeat_interval_s=0.1)
    client = server.client()
    client.connect("tests", heartbeat=False)
    time.sleep(0.5)
    with pytest.raises(errors.SessionExpiredError):
        client.segments()


def test_heartbeats_keep_a_session_alive_past_the_liveness_timeout(a_server_factory):
    server = a_server_factory(liveness_timeout_s=0.5, heartbeat_interval_s=0.1)
    client = server.client()
    client.connect("tests", heartbeat=True)
    time.sleep(1.2)
    assert client.segments() == []  # raises SessionExpiredError if the session was reaped
    client.close()


def test_heartbeats_alone_do_not_keep_an_idle_session_forever(a_server_factory):
    server = a_server_factory(liveness_timeout_s=5, idle_timeout_s=0.4, heartbeat_interval_s=0.1)
    client = server.client()
    client.connect("tests", heartbeat=False)
    for _ in range(6):
        time.sleep(0.1)
        try:
            client.heartbeat()
        except errors.SessionExpiredError:
            break
    else:
        pytest.fail("the idle session survived on heartbeats alone")


def test_a_full_server_answers_503_with_retry_after_and_frees_a_slot_on_release(a_server_factory):
    server = a_server_factory(max_sessions=2)
    first, second, third = server.client(), server.client(), server.client()
    first.connect("a", heartbeat=False)
    second.connect("b", heartbeat=False)
    with pytest.raises(errors.ServerBusyError) as raised:
        third.connect("c", heartbeat=False)
    assert raised.value.retry_after and raised.value.retry_after > 0
    assert "--max-sessions" in str(raised.value)
    first.close()
    third.connect("c", heartbeat=False)


def test_a_server_with_a_token_refuses_missing_and_wrong_tokens_and_accepts_the_right_one(a_server_factory):
    server = a_server_factory(token="correct horse")
    assert server.client().info()["auth_required"] is True  # info is public for the version check
    with pytest.raises(errors.AuthenticationError, match="requires an access token"):
        server.client().connect(heartbeat=False)
    with pytest.raises(errors.AuthenticationError, match="wrong"):
        server.client(token="battery staple").connect(heartbeat=False)
    client = server.client(token="correct horse")
    client.connect(heartbeat=False)
    client.close()


def test_tokens_never_reach_the_server_log(a_server_factory, caplog):
    server = a_server_factory(token="tok-en-123")
    with caplog.at_level(logging.DEBUG):
        client = server.client(token="tok-en-123")
        client.connect(heartbeat=False)
        secret = client.session_token.split(".")[1]
        client.heartbeat()
        client.segments()
        client.close()
    assert "tok-en-123" not in caplog.text and secret not in caplog.text


def test_an_incompatible_client_version_gets_426_saying_what_to_install(a_server):
    response = requests.post(a_server.url + protocol.PATH_SESSIONS, json={},
                             headers={protocol.HEADER_PROTOCOL: "99.0"})
    assert response.status_code == 426
    body = response.json()
    assert body["error"] == protocol.ERROR_VERSION and "install" in body["message"]


def test_an_unknown_endpoint_answers_json_not_a_bare_404(a_server):
    response = requests.get(a_server.url + "/api/nonexistent")
    assert response.status_code == 404 and "update" in response.json()["message"]


def test_openapi_docs_are_served(a_server):
    assert requests.get(a_server.url + "/openapi.json").json()["info"]["title"] == "SlicerFM backend"


def test_settings_come_from_slicerfm_environment_variables_and_flags_win(monkeypatch):
    from slicerfm_backend.cli import build_parser
    from slicerfm_backend.settings import settings_from_args

    monkeypatch.setenv("SLICERFM_ENGINES", "classic,sphere")
    monkeypatch.setenv("SLICERFM_MAX_SESSIONS", "3")
    monkeypatch.setenv("SLICERFM_TOKEN", "from-env")
    settings = settings_from_args(build_parser().parse_args(["serve", "--max-sessions", "5"]))
    assert settings.engines == ["classic", "sphere"]
    assert settings.max_sessions == 5
    assert settings.token_value() == "from-env" and "from-env" not in repr(settings)
    assert settings.host == "127.0.0.1"


def test_a_request_longer_than_the_liveness_timeout_does_not_expire_the_session():
    """A first click that encodes for minutes on a CPU: the session stays alive while it
    runs, and the client's next request (without heartbeats) still finds it."""
    now = [0.0]
    manager = SessionManager(Settings(liveness_timeout_s=60, idle_timeout_s=3600), clock=lambda: now[0])
    session, token = manager.claim(LOCAL, "test")
    with session.lock:
        now[0] = 200.0  # the long request
        assert manager.reap() == 0
    now[0] = 230.0  # 30 s after it ended
    assert manager.get(token) is session
    now[0] = 300.0  # 70 s of silence after that
    with pytest.raises(DomainError) as error:
        manager.get(token)
    assert error.value.code == protocol.ERROR_SESSION_EXPIRED
