"""The automatic segmentation class picker: groups, search, "everything", colours.

The catalogue is the backend's own (``vista3d_labels.catalogue()``, what the server sends),
so the picker is checked against the real class list, not a copy.
"""

import pytest

from SlicerFMLib.class_catalogue import ClassCatalogue, colour_01, entry_from_server


@pytest.fixture(scope="module")
def a_catalogue():
    from slicerfm_backend.engines.vista3d import labels as vista3d_labels

    return ClassCatalogue.from_server(vista3d_labels.catalogue())


def test_the_127_classes_are_grouped_and_everything_has_117(a_catalogue):
    groups = dict(a_catalogue.groups())
    assert list(groups)[:2] == ["organs", "vessels"]
    assert {"organs", "vessels", "bones", "tumours", "muscles"} <= set(groups)
    assert sum(len(entries) for entries in groups.values()) == 127
    assert len(a_catalogue.everything()) == 117
    assert "aorta" in [e.name for e in groups["vessels"]]
    assert "liver" in [e.name for e in groups["organs"]]
    assert {e.name for e in groups["bones"]} >= {"sacrum", "left rib 1", "vertebrae L5"}
    assert "kidney mass" not in [e.name for g in groups.values() for e in g]   # points only


def test_search_matches_every_word_in_any_order_and_ids(a_catalogue):
    assert [e.name for e in a_catalogue.search("kidney left")] == ["left kidney", "left kidney cyst"]
    assert [e.name for e in a_catalogue.search("LIVER")] == ["liver"]     # liver tumor: points only
    assert len(a_catalogue.search("rib", group="bones")) == 24
    assert a_catalogue.search("rib", group="vessels") == []
    by_number = [e.name for e in a_catalogue.search("3")]     # id 3, and names with a 3
    assert by_number[0] == "spleen" and {"vertebrae L3", "left rib 3"} <= set(by_number)
    assert a_catalogue.search("no such organ") == []
    assert len(a_catalogue.search("")) == 127


def test_picked_names_resolve_to_ids_and_unknown_names_are_refused(a_catalogue):
    assert a_catalogue.resolve(["Spleen", 1, "3", "left kidney"]) == [3, 1, 14]
    with pytest.raises(ValueError, match="no class 'spleeen'"):
        a_catalogue.resolve(["spleeen"])


def test_colours_come_in_either_range_and_bad_entries_are_refused():
    assert colour_01([255, 0, 51]) == (1.0, 0.0, 0.2)
    assert colour_01([0.5, 0.25, 1.0]) == (0.5, 0.25, 1.0)
    with pytest.raises(ValueError):
        colour_01([300, 0, 0])
    with pytest.raises(ValueError, match="integer 'id'"):
        entry_from_server({"name": "liver"})
    with pytest.raises(ValueError, match="twice"):
        ClassCatalogue.from_server([{"id": 1, "name": "a"}, {"id": 1, "name": "b"}])
