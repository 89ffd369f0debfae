"""One box prompt per placement or drag of the ROI, however many events announce it.

Placing a markups ROI fires ``PointPositionDefinedEvent`` and then
``PointEndInteractionEvent`` (and a drag ends with ``PointEndInteractionEvent``); its size is
set after its position, so the box is read after the events, on the next turn of the event
loop. :class:`BoxPromptCoalescer` schedules at most one read per turn and sends a box only
when its geometry differs from the box it sent last, so one gesture sends one interaction.
Plain Python: the scheduling (Slicer: ``qt.QTimer.singleShot(0, fn)``), the geometry and the
sending are given as callables.
"""

from __future__ import annotations

from typing import Callable, Hashable, Optional

import numpy as np


def roi_signature(roi_node, decimals: int = 3) -> Optional[Hashable]:
    """The ROI's placed geometry, rounded to ``decimals`` mm: the 8 corners in world RAS
    (so moving, resizing, rotating or re-parenting it changes the signature). None while
    the ROI is not placed or has no volume."""
    from .prompts import roi_corners_world

    if roi_node is None or roi_node.GetNumberOfDefinedControlPoints() == 0 \
            or min(roi_node.GetSize()) <= 0:
        return None
    return np.round(roi_corners_world(roi_node), decimals).tobytes()


class BoxPromptCoalescer:
    """schedule(fn): run ``fn`` soon on the main thread, after the current events.
    signature(): the box's geometry (:func:`roi_signature`), None when there is no box.
    send(): sends the box (e.g. ``logic.interactive.addBox(roi)``)."""

    def __init__(self, schedule: Callable[[Callable[[], None]], None],
                 signature: Callable[[], Optional[Hashable]], send: Callable[[], None]):
        self.schedule = schedule
        self.signature = signature
        self.send = send
        self._scheduled = False
        self._last: Optional[Hashable] = None

    def boxChanged(self, *event_args) -> None:
        """Any of the ROI's placement/interaction events (VTK observer arguments ignored)."""
        if not self._scheduled:
            self._scheduled = True
            self.schedule(self.flush)

    def flush(self) -> None:
        """Send the box if it is placed and differs from the last one sent."""
        self._scheduled = False
        signature = self.signature()
        if signature is None or signature == self._last:
            return
        self._last = signature
        self.send()

    def forget(self) -> None:
        """A new box is being drawn (the box tool was chosen again): the next placement is
        sent even if it happens to match the previous box."""
        self._last = None
