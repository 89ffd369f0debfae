"""What the client tells the user when the connection is set up wrongly or fails."""

import http.server
import json
import threading

import pytest

from slicerfm_client import errors, protocol
from slicerfm_client.client import SlicerFMClient, parse_server_timing
from slicerfm_client.launcher import free_port


@pytest.mark.parametrize("url", ["127.0.0.1:8765", "localhost", "ftp://host"])
def test_a_url_without_http_says_how_to_write_it(url):
    with pytest.raises(errors.ConfigurationError, match="http://"):
        SlicerFMClient(url)


def test_an_empty_url_is_a_configuration_error():
    with pytest.raises(errors.ConfigurationError):
        SlicerFMClient("  ")


def test_a_server_that_is_not_running_is_reported_as_unreachable_with_the_address():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(errors.ServerUnreachableError, match="is it running"):
        SlicerFMClient(url).info()


def test_a_proxy_error_page_becomes_a_message_about_the_address_not_a_bare_502():
    error = errors.error_from_response(502, None, "http://example.org", "Bad Gateway")
    assert isinstance(error, errors.ServerError)
    assert "502" in str(error) and "proxy" in str(error)


@pytest.mark.parametrize("status, code, cls", [
    (410, protocol.ERROR_SESSION_EXPIRED, errors.SessionExpiredError),
    (426, protocol.ERROR_VERSION, errors.IncompatibleVersionError),
    (409, protocol.ERROR_SEGMENT_LOCKED, errors.SegmentLockedError),
    (409, protocol.ERROR_NOTHING_TO_UNDO, errors.NothingToUndoError),
    (404, protocol.ERROR_IMAGE_NOT_FOUND, errors.ImageNotFoundError),
    (400, protocol.ERROR_CORRUPTED, errors.CorruptedTransferError),
    (401, protocol.ERROR_UNAUTHORIZED, errors.AuthenticationError),
    (500, protocol.ERROR_ENGINE_FAILED, errors.EngineFailedError),
    (413, protocol.ERROR_TOO_LARGE, errors.TooLargeError),
])
def test_error_codes_map_to_typed_exceptions_that_keep_the_server_message(status, code, cls):
    error = errors.error_from_response(status, {"error": code, "message": "what to do"}, "http://x")
    assert isinstance(error, cls) and str(error) == "what to do" and error.status == status


def test_a_full_server_error_carries_the_retry_delay():
    error = errors.error_from_response(503, {"error": protocol.ERROR_SERVER_FULL, "message": "full"},
                                       "http://x", retry_after="30")
    assert isinstance(error, errors.ServerBusyError) and error.retry_after == 30.0


def test_the_client_repr_never_shows_the_token():
    assert "s3cret" not in repr(SlicerFMClient("http://127.0.0.1:1", token="s3cret"))


def test_server_timing_headers_are_parsed_into_milliseconds():
    assert parse_server_timing("decode;dur=0.5, engine;dur=12.25, bogus, encode;dur=x") == {
        "decode": 0.5, "engine": 12.25}


def test_protocol_versions_with_the_same_major_are_compatible():
    assert protocol.compatible("1.0", "1.7")
    assert not protocol.compatible("1.0", "2.0")
    assert not protocol.compatible("1.0", "garbage")


class _FutureServer(http.server.BaseHTTPRequestHandler):
    """A server that speaks protocol 2.0, as a newer SlicerFM backend would."""

    def do_GET(self):
        body = json.dumps({"protocol_version": "2.0", "server_version": "9.9.9"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_client_facing_a_newer_server_major_says_what_to_install():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FutureServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = SlicerFMClient(f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(errors.IncompatibleVersionError, match="speaks 2.0.*Install a matching pair"):
            client.connect(heartbeat=False)
    finally:
        server.shutdown()
