"""Driving the SlicerFM page the way a user does: real file choosers, buttons and mouse
clicks on the views' images, read back through the page's trame state and downloads.

Screen position of a RAS point: the page publishes each slice view's ``XYToRAS`` matrix and
size (``state.view_geometry``); the view pixel ``(x, y)`` (origin bottom-left) of the point
becomes the page position ``(left + x, top + height - y)`` of the view's image element (the
views render at their element's size, device pixel ratio 1).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

import numpy as np
import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = os.environ.get("SLICERFM_CHROMIUM", "/usr/bin/chromium")
#: screenshots of the browser tests' steps (git-ignored)
ARTEFACTS = REPO / "out" / "web-e2e"
#: the upload limit the browser tests' server runs with
MAX_UPLOAD_MB = 40
#: the slice engine: medsam with a stand-in network (Testing/backend/slicewise_helpers.py);
#: here, not in conftest.py: the 'conftest' module name is shared with other test folders
SLICE_ENGINE = "slices-test"
#: flags that keep the browser off the network and out of the user's profile
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage"]
DOWNLOAD_IDS = {"labels.nii.gz": "#download-labels-gz", "labels.json": "#download-labels-json",
                "segmentation.seg.nrrd": "#download-segmentation-nrrd"}


def free_port() -> int:
    from slicerfm_client.launcher import free_port as pick

    return pick()


class WebServer:
    """A ``slicerfm-web`` process (from the folder ``bin``); ``url`` its address,
    ``status()`` its /api/status."""

    def __init__(self, bin_dir: Path, args, log_dir: Path, env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.log = open(log_dir / "gateway.log", "ab")
        self.process = subprocess.Popen(
            [str(bin_dir / "slicerfm-web"), "--port", str(self.port), "--log-dir", str(log_dir), *args],
            stdout=self.log, stderr=self.log, env=env or dict(os.environ))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slicerfm-web exited; see {log_dir / 'gateway.log'}")
            try:
                if requests.get(self.url + "/api/status", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("slicerfm-web did not start within 60 s")

    def status(self) -> dict:
        return requests.get(self.url + "/api/status", timeout=10).json()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class PageDriver:
    def __init__(self, page, artefacts: Path):
        self.page = page
        self.artefacts = artefacts
        self.step = 0
        self.console_errors: List[str] = []
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)

    @classmethod
    def open(cls, context, url: str, artefacts: Path) -> "PageDriver":
        artefacts.mkdir(parents=True, exist_ok=True)
        page = context.new_page()
        driver = cls(page, artefacts)
        page.goto(url + "/", wait_until="domcontentloaded", timeout=180_000)
        driver.wait("window.trame && window.trame.state && window.trame.state.get('connected') === true",
                    timeout=120_000)
        page.wait_for_selector("#segments-panel", state="visible", timeout=120_000)   # UI mounted
        return driver

    def close(self) -> None:
        self.page.close()

    # -- state ---------------------------------------------------------------------------------

    def state(self, key: str):
        return self.page.evaluate(f"window.trame.state.get({json.dumps(key)})")

    def wait(self, condition: str, timeout: float = 90_000) -> None:
        self.page.wait_for_function(condition, timeout=timeout)

    def messages(self) -> List[str]:
        return [m["text"] for m in self.state("messages") or []]

    def wait_message(self, fragment: str, timeout: float = 60_000) -> str:
        self.wait(f"(window.trame.state.get('messages') || []).some(m => m.text.includes({json.dumps(fragment)}))",
                  timeout)
        return next(m for m in self.messages() if fragment in m)

    def shot(self, name: str) -> Path:
        self.step += 1
        path = self.artefacts / f"{self.step:02d}-{name}.png"
        self.page.screenshot(path=str(path))
        return path

    # -- opening images ------------------------------------------------------------------------

    def upload(self, path, expect_volume: bool = True) -> None:
        before = len(self.state("volumes") or [])
        self.page.set_input_files("#upload-input", str(path))
        if expect_volume:
            self.wait(f"(window.trame.state.get('volumes') || []).length > {before} && "
                      "!window.trame.state.get('loading')", timeout=180_000)
            self.wait_views_fitted()

    def wait_views_fitted(self) -> None:
        """Wait until the slice views report the size of their elements (layout settled)."""
        self.page.wait_for_function("""() => {
            const g = window.trame.state.get('view_geometry') || {};
            return ['Red', 'Green', 'Yellow'].every(v => {
              const m = document.querySelector(`[data-view="${v}"]`);
              if (!m || !g[v]) return false;
              const r = m.parentElement.querySelector('.remote-controlled-area').getBoundingClientRect();
              return Math.abs(r.width - g[v].width) < 2 && Math.abs(r.height - g[v].height) < 2;
            }); }""", timeout=60_000)

    # -- navigating and clicking ---------------------------------------------------------------

    def go_to(self, ras, view: str = "Red") -> None:
        self.page.fill("#goto-field", ", ".join(f"{v:.3f}" for v in ras))
        self.page.click("#goto-button")
        self.page.wait_for_function(
            """([view, ras]) => { const g = (window.trame.state.get('view_geometry') || {})[view];
                 if (!g) return false; const m = g.xy_to_ras;
                 const n = [m[2], m[6], m[10]]; const len = Math.hypot(...n);
                 const d = ((ras[0] - m[3]) * n[0] + (ras[1] - m[7]) * n[1] + (ras[2] - m[11]) * n[2]) / (len * len);
                 return Math.abs(d) < 0.05; }""", arg=[view, list(map(float, ras))], timeout=60_000)

    def screen_position(self, ras, view: str = "Red"):
        geometry = self.state("view_geometry")[view]
        matrix = np.asarray(geometry["xy_to_ras"], dtype=float).reshape(4, 4)
        x, y, z, _ = np.linalg.solve(matrix, np.append(np.asarray(ras, float), 1.0))
        assert abs(z) < 0.05, f"the point {ras} is not on the {view} view's slice (z={z:.3f})"
        box = self.page.evaluate("""(view) => { const m = document.querySelector(`[data-view="${view}"]`);
            const r = m.parentElement.querySelector('.remote-controlled-area').getBoundingClientRect();
            return {x: r.x, y: r.y, w: r.width, h: r.height}; }""", view)
        assert abs(box["w"] - geometry["width"]) < 2 and abs(box["h"] - geometry["height"]) < 2
        return box["x"] + round(x), box["y"] + geometry["height"] - round(y)

    def use_tool(self, tool: str) -> None:
        if self.state("active_tool") != tool:
            self.page.click(f"#tool-{tool}")
            self.wait(f"window.trame.state.get('active_tool') === {json.dumps(tool)}")

    def click_ras(self, ras, positive: bool = True, view: str = "Red") -> None:
        """Go to the point's slice, pick the tool and click the point in the view."""
        self.go_to(ras, view)
        self.use_tool("positive" if positive else "negative")
        x, y = self.screen_position(ras, view)
        self.page.mouse.click(x, y)

    def draw_box(self, corner_a, corner_b, view: str = "Red") -> None:
        """The box tool: go to the slice of ``corner_a``, one click at it, a move, one click at
        the opposite corner ``corner_b`` (both RAS points on the slice the view then shows)."""
        self.go_to(corner_a, view)
        self.use_tool("box")
        (x0, y0), (x1, y1) = self.screen_position(corner_a, view), self.screen_position(corner_b, view)
        self.page.mouse.click(x0, y0)
        self.page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
        self.page.mouse.move(x1, y1, steps=4)
        self.page.mouse.click(x1, y1)

    def result_count(self) -> int:
        result = self.state("last_result")
        return int(result["seq"]) if result else 0

    def wait_results(self, count: int, timeout: float = 120_000) -> None:
        self.wait(f"(window.trame.state.get('last_result') || {{seq: 0}}).seq >= {count} && "
                  "!window.trame.state.get('busy')", timeout)

    def choose(self, select_id: str, option) -> None:
        """Open a drop-down list (its field, as a user clicks it) and pick ``option`` (its
        text, or a compiled regular expression). The option is looked for in the open menu only:
        a menu closed a moment ago stays in the page while it fades out, with the same options."""
        self.page.locator(".v-select", has=self.page.locator(f"#{select_id}")).click()
        menu = self.page.locator(".v-overlay--active")
        menu.get_by_role("option", name=option, exact=isinstance(option, str)).click()

    def press(self, selector: str) -> None:
        self.page.click(selector)

    # -- segments ------------------------------------------------------------------------------

    def segments(self) -> List[dict]:
        return self.state("segments") or []

    def segment_row(self, name: str):
        return self.page.locator(f'.sf-segment[data-segment="{name}"]')

    # -- downloads -----------------------------------------------------------------------------

    def open_panel(self, panel: str, inside: str) -> None:
        """Expand a side panel (``#<panel>``) unless ``inside`` is already visible."""
        if not self.page.is_visible(inside):
            self.page.click(f"#{panel} .v-expansion-panel-title")
            self.page.wait_for_selector(inside, state="visible")

    def download(self, kind: str, folder: Path) -> Path:
        self.open_panel("download-panel", DOWNLOAD_IDS[kind])
        with self.page.expect_download() as info:
            self.page.click(DOWNLOAD_IDS[kind])
        target = folder / f"{self.step:02d}-{info.value.suggested_filename}"
        info.value.save_as(str(target))
        return target


def read_label_map(path: Path):
    """(labels (K, J, I), ijk_to_ras) of a downloaded NIfTI label map."""
    import SimpleITK as sitk

    from slicerfm_web.tab.images import ijk_to_ras_from_sitk

    image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image), ijk_to_ras_from_sitk(image)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def kji_to_ras(point_kji, ijk_to_ras) -> np.ndarray:
    k, j, i = point_kji
    return (np.asarray(ijk_to_ras) @ np.array([i, j, k, 1.0]))[:3]


def segment_masks_from_seg_nrrd(path: Path, shape, ijk_to_ras) -> dict:
    """``{segment name: bool (K, J, I)}`` of a downloaded ``.seg.nrrd``, read by Slicer's own
    storage node on slicer-core and resampled onto the volume grid."""
    from slicer import (vtkMRMLScene, vtkMRMLSegmentationStorageNode, vtkSlicerApplicationLogic,
                        vtkSlicerSegmentationsModuleLogic)

    from SlicerFMLib.segment_io import segment_to_mask

    scene = vtkMRMLScene()
    app = vtkSlicerApplicationLogic()
    app.SetMRMLScene(scene)
    logic = vtkSlicerSegmentationsModuleLogic()
    logic.SetMRMLApplicationLogic(app)
    logic.SetMRMLScene(scene)
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(path))
    assert storage.ReadData(node), f"Slicer could not read {path}"
    segmentation = node.GetSegmentation()
    masks = {}
    for n in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(n)
        masks[segmentation.GetSegment(segment_id).GetName()] = segment_to_mask(
            node, segment_id, shape, ijk_to_ras)
    return masks


def first_label(labels: np.ndarray, dictionary: dict, name: str) -> Optional[np.ndarray]:
    value = next((entry["value"] for entry in dictionary["labels"] if entry["name"] == name), None)
    return None if value is None else labels == value
