"""The browser client's own cost: click-to-updated-view vs the backend's round trip, time to
open a large CT, server memory per tab.

Starts a REAL backend (``slicerfm-backend serve``, built-in ``classic`` engine) and a real
``slicerfm-web --server`` on loopback, and drives Debian's Chromium (headless, Playwright).

1. Click to updated view, on the sample CT (``abdomen_ct/example_ct.nii.gz``): each click is
   the first positive click of a new segment at a point deep inside an organ (spleen, liver,
   kidneys, ...), placed with the mouse on the axial view; the segment is deleted afterwards
   (the next click's surroundings are grey again). The page records the
   ``pointerdown`` time and, in the axial view's image ``load`` handler, the first frame
   whose pixels around the click show a segment's colour (a ring of 16 samples, 18 px from
   the click, mostly saturated: CT greys are not). Both times are the browser's own
   (``performance.now()``). The backend's round trip is the tab's client-measured HTTP
   round trip of the same click (``MaskUpdate.roundtrip_ms``, in ``state.last_result``);
   the web layer's cost is the difference, split with the tab's clock (lined up with the
   page's through the fastest of five trigger round trips) into: mouse event to the prompt
   placed in the tab (websocket, Slicer's markups placement); the tab's own work (the
   Logic's prepare, the pump, apply: segment write); applied result to the frame shown in
   the page (rendering the views, JPEG encoding, websocket, decoding).
2. Opening the synthetic 512x512x300 int16 CT of ``protocol_overhead.py`` (written once as
   NIfTI): uploaded from the browser, and picked from the server's data folder; time from
   the action to the volume's first frame in the axial view.
3. Resident memory of a tab process (``/api/status``): just started, with the sample CT and
   its segments, and with the 512x512x300 CT.

Run::

    .venv/bin/python benchmarks/web_client.py               # 12 clicks
    .venv/bin/python benchmarks/web_client.py --clicks 20 --no-large
    .venv/bin/python benchmarks/web_client.py --clicks 12 --no-large --aim-ms 500
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "Testing" / "web"))

from bench_common import require_data  # noqa: E402
from web_helpers import CHROMIUM_FLAGS, PageDriver, WebServer, kji_to_ras, read_label_map  # noqa: E402

BIN = Path(sys.executable).parent
CHROMIUM = os.environ.get("SLICERFM_CHROMIUM", "/usr/bin/chromium")
#: label id in example_seg_fast_force_split.nii.gz -> name (organs big enough for the ring)
ORGANS = {1: "spleen", 2: "kidney right", 3: "kidney left", 5: "liver", 6: "stomach"}

FRAME_PROBE = """
window.__sfProbe = {armed: null, clickAt: null, upAt: null, frameAt: null};
document.addEventListener('pointerdown', () => {
  if (window.__sfProbe.armed) window.__sfProbe.clickAt = performance.now(); }, true);
document.addEventListener('pointerup', () => {
  if (window.__sfProbe.armed) window.__sfProbe.upAt = performance.now(); }, true);
window.__sfArm = (view, x, y) => {
  const marker = document.querySelector(`[data-view="${view}"]`);
  const img = marker.parentElement.querySelector('img');
  const probe = window.__sfProbe;
  probe.armed = {x, y}; probe.clickAt = null; probe.upAt = null; probe.frameAt = null;
  if (img.__sfHooked) return;
  img.__sfHooked = true;
  const canvas = document.createElement('canvas');
  img.addEventListener('load', () => {
    const armed = probe.armed;
    if (!armed || probe.clickAt === null || probe.frameAt !== null) return;
    const now = performance.now();
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const context = canvas.getContext('2d', {willReadFrequently: true});
    context.drawImage(img, 0, 0);
    let coloured = 0;
    for (let n = 0; n < 16; n++) {
      const a = 2 * Math.PI * n / 16;
      const px = Math.round(armed.x + 18 * Math.cos(a)), py = Math.round(armed.y + 18 * Math.sin(a));
      const [r, g, b] = context.getImageData(px, py, 1, 1).data;
      if (Math.max(r, g, b) - Math.min(r, g, b) > 30) coloured++;
    }
    if (coloured >= 12) probe.frameAt = now;
  });
};
true;  // (a script whose value is a function would be called by Playwright)
"""


def deep_points(labels: np.ndarray, per_organ: int):
    """Voxels (k, j, i) far inside each organ: the deepest ones of the distance map, spread."""
    from scipy import ndimage

    points = []
    for label in ORGANS:
        depth = ndimage.distance_transform_edt(np.pad(labels == label, 1))[1:-1, 1:-1, 1:-1]
        order = np.argsort(depth.ravel())[::-1]
        chosen = []
        for flat in order[:5000]:
            point = np.unravel_index(flat, depth.shape)
            if all(abs(point[0] - p[0]) >= 4 for p in chosen):
                chosen.append(point)
            if len(chosen) == per_organ:
                break
        points += [(ORGANS[label], tuple(int(v) for v in p)) for p in chosen]
    return points


def measure_clicks(page: PageDriver, ct: Path, reference: Path, clicks: int, aim_ms: float = 0.0):
    page.upload(ct)
    labels, ijk_to_ras = read_label_map(reference)
    points = deep_points(labels, per_organ=max(1, -(-clicks // len(ORGANS))))[:clicks]
    page.page.evaluate(FRAME_PROBE)
    rows = []
    for number, (organ, kji) in enumerate(points, start=1):
        page.press("#add-segment")
        page.wait("window.trame.state.get('segments').length === 2")
        ras = kji_to_ras(kji, ijk_to_ras)
        page.go_to(ras)
        if aim_ms:                       # a person's aim after the views moved (--aim-ms)
            time.sleep(aim_ms / 1000.0)
        page.use_tool("positive")
        x, y = page.screen_position(ras)
        box = page.page.evaluate("""() => { const m = document.querySelector('[data-view="Red"]');
            const r = m.parentElement.querySelector('.remote-controlled-area').getBoundingClientRect();
            return {x: r.x, y: r.y}; }""")
        page.page.evaluate(f"window.__sfArm('Red', {x - box['x']}, {y - box['y']})")
        page.page.mouse.click(x, y)
        page.wait_results(number)
        page.wait("window.__sfProbe.frameAt !== null", timeout=30_000)
        probe = page.page.evaluate("window.__sfProbe")
        result = page.state("last_result")
        offset = clock_offset(page)
        view_ms = probe["frameAt"] - probe["clickAt"]
        input_ms = result["placed_at_ms"] - offset - probe["clickAt"]
        output_ms = probe["frameAt"] - (result["applied_at_ms"] - offset)
        # the input leg's parts when the click went as one message (tab/clicks.py): press to
        # release in the page, release to the message's arrival in the tab, arrival to placed
        if result.get("click_at_ms") is not None:
            parts = (probe["upAt"] - probe["clickAt"], result["click_at_ms"] - offset - probe["upAt"],
                     result["placed_at_ms"] - result["click_at_ms"])
        else:
            parts = (float("nan"),) * 3
        rows.append((organ, view_ms, result["roundtrip_ms"], result["server_ms"], result["tab_ms"],
                     input_ms, output_ms, *parts))
        # delete it, so that the next click's ring starts grey again
        page.page.evaluate("window.trame.trigger('delete_segment', [window.trame.state.get('active_segment')])")
        page.wait("window.trame.state.get('segments').length === 1")
        print(f"click {number:2d} {organ:12s} click->view {view_ms:6.0f} ms, backend round trip "
              f"{result['roundtrip_ms']:6.0f} ms (server {result['server_ms']:5.0f}), web layer "
              f"{view_ms - result['roundtrip_ms']:6.0f} ms = click->placed {input_ms:5.0f} + tab "
              f"{result['tab_ms'] - result['roundtrip_ms']:4.0f} + applied->frame shown "
              f"{output_ms:5.0f} (in: press->release {parts[0]:.0f}, ->tab {parts[1]:.0f}, "
              f"->placed {parts[2]:.0f})", flush=True)
    return rows


def clock_offset(page: PageDriver) -> float:
    """The tab's monotonic clock minus the page's performance.now(), ms (from the fastest
    of five round trips: half the round trip either way)."""
    best = None
    for _ in range(5):
        before, server, after = page.page.evaluate("""async () => {
            const before = performance.now(); const server = await window.trame.trigger('clock');
            return [before, server, performance.now()]; }""")
        if best is None or after - before < best[0]:
            best = (after - before, server - (before + after) / 2)
    return best[1]


def summary(rows) -> None:
    rest = rows[1:]                      # the first click also uploads the image
    view = [r[1] for r in rest]
    trip = [r[2] for r in rest]
    extra = [r[1] - r[2] for r in rest]
    tab = [r[4] - r[2] for r in rest]
    inputs = [r[5] for r in rest]
    outputs = [r[6] for r in rest]
    print(f"\nclicks 2..{len(rows)}: median click->view {statistics.median(view):.1f} ms, "
          f"median backend round trip {statistics.median(trip):.1f} ms, web layer median "
          f"{statistics.median(extra):.1f} ms (p90 {np.percentile(extra, 90):.1f}, "
          f"max {max(extra):.1f}) = mouse event to the prompt placed in the tab "
          f"{statistics.median(inputs):.1f} + the tab's own work (prepare, pump, apply; without "
          f"the HTTP round trip) {statistics.median(tab):.1f} + result applied to the frame shown "
          f"in the page {statistics.median(outputs):.1f} (medians); first click (with upload) "
          f"{rows[0][1]:.1f} ms")
    if not any(np.isnan(r[7]) for r in rest):
        print("input leg (median): press->release in the page "
              f"{statistics.median(r[7] for r in rest):.1f}, release->click message in the tab "
              f"{statistics.median(r[8] for r in rest):.1f}, message->prompt placed "
              f"{statistics.median(r[9] for r in rest):.1f} ms")


def measure_large(page: PageDriver, server: WebServer, large: Path) -> None:
    """Open the 512x512x300 CT twice: uploaded from the browser, then from the data folder
    (time until the volume is listed and the views are fitted to it)."""
    start = time.monotonic()
    page.upload(large)
    print(f"512x512x300 CT ({large.stat().st_size / 2**20:.0f} MB .nii.gz) uploaded from the "
          f"browser and shown: {time.monotonic() - start:.1f} s", flush=True)
    count = len(page.state("volumes"))
    page.open_panel("open-panel", "#data-list")
    start = time.monotonic()
    page.page.get_by_text(large.name, exact=True).click()
    page.wait(f"window.trame.state.get('volumes').length === {count + 1} && "
              "!window.trame.state.get('loading')", timeout=300_000)
    page.wait_views_fitted()
    print(f"the same CT opened from the server's data folder: {time.monotonic() - start:.1f} s")
    print(f"tab memory with the sample CT and two 512x512x300 CTs open: {tab_rss(server, page):.0f} MB")


def tab_rss(server: WebServer, page: PageDriver) -> float:
    tab_id = page.page.url.split("/t/")[1].split("/")[0]
    return next(t["rss_mb"] for t in server.status()["tabs"] if t["tab_id"] == tab_id)


def write_large_ct(folder: Path) -> Path:
    import SimpleITK as sitk

    from slicerfm_backend.benchmark.phantom import make_synthetic_ct

    path = folder / "synthetic_512x512x300.nii.gz"
    array, ijk_to_ras = make_synthetic_ct()
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.8, 0.8, 1.5))
    image.SetOrigin([float(v) for v in np.diag([-1, -1, 1]) @ ijk_to_ras[:3, 3]])
    sitk.WriteImage(image, str(path), useCompression=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=12)
    parser.add_argument("--no-large", action="store_true", help="skip the 512x512x300 CT")
    parser.add_argument("--aim-ms", type=float, default=0.0,
                        help="wait this long between jumping the slices to the organ and the click "
                             "(0: click at once, while the other views may still render the jump)")
    args = parser.parse_args()
    data = require_data() / "abdomen_ct"
    from playwright.sync_api import sync_playwright
    from slicerfm_client.launcher import LocalBackend

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "data").mkdir()
        large = None if args.no_large else write_large_ct(folder / "data")
        backend = LocalBackend([str(BIN / "slicerfm-backend")], engines=["classic"],
                               log_path=str(folder / "backend.log"))
        backend.start()
        server = WebServer(BIN, ["--server", backend.url, "--spare-tabs", "1",
                                 "--data-dir", str(folder / "data")], folder)
        try:
            with sync_playwright() as playwright:
                context = playwright.chromium.launch_persistent_context(
                    str(folder / "profile"), executable_path=CHROMIUM, headless=True,
                    args=CHROMIUM_FLAGS, viewport={"width": 1600, "height": 950})
                context.set_default_timeout(300_000)
                page = PageDriver.open(context, server.url, folder / "shots")
                print(f"empty tab: {tab_rss(server, page):.0f} MB resident", flush=True)
                rows = measure_clicks(page, data / "example_ct.nii.gz",
                                      data / "example_seg_fast_force_split.nii.gz", args.clicks,
                                      args.aim_ms)
                summary(rows)
                print(f"tab memory with the sample CT and {len(rows)} segments: "
                      f"{tab_rss(server, page):.0f} MB")
                if large is not None:
                    measure_large(page, server, large)
                context.close()
        finally:
            server.stop()
            backend.stop()
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
