"""Fixtures of the browser tests: a real backend process, the real ``slicerfm-web`` server
and Debian's Chromium driven by Playwright, headless and kept off the network.

Nothing is skipped: a missing Chromium, Playwright or sample data is a failure that says
what to install. Screenshots of every step go to ``out/web-e2e/<test>/`` (git-ignored).
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from web_helpers import ARTEFACTS, BIN, CHROMIUM, CHROMIUM_FLAGS, HERE, MAX_UPLOAD_MB, SLICE_ENGINE, WebServer

AUTO_ENGINES = ["vista3d-small", "vista3d-gated"]
#: sam-med3d is served without its weights: the page must show it as not ready
ENGINES = ["classic", "slow-sphere", "sam-med3d", *AUTO_ENGINES, SLICE_ENGINE]


def _require_browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's 'chromium' package "
                    "(bash scripts/test.sh does) or set SLICERFM_CHROMIUM", pytrace=False)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail("the browser tests need Playwright's Python package: pip install './web[test]'",
                    pytrace=False)


@pytest.fixture(scope="session")
def a_web_backend(tmp_path_factory):
    """A real ``slicerfm-backend serve`` on 127.0.0.1 with the classic engine, the slow test
    engine and the narrow random VISTA3D of the backend tests (``vista3d-gated`` waits for
    the file ``backend.gate`` before each window) and the slice engine ``slices-test``, whose
    propagations wait while the file ``backend.slice_hold`` exists; stop()/start() restarts
    it on its port."""
    from slicerfm_client.launcher import LocalBackend

    folder = tmp_path_factory.mktemp("web-backend")
    env = dict(os.environ)
    env["SLICERFM_ENGINE_PLUGINS"] = ("slow-sphere=web_engines:SlowSphereEngine,"
                                      "vista3d-small=vista3d_helpers:SmallVista3DEngine,"
                                      "vista3d-gated=vista3d_helpers:GatedSmallVista3DEngine,"
                                      f"{SLICE_ENGINE}=slicewise_helpers:HeldSliceEngine")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent / "backend"),
                                         env.get("PYTHONPATH", "")])
    env["SLICERFM_TEST_GATE"] = str(folder / "gate-open")
    env["SLICERFM_TEST_SLICE_HOLD"] = str(folder / "slice-hold")
    backend = LocalBackend([str(BIN / "slicerfm-backend")], engines=ENGINES, env=env,
                           log_path=str(folder / "backend.log"))
    backend.gate = Path(env["SLICERFM_TEST_GATE"])
    backend.slice_hold = Path(env["SLICERFM_TEST_SLICE_HOLD"])
    backend.start()
    yield backend
    backend.stop()


@pytest.fixture(scope="session")
def a_data_folder(a_data_dir, tmp_path_factory):
    """A data folder for the pages: the sample CT and, beside it, a link pointing outside."""
    folder = tmp_path_factory.mktemp("web-data")
    shutil.copyfile(a_data_dir / "abdomen_ct" / "example_ct.nii.gz", folder / "example_ct.nii.gz")
    outside = tmp_path_factory.mktemp("outside") / "secret.nii.gz"
    shutil.copyfile(a_data_dir / "abdomen_ct" / "example_ct_sm.nii.gz", outside)
    (folder / "escape.nii.gz").symlink_to(outside)
    return folder


@pytest.fixture(scope="session")
def the_ct(a_data_dir):
    """The sample abdominal CT (NIfTI)."""
    return a_data_dir / "abdomen_ct" / "example_ct.nii.gz"


@pytest.fixture(scope="session")
def a_web_server(a_web_backend, a_data_folder, tmp_path_factory):
    """``slicerfm-web --server <the backend>`` with two spare tabs and a short grace time."""
    _require_browser()
    log_dir = tmp_path_factory.mktemp("web-logs")
    server = WebServer(BIN, ["--server", a_web_backend.url, "--spare-tabs", "2", "--tab-grace-s", "8",
                        "--max-upload-mb", str(MAX_UPLOAD_MB), "--data-dir", str(a_data_folder),
                        "--auto-engines", ",".join(AUTO_ENGINES)], log_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def a_browser_context(tmp_path_factory):
    """Chromium (Debian's, headless, fresh profile) under Playwright: one browser, tabs = pages."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    shutil.rmtree(ARTEFACTS, ignore_errors=True)
    ARTEFACTS.mkdir(parents=True)
    profile = tempfile.mkdtemp(prefix="slicerfm-chromium-")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 950}, accept_downloads=True)
        context.set_default_timeout(90_000)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def a_two_series_dicom_zip(a_data_dir, tmp_path_factory):
    """A zip of the sample DICOM series and a copy of it saved as a second series (new series
    and instance UIDs, description 'second copy')."""
    import zipfile

    import pydicom
    from pydicom.uid import generate_uid

    folder = a_data_dir / "abdomen_ct" / "example_ct_dicom"
    target = tmp_path_factory.mktemp("dicom") / "two_series.zip"
    series_uid = generate_uid()
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"first/{path.name}")
            dataset = pydicom.dcmread(path)
            dataset.SeriesInstanceUID = series_uid
            dataset.SOPInstanceUID = generate_uid()
            dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
            dataset.SeriesDescription = "second copy"
            dataset.SeriesNumber = 99
            copy = target.parent / f"copy-{path.name}"
            dataset.save_as(copy)
            archive.write(copy, f"second/{path.name}")
    return target


@pytest.fixture(scope="session")
def a_phantom_pair(tmp_path_factory):
    """Two small CT-like phantoms (NIfTI, 1.5 mm voxels): ``fixed`` and ``moving``, the same
    body shifted by 3 voxels along i (4.5 mm)."""
    import numpy as np
    import SimpleITK as sitk

    folder = tmp_path_factory.mktemp("phantoms")
    shape = (30, 40, 36)
    grid = np.indices(shape).astype(float)
    centre = (np.array(shape) - 1)[:, None, None, None] / 2
    radius = np.sqrt((((grid - centre) / (np.array(shape)[:, None, None, None] / 2.4)) ** 2).sum(0))
    body = np.where(radius < 1, 40.0, -1000.0)
    body[radius < 0.45] = 300.0
    noise = np.random.default_rng(4).normal(0, 10, shape)
    paths = {}
    for name, shift in (("fixed", 0), ("moving", 3)):
        image = sitk.GetImageFromArray((np.roll(body, shift, axis=2) + noise).astype(np.int16))
        image.SetSpacing((1.5, 1.5, 1.5))
        paths[name] = folder / f"phantom_{name}.nii.gz"
        sitk.WriteImage(image, str(paths[name]))
    return paths


@pytest.fixture
def a_page(a_browser_context, a_web_server, request):
    """A new browser tab on the page, connected to its own tab process."""
    from web_helpers import PageDriver

    driver = PageDriver.open(a_browser_context, a_web_server.url, ARTEFACTS / request.node.name)
    yield driver
    driver.close()
