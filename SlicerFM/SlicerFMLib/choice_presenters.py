"""Restoring saved choices into selectors whose own signals would overwrite them.

Both presenters read the saved value *before* touching the widget and ignore the widget's
change signals while they fill or restore it, because Qt and Slicer widgets announce a
"current item" while they are being filled:

* a ``QComboBox`` that gets its first item makes it current and emits
  ``currentIndexChanged`` / ``currentTextChanged`` during ``addItem``; repopulating the
  engine list after (re)connecting would write the first engine into the parameter node
  before the saved engine is looked up (:class:`EngineChoicePresenter`);
* ``qMRMLSegmentSelectorWidget::setCurrentNode`` repopulates its segment list, selects the
  first segment and emits ``currentSegmentChanged`` (``populateSegmentCombobox``) before
  ``currentNodeChanged``; restoring a scene or parameter node would lose the saved segment
  (:class:`SegmentChoicePresenter`).

Plain Python: the widgets are duck-typed (methods only, so Slicer's PythonQt widgets and
PySide/PyQt widgets both fit), the saved values are read and written through callables.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Tuple


class EngineChoicePresenter:
    """The engine combo box. combo: ``blockSignals``, ``clear``, ``addItem``, ``findText``,
    ``setCurrentIndex``. saved()/save(name): the parameter node's engine."""

    def __init__(self, combo, saved: Callable[[], str], save: Callable[[str], None]):
        self.combo = combo
        self.saved = saved
        self.save = save
        self._filling = False

    def populate(self, names: Sequence[str]) -> str:
        """Fill the box with the served engines and select the saved one; when it is not
        served, select the first and save that (the Logic must use a served engine).
        Returns the selected engine ("" when none is served)."""
        saved = self.saved()
        choice = saved if saved in names else (names[0] if names else "")
        self._filling = True
        blocked = self.combo.blockSignals(True)
        try:
            self.combo.clear()
            for name in names:
                self.combo.addItem(name)
            self.combo.setCurrentIndex(self.combo.findText(choice) if choice else -1)
        finally:
            self.combo.blockSignals(blocked)
            self._filling = False
        if choice and choice != saved:
            self.save(choice)
        return choice

    def userChose(self, name: str) -> None:
        """The combo box's ``currentTextChanged``: save the user's choice."""
        if not self._filling and name:
            self.save(name)


class SegmentChoicePresenter:
    """The segmentation and segment selector (``qMRMLSegmentSelectorWidget``: methods
    ``setCurrentNode``, ``currentNode``, ``setCurrentSegmentID``, ``currentSegmentID``).
    saved() -> (segmentation node or None, segment ID); save(node, segmentID)."""

    def __init__(self, selector, saved: Callable[[], Tuple[Any, str]],
                 save: Callable[[Any, str], None]):
        self.selector = selector
        self.saved = saved
        self.save = save
        self._restoring = False

    def restore(self) -> None:
        """Show the saved segmentation and segment. If the saved segment no longer exists,
        the selector's choice (its first segment) is saved instead."""
        node, segment_id = self.saved()
        self._restoring = True
        try:
            self.selector.setCurrentNode(node)
            if node is not None and segment_id and _has_segment(node, segment_id):
                self.selector.setCurrentSegmentID(segment_id)
        finally:
            self._restoring = False
        shown = (self.selector.currentSegmentID() or "") if node is not None else ""
        if shown != (segment_id or ""):
            self.save(node, shown)

    def nodeChanged(self, node) -> None:
        """The selector's ``currentNodeChanged(vtkMRMLNode*)`` (emitted after the segment)."""
        if not self._restoring:
            self.save(node, (self.selector.currentSegmentID() or "") if node is not None else "")

    def segmentChanged(self, segment_id: Optional[str]) -> None:
        """The selector's ``currentSegmentChanged(QString)``."""
        if not self._restoring:
            self.save(self.selector.currentNode(), segment_id or "")


def _has_segment(segmentation_node, segment_id: str) -> bool:
    return segmentation_node.GetSegmentation().GetSegment(segment_id) is not None
