"""Which view renders first: the one the user works in at once, the others a moment later.

Every view of a tab renders on the tab's one event loop (software GL on the main thread,
trame-rca's scheduler per view), and most changes ask every view to render: moving the
mouse in Place mode moves the markups preview point in all four views, a placed point or a
result changes all of them. Rendered in whatever order the requests came, the view that was
clicked waited for the other three (the 3D view alone 40-120 ms) before its frame went out,
and the click's mouse events waited behind those renders on the way in.

Here the view that last received the user's input (mouse or key events on its interactor)
is *active*: its render requests go to trame-rca at once. The other views' requests are
held and coalesced; they are released one view per event-loop turn once the user's input
and the active view's own requests have been quiet for ``quiet_s`` (its frame is encoded
and on its way) and no click is waiting for the server (``busy``), or at the latest
``max_defer_s`` after the first held request -- so a placed point and its result usually
cost the other views one render instead of two, and the active view's input and frames do
not queue behind them. Before any input every view renders at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Dict, Optional

from trame_slicer.views import ScheduledRenderStrategy

log = logging.getLogger(__name__)

#: interactor events that mean "the user works in this view"
INPUT_EVENTS = ("MouseMoveEvent", "LeftButtonPressEvent", "LeftButtonReleaseEvent",
                "MiddleButtonPressEvent", "MiddleButtonReleaseEvent", "RightButtonPressEvent",
                "RightButtonReleaseEvent", "MouseWheelForwardEvent", "MouseWheelBackwardEvent",
                "KeyPressEvent", "KeyReleaseEvent")
#: observers run before the interactor style's own (priority 0), so the view is active
#: before the event's own render requests arrive
OBSERVER_PRIORITY = 10.0


class PrioritizedRender(ScheduledRenderStrategy):
    """A view's render strategy: asks :class:`RenderPriority` before passing a request on
    to the view's own strategy (trame-slicer's, which wakes trame-rca's scheduler)."""

    def __init__(self, inner: ScheduledRenderStrategy, priority: "RenderPriority", name: str):
        super().__init__()
        self.inner = inner
        self.priority = priority
        self.name = name

    def set_abstract_view(self, abstract_view) -> None:
        super().set_abstract_view(abstract_view)
        self.inner.set_abstract_view(abstract_view)

    def schedule_render(self) -> None:
        self.priority.request(self)

    def render_now(self) -> None:
        self.inner.schedule_render()

    def did_render(self) -> None:
        self.inner.did_render()


class RenderPriority:
    """Orders the render requests of a tab's views (see the module's docstring).

    busy: True while a click waits for the server (the other views then wait for its result).
    quiet_s / max_defer_s: seconds without input or an active view's request before held
    views render / longest hold.
    """

    def __init__(self, busy: Callable[[], bool] = lambda: False, quiet_s: float = 0.1,
                 max_defer_s: float = 0.6):
        self.busy = busy
        self.quiet_s, self.max_defer_s = quiet_s, max_defer_s
        self.active: Optional[PrioritizedRender] = None
        self._last_input = 0.0          # last input, or render request of the active view (s)
        self._held: Dict[PrioritizedRender, float] = {}     # view -> first held request (s)
        self._timer: Optional[asyncio.TimerHandle] = None
        self._observed = []

    def install(self, view) -> Optional[PrioritizedRender]:
        """Put ``view`` (a trame-slicer view) under this ordering; None when it has no
        render strategy to wrap (it is then left as it is)."""
        inner = getattr(view, "_scheduled_render", None)
        if inner is None:
            log.warning("view %s has no render strategy: its renders are not ordered",
                        view.get_singleton_tag())
            return None
        strategy = PrioritizedRender(inner, self, view.get_singleton_tag())
        view.set_scheduled_render(strategy)
        interactor = view.interactor()
        for event in INPUT_EVENTS:
            tag = interactor.AddObserver(event, lambda *_: self.note_input(strategy), OBSERVER_PRIORITY)
            self._observed.append((interactor, tag))
        return strategy

    def note_input(self, view: PrioritizedRender) -> None:
        """The user acts in ``view``: it becomes the active one; a view that was held
        renders now."""
        self._last_input = time.monotonic()
        if view is not self.active:
            self.active = view
            if self._held.pop(view, None) is not None:
                view.render_now()

    def request(self, view: PrioritizedRender) -> None:
        if self.active is None or view is self.active:
            if self.active is not None:
                self._last_input = time.monotonic()
            view.render_now()
            return
        self._held.setdefault(view, time.monotonic())
        self._arm(self.quiet_s)

    def _arm(self, delay_s: float) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:               # no loop (tests building views): render at once
            self._release_all()
            return
        self._timer = loop.call_later(max(0.0, delay_s), self._due)

    def _due(self) -> None:
        self._timer = None
        if not self._held:
            return
        now = time.monotonic()
        oldest = min(self._held.values())
        waiting = max(self.quiet_s - (now - self._last_input), 0.0)
        if (waiting > 0.0 or self.busy()) and now - oldest < self.max_defer_s:
            self._arm(min(max(waiting, 0.02), self.max_defer_s - (now - oldest)))
            return
        self._release_one()

    def _release_one(self) -> None:
        """Render one held view; the next one on the next loop turn, so that input that
        arrived meanwhile is handled in between."""
        view = next(iter(self._held))
        del self._held[view]
        view.render_now()
        if self._held:
            self._timer = asyncio.get_running_loop().call_soon(self._due)

    def _release_all(self) -> None:
        held, self._held = list(self._held), {}
        for view in held:
            view.render_now()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for interactor, tag in self._observed:
            interactor.RemoveObserver(tag)
        self._observed.clear()
