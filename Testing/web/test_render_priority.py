"""The order in which a tab's views render (``slicerfm_web.tab.render_priority``), without
a browser: views stand in with VTK objects for their render window and interactor and a
counter for trame-rca's scheduler; a real asyncio loop runs the timers (in a thread of its
own: Playwright's sync API keeps a loop running in the main thread of the browser tests)."""

import asyncio
import threading

import pytest
from vtkmodules.vtkCommonCore import vtkObject

from slicerfm_web.tab.render_priority import RenderPriority


class Inner:
    """trame-slicer's render strategy of a view: counts the renders it is asked for."""

    def __init__(self):
        self.renders = 0

    def schedule_render(self):
        self.renders += 1

    def set_abstract_view(self, view):
        self.view = view

    def did_render(self):
        pass


class View:
    def __init__(self, tag):
        self.tag = tag
        self._scheduled_render = Inner()
        self.inner = self._scheduled_render
        self.window, self.iren = vtkObject(), vtkObject()

    def get_singleton_tag(self):
        return self.tag

    def set_scheduled_render(self, strategy):
        self._scheduled_render = strategy
        strategy.set_abstract_view(self)

    def render_window(self):
        return self.window

    def interactor(self):
        return self.iren

    def renders(self):
        return self.inner.renders

    def rendered(self):
        """Its render window finished a render (VTK's EndEvent)."""
        self.window.InvokeEvent("EndEvent")

    def mouse(self, event="MouseMoveEvent"):
        self.iren.InvokeEvent(event)


@pytest.fixture
def a_layout():
    """Four views under one RenderPriority with short times; ``busy`` is a settable flag."""
    busy = {"value": False}
    priority = RenderPriority(lambda: busy["value"], burst_s=0.03, burst_max_s=0.3,
                              busy_hold_s=0.4, quiet_s=0.1, settle_s=0.03, max_defer_s=0.8)
    views = {tag: View(tag) for tag in ("Red", "Green", "Yellow", "ThreeD")}
    for view in views.values():
        priority.install(view)
    yield priority, views, busy
    priority.close()


async def until(condition, timeout_s=10.0):
    """Wait (running the loop) until ``condition()``; fails after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.005)


def run(scenario) -> None:
    """``asyncio.run(scenario())`` on a thread of its own; its failure is raised here."""
    failures = []

    def target():
        try:
            asyncio.run(scenario())
        except BaseException as error:       # noqa: BLE001 -- handed to the test's thread
            failures.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the scenario did not finish"
    if failures:
        raise failures[0]


def request_all(views):
    for view in views.values():
        view._scheduled_render.schedule_render()


def test_every_view_renders_at_once_before_any_input(a_layout):
    priority, views, _ = a_layout

    async def scenario():
        request_all(views)
        assert [v.renders() for v in views.values()] == [1, 1, 1, 1]

    run(scenario)


def test_the_clicked_view_renders_first_and_the_others_once_after_its_frame(a_layout):
    priority, views, _ = a_layout
    red, others = views["Red"], [views[t] for t in ("Green", "Yellow", "ThreeD")]

    async def scenario():
        red.mouse()
        await asyncio.sleep(0.05)                    # the input paused
        for _ in range(3):                           # three changes, each asking every view
            request_all(views)
        assert red.renders() >= 1 and all(v.renders() == 0 for v in others)
        await asyncio.sleep(0.3)                     # quiet, but the red frame is not done
        assert all(v.renders() == 0 for v in others)
        red.rendered()
        await until(lambda: all(v.renders() == 1 for v in others))
        await asyncio.sleep(0.2)
        assert all(v.renders() == 1 for v in others)  # coalesced: one render each

    run(scenario)


def test_the_clicked_view_waits_while_the_mouse_events_of_a_click_come_in(a_layout):
    priority, views, _ = a_layout
    red = views["Red"]

    async def scenario():
        red.mouse()
        red._scheduled_render.schedule_render()      # the preview point moved
        assert red.renders() == 0
        red.mouse("LeftButtonPressEvent")
        red.mouse("LeftButtonReleaseEvent")
        red._scheduled_render.schedule_render()      # the point placed
        await until(lambda: red.renders() == 1)
        await asyncio.sleep(0.1)
        assert red.renders() == 1                    # one frame for both

    run(scenario)


def test_a_quick_result_comes_in_the_same_frame_as_its_point_and_a_slow_ones_point_shows(a_layout):
    priority, views, busy = a_layout
    red = views["Red"]

    async def scenario():
        red.mouse()
        await asyncio.sleep(0.05)
        busy["value"] = True                         # the click went to the server
        red._scheduled_render.schedule_render()      # its point placed
        await asyncio.sleep(0.1)
        assert red.renders() == 0
        busy["value"] = False                        # the result is applied ...
        red._scheduled_render.schedule_render()      # ... and asks to render: at once
        assert red.renders() == 1
        red.rendered()

        await asyncio.sleep(0.05)
        busy["value"] = True                         # a slow engine
        red._scheduled_render.schedule_render()
        await until(lambda: red.renders() == 2)      # the point shows after busy_hold_s

    run(scenario)


def test_the_other_views_wait_for_the_result_but_not_longer_than_max_defer(a_layout):
    priority, views, busy = a_layout
    red, green = views["Red"], views["Green"]

    async def scenario():
        red.mouse()
        await asyncio.sleep(0.05)
        busy["value"] = True
        green._scheduled_render.schedule_render()
        await asyncio.sleep(0.3)                     # quiet, but the server is working
        assert green.renders() == 0
        await until(lambda: green.renders() == 1)    # max_defer_s passed

    run(scenario)


def test_input_in_another_view_makes_it_the_one_that_renders_first(a_layout):
    priority, views, _ = a_layout
    red, green = views["Red"], views["Green"]

    async def scenario():
        red.mouse()
        await asyncio.sleep(0.05)
        green._scheduled_render.schedule_render()
        assert green.renders() == 0
        green.mouse()                                # the user moves to the coronal view
        await until(lambda: green.renders() == 1)    # its held request goes first
        await asyncio.sleep(0.05)
        green._scheduled_render.schedule_render()
        assert green.renders() == 2

    run(scenario)


def test_the_other_views_render_one_at_a_time_and_input_between_them_holds_the_rest(a_layout):
    priority, views, _ = a_layout
    red, others = views["Red"], [views[t] for t in ("Green", "Yellow", "ThreeD")]

    async def scenario():
        red.mouse()
        await asyncio.sleep(0.2)                     # quiet
        request_all(views)
        red.rendered()
        await until(lambda: sum(v.renders() for v in others) >= 1)
        red.mouse()                                  # a click arrives after the first one
        await asyncio.sleep(0.05)
        assert sum(v.renders() for v in others) == 1  # the rest wait for the new pause
        await until(lambda: all(v.renders() == 1 for v in others))

    run(scenario)


def test_views_named_in_ignoring_drop_their_requests_inside_the_block_only(a_layout):
    priority, views, _ = a_layout

    async def scenario():
        with priority.ignoring(["Red", "Green", "Yellow"]):
            request_all(views)                       # a 3D-only node changed
        assert [v.renders() for v in views.values()] == [0, 0, 0, 1]
        request_all(views)
        assert [v.renders() for v in views.values()] == [1, 1, 1, 2]

    run(scenario)


def test_a_drag_renders_the_active_view_at_once(a_layout):
    priority, views, _ = a_layout
    red = views["Red"]

    async def scenario():
        red.mouse("LeftButtonPressEvent")
        for moves in range(1, 4):                     # window/level or pan with the button held
            red.mouse()
            red._scheduled_render.schedule_render()
            assert red.renders() == moves
        red.mouse("LeftButtonReleaseEvent")
        red._scheduled_render.schedule_render()
        assert red.renders() == 3                     # a click's end: waits for the pause
        await until(lambda: red.renders() == 4)

    run(scenario)
