"""The automatic-segmentation class picker on a ``QTreeWidget``: groups, search, ticks.

What is offered, grouped and found by a search is :class:`SlicerFMLib.class_catalogue.
ClassCatalogue`'s policy; this adapter only mirrors it into a tree (one top-level item per
group with its classes as checkable children, the class id in ``Qt.UserRole``) and reads the
ticks back. ``qt`` is the Qt namespace to build items with: Slicer's PythonQt ``qt`` module,
or an object with ``QTreeWidgetItem``, ``QColor`` and ``Qt`` from PySide/PyQt. Properties are
read through :func:`value` so that PythonQt's property attributes and PySide's getter methods
both work.
"""

from __future__ import annotations

from typing import List, Optional

from .class_catalogue import ClassCatalogue


def value(obj, name: str):
    """A Qt property read the same way in PythonQt (attribute) and PySide/PyQt (method)."""
    attribute = getattr(obj, name)
    return attribute() if callable(attribute) else attribute


class ClassTreePicker:
    """tree: the ``QTreeWidget``; groups: the group filter ``QComboBox`` (first item: all)."""

    ALL_GROUPS = "all groups"

    def __init__(self, tree, groups, qt):
        self.tree = tree
        self.groups = groups
        self.qt = qt
        self.catalogue: Optional[ClassCatalogue] = None

    def populate(self, catalogue: ClassCatalogue) -> None:
        """One group item per catalogue group (``ClassCatalogue.groups()``), classes unticked."""
        qt, flags = self.qt, self.qt.Qt
        self.catalogue = catalogue
        self.tree.clear()
        blocked = self.groups.blockSignals(True)
        try:
            self.groups.clear()
            self.groups.addItem(self.ALL_GROUPS)
            for group, entries in catalogue.groups():
                self.groups.addItem(group)
                group_item = qt.QTreeWidgetItem(self.tree, [f"{group} ({len(entries)})"])
                group_item.setFlags(group_item.flags() | flags.ItemIsUserCheckable
                                    | flags.ItemIsAutoTristate)
                group_item.setCheckState(0, flags.Unchecked)
                for entry in entries:
                    item = qt.QTreeWidgetItem(group_item, [entry.name])
                    item.setFlags(item.flags() | flags.ItemIsUserCheckable)
                    item.setCheckState(0, flags.Unchecked)
                    item.setData(0, flags.UserRole, entry.id)
                    item.setData(0, flags.DecorationRole, qt.QColor.fromRgbF(*entry.color))
        finally:
            self.groups.blockSignals(blocked)

    def clear(self) -> None:
        self.catalogue = None
        self.tree.clear()

    def filter(self, text: str) -> None:
        """Show the classes ``ClassCatalogue.search(text, group)`` finds (group from the
        group box; its first item means all), hide empty groups, expand while filtering."""
        if self.catalogue is None:
            return
        group = value(self.groups, "currentText") if value(self.groups, "currentIndex") > 0 else None
        shown = {entry.id for entry in self.catalogue.search(text, group)}
        for group_item in self._group_items():
            visible = 0
            for item in self._children(group_item):
                hidden = int(item.data(0, self.qt.Qt.UserRole)) not in shown
                item.setHidden(hidden)
                visible += not hidden
            group_item.setHidden(visible == 0)
            group_item.setExpanded(bool(text) or group is not None)

    def checked(self) -> List[int]:
        """Ids of the ticked classes, in tree order."""
        return [int(item.data(0, self.qt.Qt.UserRole)) for group_item in self._group_items()
                for item in self._children(group_item)
                if item.checkState(0) == self.qt.Qt.Checked]

    def _group_items(self):
        return [self.tree.topLevelItem(g) for g in range(value(self.tree, "topLevelItemCount"))]

    @staticmethod
    def _children(group_item):
        return [group_item.child(c) for c in range(group_item.childCount())]
