"""Opening images in a tab, without a browser: what is refused and why, the data folder's
boundary, and the downloads' geometry."""

import zipfile

import numpy as np
import pytest
import SimpleITK as sitk

from slicerfm_web.tab.downloads import write_nifti
from slicerfm_web.tab.images import (ImageError, Limits, find_dicom_series, ijk_to_ras_from_sitk,
                                     read_dicom_series, read_volume_file, unpack_zip)
from slicerfm_web.tab.volumes import list_data_folder, resolve_entry

LIMITS = Limits(max_voxels=10_000_000, max_dimension=1024, max_unpacked_bytes=5_000_000)


def write(tmp_path, name, array, spacing=(1.0, 1.0, 1.0), direction=None):
    image = sitk.GetImageFromArray(array, isVector=array.ndim == 4)
    image.SetSpacing(spacing)
    if direction is not None:
        image.SetDirection(direction)
    path = tmp_path / name
    sitk.WriteImage(image, str(path))
    return path


def test_a_volume_is_read_with_its_geometry_in_ras(tmp_path):
    rotation = sitk.VersorTransform((0.2, 0.1, 0.3), 0.4).GetMatrix()
    path = write(tmp_path, "ct.nrrd", np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6),
                 spacing=(0.7, 0.8, 2.5), direction=rotation)
    image = read_volume_file(path, "ct.nrrd", LIMITS)
    assert image.array.shape == (4, 5, 6) and image.name == "ct"
    itk = sitk.ReadImage(str(path))
    lps = np.array(itk.TransformContinuousIndexToPhysicalPoint((3.0, 2.0, 1.0)))
    ras = image.ijk_to_ras @ np.array([3.0, 2.0, 1.0, 1.0])
    np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], atol=1e-9)


def test_a_label_map_written_for_download_has_the_volume_geometry(tmp_path):
    rotation = sitk.VersorTransform((0.0, 0.3, 0.1), 0.7).GetMatrix()
    source = write(tmp_path, "ct.nii.gz", np.zeros((4, 5, 6), np.int16), spacing=(0.7, 0.8, 2.5),
                   direction=rotation)
    image = read_volume_file(source, "ct.nii.gz", LIMITS)
    labels = np.zeros((4, 5, 6), np.uint8)
    labels[1, 2, 3] = 7
    write_nifti(labels, image.ijk_to_ras, tmp_path / "labels.nii.gz")
    back = sitk.ReadImage(str(tmp_path / "labels.nii.gz"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), labels)
    np.testing.assert_allclose(ijk_to_ras_from_sitk(back), image.ijk_to_ras, atol=1e-5)


@pytest.mark.parametrize("name, array, message", [
    ("flat.nii.gz", np.zeros((5, 6), np.int16), "2 dimensions: SlicerFM needs a 3D volume"),
    ("colour.nrrd", np.zeros((3, 4, 5, 3), np.uint8), "3 values per voxel"),
    ("nan.nrrd", np.full((3, 4, 5), np.nan, np.float32), "NaN or infinite"),
    ("huge.nii.gz", np.zeros((2, 2, 1100), np.uint8), "more than the 1024 this server accepts"),
])
def test_images_that_cannot_be_segmented_are_refused_with_the_reason(tmp_path, name, array, message):
    path = write(tmp_path, name, array)
    with pytest.raises(ImageError, match=message):
        read_volume_file(path, name, LIMITS)


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    path = tmp_path / "scan.nii.gz"
    path.write_bytes(b"hello, not an image" * 100)
    with pytest.raises(ImageError, match="is not an image SlicerFM can open"):
        read_volume_file(path, "scan.nii.gz", LIMITS)


def test_a_zip_member_pointing_outside_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("ok/a.dcm", b"x")
        handle.writestr("../../escape.dcm", b"x")
    (tmp_path / "out").mkdir()
    with pytest.raises(ImageError, match="points outside the archive"):
        unpack_zip(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "escape.dcm").exists()


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("zeros.dcm", b"\0" * 6_000_000)
    (tmp_path / "out").mkdir()
    with pytest.raises(ImageError, match="unpacks to"):
        unpack_zip(archive, tmp_path / "out", LIMITS)
    assert not list((tmp_path / "out").iterdir())


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "dicom.zip"
    path.write_bytes(b"PK but not really")
    with pytest.raises(ImageError, match="not a valid zip"):
        unpack_zip(path, tmp_path, LIMITS)


def test_the_sample_dicom_series_is_found_and_read_as_a_ct(a_data_dir):
    series = find_dicom_series(a_data_dir / "abdomen_ct" / "example_ct_dicom")
    assert len(series) == 1 and len(series[0].files) == 20 and series[0].modality == "CT"
    image = read_dicom_series(series[0], Limits(10**8, 1024, 10**9))
    assert image.array.shape == (20, 512, 512) and image.modality == "CT"


def test_the_data_folder_lists_what_it_holds_and_nothing_outside_it(tmp_path):
    root = tmp_path / "data"
    (root / "cases").mkdir(parents=True)
    write(root / "cases", "a.nii.gz", np.zeros((2, 2, 2), np.int16))
    (root / "notes.txt").write_text("not listed")
    outside = write(tmp_path, "secret.nii.gz", np.zeros((2, 2, 2), np.int16))
    (root / "link.nii.gz").symlink_to(outside)
    keys = [entry.key for entry in list_data_folder(root)]
    assert keys == ["cases/a.nii.gz"]
    assert resolve_entry(root, "cases/a.nii.gz").kind == "volume"
    for key in ("link.nii.gz", "../secret.nii.gz", str(outside), "cases/../../secret.nii.gz",
                "notes.txt"):
        with pytest.raises(ImageError, match="not in the data folder"):
            resolve_entry(root, key)
