"""``slicerfm-backend segment`` in-process: label map on the input grid + dictionary JSON."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from slicerfm_backend import cli
from slicerfm_backend.engines import registry

from vista3d_helpers import ct_phantom

pytestmark = pytest.mark.torch


def test_segment_writes_labels_on_the_input_grid(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(registry.ENGINE_CLASSES, "vista3d-small", "vista3d_helpers:SmallVista3DEngine")
    image = sitk.GetImageFromArray(ct_phantom((16, 30, 26)))
    image.SetSpacing((1.7, 1.2, 2.5))
    image.SetOrigin((10.0, -20.0, 33.0))
    c, s = np.cos(0.2), np.sin(0.2)
    image.SetDirection((c, -s, 0, s, c, 0, 0, 0, 1))
    source = tmp_path / "ct.nii.gz"
    sitk.WriteImage(image, str(source))
    out = tmp_path / "labels.nii.gz"
    code = cli.main(["segment", "--engine", "vista3d-small", "--image", str(source),
                     "--classes", "liver,spleen", "--out", str(out), "--device", "cpu"])
    assert code == 0
    labels = sitk.ReadImage(str(out))
    assert labels.GetSize() == image.GetSize()
    assert np.allclose(labels.GetSpacing(), image.GetSpacing())
    assert np.allclose(labels.GetOrigin(), image.GetOrigin())
    assert np.allclose(labels.GetDirection(), image.GetDirection(), atol=1e-6)
    meta = json.loads((tmp_path / "labels.json").read_text())
    assert meta["labels"]["3"]["name"] == "spleen" and "not_computed" in meta
    assert set(np.unique(sitk.GetArrayFromImage(labels))) <= {0, 1, 3}
    assert "windows" in capsys.readouterr().err
    assert cli.main(["segment", "--engine", "vista3d-small", "--image", str(source),
                     "--classes", "not a class", "--out", str(out)]) == 2
