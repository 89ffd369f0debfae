"""``slicerfm-backend register`` / ``evaluate-registration`` on small synthetic files, in
process and through a server."""

import json

import numpy as np
import pytest

from registration_helpers import CENTRE, IJK_TO_RAS, blob
from slicerfm_backend.cli import main
from slicerfm_backend.registration.field import to_sitk_image

SHIFT = np.array([3.0, -2.0, 2.0])
SECOND = np.array([0.0, 12.0, 0.0])


def write(path, array):
    import SimpleITK as sitk

    sitk.WriteImage(to_sitk_image(array, IJK_TO_RAS), str(path))
    return str(path)


@pytest.fixture
def pair_files(tmp_path):
    """Fixed/moving images and label maps: two blobs, moved by SHIFT in the moving image."""
    def scene(offset):
        image = blob(CENTRE + offset) + blob(CENTRE + SECOND + offset, (4.0, 4.0, 4.0))
        labels = np.where(blob(CENTRE + SECOND + offset, (4.0, 4.0, 4.0)) > 400, 2,
                          np.where(blob(CENTRE + offset) > 400, 1, 0)).astype(np.uint8)
        return image, labels

    fixed, fixed_labels = scene(np.zeros(3))
    moving, moving_labels = scene(SHIFT)
    return {"fixed": write(tmp_path / "fixed.nii.gz", fixed), "moving": write(tmp_path / "moving.nii.gz", moving),
            "fixed_labels": write(tmp_path / "fixed_labels.nii.gz", fixed_labels),
            "moving_labels": write(tmp_path / "moving_labels.nii.gz", moving_labels),
            "fixed_array": fixed, "dir": tmp_path}


def evaluate_args(files, out, *extra):
    return ["evaluate-registration", "--fixed", files["fixed"], "--moving", files["moving"],
            "--fixed-labels", files["fixed_labels"], "--moving-labels", files["moving_labels"],
            "--json", str(out), *extra]


def check_report(path):
    report = json.loads(path.read_text())
    assert {"mean_dice_before", "mean_dice_after", "dice_before", "dice_after",
            "neg_jacobian_fraction", "runtime_s"} <= set(report)
    assert set(report["dice_before"]) == set(report["dice_after"]) == {"1", "2"}
    assert report["mean_dice_before"] < 0.7 and report["mean_dice_after"] > 0.9
    assert report["mean_dice_after"] == pytest.approx(np.mean(list(report["dice_after"].values())))
    assert report["neg_jacobian_fraction"] == 0.0 and report["runtime_s"] > 0
    return report


def test_evaluate_registration_in_process_prints_and_writes_dice_and_its_plot(pair_files, capsys):
    out, plot = pair_files["dir"] / "report.json", pair_files["dir"] / "dice.png"
    assert main(evaluate_args(pair_files, out, "--plot", str(plot))) == 0
    printed, errors = capsys.readouterr()
    assert "mean" in printed and "negative Jacobian" in printed and "runtime" in printed
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "\r" not in errors, "a progress bar was drawn into a captured stream"
    report = check_report(out)
    assert report["server"] is None and report["engine"] == "classic"


def test_evaluate_registration_through_a_server(pair_files, a_server_factory):
    server = a_server_factory(engines=["sphere"])
    out = pair_files["dir"] / "report.json"
    assert main(evaluate_args(pair_files, out, "--server", server.url, "--labels", "1,2")) == 0
    assert check_report(out)["server"] == server.url


def test_register_writes_an_itk_transform_and_the_warped_image(pair_files):
    import SimpleITK as sitk

    transform_path = pair_files["dir"] / "t.h5"
    warped_path = pair_files["dir"] / "w.nii.gz"
    assert main(["register", "--fixed", pair_files["fixed"], "--moving", pair_files["moving"],
                 "--affine", "--transform-out", str(transform_path), "--warped-out", str(warped_path)]) == 0
    transform = sitk.ReadTransform(str(transform_path))
    flip = np.array([-1.0, -1.0, 1.0])
    moved = np.array(transform.TransformPoint(tuple(CENTRE * flip))) * flip  # LPS in the file
    np.testing.assert_allclose(moved, CENTRE + SHIFT, atol=0.5)
    warped = sitk.ReadImage(str(warped_path))
    assert warped.GetSize() == (32, 28, 24)
    fixed = pair_files["fixed_array"]
    assert np.abs(sitk.GetArrayFromImage(warped) - fixed).mean() < 0.25 * np.abs(fixed).mean()


def test_cli_errors_are_one_clear_line(pair_files, capsys, tmp_path):
    out = tmp_path / "r.json"
    cases = [
        (["register", "--fixed", pair_files["fixed"], "--moving", pair_files["moving"]], "nothing to write"),
        (["register", "--fixed", str(tmp_path / "none.nii.gz"), "--moving", pair_files["moving"],
          "--warped-out", str(tmp_path / "w.nii.gz")], "not found"),
        (evaluate_args(pair_files, out, "--labels", "1,x"), "comma-separated"),
        (evaluate_args(pair_files, out, "--labels", "1,9"), "neither label map"),
        (["register", "--fixed", pair_files["fixed"], "--moving", pair_files["moving"], "--engine", "nope",
          "--warped-out", str(tmp_path / "w.nii.gz")], "unknown registration engine"),
        (["register", "--fixed", pair_files["fixed"], "--moving", pair_files["moving"],
          "--fixed-mask", pair_files["moving"], "--warped-out", str(tmp_path / "w.nii.gz")], "integer label map"),
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_engines_command_lists_registration_engines(capsys):
    assert main(["engines", "--all"]) == 0
    printed = capsys.readouterr().out
    assert "registration" in printed and "classic" in printed and "unigradicon" in printed
