"""Make the browser client's screenshots in Resources/Screenshots/ (README, Extensions Index).

Starts a backend (classic engine) and ``slicerfm-web``, opens the page in Debian's Chromium,
loads the sample abdominal CT and segments four organs with the mouse (one positive click
each, at points deep inside them from the sample's reference labels), names them, frames
the 3D view on them, and saves PNGs (a few hundred KB each).

    .venv/bin/python scripts/web_screenshots.py [--out Resources/Screenshots]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Testing" / "web"))

from web_helpers import CHROMIUM_FLAGS, PageDriver, WebServer, kji_to_ras, read_label_map  # noqa: E402

BIN = Path(sys.executable).parent
DATA = Path(os.environ.get("SLICERFM_DATA", REPO.parent / "shared" / "data")) / "abdomen_ct"
ORGANS = {5: "liver", 1: "spleen", 2: "right kidney", 3: "left kidney"}


def deepest(labels: np.ndarray, label: int):
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(np.pad(labels == label, 1))[1:-1, 1:-1, 1:-1]
    return tuple(int(v) for v in np.unravel_index(np.argmax(depth), depth.shape))


def save(page: PageDriver, path: Path) -> None:
    from PIL import Image

    raw = path.with_suffix(".raw.png")
    page.page.screenshot(path=str(raw))
    Image.open(raw).convert("RGB").save(path, optimize=True)
    raw.unlink()
    print(f"{path} ({path.stat().st_size // 1024} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(REPO / "Resources" / "Screenshots"))
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright
    from slicerfm_client.launcher import LocalBackend

    labels, ijk_to_ras = read_label_map(DATA / "example_seg_fast_force_split.nii.gz")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        backend = LocalBackend([str(BIN / "slicerfm-backend")], engines=["classic"],
                               log_path=str(folder / "backend.log"))
        backend.start()
        server = WebServer(BIN, ["--server", backend.url, "--spare-tabs", "0"], folder)
        try:
            with sync_playwright() as playwright:
                context = playwright.chromium.launch_persistent_context(
                    str(folder / "profile"), executable_path="/usr/bin/chromium", headless=True,
                    args=CHROMIUM_FLAGS, viewport={"width": 1440, "height": 860})
                context.set_default_timeout(300_000)
                page = PageDriver.open(context, server.url, folder / "shots")
                page.upload(DATA / "example_ct.nii.gz")
                for number, (label, name) in enumerate(ORGANS.items(), start=1):
                    if number > 1:
                        page.press("#add-segment")
                        page.wait(f"window.trame.state.get('segments').length === {number}")
                    segment = page.state("segments")[-1]["id"]
                    page.page.evaluate(f"window.trame.trigger('rename_segment', [{segment!r}, {name!r}])")
                    page.click_ras(kji_to_ras(deepest(labels, label), ijk_to_ras))
                    page.wait_results(number)
                page.use_tool("positive")
                page.press("#tool-positive")                 # stop placing: no cursor glyph
                page.go_to(kji_to_ras(deepest(labels, 1), ijk_to_ras))
                page.page.locator('[data-view="ThreeD"]').locator("xpath=..").locator(
                    ".view-gutter button").first.click()    # the 3D view's "reset camera"
                page.page.mouse.move(5, 840)
                page.page.wait_for_timeout(2500)
                save(page, out / "web-four-views.png")
                page.choose("layout-select", "3D and axial")
                page.page.mouse.move(5, 840)
                page.page.wait_for_timeout(3000)
                page.page.locator('[data-view="ThreeD"]').locator("xpath=..").locator(
                    ".view-gutter button").first.click()
                page.page.mouse.move(5, 840)
                page.page.wait_for_timeout(2500)
                save(page, out / "web-3d-and-axial.png")
                context.close()
        finally:
            server.stop()
            backend.stop()


if __name__ == "__main__":
    main()
