"""The class picker's data for automatic segmentation: classes grouped and searchable.

The classes come from the server (the engine's catalogue: a list of
``{"id", "name", "group", "color": [r, g, b] 0..255, "auto", "everything", ...}``, as
``slicerfm_backend.engines.vista3d.labels.catalogue()`` publishes it), never from a copy
kept here, so the picker always offers what the connected server can segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

#: the order of the picker's groups; a group the server names that is not here comes after
GROUP_ORDER = ("organs", "vessels", "bones", "muscles", "tumours")
OTHER = "other"


@dataclass(frozen=True)
class ClassEntry:
    """One class: ``id`` (the server's label value), ``name``, ``group``, ``color`` (r, g, b)
    in 0..1, ``auto``: may be requested without points, ``everything``: part of the
    "everything" request, ``parts``: ids it is split into (kidney -> left/right kidney)."""

    id: int
    name: str
    group: str = OTHER
    color: Tuple[float, float, float] = (0.5, 0.5, 0.5)
    auto: bool = True
    everything: bool = False
    parts: Tuple[int, ...] = ()


def colour_01(color: Optional[Sequence[float]]) -> Tuple[float, float, float]:
    """An (r, g, b) colour in 0..1 from 0..255 integers or 0..1 floats; grey when missing.
    ValueError for a colour that is not three numbers in either range."""
    if color is None:
        return (0.5, 0.5, 0.5)
    values = [float(v) for v in color]
    if len(values) != 3 or min(values) < 0:
        raise ValueError(f"a colour must be three non-negative numbers, got {list(color)!r}")
    if max(values) > 1.0:
        if max(values) > 255.0:
            raise ValueError(f"colour values above 255: {list(color)!r}")
        values = [v / 255.0 for v in values]
    return tuple(values)


def entry_from_server(item: dict) -> ClassEntry:
    """A ClassEntry from one catalogue item of the server (see the module docstring)."""
    try:
        class_id = int(item["id"])
        name = str(item["name"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"a class needs an integer 'id' and a 'name': {item!r}") from error
    return ClassEntry(id=class_id, name=name, group=str(item.get("group") or OTHER),
                      color=colour_01(item.get("color")), auto=bool(item.get("auto", True)),
                      everything=bool(item.get("everything", False)),
                      parts=tuple(int(p) for p in item.get("parts") or ()))


class ClassCatalogue:
    """The classes of one engine, by id, by group and by search."""

    def __init__(self, entries: Iterable[ClassEntry]):
        self.entries: List[ClassEntry] = sorted(entries, key=lambda e: e.id)
        self._by_id: Dict[int, ClassEntry] = {}
        for entry in self.entries:
            if entry.id in self._by_id:
                raise ValueError(f"class id {entry.id} appears twice in the catalogue")
            self._by_id[entry.id] = entry
        self._by_name = {e.name.lower(): e for e in self.entries}

    @classmethod
    def from_server(cls, items: Iterable[dict]) -> "ClassCatalogue":
        return cls(entry_from_server(item) for item in items)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, class_id: int) -> Optional[ClassEntry]:
        return self._by_id.get(int(class_id))

    def by_name(self, name: str) -> Optional[ClassEntry]:
        """The class named ``name`` (case-insensitive), or None."""
        return self._by_name.get(name.strip().lower())

    def groups(self) -> List[Tuple[str, List[ClassEntry]]]:
        """``[(group, [entries by id])]`` in GROUP_ORDER, then other groups alphabetically;
        only classes that may be requested without points (``auto``)."""
        grouped: Dict[str, List[ClassEntry]] = {}
        for entry in self.entries:
            if entry.auto:
                grouped.setdefault(entry.group, []).append(entry)
        order = [g for g in GROUP_ORDER if g in grouped] + \
            sorted(g for g in grouped if g not in GROUP_ORDER)
        return [(group, grouped[group]) for group in order]

    def search(self, text: str, group: Optional[str] = None) -> List[ClassEntry]:
        """Classes whose name contains every word of ``text`` (case-insensitive, any order;
        "_" counts as a space), or whose id equals ``text``; optionally one group only.
        Empty text: every class (of the group) that may be requested without points."""
        words = text.lower().replace("_", " ").split()
        found = []
        for entry in self.entries:
            if not entry.auto or (group is not None and entry.group != group):
                continue
            name = entry.name.lower()
            if all(w in name for w in words) or (len(words) == 1 and words[0] == str(entry.id)):
                found.append(entry)
        return found

    def everything(self) -> List[ClassEntry]:
        """The classes an "everything" request computes."""
        return [e for e in self.entries if e.everything]

    def resolve(self, items: Iterable) -> List[int]:
        """Ids for names or ids chosen in the picker (order kept, duplicates dropped);
        ValueError naming an unknown class."""
        ids: List[int] = []
        for item in items:
            entry = self.get(item) if isinstance(item, int) or str(item).strip().isdigit() \
                else self.by_name(str(item))
            if entry is None:
                raise ValueError(f"the server's catalogue has no class {item!r}")
            if entry.id not in ids:
                ids.append(entry.id)
        return ids
