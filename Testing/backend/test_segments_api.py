"""Interactions and segment operations through the real client and server (toy engines)."""

import numpy as np
import pytest

from slicerfm_client import errors

from toy_engines import ball

SHAPE = (20, 30, 40)


class Mirror:
    """The client's copy of one segment, updated only from the server's changed boxes."""

    def __init__(self):
        self.mask = np.zeros(SHAPE, bool)

    def apply(self, update):
        update.apply_to(self.mask)
        return update


def test_a_positive_click_returns_only_the_changed_box_with_stage_timings(a_connected_client):
    update = a_connected_client.add_point("tumour", (10, 15, 20), True, engine="sphere")
    expected = ball(SHAPE, (10, 15, 20))
    assert update.bbox == ((7, 12, 17), (14, 19, 24))
    np.testing.assert_array_equal(update.mask, expected[update.slices])
    assert update.voxels == expected.sum() and update.can_undo and not update.can_redo
    assert {"decode", "engine", "commit", "encode", "server"} <= set(update.timings_ms)
    assert update.roundtrip_ms >= update.timings_ms["server"]


def test_a_negative_click_removes_voxels_and_the_mirror_matches_the_server(a_connected_client):
    mirror = Mirror()
    client = a_connected_client
    mirror.apply(client.add_point("a", (10, 15, 20), True, engine="sphere"))
    mirror.apply(client.add_point("a", (10, 15, 22), False, engine="sphere"))
    expected = ball(SHAPE, (10, 15, 20)) & ~ball(SHAPE, (10, 15, 22))
    np.testing.assert_array_equal(mirror.mask, expected)
    labels, segments = client.labelmap()
    np.testing.assert_array_equal(labels == segments[0]["label"], expected)


def test_a_box_prompt_fills_the_box(a_connected_client):
    update = a_connected_client.add_box("organ", (2, 3, 4), (5, 8, 6), engine="sphere")
    assert update.bbox == ((2, 3, 4), (6, 9, 7)) and update.mask.all()


def test_a_click_that_changes_nothing_answers_an_empty_change(a_connected_client):
    a_connected_client.add_point("a", (10, 15, 20), True, engine="sphere")
    update = a_connected_client.add_point("a", (10, 15, 20), True, engine="sphere")
    assert update.bbox is None and update.mask.size == 0


def test_undo_and_redo_walk_the_history_of_one_segment_only(a_connected_client):
    client, mirror, other = a_connected_client, Mirror(), Mirror()
    mirror.apply(client.add_point("a", (5, 5, 5), True, engine="sphere"))
    after_first = mirror.mask.copy()
    other.apply(client.add_point("b", (15, 25, 35), True, engine="sphere"))
    mirror.apply(client.add_point("a", (12, 20, 30), True, engine="sphere"))
    after_second = mirror.mask.copy()
    mirror.apply(client.undo("a"))
    np.testing.assert_array_equal(mirror.mask, after_first)
    mirror.apply(client.undo("a"))
    assert not mirror.mask.any()
    with pytest.raises(errors.NothingToUndoError):
        client.undo("a")
    mirror.apply(client.redo("a"))
    mirror.apply(client.redo("a"))
    np.testing.assert_array_equal(mirror.mask, after_second)
    with pytest.raises(errors.NothingToUndoError):
        client.redo("a")
    assert {s["name"]: s["voxels"] for s in client.segments()}["b"] == other.mask.sum()


def test_undo_restores_the_prompts_so_the_next_click_builds_on_the_earlier_state(a_connected_client):
    client, mirror = a_connected_client, Mirror()
    mirror.apply(client.add_point("a", (5, 5, 5), True, engine="sphere"))
    mirror.apply(client.add_point("a", (15, 25, 35), True, engine="sphere"))
    mirror.apply(client.undo("a"))
    mirror.apply(client.add_point("a", (10, 15, 20), True, engine="sphere"))
    np.testing.assert_array_equal(mirror.mask, ball(SHAPE, (5, 5, 5)) | ball(SHAPE, (10, 15, 20)))


def test_a_new_interaction_clears_the_redo_stack(a_connected_client):
    client = a_connected_client
    client.add_point("a", (5, 5, 5), True, engine="sphere")
    client.undo("a")
    assert client.add_point("a", (10, 15, 20), True, engine="sphere").can_redo is False
    with pytest.raises(errors.NothingToUndoError):
        client.redo("a")


def test_reset_empties_the_segment_forgets_its_prompts_and_can_be_undone(a_connected_client):
    client, mirror = a_connected_client, Mirror()
    mirror.apply(client.add_point("a", (10, 15, 20), True, engine="sphere"))
    mirror.apply(client.reset("a"))
    assert not mirror.mask.any()
    mirror.apply(client.add_point("a", (5, 5, 5), True, engine="sphere"))
    np.testing.assert_array_equal(mirror.mask, ball(SHAPE, (5, 5, 5)))  # old prompts forgotten
    mirror.apply(client.undo("a"))
    mirror.apply(client.undo("a"))
    np.testing.assert_array_equal(mirror.mask, ball(SHAPE, (10, 15, 20)))


def test_a_deleted_segment_is_gone(a_connected_client):
    client = a_connected_client
    client.add_point("a", (10, 15, 20), True, engine="sphere")
    client.delete_segment("a")
    assert client.segments() == []
    with pytest.raises(errors.SegmentNotFoundError):
        client.undo("a")
    with pytest.raises(errors.SegmentNotFoundError):
        client.delete_segment("a")


def test_no_engine_can_take_the_voxels_of_a_locked_segment(a_connected_client):
    client, liver, grabber = a_connected_client, Mirror(), Mirror()
    liver.apply(client.add_point("liver", (10, 15, 20), True, engine="sphere"))
    client.lock("liver")
    grabber.apply(client.add_point("grabber", (2, 2, 2), True, engine="flood"))
    np.testing.assert_array_equal(grabber.mask, ~liver.mask)
    labels, segments = client.labelmap()
    label = {s["name"]: s["label"] for s in segments}
    np.testing.assert_array_equal(labels == label["liver"], liver.mask)


def test_unlocked_neighbours_may_overlap_and_unlocking_lifts_the_protection(a_connected_client):
    client, first, second = a_connected_client, Mirror(), Mirror()
    first.apply(client.add_point("a", (10, 15, 20), True, engine="sphere"))
    client.lock("a")
    client.lock("a", False)
    second.apply(client.add_point("b", (2, 2, 2), True, engine="flood"))
    assert second.mask.all()
    assert {s["name"]: s["voxels"] for s in client.segments()}["a"] == first.mask.sum()


def test_a_locked_segment_refuses_interactions_undo_reset_and_delete(a_connected_client):
    client = a_connected_client
    client.add_point("a", (10, 15, 20), True, engine="sphere")
    client.lock("a")
    for action in (lambda: client.add_point("a", (5, 5, 5), True, engine="sphere"),
                   lambda: client.undo("a"), lambda: client.reset("a"),
                   lambda: client.delete_segment("a")):
        with pytest.raises(errors.SegmentLockedError, match="unlock"):
            action()


def test_undo_never_writes_into_voxels_locked_after_the_step(a_connected_client):
    client, a_mask = a_connected_client, Mirror()
    a_mask.apply(client.add_point("a", (10, 15, 20), True, engine="sphere"))
    a_mask.apply(client.reset("a"))
    client.add_point("guard", (10, 15, 20), True, engine="sphere")
    client.lock("guard")
    a_mask.apply(client.undo("a"))  # restores the ball, minus the guard's voxels
    assert not a_mask.mask.any()


def test_a_prompt_outside_the_image_is_refused_and_changes_nothing(a_connected_client):
    client = a_connected_client
    with pytest.raises(errors.InvalidInputError, match="outside the image"):
        client.add_point("a", (10, 15, 40), True, engine="sphere")
    with pytest.raises(errors.InvalidInputError, match="outside the image"):
        client.add_box("a", (0, 0, 0), (25, 5, 5), engine="sphere")
    assert client.segments() in ([], [{"name": "a", "label": 1, "locked": False, "voxels": 0,
                                        "prompts": 0, "can_undo": False, "can_redo": False}])


def test_malformed_prompts_are_refused_with_what_is_expected(a_connected_client):
    client = a_connected_client
    for prompt, words in [({"kind": "scribble"}, "unknown prompt kind"),
                          ({"kind": "point", "point_kji": [1, 2]}, "3 finite numbers"),
                          ({"kind": "point", "point_kji": [1, "x", 2]}, "3 finite numbers"),
                          ({"kind": "box", "box_kji": [[1, 2, 3]]}, "box_kji")]:
        with pytest.raises(errors.InvalidInputError, match=words):
            client.interact("a", prompt, engine="sphere")


def test_an_engine_failure_answers_500_and_leaves_the_session_intact(a_connected_client):
    client, mirror = a_connected_client, Mirror()
    mirror.apply(client.add_point("a", (10, 15, 20), True, engine="sphere"))
    with pytest.raises(errors.EngineFailedError, match="unchanged"):
        client.add_point("a", (5, 5, 5), True, engine="broken")
    mirror.apply(client.add_point("a", (5, 5, 5), True, engine="sphere"))
    np.testing.assert_array_equal(mirror.mask, ball(SHAPE, (10, 15, 20)) | ball(SHAPE, (5, 5, 5)))


def test_an_engine_that_cannot_load_answers_with_the_reason_and_the_server_goes_on(a_connected_client):
    client, mirror = a_connected_client, Mirror()
    with pytest.raises(errors.EngineUnavailableError, match="cannot start: the checkpoint does not fit"):
        client.add_point("a", (5, 5, 5), True, engine="unloadable")
    with pytest.raises(errors.EngineFailedError, match="failed to load .KeyError"):
        client.add_point("a", (5, 5, 5), True, engine="crashing")
    mirror.apply(client.add_point("a", (5, 5, 5), True, engine="sphere"))
    np.testing.assert_array_equal(mirror.mask, ball(SHAPE, (5, 5, 5)))


def test_an_engine_the_server_does_not_serve_answers_503_naming_the_ones_it_does(a_connected_client):
    with pytest.raises(errors.EngineUnavailableError, match="sphere"):
        a_connected_client.add_point("a", (5, 5, 5), True, engine="sam-med3d")


def test_a_prompt_kind_the_engine_does_not_take_is_refused(a_connected_client):
    with pytest.raises(errors.InvalidInputError, match="does not take box"):
        a_connected_client.add_box("a", (1, 1, 1), (3, 3, 3), engine="flood")


def test_interacting_before_attaching_an_image_says_to_attach_one(a_server):
    client = a_server.client()
    client.connect(heartbeat=False)
    with pytest.raises(errors.NoImageAttachedError, match="attach an image"):
        client.add_point("a", (1, 1, 1), True, engine="sphere")


def test_a_seeded_segment_replaces_the_old_mask_and_new_clicks_build_on_it(a_connected_client):
    client, mirror = a_connected_client, Mirror()
    mirror.apply(client.add_point("a", (5, 5, 5), True, engine="sphere"))
    seed = np.zeros((3, 4, 5), np.uint8)
    seed[1:, 1:, 1:] = 1
    mirror.apply(client.seed("a", seed, [[10, 10, 10], [13, 14, 15]]))
    expected = np.zeros(SHAPE, bool)
    expected[11:13, 11:14, 11:15] = True
    np.testing.assert_array_equal(mirror.mask, expected)
    mirror.apply(client.undo("a"))
    np.testing.assert_array_equal(mirror.mask, ball(SHAPE, (5, 5, 5)))


def test_a_seed_outside_the_image_or_of_the_wrong_shape_is_refused(a_connected_client):
    with pytest.raises(errors.InvalidInputError, match="outside"):
        a_connected_client.seed("a", np.ones((3, 3, 3), np.uint8), [[18, 0, 0], [21, 3, 3]])
    with pytest.raises(errors.InvalidInputError, match="does not match"):
        a_connected_client.seed("a", np.ones((3, 3, 3), np.uint8), [[0, 0, 0], [3, 3, 4]])


def test_re_attaching_the_same_image_keeps_the_segments_and_another_image_starts_fresh(
        a_connected_client, a_ct_like_volume):
    client = a_connected_client
    array, matrix = a_ct_like_volume
    client.add_point("a", (10, 15, 20), True, engine="sphere")
    client.set_image(array, matrix, "CT")
    assert [s["name"] for s in client.segments()] == ["a"]
    client.set_image(array + 1, matrix, "CT")
    assert client.segments() == []


def test_sessions_do_not_see_each_others_segments(a_server, a_ct_like_volume):
    array, matrix = a_ct_like_volume
    alice, bob = a_server.client(), a_server.client()
    for client in (alice, bob):
        client.connect(heartbeat=False)
        client.set_image(array, matrix, "CT")
    alice.add_point("a", (10, 15, 20), True, engine="sphere")
    assert bob.segments() == []
    with pytest.raises(errors.SegmentNotFoundError):
        bob.undo("a")


def test_an_oversized_json_request_is_refused_with_413(a_connected_client):
    import requests

    from slicerfm_client import protocol

    client = a_connected_client
    response = requests.post(client.url + protocol.PATH_INTERACT, data=b"{" + b" " * 100_000 + b"}",
                             headers=client._headers())
    assert response.status_code == 413 and response.json()["error"] == protocol.ERROR_TOO_LARGE
