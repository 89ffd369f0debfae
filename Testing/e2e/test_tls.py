"""HTTPS: `serve --tls-cert --tls-key` with a CA and a certificate made here; the client
verifies certificates (against a CA bundle), never connects unverified, and refuses plain
HTTP to another machine unless told to allow it."""

import datetime as dt
import ipaddress
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from slicerfm_client import errors
from slicerfm_client.client import SlicerFMClient
from slicerfm_client.launcher import free_port

EXECUTABLE = str(Path(sys.executable).with_name("slicerfm-backend"))


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_certificate(subject: str, key, issuer_name, issuer_key, ca: bool):
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def pem(certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def a_pki(tmp_path_factory):
    """A lab CA, a server certificate it signed for 127.0.0.1, and an unrelated CA."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key, server_key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = make_certificate("SlicerFM test lab CA", ca_key, _name("SlicerFM test lab CA"), ca_key, ca=True)
    server = make_certificate("127.0.0.1", server_key, ca.subject, ca_key, ca=False)
    other = make_certificate("Another CA", other_key, _name("Another CA"), other_key, ca=True)
    (folder / "ca.pem").write_bytes(pem(ca))
    (folder / "other-ca.pem").write_bytes(pem(other))
    (folder / "server.pem").write_bytes(pem(server))
    (folder / "server.key").write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return folder


@pytest.fixture(scope="module")
def an_https_server(a_pki, tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("tls-log") / "server.log", "wb")
    process = subprocess.Popen([EXECUTABLE, "serve", "--port", str(port), "--tls-cert", str(a_pki / "server.pem"),
                                "--tls-key", str(a_pki / "server.key")], stdout=log, stderr=log,
                               env={**os.environ, "SLICERFM_TOKEN": "tls-test-token"})
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            requests.get(url + "/api/info", verify=str(a_pki / "ca.pem"), timeout=2)
            break
        except requests.RequestException:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("the HTTPS server did not start; see its log", pytrace=False)
            time.sleep(0.3)
    yield url
    process.terminate()
    process.wait(30)
    log.close()


def test_the_client_talks_to_an_https_server_whose_certificate_its_ca_bundle_verifies(an_https_server, a_pki):
    client = SlicerFMClient(an_https_server, token="tls-test-token", ca_bundle=str(a_pki / "ca.pem"))
    client.connect("tls", heartbeat=False)
    assert client.engines()
    client.close()


@pytest.mark.parametrize("bundle", [None, "other-ca.pem"])
def test_a_certificate_the_client_cannot_verify_is_refused_never_skipped(an_https_server, a_pki, bundle):
    client = SlicerFMClient(an_https_server, token="tls-test-token",
                            ca_bundle=None if bundle is None else str(a_pki / bundle))
    assert client._http.verify is not False
    with pytest.raises(errors.ServerUnreachableError, match="could not be verified") as refused:
        client.connect("tls", heartbeat=False)
    assert refused.value.code == "tls"


def test_plain_http_to_the_https_port_gets_no_answer(an_https_server):
    with pytest.raises(requests.RequestException):
        requests.get(an_https_server.replace("https", "http") + "/api/info", timeout=5)


def test_plain_http_to_another_machine_needs_an_explicit_opt_in_and_warns(caplog, monkeypatch):
    monkeypatch.delenv("SLICERFM_ALLOW_INSECURE_HTTP", raising=False)
    with pytest.raises(errors.ConfigurationError, match="unencrypted"):
        SlicerFMClient("http://gpu-server.lab.example:8765", token="t")
    with caplog.at_level(logging.WARNING):
        client = SlicerFMClient("http://gpu-server.lab.example:8765", token="t", allow_insecure_http=True)
    assert client.insecure and "not encrypted" in caplog.text
    monkeypatch.setenv("SLICERFM_ALLOW_INSECURE_HTTP", "1")
    assert SlicerFMClient("http://10.1.2.3:8765").insecure
    for local in ("http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765"):
        assert not SlicerFMClient(local).insecure


def test_serve_refuses_a_certificate_without_its_key(a_pki):
    done = subprocess.run([EXECUTABLE, "serve", "--port", "0", "--tls-cert", str(a_pki / "server.pem")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--tls-key" in done.stderr


def test_the_module_connection_reaches_an_https_server_with_the_lab_ca_bundle_of_its_settings(
        an_https_server, a_pki):
    from SlicerFMLib.connection import REMOTE, Connection, ConnectionSettings, describe_error

    connection = Connection()
    without = ConnectionSettings(mode=REMOTE, url=an_https_server, token="tls-test-token")
    with pytest.raises(errors.ServerUnreachableError) as refused:
        connection.connect(without)
    assert "CA bundle" in describe_error(refused.value, without)
    status = connection.connect(ConnectionSettings(mode=REMOTE, url=an_https_server, token="tls-test-token",
                                                   ca_bundle=str(a_pki / "ca.pem")))
    assert status.engines and connection.client.ca_bundle == str(a_pki / "ca.pem")
    connection.disconnect()


def test_the_module_connection_refuses_plain_http_to_another_machine_unless_its_settings_allow_it(monkeypatch):
    from SlicerFMLib.connection import REMOTE, Connection, ConnectionSettings

    monkeypatch.delenv("SLICERFM_ALLOW_INSECURE_HTTP", raising=False)
    far = "http://192.0.2.1:9"   # TEST-NET-1: nothing answers there
    with pytest.raises(errors.ConfigurationError, match="unencrypted"):
        Connection().connect(ConnectionSettings(mode=REMOTE, url=far))
    with pytest.raises(errors.ServerUnreachableError):   # allowed: it tries, and nothing answers
        Connection().connect(ConnectionSettings(mode=REMOTE, url=far, allow_insecure_http=True))
