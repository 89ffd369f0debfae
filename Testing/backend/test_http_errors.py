"""Domain errors become HTTP answers in one place (slicerfm_backend.http_errors)."""

from slicerfm_backend import http_errors
from slicerfm_backend.errors import DomainError, invalid
from slicerfm_client import protocol

CODES = {value for name, value in vars(protocol).items() if name.startswith("ERROR_")}


def test_every_error_code_a_request_can_get_has_one_status():
    assert set(http_errors.STATUS) == CODES - {protocol.ERROR_JOB_FAILED}
    assert protocol.ERROR_JOB_FAILED not in http_errors.STATUS  # only inside a job's status


def test_the_status_table_keeps_the_documented_statuses():
    assert http_errors.status_of(invalid("x")) == 422
    assert http_errors.status_of(DomainError(protocol.ERROR_SESSION_EXPIRED, "x")) == 410
    assert http_errors.status_of(DomainError(protocol.ERROR_ENGINE_UNAVAILABLE, "x")) == 503
    assert http_errors.status_of(DomainError(protocol.ERROR_ENGINE_FAILED, "x")) == 500


def test_a_full_server_says_when_to_retry_and_a_token_error_names_the_scheme():
    full = DomainError(protocol.ERROR_SERVER_FULL, "full", retry_after_s=30)
    assert http_errors.headers_of(full) == {protocol.HEADER_RETRY_AFTER: "30"}
    assert http_errors.headers_of(DomainError(protocol.ERROR_UNAUTHORIZED, "no")) == {"WWW-Authenticate": "Bearer"}
    assert http_errors.headers_of(invalid("x")) is None


def test_an_unknown_session_is_answered_410_with_its_code_over_http(a_server):
    import requests

    answer = requests.get(a_server.url + protocol.PATH_SESSION,
                          headers={protocol.HEADER_SESSION: "nope.nope"}, timeout=10)
    assert answer.status_code == 410 and answer.json()["error"] == protocol.ERROR_SESSION_EXPIRED
