"""Volumes in a tab's scene: node creation (main thread), window/level presets, data folder.

A :class:`~slicerfm_web.tab.images.LoadedImage` becomes a ``vtkMRMLScalarVolumeNode`` through
``SlicerFMLib.volume_io.update_volume_from_array`` (the module's own helper); a DICOM
modality is kept in the node attribute ``DICOM.Modality`` that the Logic reads.

The data folder: the page lists what is under the configured folder (volumes, zips, folders
of DICOM files) and asks for an entry by its key in that list. The key is looked up in a
listing made on the server, and the resolved path must still lie inside the folder (a
symbolic link pointing elsewhere is refused), so no path outside it is ever opened.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from SlicerFMLib.volume_io import update_volume_from_array

from .images import ImageError, LoadedImage, VOLUME_SUFFIXES, ZIP_SUFFIX, dicom_folder

#: (title, window, level) in HU for CT; "Auto" uses the volume's own histogram
PRESETS = {
    "Auto": None,
    "CT abdomen": (400.0, 40.0),
    "CT liver": (150.0, 30.0),
    "CT lung": (1500.0, -600.0),
    "CT bone": (1800.0, 400.0),
    "CT brain": (80.0, 40.0),
}
MAX_LISTED = 500
MAX_DEPTH = 4


def add_volume_node(scene, image: LoadedImage):
    """A new scalar volume node holding ``image`` (a copy of its voxels), with display."""
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", scene.GenerateUniqueName(image.name))
    update_volume_from_array(node, image.array, image.ijk_to_ras)
    if image.modality in ("CT", "MR"):
        node.SetAttribute("DICOM.Modality", image.modality)
    node.CreateDefaultDisplayNodes()
    apply_preset(node, default_preset(image))
    return node


def default_preset(image: LoadedImage) -> str:
    """"CT abdomen" for CT-like intensities (HU: air near -1000), else "Auto"."""
    if image.modality == "CT":
        return "CT abdomen"
    if image.modality == "MR" or image.array.dtype.kind == "f":
        return "Auto"
    low = float(image.array.min()) if image.array.size else 0.0
    return "CT abdomen" if -1100.0 <= low <= -900.0 else "Auto"


def apply_preset(volume_node, preset: str) -> None:
    """Set the volume's window/level to a preset of :data:`PRESETS` (ValueError if unknown)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown window/level preset {preset!r}; choose one of "
                         f"{', '.join(PRESETS)}")
    display = volume_node.GetDisplayNode()
    if display is None:
        return
    values = PRESETS[preset]
    if values is None:
        display.AutoWindowLevelOn()
    else:
        display.AutoWindowLevelOff()
        display.SetWindowLevel(*values)


def volume_entries(scene) -> List[Dict[str, str]]:
    """``[{"id": node ID, "name": ...}]`` of the scalar volumes in the scene."""
    return [{"id": node.GetID(), "name": node.GetName()}
            for node in scene.GetNodesByClass("vtkMRMLScalarVolumeNode")
            if node.GetAttribute("SlicerFM.Hidden") != "1"]


# -- data folder ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DataEntry:
    """One openable thing under the data folder: ``key`` (its relative path, used by the
    page), ``kind`` ("volume", "zip" or "dicom folder") and its size in bytes."""

    key: str
    kind: str
    size: int

    def as_state(self) -> Dict[str, object]:
        return {"key": self.key, "kind": self.kind, "size": self.size}


def _kind(path: Path) -> Optional[str]:
    lower = path.name.lower()
    if path.is_file():
        if any(lower.endswith(suffix) for suffix in VOLUME_SUFFIXES):
            return "volume"
        if lower.endswith(ZIP_SUFFIX):
            return "zip"
        return None
    return "dicom folder" if dicom_folder(path) else None


def list_data_folder(root: Path) -> List[DataEntry]:
    """What the page may open under ``root`` (depth <= 4, at most 500 entries, sorted).
    Entries whose real path leaves ``root`` (symbolic links) are not listed."""
    root = root.resolve()
    entries: List[DataEntry] = []
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        if depth >= MAX_DEPTH:
            subfolders[:] = []
        candidates = [here / name for name in sorted(files) if not name.startswith(".")]
        if here != root:
            candidates.insert(0, here)
        for path in candidates:
            if not inside(path, root):
                continue
            kind = _kind(path)
            if kind == "dicom folder" and path != here:
                continue
            if kind is not None:
                size = path.stat().st_size if path.is_file() else 0
                entries.append(DataEntry(path.relative_to(root).as_posix(), kind, size))
            if len(entries) >= MAX_LISTED:
                return entries
    return entries


def inside(path: Path, root: Path) -> bool:
    """True when ``path``'s real location (links followed) lies inside ``root``."""
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    return True


def resolve_entry(root: Path, key: str) -> DataEntry:
    """The listed entry for ``key`` and nothing else: ImageError for any key that the listing
    of ``root`` does not hold (``..``, absolute paths, links out of the folder, new files)."""
    for entry in list_data_folder(root):
        if entry.key == key:
            if not inside(root / entry.key, root):
                break
            return entry
    raise ImageError(f"'{key}' is not in the data folder: choose an entry from its list")
