"""Connecting: local/remote settings and the messages a user gets when it fails.

Every case runs against a real backend process; the version mismatch is produced by
making this client announce another protocol major, which the real server refuses (426).
"""

import logging
import os
from pathlib import Path

import pytest
from mrml_helpers import BACKEND

from slicerfm_client import errors, protocol
from slicerfm_client.launcher import LocalBackend, free_port
from SlicerFMLib.connection import (LOCAL, REMOTE, Connection, ConnectionSettings,
                                    backend_command, describe_error)

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture(scope="module")
def a_token_server(tmp_path_factory):
    """A real backend that requires TOKEN."""
    env = {**os.environ, "SLICERFM_TOKEN": TOKEN}
    log = tmp_path_factory.mktemp("token") / "server.log"
    backend = LocalBackend([BACKEND], engines=["classic"], env=env, log_path=str(log))
    backend.start()
    yield backend
    backend.stop()


def connect_error(settings):
    connection = Connection()
    with pytest.raises(errors.SlicerFMError) as caught:
        connection.connect(settings)
    connection.disconnect()
    return caught.value, describe_error(caught.value, settings)


def test_the_status_shows_versions_engines_and_their_devices(a_backend_process):
    connection = Connection()
    status = connection.connect(ConnectionSettings(mode=REMOTE, url=a_backend_process.url))
    try:
        assert status.protocol_version == protocol.PROTOCOL_VERSION
        assert [e["name"] for e in status.engines] == ["classic"]
        assert "classic: cpu, ready" in status.summary() and connection.connected
    finally:
        connection.disconnect()
    assert not connection.connected


def test_a_url_without_http_says_to_add_it():
    error, message = connect_error(ConnectionSettings(mode=REMOTE, url="127.0.0.1:8765"))
    assert isinstance(error, errors.ConfigurationError)
    assert "must start with http://" in message and "http://127.0.0.1:8765" in message


def test_an_unreachable_server_says_to_check_that_it_runs():
    error, message = connect_error(ConnectionSettings(mode=REMOTE,
                                                      url=f"http://127.0.0.1:{free_port()}"))
    assert isinstance(error, errors.ServerUnreachableError) and "is it running" in message


def test_a_wrong_token_says_to_enter_the_right_one_and_is_never_logged(a_token_server, caplog):
    caplog.set_level(logging.DEBUG)
    settings = ConnectionSettings(mode=REMOTE, url=a_token_server.url, token=TOKEN[::-1])
    error, message = connect_error(settings)
    assert isinstance(error, errors.AuthenticationError)
    assert "access token" in message and TOKEN[::-1] not in message
    assert TOKEN[::-1] not in repr(settings)
    connection = Connection()
    status = connection.connect(ConnectionSettings(mode=REMOTE, url=a_token_server.url,
                                                   token=TOKEN))
    connection.disconnect()
    assert status.auth_required
    assert TOKEN not in caplog.text and TOKEN[::-1] not in caplog.text


def test_a_protocol_mismatch_says_to_install_a_matching_pair(a_backend_process, monkeypatch):
    monkeypatch.setattr(protocol, "PROTOCOL_VERSION", "99.0")
    error, message = connect_error(ConnectionSettings(mode=REMOTE, url=a_backend_process.url))
    assert isinstance(error, errors.IncompatibleVersionError)
    assert "99.0" in message and "update" in message.lower()


def test_local_mode_starts_a_backend_on_loopback_and_stops_it(tmp_path):
    connection = Connection()
    status = connection.connect(ConnectionSettings(mode=LOCAL, backend=BACKEND,
                                                   log_path=str(tmp_path / "b.log")))
    process = connection.local_backend.process
    assert status.url.startswith("http://127.0.0.1:") and process.poll() is None
    connection.disconnect()
    assert process.poll() is not None


def test_the_backend_setting_takes_an_executable_a_python_or_an_environment(tmp_path):
    environment = Path(BACKEND).parents[1]
    python = environment / "bin" / "python"
    assert backend_command(BACKEND) == [BACKEND]
    assert backend_command(str(python)) == [str(python), "-m", "slicerfm_backend"]
    assert backend_command(str(environment))[1:] == ["-m", "slicerfm_backend"]
    with pytest.raises(errors.ConfigurationError, match="does not exist"):
        backend_command(str(tmp_path / "missing"))
    with pytest.raises(errors.ConfigurationError, match="not a Python environment"):
        backend_command(str(tmp_path))
