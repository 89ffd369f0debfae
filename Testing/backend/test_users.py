"""Per-user access: tokens from `users add` (shown once, kept hashed), list, revoke, expiry,
and OpenID Connect JWTs signed with a key pair made here."""

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from slicerfm_backend.auth.users import UserStore
from slicerfm_client import errors, protocol

EXECUTABLE = str(Path(sys.executable).with_name("slicerfm-backend"))


def users_command(state_dir, *args):
    return subprocess.run([EXECUTABLE, "users", *args, "--state-dir", str(state_dir)],
                          capture_output=True, text=True, timeout=60)


def test_users_add_prints_the_token_once_and_keeps_only_its_hash(tmp_path):
    added = users_command(tmp_path, "add", "alice", "--role", "admin", "--expires", "2099-12-31")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    assert token.startswith("sfmu_") and len(token) > 40
    stored = (tmp_path / "users.json").read_text()
    assert token not in stored and token.split("_")[-1] not in stored
    assert (tmp_path / "users.json").stat().st_mode & 0o077 == 0  # readable by the server's user only
    listed = users_command(tmp_path, "list")
    assert "alice" in listed.stdout and "admin" in listed.stdout and "active" in listed.stdout
    assert token not in listed.stdout
    again = users_command(tmp_path, "add", "alice")
    assert again.returncode == 2 and "exists" in again.stderr
    revoked = users_command(tmp_path, "revoke", "alice")
    assert revoked.returncode == 0 and "revoked" in users_command(tmp_path, "list").stdout


def test_the_users_command_says_where_its_state_directory_should_come_from(monkeypatch):
    monkeypatch.delenv("SLICERFM_STATE_DIR", raising=False)
    done = subprocess.run([EXECUTABLE, "users", "list"], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in __import__("os").environ.items() if k != "SLICERFM_STATE_DIR"})
    assert done.returncode == 2 and "SLICERFM_STATE_DIR" in done.stderr


def test_bad_names_roles_and_dates_are_refused(tmp_path):
    store = UserStore(tmp_path)
    for name in ("", "a b", "x" * 65, "../etc", "al\nice"):
        with pytest.raises(ValueError):
            store.add(name)
    with pytest.raises(ValueError, match="role"):
        store.add("dora", role="owner")
    with pytest.raises(ValueError, match="date"):
        store.add("dora", expires="next tuesday")


def test_an_expired_token_is_refused_saying_so(tmp_path):
    store = UserStore(tmp_path)
    token = store.add("eve", expires="2001-01-01")
    assert store.authenticate(token) is None and "expired" in store.refusal(token)


def test_each_user_works_with_their_own_token_and_wrong_or_revoked_ones_are_refused(a_lab_server):
    info = a_lab_server.server.client().info()
    assert info["auth_required"] is True and "users" in info["auth_modes"]
    alice = a_lab_server.client("alice")
    alice.connect(heartbeat=False)
    alice.close()
    with pytest.raises(errors.AuthenticationError, match="revoked"):
        a_lab_server.client("carol").connect(heartbeat=False)
    forged = a_lab_server.tokens["alice"][:-4] + "abcd"
    with pytest.raises(errors.AuthenticationError, match="wrong"):
        a_lab_server.server.client(token=forged).connect(heartbeat=False)


def test_a_user_revoked_mid_session_is_refused_at_the_next_request_and_their_session_ends(a_lab_server):
    bob = a_lab_server.client("bob")
    bob.connect(heartbeat=False)
    bob.segments()
    a_lab_server.store.revoke("bob")  # what `users revoke bob` does, on the running server
    with pytest.raises(errors.AuthenticationError, match="revoked"):
        bob.segments()
    assert len(a_lab_server.state.sessions) == 1
    a_lab_server.state.housekeeping()
    assert len(a_lab_server.state.sessions) == 0


def test_revoking_every_user_keeps_the_server_closed(a_server_factory, tmp_path):
    store = UserStore(tmp_path)
    store.add("only")
    store.revoke("only")
    server = a_server_factory(state_dir=tmp_path)
    assert server.client().info()["auth_required"] is True
    with pytest.raises(errors.AuthenticationError):
        server.client().connect(heartbeat=False)


# -- OpenID Connect -----------------------------------------------------------------------

ISSUER, AUDIENCE = "https://login.example.org/realms/lab", "slicerfm"


@pytest.fixture(scope="module")
def a_signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_jwks(path: Path, key, kid="key-1") -> Path:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    path.write_text(json.dumps({"keys": [{**public, "kid": kid, "use": "sig", "alg": "RS256"}]}))
    return path


def sign(key, kid="key-1", algorithm="RS256", **claims):
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "preferred_username": "dana",
            **claims}
    return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
def an_oidc_server(a_server_factory, tmp_path, a_signing_key):
    jwks = write_jwks(tmp_path / "jwks.json", a_signing_key)
    return a_server_factory(oidc_issuer=ISSUER, oidc_audience=AUDIENCE, oidc_jwks=str(jwks))


def status_with(server, token):
    return requests.get(server.url + protocol.PATH_ENGINES, headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_jwt_from_the_sites_provider_is_accepted_and_names_the_user(an_oidc_server, a_signing_key):
    assert status_with(an_oidc_server, sign(a_signing_key)) == 200
    client = an_oidc_server.client(token=sign(a_signing_key, roles=["slicerfm-admin"]))
    client.connect(heartbeat=False)
    listed = requests.get(an_oidc_server.url + protocol.PATH_ADMIN_SESSIONS,
                          headers={"Authorization": f"Bearer {client._token}"}).json()["sessions"]
    assert [row["user"] for row in listed] == ["dana"]


def test_jwts_that_are_expired_for_another_audience_or_signed_by_another_key_are_refused(
        an_oidc_server, a_signing_key):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    refused = [sign(a_signing_key, exp=now - 3600), sign(a_signing_key, aud="another-service"),
               sign(a_signing_key, iss="https://evil.example.org"), sign(stranger),
               sign(a_signing_key, preferred_username="bad name\n")]
    for token in refused:
        assert status_with(an_oidc_server, token) == 401, jwt.decode(token, options={"verify_signature": False})


def _forge(header: dict, claims: dict, secret: bytes) -> str:
    """A JWT signed by hand (PyJWT refuses to make this one): HMAC-SHA256 over the parts."""
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=")

    signing_input = part(header) + b"." + part(claims)
    signature = base64.urlsafe_b64encode(hmac.new(secret, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    return (signing_input + b"." + signature).decode()


def test_a_jwt_signed_with_a_shared_secret_or_none_is_refused(an_oidc_server, a_signing_key):
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, "preferred_username": "mallory"}
    public_pem = a_signing_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    confused = _forge({"alg": "HS256", "typ": "JWT", "kid": "key-1"}, claims, public_pem)  # key confusion
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert status_with(an_oidc_server, confused) == 401
    assert status_with(an_oidc_server, unsigned) == 401


def test_the_jwks_file_is_read_again_when_the_provider_rotates_its_keys(an_oidc_server, tmp_path):
    rotated = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(rotated.public_key()))
    time.sleep(0.01)
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**public, "kid": "key-2", "alg": "ES256"}]}))
    assert status_with(an_oidc_server, sign(rotated, kid="key-2", algorithm="ES256")) == 200


def test_the_providers_keys_can_come_from_a_jwks_url(a_server_factory, tmp_path, a_signing_key):
    import http.server
    import threading

    write_jwks(tmp_path / "jwks.json", a_signing_key)

    class Keys(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    provider = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{provider.server_address[1]}/jwks.json"
        server = a_server_factory(oidc_issuer=ISSUER, oidc_audience=AUDIENCE, oidc_jwks=url)
        assert status_with(server, sign(a_signing_key)) == 200
        assert status_with(server, sign(rsa.generate_private_key(public_exponent=65537, key_size=2048))) == 401
    finally:
        provider.shutdown()
