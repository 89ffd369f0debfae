"""Modalities are typed the same way on the command line, in the API and in the client."""

import numpy as np
import pytest

from registration_helpers import CENTRE, IJK_TO_RAS, blob
from slicerfm_backend.cli import build_parser
from slicerfm_client import protocol


@pytest.mark.parametrize("command", [
    ["register", "--fixed", "f", "--moving", "m", "--transform-out", "t.h5"],
    ["evaluate-registration", "--fixed", "f", "--moving", "m", "--fixed-labels", "a", "--moving-labels", "b"],
])
def test_the_registration_commands_take_ct_and_mri(command):
    args = build_parser().parse_args(command + ["--fixed-modality", "ct", "--moving-modality", "MRI"])
    assert (args.fixed_modality, args.moving_modality) == ("CT", "MR")
    assert build_parser().parse_args(command).fixed_modality == "other"


def test_evaluate_takes_the_same_names_and_refuses_others_with_what_is_accepted(capsys):
    base = ["evaluate", "--image", "i", "--label", "l", "--label-id", "1"]
    assert build_parser().parse_args(base + ["--modality", "unknown"]).modality == "other"
    assert build_parser().parse_args(base + ["--modality", "mr"]).modality == "MR"
    with pytest.raises(SystemExit):
        build_parser().parse_args(base + ["--modality", "PET"])
    assert "unknown modality 'PET'; use CT, MR or other" in capsys.readouterr().err


def test_the_api_and_the_client_take_synonyms_and_store_the_canonical_name(a_server):
    from slicerfm_client.registration import register

    with a_server.client() as client:
        image_id = client.upload_image(blob(CENTRE), IJK_TO_RAS, "mri")
        other_id = client.upload_image(np.zeros((4, 5, 6), np.int16), np.eye(4), "Unknown")
        assert other_id != image_id
        for name in ("PET", "mr+ct"):
            with pytest.raises(ValueError, match="unknown modality"):
                client.upload_image(np.zeros((4, 5, 6), np.int16), np.eye(4), name)
        out = register(client, blob(CENTRE), IJK_TO_RAS, blob(CENTRE), IJK_TO_RAS,
                       fixed_modality="mri", moving_modality="Mr", io_steps=1, poll_s=0.05)
        assert out.meta["neg_jacobian_fraction"] == 0.0
        body = {"fixed": {"image_id": image_id, "modality": "ct"},
                "moving": {"image_id": image_id, "modality": "unknown"}, "io_steps": 1}
        status = client.submit_job(protocol.PATH_REGISTER, body)
        assert client.wait_job(status["job_id"], poll_s=0.05)["state"] == "done"
    assert a_server.state.images.get(image_id).modality == "MR"
    assert a_server.state.images.get(other_id).modality == "other"
