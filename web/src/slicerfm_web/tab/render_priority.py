"""When each view renders: the one the user works in first, the others after its frame.

Every view of a tab renders on the tab's one event loop (software GL on the main thread,
trame-rca's scheduler per view), and most changes ask every view to render: moving the
mouse in Place mode moves the markups preview point in all four views, a placed point or a
result changes all of them. Rendered in the order the requests came, the clicked view's
frame waited for the other three (the 3D view alone 40-120 ms), and the click's next mouse
event -- trame-rca's page sends one event at a time, each after the previous one's answer --
waited behind those renders on the way in.

The view that last received the user's input (mouse or key events on its interactor) is
*active*; the others are *background* views.

- The active view renders at once, except during a burst of input with no button held: a
  request that comes less than ``burst_s`` after an input event waits until the input
  pauses for ``burst_s`` (at most ``burst_max_s``), so the press and release of a click,
  sent one after the other, reach the Logic without waiting for the preview frame of the
  mouse move before them. (While a button is held -- a drag: pan, zoom, window/level --
  frames go at once, at trame-rca's rate.) And
  while a click waits for the server (``busy``) the active view waits for its result, at
  most ``busy_hold_s``: a quick result is shown together with its point in one frame (the
  point alone was a frame the page decoded for nothing, its render competing for the CPU
  with the engine); a slow one shows the point after ``busy_hold_s``.
- Background views' requests are held and coalesced. They are released one view at a time,
  ``gap_s`` apart (a render blocks the loop; a message that came during it -- a click --
  takes a few loop turns to reach its handler, and the gap lets it through before the next
  view's render; new input then holds the rest again) once the input has been
  quiet for ``quiet_s`` and no click waits for the server (``busy``), or at the latest
  ``max_defer_s`` after the first held request -- and in any case only when the active
  view has no render under way and finished its last one ``settle_s`` ago (its frame is
  encoded and sent first). A placed point and its result then usually cost the other views
  one render instead of two.

Before any input every view renders at once (a page that just opened gets all its frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Callable, Dict, Iterable, Iterator, Optional

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
    """Decides when the render requests of a tab's views go through (module docstring).

    busy: True while a click waits for the server (background views wait for its result).
    Times in seconds.
    """

    def __init__(self, busy: Callable[[], bool] = lambda: False, *, burst_s: float = 0.02,
                 burst_max_s: float = 0.06, busy_hold_s: float = 0.2, quiet_s: float = 0.3,
                 settle_s: float = 0.05, max_defer_s: float = 0.6, gap_s: float = 0.02):
        self.busy = busy
        self.burst_s, self.burst_max_s, self.busy_hold_s = burst_s, burst_max_s, busy_hold_s
        self.quiet_s, self.settle_s, self.max_defer_s = quiet_s, settle_s, max_defer_s
        self.gap_s = gap_s
        self.active: Optional[PrioritizedRender] = None
        self._last_input = 0.0           # last input event (monotonic s)
        self._dragging = False           # a mouse button is held in the active view
        self._active_asked = 0.0         # last render of the active view let through
        self._active_done = 0.0          # ... and when one of its renders last ended
        self._active_since: Optional[float] = None     # the active view's request waits since
        self._held: Dict[PrioritizedRender, float] = {}  # background view -> first request
        self._timer: Optional[asyncio.Handle] = None
        self._timer_due = 0.0
        self._ignored: frozenset = frozenset()
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
        window = view.render_window()
        tag = window.AddObserver("EndEvent", lambda *_: self._rendered(strategy))
        self._observed.append((window, tag))
        interactor = view.interactor()
        for event in INPUT_EVENTS:
            tag = interactor.AddObserver(event, lambda _caller, name: self.note_input(strategy, name),
                                         OBSERVER_PRIORITY)
            self._observed.append((interactor, tag))
        return strategy

    def note_input(self, view: PrioritizedRender, event: str = "MouseMoveEvent") -> None:
        """The user acts in ``view`` (``event``: the interactor event's name): it becomes the
        active view (a request of it that was held as a background view is kept as the
        active view's)."""
        self._last_input = time.monotonic()
        if event.endswith("ButtonPressEvent"):
            self._dragging = True
        elif event.endswith("ButtonReleaseEvent"):
            self._dragging = False
        if view is not self.active:
            previous, self.active = self.active, view
            if previous is not None and self._active_since is not None:
                self._held.setdefault(previous, self._active_since)
                self._active_since = None
            first = self._held.pop(view, None)
            if first is not None:
                self._active_since = first
                self._arm(0.0)

    @contextlib.contextmanager
    def ignoring(self, names: Iterable[str]) -> Iterator[None]:
        """Drop the render requests of the views named (singleton tags) inside the block:
        for changes that those views do not show (e.g. a node displayed in 3D only)."""
        before, self._ignored = self._ignored, self._ignored | frozenset(names)
        try:
            yield
        finally:
            self._ignored = before

    def request(self, view: PrioritizedRender) -> None:
        if view.name in self._ignored:
            return
        now = time.monotonic()
        if self.active is None:
            view.render_now()
        elif view is self.active:
            if self._active_since is None:
                self._active_since = now
            self._service_active(now)
        else:
            self._held.setdefault(view, now)
            self._arm(self.quiet_s)

    def _service_active(self, now: float) -> bool:
        """Render the active view's waiting request when nothing holds it; else arm the timer
        for when it may go. True when it rendered."""
        waited = now - self._active_since
        burst_left = self.burst_s - (now - self._last_input)
        if burst_left > 0.0 and waited < self.burst_max_s and not self._dragging:
            self._arm(min(burst_left, self.burst_max_s - waited))
            return False
        if waited < self.busy_hold_s and self.busy():
            self._arm(self.busy_hold_s - waited)     # or sooner: the result asks to render
            return False
        self._render_active(now)
        return True

    def _render_active(self, now: float) -> None:
        self._active_since = None
        self._active_asked = now
        self.active.render_now()

    def _rendered(self, view: PrioritizedRender) -> None:
        if view is self.active:
            self._active_done = time.monotonic()

    def _active_settling(self, now: float) -> float:
        """Seconds until the active view's latest frame is out of the way (0: it is)."""
        if self._active_asked > self._active_done and now - self._active_asked < 1.0:
            return self.settle_s                     # its render has not run yet
        return max(self.settle_s - (now - self._active_done), 0.0)

    def _arm(self, delay_s: float) -> None:
        """Call :meth:`_due` in ``delay_s`` (or sooner, when it is due sooner already)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:              # no event loop (views used without a server)
            self._release_all()
            return
        due = time.monotonic() + max(0.0, delay_s)
        if self._timer is not None:
            if self._timer_due <= due:
                return
            self._timer.cancel()
        self._timer_due = due
        self._timer = loop.call_later(max(0.0, delay_s), self._due)

    def _due(self) -> None:
        self._timer = None
        now = time.monotonic()
        if self._active_since is not None and not self._service_active(now):
            return
        if self._held:
            self._due_background(now)

    def _due_background(self, now: float) -> None:
        settling = self._active_settling(now)
        if settling > 0.0:
            self._arm(settling)
            return
        oldest = min(self._held.values())
        wait = self.quiet_s - (now - self._last_input)
        if (wait > 0.0 or self.busy()) and now - oldest < self.max_defer_s:
            self._arm(min(max(wait, 0.02), self.max_defer_s - (now - oldest)))
            return
        view = next(iter(self._held))     # one view now, the next one gap_s later
        del self._held[view]
        view.render_now()
        if self._held:
            self._arm(self.gap_s)

    def _release_all(self) -> None:
        views = list(self._held)
        if self._active_since is not None and self.active is not None:
            views.append(self.active)
        self._held, self._active_since = {}, None
        for view in views:
            view.render_now()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for subject, tag in self._observed:
            subject.RemoveObserver(tag)
        self._observed.clear()
