"""VISTA3D label dictionary, prompt rules and subclass expansion."""

import pytest

from slicerfm_backend.engines.vista3d import labels as L


def test_counts_and_names():
    assert len(L.NAMES) == 133 and L.NAMES[0] == "background" and L.NAMES[132] == "airway"
    assert len(L.AUTO_CLASSES) == 127 and not {16, 18, 129, 130, 131} & set(L.AUTO_CLASSES)
    assert len(L.EVERYTHING) == 117 and not {2, 20, 21, 23, 128, 132} & set(L.EVERYTHING)
    assert L.NAMES[63] == "left rib 1" and L.NAMES[86] == "right rib 12" and L.NAMES[87] == "left humerus"


def test_subclass_expansion_and_lookup():
    assert L.auto_classes(["kidney"]) == [14, 5]
    assert L.auto_classes(["lung", "28"]) == [28, 29, 30, 31, 32]  # duplicates dropped
    bone = L.auto_classes([21])
    assert len(bone) == 24 + 35 + 3 and 33 in bone and 97 in bone and 120 in bone and 21 not in bone
    assert L.class_id("Left_Kidney") == 14 and L.class_id(" 3 ") == 3
    with pytest.raises(ValueError, match="did you mean"):
        L.class_id("kidneys left")
    with pytest.raises(ValueError, match="point"):
        L.auto_classes(["liver tumor"])
    with pytest.raises(ValueError, match="1..132"):
        L.class_id(133)
    with pytest.raises(ValueError, match="no classes"):
        L.auto_classes([])


def test_point_classes_special_labels_and_dictionary():
    assert L.point_class(None) == L.ZERO_SHOT_CLASS
    assert L.point_class("liver tumor") == 130
    with pytest.raises(ValueError, match="part"):
        L.point_class("bone")
    assert L.point_label_values(1, [True, False]) == [1, 0]
    assert L.point_label_values(128, [True, False]) == [3, 2]
    d = L.dictionary([1, 14])
    assert d["14"]["name"] == "left kidney" and all(0 <= c <= 255 for c in d["1"]["color"])
    colours = {tuple(L.colour_of(i)) for i in range(1, 133)}
    assert len(colours) > 120  # distinct enough for named segments
    assert {c["group"] for c in L.catalogue()} == set(L.GROUPS)
