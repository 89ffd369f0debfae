"""Reading images for a tab: a file -> voxels ``(K, J, I)`` + IJK->RAS, in a worker thread.

SimpleITK reads (it releases the GIL, so the tab keeps serving its page and views while a
large CT is read); the MRML node is made afterwards on the main thread
(:mod:`slicerfm_web.tab.volumes`). Accepted: NIfTI (``.nii``, ``.nii.gz``), NRRD
(``.nrrd``), MetaImage (``.mha``) and a ``.zip`` of DICOM files (one series is read; a zip
holding several makes the page ask which). Every failure is an :class:`ImageError` whose
text is shown in the page as it is.

Geometry: SimpleITK gives LPS origin and directions; ``ijk_to_ras`` is the (4, 4) matrix from
voxel index ``(i, j, k, 1)`` to RAS mm, i.e. ``diag(-1, -1, 1) @ [direction * spacing | origin]``.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import List, Optional

import numpy as np

from .config import describe_size

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")
ZIP_SUFFIX = ".zip"
SUPPORTED = VOLUME_SUFFIXES + (ZIP_SUFFIX,)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
MAX_ZIP_MEMBERS = 20_000
WHAT_WE_OPEN = "NIfTI (.nii, .nii.gz), NRRD (.nrrd), MetaImage (.mha) or a .zip of DICOM files"


class ImageError(ValueError):
    """An image that cannot be opened; the message says why and what would work."""


@dataclass
class Limits:
    """Largest image a tab opens: voxels in all, voxels along any axis, zip content bytes."""

    max_voxels: int
    max_dimension: int
    max_unpacked_bytes: int


@dataclass
class LoadedImage:
    """``array`` (K, J, I) scalar voxels, ``ijk_to_ras`` (4, 4) float64, a node name and the
    modality ("CT", "MR" from DICOM, else "unknown")."""

    array: np.ndarray
    ijk_to_ras: np.ndarray
    name: str
    modality: str = "unknown"


@dataclass
class DicomSeries:
    """One series found in a DICOM zip (``files`` sorted by SimpleITK/GDCM along the normal)."""

    uid: str
    description: str
    modality: str
    number: str
    files: List[str] = field(default_factory=list)

    def label(self) -> str:
        number = f"#{self.number} " if self.number else ""
        text = self.description or "no description"
        return f"{number}{text} ({self.modality or '?'}, {len(self.files)} images)"


def supported_suffix(name: str) -> Optional[str]:
    """The recognised suffix of a file name (case-insensitive), or None."""
    lower = name.lower()
    return next((suffix for suffix in SUPPORTED if lower.endswith(suffix)), None)


def stem(name: str) -> str:
    suffix = supported_suffix(name) or Path(name).suffix
    base = Path(name).name
    return base[: len(base) - len(suffix)] if suffix and base.lower().endswith(suffix) else base


def ijk_to_ras_from_sitk(image) -> np.ndarray:
    """(4, 4) voxel (i, j, k, 1) -> RAS mm from a SimpleITK image or reader (LPS physical)."""
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    matrix = np.eye(4)
    matrix[:3, :3] = direction * np.asarray(image.GetSpacing(), dtype=np.float64)
    matrix[:3, 3] = image.GetOrigin()
    return LPS_TO_RAS @ matrix


def _check_size(size_ijk, limits: Limits, what: str) -> None:
    size = [int(v) for v in size_ijk]
    if len(size) != 3:
        raise ImageError(f"{what} has {len(size)} dimensions: SlicerFM needs a 3D volume")
    if min(size) < 1:
        raise ImageError(f"{what} is empty (size {size})")
    if max(size) > limits.max_dimension:
        raise ImageError(f"{what} is {size[0]}x{size[1]}x{size[2]} voxels: more than the "
                         f"{limits.max_dimension} this server accepts along an axis")
    voxels = size[0] * size[1] * size[2]
    if voxels > limits.max_voxels:
        raise ImageError(f"{what} has {voxels:,} voxels: more than the {limits.max_voxels:,} "
                         "this server accepts")


def _check_geometry(ijk_to_ras: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(ijk_to_ras)) or abs(np.linalg.det(ijk_to_ras[:3, :3])) < 1e-9:
        raise ImageError(f"{what} has an invalid geometry (spacing or directions): it cannot "
                         "be placed in space")


def _finish(image, name: str, modality: str, what: str) -> LoadedImage:
    """SimpleITK image -> LoadedImage; refuses vector images and non-finite voxels."""
    import SimpleITK as sitk

    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ImageError(f"{what} has {image.GetNumberOfComponentsPerPixel()} values per "
                         "voxel (colour or vector image): SlicerFM segments scalar volumes")
    ijk_to_ras = ijk_to_ras_from_sitk(image)
    _check_geometry(ijk_to_ras, what)
    array = sitk.GetArrayFromImage(image)          # (K, J, I), a copy owned by numpy
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ImageError(f"{what} contains NaN or infinite voxel values")
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    return LoadedImage(np.ascontiguousarray(array), ijk_to_ras, name, modality)


def read_volume_file(path: Path, name: str, limits: Limits) -> LoadedImage:
    """Read a NIfTI / NRRD / MetaImage file (worker thread). ImageError when it is not one."""
    import SimpleITK as sitk

    what = f"'{name}'"
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise ImageError(f"{what} is not an image SlicerFM can open ({WHAT_WE_OPEN}); the "
                         f"reader said: {_first_line(error)}") from error
    _check_size(reader.GetSize(), limits, what)
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise ImageError(f"{what} could not be read (truncated or damaged file?): "
                         f"{_first_line(error)}") from error
    return _finish(image, stem(name), "unknown", what)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if "Exception" not in line and "sitk::ERROR" not in line]
    return (useful or lines or ["unknown error"])[-1][:300]


# -- DICOM zip ------------------------------------------------------------------------------

def _safe_member_path(member: str) -> Optional[PurePosixPath]:
    """The member's relative path, or None when it must not be extracted (absolute, '..')."""
    path = PurePosixPath(member.replace("\\", "/"))
    if not path.parts or path.is_absolute() or ".." in path.parts or ":" in path.parts[0]:
        return None
    return path


def unpack_zip(zip_path: Path, target: Path, limits: Limits) -> int:
    """Extract a zip's regular files into ``target`` without leaving it; returns how many.
    ImageError for a file that is not a zip, a member trying to escape, too many members
    or more content than ``limits.max_unpacked_bytes`` (zip bombs)."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ImageError(f"the upload is not a valid zip file ({error})") from error
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > MAX_ZIP_MEMBERS:
            raise ImageError(f"the zip holds {len(members):,} files; at most {MAX_ZIP_MEMBERS:,} "
                             "are accepted")
        declared = sum(info.file_size for info in members)
        if declared > limits.max_unpacked_bytes:
            raise ImageError(f"the zip unpacks to {describe_size(declared)}; at most "
                             f"{describe_size(limits.max_unpacked_bytes)} are accepted")
        written = 0
        for index, info in enumerate(members):
            relative = _safe_member_path(info.filename)
            if relative is None:
                raise ImageError(f"the zip member '{info.filename}' points outside the archive; "
                                 "the zip was refused")
            destination = target / f"{index:05d}_{relative.name}"
            with archive.open(info) as source, open(destination, "wb") as sink:
                while True:
                    chunk = source.read(1 << 20)
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > limits.max_unpacked_bytes:
                        raise ImageError("the zip unpacks to more than it declares; refused")
                    sink.write(chunk)
    return len(members)


def _tag(reader, key: str) -> str:
    try:
        return reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else ""
    except RuntimeError:
        return ""


def find_dicom_series(folder: Path) -> List[DicomSeries]:
    """The DICOM series in ``folder`` (GDCM's grouping by series UID), largest first."""
    import SimpleITK as sitk

    found = []
    for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) or ():
        files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))
        if not files:
            continue
        reader = sitk.ImageFileReader()
        reader.SetFileName(files[0])
        reader.LoadPrivateTagsOff()
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            continue
        found.append(DicomSeries(uid=uid, description=_tag(reader, "0008|103e"),
                                 modality=_tag(reader, "0008|0060").upper(),
                                 number=_tag(reader, "0020|0011"), files=files))
    return sorted(found, key=lambda series: -len(series.files))


def read_dicom_series(series: DicomSeries, limits: Limits) -> LoadedImage:
    """Read one series as a volume (worker thread)."""
    import SimpleITK as sitk

    what = f"the DICOM series {series.label()}"
    first = sitk.ImageFileReader()
    first.SetFileName(series.files[0])
    first.ReadImageInformation()
    columns, rows = first.GetSize()[:2]
    _check_size((columns, rows, len(series.files)), limits, what)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(series.files)
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise ImageError(f"{what} could not be read: {_first_line(error)}") from error
    modality = series.modality if series.modality in ("CT", "MR") else "unknown"
    name = series.description or f"DICOM {series.number or series.uid[-8:]}"
    return _finish(image, name, modality, what)


def dicom_folder(path: Path) -> bool:
    """True for a folder that directly holds DICOM files (``*.dcm`` or a DICM preamble)."""
    if not path.is_dir():
        return False
    for count, entry in enumerate(os.scandir(path)):
        if count > 50:
            break
        if entry.is_file() and (entry.name.lower().endswith(".dcm") or _has_dicm(entry.path)):
            return True
    return False


def _has_dicm(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False
