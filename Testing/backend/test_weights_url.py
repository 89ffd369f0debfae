"""Weights published as plain files (GitHub release assets): fetched from their one URL with
the same checks and atomic install as hub files, against a local stand-in web server."""

import dataclasses
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from slicerfm_backend import cli
from slicerfm_backend.weights import store
from slicerfm_backend.weights.catalogue import CATALOGUE, WeightsEntry
from slicerfm_backend.weights.checks import WeightsChecksumError, WeightsError

PAYLOAD = bytes(range(256)) * 30 + b"release"
ASSET = "/owner/repo/releases/download/toy_weights/Step_2_final.trch"


class StandInHost:
    """Serves ``files`` (path -> bytes); ``advertise`` (path -> length) announces another
    Content-Length than is sent; ``redirects`` (path -> path) answers 302. ``requests`` logs
    ``(method, path)``."""

    def __init__(self):
        self.files, self.advertise, self.redirects, self.requests = {}, {}, {}, []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                host.requests.append((self.command, self.path))
                if self.path in host.redirects:
                    self.send_response(302)
                    self.send_header("Location", host.url + host.redirects[self.path])
                    self.end_headers()
                    return
                body = host.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(host.advertise.get(self.path, len(body))))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def host():
    host = StandInHost()
    host.files[ASSET] = PAYLOAD
    yield host
    host.stop()


@pytest.fixture
def entry(host, tmp_path, monkeypatch):
    entry = WeightsEntry(
        engine="toy-release", filename="Step_2_final.trch", revision="toy_weights", revision_kind="tag",
        licence="Toy Licence 2.0", licence_url="https://example.org/toy2", note="test entry",
        source="a stand-in release", download_url=host.url + ASSET, size_bytes=len(PAYLOAD),
        sha256=hashlib.sha256(PAYLOAD).hexdigest())
    monkeypatch.setitem(CATALOGUE, entry.engine, entry)
    monkeypatch.setenv("SLICERFM_WEIGHTS_DIR", str(tmp_path / "weights"))
    return entry


def stored(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_fetch_downloads_checks_and_installs(host, entry, tmp_path):
    root = tmp_path / "weights"
    file = store.fetch(entry, root)
    assert file == root / "toy-release" / "toy_weights" / "Step_2_final.trch"
    assert file.read_bytes() == PAYLOAD
    assert stored(root) == ["toy-release/toy_weights/Step_2_final.trch",
                            "toy-release/toy_weights/Step_2_final.trch.json"]
    record = store.read_record(entry, root)
    assert record["source"] == entry.download_url and record["sha256"] == entry.sha256
    assert store.verify(entry, root).state == "verified"
    assert host.requests == [("GET", ASSET)]


def test_redirects_are_followed(host, entry, tmp_path):
    host.redirects[ASSET] = "/objects/blob-1234"
    host.files["/objects/blob-1234"] = host.files.pop(ASSET)
    assert store.fetch(entry, tmp_path / "weights").read_bytes() == PAYLOAD


def test_wrong_bytes_short_transfers_and_missing_files_leave_nothing(host, entry, tmp_path):
    root = tmp_path / "weights"
    host.files[ASSET] = bytes(len(PAYLOAD))
    with pytest.raises(WeightsChecksumError, match="sha256 .* expected"):
        store.fetch(entry, root)
    assert stored(root) == []
    host.files[ASSET] = PAYLOAD[:-100]
    host.advertise[ASSET] = len(PAYLOAD)
    with pytest.raises(WeightsError, match="downloading .* failed"):
        store.fetch(entry, root)
    assert stored(root) == []
    del host.files[ASSET]
    host.requests.clear()
    with pytest.raises(WeightsError, match=r"failed: HTTPError: HTTP Error 404"):
        store.fetch(entry, root)
    assert stored(root) == [] and host.requests == [("GET", ASSET)]  # no other host, no retry


def test_unpinned_release_file_is_kept_and_reported_unpinned(host, entry, tmp_path):
    unpinned = dataclasses.replace(entry, size_bytes=None, sha256=None)
    root = tmp_path / "weights"
    store.fetch(unpinned, root)
    assert "size/checksum not pinned" in store.verify(unpinned, root).detail


def test_cli_fetch_shows_the_licence_and_fetches_with_yes(host, entry, tmp_path, capsys):
    code = cli.main(["weights", "fetch", "toy-release"])
    out, err = capsys.readouterr()
    assert code == 2 and "Toy Licence 2.0" in out and entry.download_url in out
    assert cli.main(["weights", "fetch", "toy-release", "--yes"]) == 0
    assert (tmp_path / "weights" / "toy-release" / "toy_weights" / "Step_2_final.trch").read_bytes() == PAYLOAD


def test_gradicon_entries_point_at_the_upstream_release_assets():
    for engine in ("unigradicon", "multigradicon"):
        entry = CATALOGUE[engine]
        assert entry.hub_repo is None and entry.filename == "Step_2_final.trch"
        assert entry.download_url == ("https://github.com/uncbiag/uniGradICON/releases/download/"
                                      f"{engine}_weights/Step_2_final.trch")
        assert entry.url == entry.download_url and entry.revision == f"{engine}_weights"
        assert entry.licence.startswith("Apache-2.0")
        assert store.fix_command(entry) == f"run `slicerfm-backend weights fetch {engine}`"


def test_a_download_shows_its_bytes_on_a_terminal_and_nothing_in_a_pipe(host, entry, tmp_path, monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("SLICERFM_PROGRESS", raising=False)
    for stream, drawn in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr("sys.stderr", stream)
        store.fetch(entry, tmp_path / f"weights-{drawn}")
        assert (entry.filename in stream.getvalue()) is drawn
        assert (f"{len(PAYLOAD)}/{len(PAYLOAD)}" in stream.getvalue() or "B/s" in stream.getvalue()) is drawn
