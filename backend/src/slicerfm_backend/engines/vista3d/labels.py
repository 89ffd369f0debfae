"""VISTA3D's label dictionary: class ids 0..132, names, groups, colours and prompt rules.

The ids are the network's global class indices (the ``class_vector`` / ``prompt_class`` it
was trained with); the names are those the released model publishes for them. This module
is pure Python (no torch): the engine's automatic seam (``Vista3DEngine.classes`` /
``class_ids``) and its point corrections use it to check requests before any model is loaded.

Prompt rules (docs/MODELS.md §2):

- ``AUTO_CLASSES``: the 127 classes a class prompt may name without points,
  {1..132} minus {16, 18, 129, 130, 131}.
- ``EVERYTHING``: the 117 classes of an "everything" request, {1..132} minus
  {2, 16, 18, 20, 21, 23..27, 128..132}.
- ``SUBCLASSES``: a class prompt for kidney (2), lung (20) or bone (21) is replaced by its
  parts before inference, as the released bundle does; the result never holds 2, 20 or 21.
- ``SPECIAL_CLASSES``: point prompts on these classes use the point labels 2/3 (negative /
  positive) instead of 0/1. We use the list of ``monai.networks.nets.VISTA3D
  .convert_point_label`` -- (23, 24, 25, 26, 27, 57, 128): lung tumour, pancreatic tumour,
  hepatic vessel, hepatic tumour, colon cancer primaries, trachea, bone lesion -- the list the
  network's point head was trained with. ``VistaPreTransformd``'s default
  (25, 26, 27, 28, 29, 117) is not used: it marks lung lobes and a kidney cyst as special,
  which does not match the training code.
- Zero-shot: points without a class (or with an id in 133..254) prompt an unseen structure;
  ``ZERO_SHOT_CLASS`` is the id we send for them.
"""

from __future__ import annotations

import colorsys
from typing import Dict, Iterable, List, Sequence, Tuple, Union

NAMES: Tuple[str, ...] = (
    'background',  # 0
    'liver',  # 1
    'kidney',  # 2
    'spleen',  # 3
    'pancreas',  # 4
    'right kidney',  # 5
    'aorta',  # 6
    'inferior vena cava',  # 7
    'right adrenal gland',  # 8
    'left adrenal gland',  # 9
    'gallbladder',  # 10
    'esophagus',  # 11
    'stomach',  # 12
    'duodenum',  # 13
    'left kidney',  # 14
    'bladder',  # 15
    'prostate or uterus',  # 16
    'portal vein and splenic vein',  # 17
    'rectum',  # 18
    'small bowel',  # 19
    'lung',  # 20
    'bone',  # 21
    'brain',  # 22
    'lung tumor',  # 23
    'pancreatic tumor',  # 24
    'hepatic vessel',  # 25
    'hepatic tumor',  # 26
    'colon cancer primaries',  # 27
    'left lung upper lobe',  # 28
    'left lung lower lobe',  # 29
    'right lung upper lobe',  # 30
    'right lung middle lobe',  # 31
    'right lung lower lobe',  # 32
    'vertebrae L5',  # 33
    'vertebrae L4',  # 34
    'vertebrae L3',  # 35
    'vertebrae L2',  # 36
    'vertebrae L1',  # 37
    'vertebrae T12',  # 38
    'vertebrae T11',  # 39
    'vertebrae T10',  # 40
    'vertebrae T9',  # 41
    'vertebrae T8',  # 42
    'vertebrae T7',  # 43
    'vertebrae T6',  # 44
    'vertebrae T5',  # 45
    'vertebrae T4',  # 46
    'vertebrae T3',  # 47
    'vertebrae T2',  # 48
    'vertebrae T1',  # 49
    'vertebrae C7',  # 50
    'vertebrae C6',  # 51
    'vertebrae C5',  # 52
    'vertebrae C4',  # 53
    'vertebrae C3',  # 54
    'vertebrae C2',  # 55
    'vertebrae C1',  # 56
    'trachea',  # 57
    'left iliac artery',  # 58
    'right iliac artery',  # 59
    'left iliac vena',  # 60
    'right iliac vena',  # 61
    'colon',  # 62
    'left rib 1',  # 63
    'left rib 2',  # 64
    'left rib 3',  # 65
    'left rib 4',  # 66
    'left rib 5',  # 67
    'left rib 6',  # 68
    'left rib 7',  # 69
    'left rib 8',  # 70
    'left rib 9',  # 71
    'left rib 10',  # 72
    'left rib 11',  # 73
    'left rib 12',  # 74
    'right rib 1',  # 75
    'right rib 2',  # 76
    'right rib 3',  # 77
    'right rib 4',  # 78
    'right rib 5',  # 79
    'right rib 6',  # 80
    'right rib 7',  # 81
    'right rib 8',  # 82
    'right rib 9',  # 83
    'right rib 10',  # 84
    'right rib 11',  # 85
    'right rib 12',  # 86
    'left humerus',  # 87
    'right humerus',  # 88
    'left scapula',  # 89
    'right scapula',  # 90
    'left clavicula',  # 91
    'right clavicula',  # 92
    'left femur',  # 93
    'right femur',  # 94
    'left hip',  # 95
    'right hip',  # 96
    'sacrum',  # 97
    'left gluteus maximus',  # 98
    'right gluteus maximus',  # 99
    'left gluteus medius',  # 100
    'right gluteus medius',  # 101
    'left gluteus minimus',  # 102
    'right gluteus minimus',  # 103
    'left autochthon',  # 104
    'right autochthon',  # 105
    'left iliopsoas',  # 106
    'right iliopsoas',  # 107
    'left atrial appendage',  # 108
    'brachiocephalic trunk',  # 109
    'left brachiocephalic vein',  # 110
    'right brachiocephalic vein',  # 111
    'left common carotid artery',  # 112
    'right common carotid artery',  # 113
    'costal cartilages',  # 114
    'heart',  # 115
    'left kidney cyst',  # 116
    'right kidney cyst',  # 117
    'prostate',  # 118
    'pulmonary vein',  # 119
    'skull',  # 120
    'spinal cord',  # 121
    'sternum',  # 122
    'left subclavian artery',  # 123
    'right subclavian artery',  # 124
    'superior vena cava',  # 125
    'thyroid gland',  # 126
    'vertebrae S1',  # 127
    'bone lesion',  # 128
    'kidney mass',  # 129
    'liver tumor',  # 130
    'vertebrae L6',  # 131
    'airway',  # 132
)

LAST_SUPPORTED = 132
ZERO_SHOT_CLASS = 133
MAX_ZERO_SHOT_CLASS = 254

AUTO_CLASSES: Tuple[int, ...] = tuple(sorted(set(range(1, 133)) - {16, 18, 129, 130, 131}))
EVERYTHING: Tuple[int, ...] = tuple(sorted(
    set(range(1, 133)) - {2, 16, 18, 20, 21, 23, 24, 25, 26, 27, 128, 129, 130, 131, 132}))
SUBCLASSES: Dict[int, Tuple[int, ...]] = {
    2: (14, 5),
    20: (28, 29, 30, 31, 32),
    21: tuple(range(33, 57)) + tuple(range(63, 98)) + (114, 120, 122),
}
SPECIAL_CLASSES: Tuple[int, ...] = (23, 24, 25, 26, 27, 57, 128)

BONES = set(range(33, 57)) | set(range(63, 98)) | {21, 114, 120, 122, 127, 131}
VESSELS = {6, 7, 17, 25, 58, 59, 60, 61, 108, 109, 110, 111, 112, 113, 119, 123, 124, 125}
TUMOURS = {23, 24, 26, 27, 116, 117, 128, 129, 130}
MUSCLES = set(range(98, 108))
GROUPS = ("organs", "vessels", "bones", "tumours", "muscles")

ClassItem = Union[int, str]


def group_of(class_id: int) -> str:
    """The picker group of a class: organs, vessels, bones, tumours or muscles."""
    if class_id in BONES:
        return "bones"
    if class_id in VESSELS:
        return "vessels"
    if class_id in TUMOURS:
        return "tumours"
    if class_id in MUSCLES:
        return "muscles"
    return "organs"


def colour_of(class_id: int) -> Tuple[int, int, int]:
    """A stable RGB colour (0..255) for a class: hue by golden-angle steps over the ids,
    lighter for bones, darker for tumours, so neighbouring ids stay distinguishable."""
    hue = (class_id * 0.618033988749895) % 1.0
    lightness = {"bones": 0.78, "tumours": 0.38}.get(group_of(class_id), 0.55)
    r, g, b = colorsys.hls_to_rgb(hue, lightness, 0.65)
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


_BY_NAME = {name.lower(): index for index, name in enumerate(NAMES)}


def class_id(item: ClassItem) -> int:
    """The id of a class given by id (int or digits) or name (case-insensitive, "_" = " ").

    ValueError for an unknown name or an id outside 1..132.
    """
    if isinstance(item, bool):
        raise ValueError(f"a class is a name or an id 1..{LAST_SUPPORTED}, got {item!r}")
    if isinstance(item, str):
        text = item.strip()
        if text.isdigit():
            item = int(text)
        else:
            key = text.lower().replace("_", " ")
            if key not in _BY_NAME or _BY_NAME[key] == 0:
                close = [n for n in NAMES[1:] if key and (key in n.lower() or n.lower() in key)][:5]
                hint = f"; did you mean {', '.join(repr(n) for n in close)}?" if close else ""
                raise ValueError(f"unknown VISTA3D class {item!r}{hint} (see docs/VISTA3D.md)")
            return _BY_NAME[key]
    if not isinstance(item, int) or not 1 <= item <= LAST_SUPPORTED:
        raise ValueError(f"VISTA3D class ids are 1..{LAST_SUPPORTED}, got {item!r}")
    return item


def auto_classes(items: Iterable[ClassItem]) -> List[int]:
    """Class prompts for automatic segmentation: ids (in request order, duplicates dropped)
    with kidney/lung/bone replaced by their parts. ValueError for a class that cannot be
    prompted without points (16, 18, 129, 130, 131) or an empty request."""
    out: List[int] = []
    for item in items:
        cid = class_id(item)
        if cid not in AUTO_CLASSES:
            raise ValueError(f"class {cid} ({NAMES[cid]}) cannot be segmented automatically by "
                             "VISTA3D; use point prompts for it")
        for part in SUBCLASSES.get(cid, (cid,)):
            if part not in out:
                out.append(part)
    if not out:
        raise ValueError("no classes requested: give class names or ids, or ask for everything")
    return out


def point_class(item: Union[ClassItem, None]) -> int:
    """The ``prompt_class`` for point prompts: a supported class id 1..132 (not kidney, lung or
    bone, whose parts must be clicked instead), or ``ZERO_SHOT_CLASS`` for None."""
    if item is None:
        return ZERO_SHOT_CLASS
    cid = class_id(item)
    if cid in SUBCLASSES:
        parts = ", ".join(NAMES[p] for p in SUBCLASSES[cid][:5])
        raise ValueError(f"points cannot prompt {NAMES[cid]!r} (class {cid}): it is split into "
                         f"parts ({parts}, ...); click one part instead")
    return cid


def point_label_values(prompt_class: int, positive: Sequence[bool]) -> List[int]:
    """VISTA3D point labels for ``positive`` flags: 1/0, or 3/2 for a special class."""
    shift = 2 if prompt_class in SPECIAL_CLASSES else 0
    return [shift + (1 if p else 0) for p in positive]


def dictionary(ids: Iterable[int]) -> Dict[str, dict]:
    """The label dictionary of a result: ``{"<id>": {"name", "color": [r, g, b], "group"}}``
    (JSON keys are strings)."""
    return {str(i): {"name": NAMES[i], "color": list(colour_of(i)), "group": group_of(i)}
            for i in ids}


def catalogue() -> List[dict]:
    """Every class with id, name, group, colour and whether it may be prompted without points
    (``auto``) and is part of "everything"; for pickers."""
    return [{"id": i, "name": NAMES[i], "group": group_of(i), "color": list(colour_of(i)),
             "auto": i in AUTO_CLASSES, "everything": i in EVERYTHING,
             "special": i in SPECIAL_CLASSES, "parts": list(SUBCLASSES.get(i, ()))}
            for i in range(1, LAST_SUPPORTED + 1)]
