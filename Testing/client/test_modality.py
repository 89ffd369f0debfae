"""One set of modality names for segmentation and registration, with the usual synonyms."""

import pytest

from slicerfm_client import protocol


@pytest.mark.parametrize("typed, canonical", [
    ("CT", "CT"), ("ct", "CT"), (" Ct ", "CT"), ("computed tomography", "CT"),
    ("MR", "MR"), ("mr", "MR"), ("MRI", "MR"), ("mri", "MR"), ("MRT", "MR"), ("Magnetic Resonance", "MR"),
    ("other", "other"), ("OTHER", "other"), ("unknown", "other"), ("Unknown", "other"), ("OT", "other"),
])
def test_a_modality_is_read_in_any_case_with_its_usual_synonyms(typed, canonical):
    assert protocol.modality(typed) == canonical
    assert canonical in protocol.MODALITIES


@pytest.mark.parametrize("typed", ["PET", "US", "ctx", None, 3])
def test_an_unknown_modality_is_refused_naming_what_is_accepted(typed):
    with pytest.raises(ValueError, match="use CT, MR or other .*mri"):
        protocol.modality(typed)


def test_an_upload_names_other_as_unknown_so_that_protocol_1_0_servers_accept_it():
    uploaded = [protocol.upload_modality(m) for m in ("ct", "mri", "other", "unknown")]
    assert uploaded == ["CT", "MR", "unknown", "unknown"]
