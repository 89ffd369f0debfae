"""The module's prompt nodes, and the extension files Slicer's build needs."""

import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from PIL import Image

from SlicerFMLib.prompt_nodes import BOX, NEGATIVE, POSITIVE, prompt_nodes
from SlicerFMLib.prompts import prompt_polarity

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "SlicerFM"


def test_prompt_nodes_are_created_once_with_their_polarity_and_distinct_colours(a_scene):
    nodes = prompt_nodes(a_scene.scene)
    assert prompt_nodes(a_scene.scene) == nodes          # found again, not duplicated
    assert prompt_polarity(nodes[POSITIVE]) and not prompt_polarity(nodes[NEGATIVE])
    assert nodes[BOX].IsA("vtkMRMLMarkupsROINode")
    colours = {role: tuple(node.GetDisplayNode().GetSelectedColor())
               for role, node in nodes.items()}
    assert len(set(colours.values())) == 3
    assert nodes[POSITIVE].GetControlPointLabelFormat() == "+%d"
    assert nodes[NEGATIVE].GetControlPointLabelFormat() == "-%d"


def test_every_module_script_is_listed_in_the_module_cmakelists():
    cmake = (MODULE / "CMakeLists.txt").read_text()
    listed = set(re.findall(r"\$\{MODULE_NAME\}Lib/(\w+\.py)", cmake))
    assert listed == {p.name for p in (MODULE / "SlicerFMLib").glob("*.py")}
    for resource in re.findall(r"(Resources/[\w/.{}$]+)", cmake):
        assert (MODULE / resource.replace("${MODULE_NAME}", "SlicerFM")).is_file(), resource
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in cmake
    assert "../client/slicerfm_client" in cmake
    assert "add_subdirectory(SlicerFM)" in (REPO / "CMakeLists.txt").read_text()


def test_the_ui_file_names_every_widget_the_module_uses():
    tree = ElementTree.parse(MODULE / "Resources" / "UI" / "SlicerFM.ui")
    names = {w.get("name") for w in tree.iter("widget")}
    source = (MODULE / "SlicerFM.py").read_text()
    used = set(re.findall(r"\bui\.(\w+)", source))
    assert used and used <= names, sorted(used - names)
    bound = {p.find("string").text for p in tree.iter("property")
             if p.get("name") == "SlicerParameterName"}
    # a dynamic property: without stdset="0" Qt Designer drops it when the file is edited
    assert all(p.get("stdset") == "0" for p in tree.iter("property")
               if p.get("name") == "SlicerParameterName")
    wrapper = source[source.index("class SlicerFMParameterNode"):source.index("class SlicerFMWidget")]
    parameters = set(re.findall(r"^    (\w+): ", wrapper, re.MULTILINE))
    assert {"inputVolume", "connectionMode", "serverUrl", "backendPath"} <= bound <= parameters
    assert "token" not in " ".join(parameters).lower()      # the token is never saved


def test_the_icons_are_square_pngs():
    for path in (MODULE / "Resources" / "Icons" / "SlicerFM.png",
                 REPO / "Resources" / "Icons" / "SlicerFM.png"):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (128, 128)   # the index's size


def test_a_checkout_finds_the_client_in_the_sibling_client_folder():
    """Without site-packages (-S) the installed client is invisible: the module must fall
    back to ../client, and outside Slicer a missing blosc2 is an ImportError, not a pip run."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import client_setup as c\n"
        "c.ensure_client_importable(); import slicerfm_client; print(slicerfm_client.__file__)\n"
        "try:\n    c.ensure_dependencies()\nexcept ImportError:\n    print('no blosc2')\n")
    completed = subprocess.run([sys.executable, "-S", "-c", code, str(MODULE / "SlicerFMLib")],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        str(REPO / "client" / "slicerfm_client" / "__init__.py"), "no blosc2"]


def test_the_registration_and_automatic_segmentation_sections_bind_their_choices():
    """Each combo box bound to a Choice parameter offers exactly the Choice's values (the
    parameter node binding needs them), and both new sections are in the panel."""
    tree = ElementTree.parse(MODULE / "Resources" / "UI" / "SlicerFM.ui")
    titles = {w.get("name"): w.find("property/string").text for w in tree.iter("widget")
              if w.get("class") == "ctkCollapsibleButton"}
    assert titles["registrationCollapsibleButton"] == "Registration"
    assert titles["autoSegmentationCollapsibleButton"] == "Automatic segmentation"
    source = (MODULE / "SlicerFM.py").read_text()
    choices = {name: re.findall(r'"([^"]+)"', values) for name, values in
               re.findall(r"^    (\w+): Annotated\[str, Choice\(\[([^\]]*)\]\)\]", source, re.MULTILINE)}
    checked = 0
    for widget in tree.iter("widget"):
        bound = [p.find("string").text for p in widget.findall("property")
                 if p.get("name") == "SlicerParameterName"]
        if widget.get("class") != "QComboBox" or not bound or bound[0] not in choices:
            continue
        items = [i.find("property/string").text for i in widget.findall("item")]
        assert items == choices[bound[0]], (widget.get("name"), items)
        checked += 1
    assert checked == 5          # connection mode, two modalities, engine, similarity
    spin = next(w for w in tree.iter("widget") if w.get("name") == "ioStepsSpinBox")
    numbers = {p.get("name"): p.find("number").text for p in spin.findall("property")
               if p.find("number") is not None}
    special = next(p for p in spin.findall("property") if p.get("name") == "specialValueText")
    assert numbers["minimum"] == "-1" and special.find("string").text == "engine default"
    # Slicer's spin box connector sets the range from WithinRange; without it, the whole
    # int range (parameterNodeWrapper/guiConnectors.py, QSliderOrSpinBoxToIntConnector)
    declared = re.search(r"registrationIoSteps: Annotated\[int, WithinRange\((-?\d+), (\d+)\)\] = (-?\d+)",
                         source)
    assert declared, "registrationIoSteps needs WithinRange"
    assert declared.groups() == (numbers["minimum"], numbers["maximum"], "-1")
