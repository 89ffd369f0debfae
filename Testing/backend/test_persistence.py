"""Sessions kept in the state directory: journal, snapshots, restart, and a disk that refuses.

A server restarted on the same state directory brings back every session -- the same
lease works, segments, locks, prompts and the whole undo/redo history are intact, the
image is read back from disk. A write the disk refuses answers 503 and changes nothing.
(kill -9 mid-click and SIGTERM are in Testing/e2e/test_lab_faults.py.)
"""

import errno
import os

import numpy as np
import pytest

from slicerfm_backend.auth.identity import LOCAL
from slicerfm_backend.engines.base import Prompt
from slicerfm_backend.persistence import session_files
from slicerfm_backend.persistence.state_dir import StateDirectory
from slicerfm_backend.segments import SegmentSet
from slicerfm_client import errors

from toy_engines import ball

SHAPE = (20, 30, 40)


def restart(factory, server, **settings):
    """Stop ``server`` and start another on the same state directory."""
    server.stop()
    return factory(state_dir=server.settings.state_dir, **settings)


def same_lease(server, old_client):
    client = server.client()
    client.session_token = old_client.session_token
    return client


def history(client, name):
    """The segment's voxels after each undo, back to the start, then redone to the end."""
    labels = [client.labelmap()[0]]
    while client.segments() and next(s for s in client.segments() if s["name"] == name)["can_undo"]:
        client.undo(name)
        labels.append(client.labelmap()[0])
    while next(s for s in client.segments() if s["name"] == name)["can_redo"]:
        client.redo(name)
    return labels


def work_on(client):
    client.add_point("liver", (10, 15, 20), True, engine="sphere")
    client.add_point("liver", (12, 15, 24), True, engine="sphere")
    client.add_point("liver", (10, 15, 22), False, engine="sphere")
    client.add_point("spleen", (5, 5, 5), True, engine="sphere")
    client.lock("spleen")
    seed = np.zeros(SHAPE, np.uint8)
    seed[2:6, 20:25, 30:35] = 1
    client.seed("kidney", seed[2:6, 20:25, 30:35], [[2, 20, 30], [6, 25, 35]])
    client.undo("liver")


def test_a_restarted_server_keeps_every_session_with_its_lease_segments_locks_and_undo(
        a_server_factory, tmp_path, a_ct_like_volume):
    server = a_server_factory(state_dir=tmp_path)
    client = server.client()
    client.connect(heartbeat=False)
    client.set_image(*a_ct_like_volume, "CT")
    work_on(client)
    before = client.segments()
    labels_before = client.labelmap()[0]
    server = restart(a_server_factory, server)
    again = same_lease(server, client)
    assert again.segments() == before
    np.testing.assert_array_equal(again.labelmap()[0], labels_before)
    walked_after = history(again, "liver")
    # the same walk on a server that never restarted
    reference = a_server_factory()
    fresh = reference.client()
    fresh.connect(heartbeat=False)
    fresh.set_image(*a_ct_like_volume, "CT")
    work_on(fresh)
    walked_reference = history(fresh, "liver")
    assert len(walked_after) == len(walked_reference) == 3
    for got, expected in zip(walked_after, walked_reference):
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(errors.SegmentLockedError):
        again.add_point("spleen", (6, 6, 6), True, engine="sphere")
    again.add_point("liver", (10, 15, 30), True, engine="sphere")  # prompts were restored too


def test_journals_are_compacted_into_snapshots_and_restore_the_same(a_server_factory, tmp_path,
                                                                    a_ct_like_volume, monkeypatch):
    monkeypatch.setattr(session_files, "COMPACT_BYTES", 2_000)
    server = a_server_factory(state_dir=tmp_path)
    client = server.client()
    client.connect(heartbeat=False)
    client.set_image(*a_ct_like_volume, "CT")
    for n in range(12):
        client.add_point("liver", (10, 15, 5 + 2 * n), n % 3 != 2, engine="sphere")
    client.undo("liver")
    folder = next((tmp_path / "sessions").iterdir())
    assert list(folder.glob("snapshot-*.bin")) and not (folder / "journal-0.log").exists()
    before, labels = client.segments(), client.labelmap()[0]
    server = restart(a_server_factory, server)
    again = same_lease(server, client)
    assert again.segments() == before
    np.testing.assert_array_equal(again.labelmap()[0], labels)
    assert again.redo("liver").can_undo


def test_a_record_cut_short_by_a_crash_is_ignored(tmp_path):
    state = StateDirectory(tmp_path).open()
    try:
        files = session_files.SessionFiles(state, "0123456789abcdef")
        files.create({"id": "0123456789abcdef", "secret_sha256": "0" * 64, "owner": LOCAL.owner, "user": "local",
                      "client": "test", "created": 0.0})
        segments = SegmentSet(SHAPE, recorder=files.append)
        files.append("attach", {"image_id": "a" * 64, "shape": list(SHAPE)})
        segment = segments.get_or_create("liver")
        segments.commit(segment, ((0, 0, 0), SHAPE), ball(SHAPE, (10, 15, 20)), [Prompt("point", True, (10, 15, 20))])
        files.close()
        journal = files.folder / "journal-0.log"
        with open(journal, "ab") as handle:
            handle.write(b"SJ\x10\x00\x00\x00garbage")  # the start of a record, then the crash
        meta, image_id, restored, _ = session_files.load(state, files.folder, lambda shape: SegmentSet(shape))
        assert image_id == "a" * 64 and restored.find("liver").mask.count() == ball(SHAPE, (10, 15, 20)).sum()
        assert journal.read_bytes()[-7:] != b"garbage"  # the torn tail was cut off
    finally:
        state.close()


def test_the_image_comes_back_from_disk_after_a_restart_and_after_eviction(a_server_factory, tmp_path,
                                                                           a_ct_like_volume):
    server = a_server_factory(state_dir=tmp_path)
    client = server.client()
    client.connect(heartbeat=False)
    image_id = client.set_image(*a_ct_like_volume, "CT")
    server = restart(a_server_factory, server)
    assert len(server.state.images) == 0  # not read until needed
    again = same_lease(server, client)
    again.add_point("liver", (10, 15, 20), True, engine="sphere")
    assert server.state.images.holds_in_memory(image_id)
    server.state.images.forget(image_id)
    again.add_point("liver", (11, 15, 20), True, engine="sphere")


def test_a_second_server_on_the_same_state_directory_is_refused(a_server_factory, tmp_path):
    a_server_factory(state_dir=tmp_path)
    with pytest.raises(ValueError, match="another SlicerFM server"):
        a_server_factory(state_dir=tmp_path)


def test_files_of_an_ended_session_are_deleted(a_server_factory, tmp_path, a_ct_like_volume):
    server = a_server_factory(state_dir=tmp_path)
    client = server.client()
    client.connect(heartbeat=False)
    image_id = client.set_image(*a_ct_like_volume, "CT")
    assert len(list((tmp_path / "sessions").iterdir())) == 1
    client.close()
    assert list((tmp_path / "sessions").iterdir()) == []
    server.state.housekeeping()
    assert len(list((tmp_path / "images").iterdir())) == 2  # cached in memory: its file stays
    server.state.images.forget(image_id)  # dropped from memory, and no session needs it
    server.state.housekeeping()
    assert list((tmp_path / "images").iterdir()) == []


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "is full"), (errno.EROFS, "is read-only")])
def test_a_disk_that_refuses_a_change_gets_503_and_nothing_changes(a_server_factory, tmp_path, a_ct_like_volume,
                                                                  monkeypatch, code, words):
    server = a_server_factory(state_dir=tmp_path)
    client = server.client()
    client.connect(heartbeat=False)
    client.set_image(*a_ct_like_volume, "CT")
    client.add_point("liver", (10, 15, 20), True, engine="sphere")
    before = client.labelmap()[0]
    real_write = os.write

    def refusing_write(fd, data):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(session_files.os, "write", refusing_write)
    with pytest.raises(errors.ServerBusyError, match=words) as refused:
        client.add_point("liver", (12, 15, 25), True, engine="sphere")
    assert refused.value.code == "storage_unavailable" and refused.value.retry_after
    with pytest.raises(errors.ServerBusyError, match=words):
        client.undo("liver")
    np.testing.assert_array_equal(client.labelmap()[0], before)  # reads still work, nothing changed
    assert client.segments()[0]["can_undo"]
    assert server.state.metrics.state_errors._value.get() >= 2
    monkeypatch.setattr(session_files.os, "write", real_write)  # the disk has room again
    client.add_point("liver", (12, 15, 25), True, engine="sphere")
    after = client.labelmap()[0]
    assert (after > 0).sum() > (before > 0).sum()
    server = restart(a_server_factory, server)
    np.testing.assert_array_equal(same_lease(server, client).labelmap()[0], after)


def test_a_new_session_on_a_read_only_state_directory_gets_503_and_the_server_goes_on(
        a_server_factory, tmp_path, monkeypatch):
    server = a_server_factory(state_dir=tmp_path)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(session_files, "write_atomically", read_only)
    with pytest.raises(errors.ServerBusyError, match="read-only"):
        server.client().connect(heartbeat=False)
    assert len(server.state.sessions) == 0
    assert server.client().engines()  # still serving


def random_changes(segments: SegmentSet, steps: int, seed: int = 7) -> None:
    """Clicks, seeds, resets, undos, redos, locks and deletes in a random order."""
    from slicerfm_backend.errors import DomainError

    rng = np.random.default_rng(seed)
    names = ["liver", "spleen", "kidney"]
    for _ in range(steps):
        name = names[rng.integers(len(names))]
        action = rng.integers(7)
        try:
            if action <= 1:
                centre = tuple(int(rng.integers(n)) for n in SHAPE)
                segment = segments.get_or_create(name)
                segments.require_unlocked(segment)
                values = ball(SHAPE, centre, radius=int(rng.integers(2, 6)))
                if action == 1:  # a negative click: the ball is cut out
                    values = ~values & segment.mask.to_dense()
                segments.commit(segment, ((0, 0, 0), SHAPE), values,
                                segment.prompts + [Prompt("point", action == 0, centre)])
            elif action == 2:
                segments.seed(segments.get_or_create(name), ((0, 0, 0), (4, 5, 6)), rng.random((4, 5, 6)) > 0.5)
            elif action == 3:
                segments.undo(segments.get(name))
            elif action == 4:
                segments.redo(segments.get(name))
            elif action == 5:
                segment = segments.get_or_create(name)
                segments.set_locked(segment, not segment.locked)
            elif rng.random() < 0.7:
                segments.reset(segments.get(name))
            else:
                segments.delete(name)
        except DomainError:
            pass  # locked, nothing to undo, unknown segment: refused before anything was recorded


def assert_same(a: SegmentSet, b: SegmentSet) -> None:
    np.testing.assert_array_equal(a.labelmap()[0], b.labelmap()[0])
    assert [s.describe() for s in a] == [s.describe() for s in b]
    for x, y in zip(a, b):
        assert [s.bbox for s in x.undo] == [s.bbox for s in y.undo] and x.prompts == y.prompts
        assert [s.bbox for s in x.redo] == [s.bbox for s in y.redo]


def test_replaying_the_journal_rebuilds_the_same_segments_after_any_sequence_of_changes():
    records = []
    live = SegmentSet(SHAPE, max_undo=6, byte_limit=40_000,
                      recorder=lambda kind, fields, blobs: records.append((kind, fields, list(blobs))))
    random_changes(live, 300)
    replayed = SegmentSet(SHAPE, max_undo=6, byte_limit=40_000)
    for record in records:
        replayed.replay(*record)
    assert_same(live, replayed)
    assert live.nbytes <= 40_000


def test_a_snapshot_holds_the_whole_state_and_later_changes_apply_the_same_on_top():
    from slicerfm_backend.persistence import snapshot

    live = SegmentSet(SHAPE, max_undo=6)
    random_changes(live, 120, seed=3)
    fields, blobs = snapshot.dump(live)
    restored = snapshot.load(fields, blobs, SegmentSet(tuple(fields["shape"]), max_undo=6))
    assert_same(live, restored)
    random_changes(live, 60, seed=11)
    random_changes(restored, 60, seed=11)
    assert_same(live, restored)
