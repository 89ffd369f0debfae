"""What the Slicer Extensions Index needs: the description file (JSON, catalog entry schema
v1.0.2), consistent with the top-level CMakeLists.txt, a 128x128 icon, screenshot URLs; and
the module-file fixes of issue 12 that can only be checked statically outside Slicer."""

import ast
import json
import re
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]
INDEX_FILE = REPO / "Resources" / "ExtensionsIndex" / "SlicerFM.json"
RAW = "https://raw.githubusercontent.com/slicerfm/SlicerFM/main/"
#: keys of Slicer's Schemas/slicer-extension-catalog-entry-schema-v1.0.2.json
SCHEMA_KEYS = {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies",
               "dicom_support_rule", "build_subdirectory", "enabled", "tier"}
REQUIRED = {"$schema", "category", "scm_url"}


def cmake_value(name: str) -> str:
    text = (REPO / "CMakeLists.txt").read_text()
    found = re.search(rf'set\(\s*{name}\s+"([^"]*)"', text)
    assert found, f"{name} is not set in CMakeLists.txt"
    return found.group(1)


def test_the_description_file_follows_the_current_catalog_entry_schema():
    entry = json.loads(INDEX_FILE.read_text())
    assert REQUIRED <= set(entry) <= SCHEMA_KEYS
    assert entry["$schema"].endswith("slicer-extension-catalog-entry-schema-v1.0.2.json#")
    assert entry["scm_url"].startswith("https://") and entry["scm_revision"] == "main"
    assert isinstance(entry["tier"], int) and 1 <= entry["tier"] <= 5
    assert all(isinstance(d, str) for d in entry["build_dependencies"])


def test_the_description_file_matches_the_top_level_cmakelists():
    """The index checks: file name = project() name; same category and dependencies."""
    entry = json.loads(INDEX_FILE.read_text())
    project = re.search(r"project\s*\(\s*([^\s)]+)", (REPO / "CMakeLists.txt").read_text()).group(1)
    assert INDEX_FILE.stem == project == "SlicerFM"
    assert entry["category"] == cmake_value("EXTENSION_CATEGORY") == "Segmentation"
    depends = cmake_value("EXTENSION_DEPENDS")
    assert entry["build_dependencies"] == ([] if depends == "NA" else depends.split(";"))
    assert cmake_value("EXTENSION_HOMEPAGE") in entry["scm_url"]


def test_the_icon_url_points_at_a_128_pixel_png_in_this_repository():
    url = cmake_value("EXTENSION_ICONURL")
    assert url.startswith(RAW)
    icon = REPO / url[len(RAW):]
    with Image.open(icon) as image:
        assert image.format == "PNG" and image.size == (128, 128)
    assert icon.read_bytes() == (REPO / "SlicerFM" / "Resources" / "Icons" / "SlicerFM.png").read_bytes()


def test_screenshot_urls_point_to_committed_pngs_under_resources_screenshots():
    """The index shows real screenshots (README "Screenshots"): each URL names a PNG in the tree."""
    urls = cmake_value("EXTENSION_SCREENSHOTURLS").split()
    assert urls and all(u.startswith(RAW + "Resources/Screenshots/") and u.endswith(".png") for u in urls)
    readme = (REPO / "README.md").read_text()
    assert all(u[len(RAW):] in readme for u in urls)
    for url in urls:
        with Image.open(REPO / url[len(RAW):]) as image:
            assert image.format == "PNG" and min(image.size) >= 600


def test_cmake_minimum_is_not_older_than_slicers_own():
    text = (REPO / "CMakeLists.txt").read_text()
    low, high = re.search(r"cmake_minimum_required\(VERSION ([\d.]+)\.\.\.([\d.]+)", text).groups()
    version = lambda v: tuple(int(p) for p in v.split("."))  # noqa: E731
    assert version(low) >= (3, 20, 6) and version(high) >= (3, 28, 0)   # SlicerConfig / main


def attribute_chains(path: Path):
    """Every dotted name used in the code of ``path`` (docstrings and comments excluded),
    e.g. "slicer.modules.segmenteditor.widgetRepresentation", plus getattr(x, "name") as
    "x.name"."""
    chains = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            parts, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                parts.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name):
                parts.append(value.id)
            chains.add(".".join(reversed(parts)))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" \
                and isinstance(node.args[0], ast.Name) and isinstance(node.args[1], ast.Constant):
            chains.add(f"{node.args[0].id}.{node.args[1].value}")
    return chains


def test_the_module_code_avoids_the_calls_a_read_of_slicer_showed_to_fail():
    used = set().union(*(attribute_chains(p) for p in (REPO / "SlicerFM").rglob("*.py")))
    assert not any(c.endswith("SetMarkupLabelFormat") for c in used)        # deprecated
    assert not any("segmenteditor.widgetRepresentation" in c for c in used)  # creates the node
    assert "slicer.packaging" not in used          # not an attribute until imported
    module = (REPO / "SlicerFM" / "SlicerFM.py").read_text()
    assert '"SegmentEditor"' in module[module.index("self.parent.dependencies"):][:200]
    cleanup = module[module.index("    def cleanup(self)"):module.index("    def enter(self)")]
    assert "self.shortcuts.remove()" in cleanup                   # a reload calls cleanup only
    cmake = (REPO / "SlicerFM" / "CMakeLists.txt").read_text()
    assert "SLICERFM_TEST_BACKEND" in cmake and "SLICERFM_BACKEND=${SLICERFM_TEST_BACKEND}" in cmake
    # the self-test (runs only inside Slicer) skips, never fails, without a backend
    self_test = (REPO / "SlicerFM" / "SlicerFMLib" / "self_test.py").read_text()
    click = self_test[self_test.index("def test_SlicerFM_ClickThroughLocalBackend"):]
    assert "configured_test_backend()" in click and "self.skipTest(reason)" in click
    assert "except unittest.SkipTest" in self_test[self_test.index("def runTest"):]
