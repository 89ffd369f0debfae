"""The tab's views: axial, coronal, sagittal slice views and a 3D view, streamed as images.

Views are trame-slicer's (``trame_slicer.rca_view``): rendered off screen on the server and
sent as JPEG frames; mouse events in the browser come back to the view's VTK interactor,
where Slicer's own displayable managers handle them (markups placement included).

``state.view_geometry`` publishes, per slice view, the ``XYToRAS`` matrix of its slice node
(row-major 16 floats: view pixel ``(x, y, 0, 1)``, origin bottom-left, -> RAS mm) and its
size in pixels, so that the page (and its tests) can find the screen position of a RAS point.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, Iterable, Optional

import numpy as np

from trame.widgets import html
from trame_slicer.app.ui import create_vertical_slice_view_gutter_ui, create_vertical_view_gutter_ui
from trame_slicer.core import LayoutManager
from trame_slicer.rca_view import register_rca_factories
from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

from .render_priority import RenderPriority

LAYOUTS = ("Four views", "Axial", "3D and axial")
FIT_WINDOW_S = 3.0
FRAME_QUALITY = 85
FRAME_RATE = 30.0


def layouts() -> Dict[str, Layout]:
    axial = ViewLayoutDefinition.axial_view()
    coronal = ViewLayoutDefinition.coronal_view()
    sagittal = ViewLayoutDefinition.sagittal_view()
    threed = ViewLayoutDefinition.threed_view()
    return {
        "Four views": Layout(LayoutDirection.Horizontal, [
            Layout(LayoutDirection.Vertical, [axial, coronal]),
            Layout(LayoutDirection.Vertical, [threed, sagittal])]),
        "Axial": Layout(LayoutDirection.Vertical, [axial]),
        "3D and axial": Layout(LayoutDirection.Horizontal, [axial, threed]),
    }


VIEW_TITLES = {"Red": "Axial", "Green": "Coronal", "Yellow": "Sagittal", "ThreeD": "3D"}


def _label_ui(default_ui):
    """trame-slicer's gutter UI of a view plus its title, carrying ``data-view`` (the view's
    singleton tag) so that the page's tests find the view's image element."""
    def populate(server, view_id, view):
        default_ui(server, view_id, view)
        tag = view.get_singleton_tag()
        html.Div(VIEW_TITLES.get(tag, tag), classes="sf-view-label", raw_attrs=[f'data-view="{tag}"'])
    return populate


def register_views(view_manager, server) -> None:
    """Remote (image-streamed) view factories; no multisampling (costly in software GL).

    Every view renders at up to ``FRAME_RATE`` frames per second, the mouse over it or not:
    trame-slicer's default drops a view the mouse is not over to 10 (after each of its
    renders trame-rca's scheduler then waits 100 ms before the next), so the result of a
    click that came right after the mouse entered the view could wait for the end of the
    previous frame's 100 ms. Which view renders when is :class:`RenderPriority`'s job."""
    register_rca_factories(view_manager, server,
                           slice_view_ui_f=_label_ui(create_vertical_slice_view_gutter_ui),
                           three_d_view_ui_f=_label_ui(create_vertical_view_gutter_ui),
                           target_fps=FRAME_RATE, blur_fps=FRAME_RATE)


def single_quality_frames(view, quality: int = FRAME_QUALITY) -> None:
    """One JPEG per change at ``quality`` instead of trame-rca's low-quality frame followed by a
    high-quality re-render 5 frame periods later: half the renders per click, and the first
    frame is the final one. (Reaches the view's RcaImageRenderScheduler through trame-slicer
    2.0.0's render strategy; left as it is if that changes.)"""
    scheduler = getattr(getattr(view, "_scheduled_render", None), "_scheduler", None)
    if hasattr(scheduler, "update_quality"):
        scheduler.update_quality(quality, quality)


def without_depth_peeling(view) -> None:
    """Turn off depth peeling in all of the view's renderers, now and before every render
    (displayable managers add renderers of their own). trame-slicer's 3D view peels like
    Slicer's; in software GL the peeling passes cost ~30 ms per 3D frame (45 -> 15 ms on the
    sample CT's 608x435 view), and what the views show (opaque surfaces, glyphs, slices)
    needs no order-independent transparency."""
    window = view.render_window()

    def turn_off(*_):
        for renderer in window.GetRenderers():
            if renderer.GetUseDepthPeeling():
                renderer.SetUseDepthPeeling(False)

    turn_off()
    window.AddObserver("StartEvent", turn_off)


def matrix_values(matrix) -> list:
    return [float(matrix.GetElement(r, c)) for r in range(4) for c in range(4)]


class Views:
    """Creates the layout and keeps ``state.view_geometry`` current."""

    def __init__(self, server, slicer_app, busy: Callable[[], bool] = lambda: False):
        self.server = server
        self.app = slicer_app
        self.layout_manager = LayoutManager(slicer_app.scene, slicer_app.view_manager, server)
        self.layout_manager.register_layout_dict(layouts())
        self.render_priority = RenderPriority(busy)
        for view in slicer_app.view_manager.get_views():
            view.render_window().SetMultiSamples(0)
            without_depth_peeling(view)
            single_quality_frames(view)
            self.render_priority.install(view)
        server.state.view_geometry = {}
        server.state.layout_name = LAYOUTS[0]
        self.layout_manager.set_layout(LAYOUTS[0])
        self._observed = []
        for view in self.slice_views():
            node = view.get_view_node()
            self._observed.append((node, node.AddObserver("ModifiedEvent", self._geometry_changed)))
        for view in self.app.view_manager.get_views():
            interactor = view.interactor()
            self._observed.append((interactor, interactor.AddObserver("WindowResizeEvent",
                                                                      self._geometry_changed)))
        self._pending = False
        self._fit_until = 0.0
        self._fitted_sizes = None
        self.volume_node = None

    def only_3d(self):
        """A context in which the slice views ignore render requests (changes of nodes that
        only the 3D views show)."""
        return self.render_priority.ignoring(view.get_singleton_tag() for view in self.slice_views())

    def slice_views(self) -> Iterable:
        return self.app.view_manager.get_slice_views()

    def set_layout(self, name: str) -> None:
        """Show another layout; its views are fitted again to the sizes they get."""
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}")
        self.layout_manager.set_layout(name)
        self._fitted_sizes = None
        self._fit_until = time.monotonic() + FIT_WINDOW_S

    def show_volume(self, volume_node, foreground=None, opacity: float = 0.5) -> None:
        """Background ``volume_node`` (and an optional foreground) in every slice view; the
        slice views fit the volume, the 3D view frames it (segments show there as surfaces;
        each slice view's "3D" button adds its slice)."""
        manager = self.app.display_manager
        manager.show_volume_in_slice_background(volume_node)
        manager.show_volume_in_slice_foreground(foreground)
        for view in self.slice_views():
            view.set_foreground_opacity(opacity if foreground is not None else 0.0)
        self.volume_node = volume_node
        self.reset()
        self._fitted_sizes = self.sizes()
        # The page sizes the views after they were first rendered: fit them again to the
        # sizes the browser gives them during the next seconds.
        self._fit_until = time.monotonic() + FIT_WINDOW_S
        self.publish_geometry()

    def frame_3d(self, volume_node) -> None:
        """Point the 3D views' cameras at the volume's bounds (RAS)."""
        bounds = [0.0] * 6
        volume_node.GetRASBounds(bounds)
        for view in self.app.view_manager.get_threed_views():
            view.renderer().ResetCamera(bounds)
            view.schedule_render()

    def reset(self, keep_offsets: bool = False) -> None:
        """Fit the slice views to the volume (centred on it, unless ``keep_offsets``: the
        slices shown stay), frame it in 3D."""
        offsets = [(view, view.get_slice_value()) for view in self.slice_views()]
        self.app.display_manager.reset_views()
        if keep_offsets:
            for view, offset in offsets:
                view.set_slice_value(offset)
        if self.volume_node is not None and self.volume_node.GetScene() is not None:
            self.frame_3d(self.volume_node)

    def jump_to(self, ras) -> None:
        """Move every slice view so that it passes through ``ras`` (3 floats, mm)."""
        r, a, s = (float(v) for v in ras)
        for view in self.slice_views():
            with view.trigger_modified_once():
                view.get_view_node().JumpSliceByOffsetting(r, a, s)
        self.publish_geometry()

    def sizes(self) -> tuple:
        return tuple(tuple(view.render_window().GetSize()) for view in self.app.view_manager.get_views())

    def view_by_name(self, name: str):
        for view in self.slice_views():
            if view.get_singleton_tag() == name:
                return view
        return None

    def _geometry_changed(self, *_):
        if self._pending:
            return
        self._pending = True
        from trame_server.utils.asynchronous import create_task

        async def later():
            self._pending = False
            with self.server.state:
                sizes = self.sizes()
                if time.monotonic() < self._fit_until and sizes != self._fitted_sizes:
                    self._fitted_sizes = sizes
                    self.reset(keep_offsets=True)
                self.publish_geometry()

        create_task(later())

    def publish_geometry(self) -> None:
        geometry = {}
        for view in self.slice_views():
            node = view.get_view_node()
            width, height = view.render_window().GetSize()
            geometry[view.get_singleton_tag()] = {
                "xy_to_ras": matrix_values(node.GetXYToRAS()), "width": int(width),
                "height": int(height), "offset": float(view.get_slice_value()),
                "orientation": node.GetOrientation()}
        self.server.state.view_geometry = geometry


def ras_to_view_pixel(geometry: dict, ras) -> Optional[tuple]:
    """(x, y) pixel of RAS point ``ras`` in a slice view from its ``view_geometry`` entry
    (origin bottom-left), or None when the point is farther than half a pixel from the
    slice plane's unit distance (not on the displayed slice)."""
    matrix = np.asarray(geometry["xy_to_ras"], dtype=np.float64).reshape(4, 4)
    xy = np.linalg.solve(matrix, np.append(np.asarray(ras, dtype=np.float64), 1.0))
    if abs(xy[2]) > 0.5:
        return None
    return float(xy[0]), float(xy[1])
