"""Point clicks in slice views, sent by the page as ONE message instead of four round trips.

trame-rca's page sends a view's mouse events one at a time, each after the previous one's
answer and an animation frame: a click in Place mode was the move to the point, the start
of the interaction, the press and the release -- four round trips page -> gateway -> tab in
a row before Slicer's markups placed the point (on release). While a point tool is active
the page (``static/slicerfm.js``) keeps the left button's press and release in a slice view
from trame-rca and, on release, sends the click's position with the ``click_view`` trigger.
The tab replays the click on the view's VTK interactor -- mouse move, left press, left
release at that position -- through the same adapter trame-rca's events go through
(``vtkRemoteInteractionAdapter``), so Slicer's markups displayable manager places the point
exactly as before: its preview point, the crosshair cursor (the view a slice engine gets),
the Logic's observer, queueing, locks and undo are unchanged. Pan, zoom, scroll,
window/level, the box tool and every other view event stay on trame-rca's path.

Coordinate systems:

- the page gives the pointer in CSS pixels of the view's element, ``x`` from its left edge
  and ``y`` from its *bottom* edge (trame-rca's convention), with the element's CSS size
  ``width`` x ``height``;
- ``vtkRemoteInteractionAdapter`` turns that into the render window's display pixel
  ``(int((x / width + 1e-5) * W), int((y / height + 1e-5) * H))`` for a render window of
  ``W x H`` pixels (the CSS size times the device-pixel ratio), origin bottom-left: the same
  integer pixel trame-rca's events give (it scales x and width alike, so the ratio is kept);
- the slice node's ``XYToRAS`` (4x4) maps that display pixel ``(x, y, 0, 1)`` to world RAS
  (mm) on the slice the view shows; that is where Slicer's markups put the point
  (``Testing/web/test_browser_clicks.py`` checks in Chromium that both paths give the same
  point).
"""

from __future__ import annotations

import json
import math
from typing import Callable, Tuple

from vtkmodules.vtkWebCore import vtkRemoteInteractionAdapter

from SlicerFMLib.prompt_nodes import NEGATIVE, POSITIVE

#: the tools whose clicks take the one-message path (the box is dragged: trame-rca's path)
POINT_TOOLS = (POSITIVE, NEGATIVE)


def click_position(x: float, y: float, width: float, height: float) -> Tuple[float, float, float, float]:
    """Check a click's position from the page (CSS px, ``y`` up from the bottom edge, within
    the element of ``width`` x ``height``); ValueError when it is not a finite position
    inside a non-empty element."""
    try:
        values = [float(v) for v in (x, y, width, height)]
    except (TypeError, ValueError):
        raise ValueError("a click position must be four numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError("a click position must be finite numbers")
    x, y, width, height = values
    if width < 1 or height < 1 or not (0 <= x <= width and 0 <= y <= height):
        raise ValueError(f"the click ({x:.1f}, {y:.1f}) is outside its {width:.0f}x{height:.0f} view")
    return x, y, width, height


def click_events(x: float, y: float, width: float, height: float) -> list:
    """The events trame-rca's page sends for a plain left click (vtk.js's remote mouse
    events, without the start/end of interaction, which the adapter ignores)."""
    base = {"x": x, "y": y, "w": width, "h": height, "ctrlKey": 0, "altKey": 0, "shiftKey": 0}
    return [dict(base, type=kind) for kind in ("MouseMove", "LeftButtonPress", "LeftButtonRelease")]


class ViewClicks:
    """The ``click_view`` trigger: a point tool's click in a slice view, replayed on the
    view's interactor (module docstring). ``tools``: the tab's :class:`PromptTools`;
    ``views``: its :class:`Views`."""

    def __init__(self, tools, views, on_click: Callable[[], None] = lambda: None):
        self.tools = tools
        self.views = views
        self.on_click = on_click
        self.count = 0
        tools.state.view_clicks = 0     # clicks taken through this path (the tests read it)

    def click(self, view_name: str, x: float, y: float, width: float, height: float) -> bool:
        """Place the active point tool's point where the page's click was; False (nothing
        done) when no point tool is active any more (the click raced a change of tool)."""
        if self.tools.state.active_tool not in POINT_TOOLS:
            return False
        view = self.views.view_by_name(str(view_name))
        if view is None:
            raise ValueError(f"no slice view named {view_name!r}")
        x, y, width, height = click_position(x, y, width, height)
        self.on_click()
        interactor = view.interactor()
        for event in click_events(x, y, width, height):
            vtkRemoteInteractionAdapter.ProcessEvent(interactor, json.dumps(event))
        self.count += 1
        self.tools.state.view_clicks = self.count
        return True
