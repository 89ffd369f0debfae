"""The weights manager against a local stand-in hub: fetch, verify, import, CLI, engines."""

import dataclasses
import hashlib
import io
import json

import pytest

from slicerfm_backend import cli
from slicerfm_backend.engine_core.manager import EngineManager
from slicerfm_backend.engines import registry
from slicerfm_backend.errors import DomainError, WeightsMissingError
from slicerfm_backend.weights import store
from slicerfm_backend.weights.catalogue import CATALOGUE, WeightsEntry
from slicerfm_backend.weights.checks import WeightsChecksumError, WeightsError
from slicerfm_backend.weights.resolve import checkpoint_path, parse_checkpoints
from weights_hub import COMMIT, StandInHub

PAYLOAD = bytes(range(256)) * 41 + b"tail"  # 10,500 bytes
REPO_ID = "slicerfm-test/toy"
FILENAME = "weights/toy.bin"
REVISION = "fedcba9876543210fedcba9876543210fedcba98"

ENTRY = WeightsEntry(
    engine="toy-weights", hub_repo=REPO_ID, filename=FILENAME, revision=REVISION,
    revision_kind="commit", licence="Toy Licence 1.0", licence_url="https://example.org/toy",
    note="test entry", size_bytes=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest(),
    approx_size="10 kB")
UNPINNED = dataclasses.replace(ENTRY, size_bytes=None, sha256=None)
KEY = (REPO_ID, REVISION, FILENAME)


@pytest.fixture
def hub(monkeypatch):
    hub = StandInHub()
    hub.files[KEY] = PAYLOAD
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    yield hub
    hub.stop()


@pytest.fixture
def root(tmp_path, monkeypatch):
    root = tmp_path / "weights"
    monkeypatch.setenv("SLICERFM_WEIGHTS_DIR", str(root))
    monkeypatch.delenv("SLICERFM_CHECKPOINTS", raising=False)
    monkeypatch.setitem(CATALOGUE, ENTRY.engine, ENTRY)
    monkeypatch.setitem(registry.ENGINE_CLASSES, "toy-weights", "toy_engines:WeightedEngine")
    return root


def files_under(path):
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_fetch_downloads_the_pinned_revision_and_verifies(hub, root):
    file = store.fetch(ENTRY, root)
    assert file == root / "toy-weights" / REVISION / "weights" / "toy.bin"
    assert file.read_bytes() == PAYLOAD
    assert files_under(root) == [f"toy-weights/{REVISION}/weights/toy.bin",
                                 f"toy-weights/{REVISION}/weights/toy.bin.json"]
    record = store.read_record(ENTRY, root)
    assert record["sha256"] == ENTRY.sha256 and record["hub_commit"] == COMMIT
    assert record["size_bytes"] == len(PAYLOAD)
    assert ("GET", f"/{REPO_ID}/resolve/{REVISION}/{FILENAME}") in hub.requests
    result = store.verify(ENTRY, root)
    assert (result.state, result.ok) == ("verified", True)
    assert "size, sha256 match" in result.detail


def test_corrupted_payload_is_rejected_and_nothing_is_left(hub, root):
    hub.files[KEY] = bytes(len(PAYLOAD))  # right size, wrong bytes
    with pytest.raises(WeightsChecksumError, match=r"sha256 .* expected " + ENTRY.sha256):
        store.fetch(ENTRY, root)
    assert files_under(root) == []
    assert store.verify(ENTRY, root).state == "missing"


def test_truncated_payload_is_rejected_and_nothing_is_left(hub, root):
    hub.files[KEY] = PAYLOAD[:5000]
    with pytest.raises(WeightsChecksumError, match=f"size 5000 bytes, expected {len(PAYLOAD)}"):
        store.fetch(ENTRY, root)
    assert files_under(root) == []


def test_a_transfer_shorter_than_announced_fails_clearly(hub, root):
    hub.advertise[KEY] = len(PAYLOAD) + 100
    with pytest.raises(WeightsError, match=f"downloading {hub.url}/{REPO_ID}/resolve/{REVISION}/{FILENAME} failed"):
        store.fetch(ENTRY, root)
    assert files_under(root) == []


def test_wrong_pinned_size_is_rejected(hub, root):
    wrong = dataclasses.replace(ENTRY, size_bytes=len(PAYLOAD) + 1)
    with pytest.raises(WeightsChecksumError, match=f"size {len(PAYLOAD)} bytes, expected {len(PAYLOAD) + 1}"):
        store.fetch(wrong, root)
    assert files_under(root) == []


def test_missing_file_on_the_hub_fails_without_trying_another_host(hub, root):
    hub.files.clear()
    with pytest.raises(WeightsError, match="failed"):
        store.fetch(ENTRY, root)
    assert files_under(root) == []
    assert hub.requests and all(path.startswith(f"/{REPO_ID}/resolve/") for _, path in hub.requests)


def test_unpinned_entry_reports_not_pinned_and_catches_later_changes(hub, root):
    store.fetch(UNPINNED, root)
    result = store.verify(UNPINNED, root)
    assert result.state == "unpinned" and "size/checksum not pinned" in result.detail
    store.path(UNPINNED, root).write_bytes(PAYLOAD[::-1])
    result = store.verify(UNPINNED, root)
    assert result.state == "mismatch" and "recorded at install" in result.detail


def test_import_checks_and_copies_a_local_file(root, tmp_path):
    source = tmp_path / "carried.bin"
    source.write_bytes(PAYLOAD)
    file = store.import_file(ENTRY, root, source)
    assert file.read_bytes() == PAYLOAD and source.exists()
    assert store.read_record(ENTRY, root)["source"] == f"imported from {source.resolve()}"
    assert store.verify(ENTRY, root).state == "verified"


def test_import_of_a_wrong_file_keeps_nothing(root, tmp_path):
    source = tmp_path / "carried.bin"
    source.write_bytes(PAYLOAD + b"x")
    with pytest.raises(WeightsChecksumError, match="does not match the catalogue"):
        store.import_file(ENTRY, root, source)
    assert files_under(root) == []
    assert source.read_bytes() == PAYLOAD + b"x"


def test_real_entries_pin_only_what_models_md_gives(root, tmp_path):
    # docs/MODELS.md: no sha256 is published, sizes only rounded; VISTA3D has a published md5.
    assert all(CATALOGUE[name].sha256 is None and CATALOGUE[name].size_bytes is None
               for name in ("sam-med3d", "vista3d", "unigradicon", "multigradicon"))
    assert CATALOGUE["vista3d"].md5 == "6ce45a8edde4400c5d28d5e74d7b61d5"
    source = tmp_path / "sam_med3d_turbo.pth"
    source.write_bytes(b"not the real checkpoint")
    store.import_file(CATALOGUE["sam-med3d"], root, source)
    assert "size/checksum not pinned" in store.verify(CATALOGUE["sam-med3d"], root).detail
    with pytest.raises(WeightsChecksumError, match="md5"):
        store.import_file(CATALOGUE["vista3d"], root, source)


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_fetch_shows_licence_and_needs_yes_without_a_terminal(hub, root, capsys):
    code, out, err = run_cli(capsys, "weights", "fetch", "toy-weights")
    assert code == 2 and "Toy Licence 1.0 (https://example.org/toy)" in out
    assert "weights fetch toy-weights --yes" in err
    assert files_under(root) == [] and hub.requests == []
    code, out, err = run_cli(capsys, "weights", "fetch", "toy-weights", "--yes")
    assert code == 0 and "Toy Licence 1.0" in out and "installed" in out
    assert store.path(ENTRY, root).read_bytes() == PAYLOAD


def test_cli_fetch_asks_on_a_terminal(hub, root, capsys, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert run_cli(capsys, "weights", "fetch", "toy-weights")[0] == 2
    assert files_under(root) == []
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert run_cli(capsys, "weights", "fetch", "toy-weights")[0] == 0
    assert store.verify(ENTRY, root).state == "verified"


def test_cli_list_verify_path_import(root, capsys, tmp_path):
    code, out, _ = run_cli(capsys, "weights", "list")
    row = next(line for line in out.splitlines() if line.startswith("toy-weights"))
    assert code == 0 and FILENAME in row and REVISION in row and "missing" in row and "Toy Licence" in row
    assert any(line.startswith("vista3d") and "~872 MB" in line for line in out.splitlines())
    code, _, err = run_cli(capsys, "weights", "path", "toy-weights")
    assert code == 1 and "slicerfm-backend weights fetch toy-weights" in err
    code, out, _ = run_cli(capsys, "weights", "verify", "toy-weights")
    assert code == 1 and "missing" in out

    source = tmp_path / "toy.bin"
    source.write_bytes(PAYLOAD)
    code, out, _ = run_cli(capsys, "weights", "import", "toy-weights", str(source))
    assert code == 0 and "size, sha256 match" in out
    code, out, _ = run_cli(capsys, "weights", "list")
    assert "present" in next(line for line in out.splitlines() if line.startswith("toy-weights"))
    code, out, _ = run_cli(capsys, "weights", "path", "toy-weights")
    assert code == 0 and out.strip() == str(store.path(ENTRY, root))
    code, out, _ = run_cli(capsys, "weights", "verify")
    assert code == 0 and "verified" in out

    store.path(ENTRY, root).write_bytes(b"damaged")
    code, out, _ = run_cli(capsys, "weights", "verify")
    assert code == 1 and "mismatch" in out and "weights fetch toy-weights" in out
    code, _, err = run_cli(capsys, "weights", "import", "toy-weights", str(tmp_path / "absent.bin"))
    assert code == 1 and "is not a file" in err


def test_missing_weights_name_the_fix_in_engines_and_the_server(root, capsys):
    with pytest.raises(WeightsMissingError, match="run `slicerfm-backend weights fetch toy-weights`"):
        checkpoint_path("toy-weights", root)
    code, out, _ = run_cli(capsys, "engines", "--engines", "toy-weights")
    assert code == 0 and "MISSING" in out and "slicerfm-backend weights fetch toy-weights" in out
    manager = EngineManager(registry.SEGMENTATION, ["toy-weights"], "cpu", weights_dir=str(root))
    with pytest.raises(DomainError, match="weights fetch toy-weights"):
        manager.get("toy-weights")


def test_checkpoint_overrides_win_over_the_store(root, capsys, tmp_path, monkeypatch):
    mine = tmp_path / "my.bin"
    mine.write_bytes(b"lab checkpoint")
    code, out, _ = run_cli(capsys, "weights", "path", "toy-weights", "--checkpoint", f"toy-weights={mine}")
    assert code == 0 and out.strip() == str(mine)
    code, out, _ = run_cli(capsys, "engines", "--engines", "toy-weights", "--checkpoint", f"toy-weights={mine}")
    assert "present" in out and "MISSING" not in out
    monkeypatch.setenv("SLICERFM_CHECKPOINTS", f"toy-weights={mine}")
    from slicerfm_backend.settings import Settings

    settings = Settings()
    assert settings.checkpoints == {"toy-weights": str(mine)}
    manager = EngineManager(registry.SEGMENTATION, ["toy-weights"], "cpu", weights_dir=str(root),
                            checkpoints=settings.checkpoints)
    assert manager.get("toy-weights").checkpoint_bytes == b"lab checkpoint"
    with pytest.raises(WeightsMissingError, match="does not exist"):
        checkpoint_path("toy-weights", root, str(tmp_path / "absent.bin"))
    with pytest.raises(ValueError, match="ENGINE=PATH"):
        parse_checkpoints("toy-weights")


def test_record_is_json_next_to_the_file(hub, root):
    store.fetch(ENTRY, root)
    record = json.loads(store.record_path(ENTRY, root).read_text())
    assert record["source"] == f"{hub.url}/{REPO_ID}/resolve/{REVISION}/{FILENAME}"
