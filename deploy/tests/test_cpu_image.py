"""Smoke test of the CPU image: serve inside it, click from outside, and its safety settings.

The image's filesystem runs under `buildah run --isolation chroot` (OCI runtimes are refused
here); the client runs in this process, outside the container, as a Slicer user's would.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

import oci

SPLEEN = 1
PEM = re.compile(r"-----BEGIN CERTIFICATE-----\s+(.*?)\s+-----END CERTIFICATE-----", re.S)
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def certificate_bodies(text: str) -> set:
    """The base64 bodies of the PEM certificates in ``text``, whitespace removed."""
    return {re.sub(r"\s+", "", body) for body in PEM.findall(text)}


def test_the_image_runs_as_its_own_non_root_user(a_store, a_container, the_image_uid, a_served_backend):
    assert the_image_uid != 0
    inside = a_store.run(a_container, ["id", "-u"])
    assert inside.returncode == 0 and int(inside.stdout) == the_image_uid
    assert a_served_backend["server_pid"] is not None, "the server process was not found"
    assert set(oci.process_uids(a_served_backend["server_pid"])) == {the_image_uid}


def test_a_click_from_a_client_outside_the_container_segments_the_spleen(a_served_backend, the_volumes, a_data_dir):
    from slicerfm_backend.evaluation.evaluate import evaluate_with_client, load_case
    from slicerfm_client.client import SlicerFMClient

    ct = a_data_dir / "abdomen_ct"
    image, ijk_to_ras, reference, spacing = load_case(str(ct / "example_ct.nii.gz"),
                                                      str(ct / "example_seg_fast_force_split.nii.gz"), SPLEEN)
    with SlicerFMClient(a_served_backend["url"], token=the_volumes["token"]) as client:
        info = client.connect("container-smoke", heartbeat=True)
        assert info["auth_required"] is True
        assert [engine["name"] for engine in client.engines()] == ["classic"]
        result = evaluate_with_client(client, image.astype(np.int16), ijk_to_ras, reference, spacing,
                                      "classic", clicks=3, modality="CT", verbose=False)
        assert result["dice"][-1] >= 0.8, result["dice"]
        labels, _ = client.labelmap()
        assert labels.shape == image.shape


def test_a_client_without_the_token_is_refused(a_served_backend):
    from slicerfm_client import errors
    from slicerfm_client.client import SlicerFMClient

    with pytest.raises(errors.AuthenticationError):
        SlicerFMClient(a_served_backend["url"]).connect("no-token", heartbeat=False)
    with pytest.raises(errors.AuthenticationError):
        SlicerFMClient(a_served_backend["url"], token="wrong").connect("wrong-token", heartbeat=False)


def test_the_health_check_passes_while_the_server_answers_and_fails_when_it_does_not(
        a_store, a_container, an_image_description, a_served_backend):
    check = an_image_description["Healthcheck"]
    assert check["Test"][0] == "CMD" and check["Timeout"] >= 5_000_000_000  # nanoseconds
    command = check["Test"][1:]
    healthy = a_store.run(a_container, command)
    assert healthy.returncode == 0 and "healthy: SlicerFM backend" in healthy.stdout, healthy.stderr
    nothing_there = a_store.run(a_container, command, env={"SLICERFM_PORT": str(a_served_backend["port"] + 1)})
    assert nothing_there.returncode == 1 and "unhealthy" in nothing_there.stderr


def test_serve_without_a_token_is_refused_with_the_way_to_give_one(a_store, a_fresh_container, an_image_description):
    config = an_image_description["Config"]
    refused = a_store.run(a_fresh_container, [*config["Entrypoint"], *config["Cmd"]])
    assert refused.returncode == 64
    assert "no access token" in refused.stderr and "/run/secrets/slicerfm_token" in refused.stderr


def test_a_blank_or_unreadable_token_file_and_insecure_no_token_are_refused(
        a_store, a_container, an_image_description, tmp_path, the_image_uid):
    entrypoint = an_image_description["Config"]["Entrypoint"]
    blank = tmp_path / "blank"
    blank.write_text(" \n")
    blank.chmod(0o444)
    refused = a_store.run(a_container, [*entrypoint, "serve"], volumes=[f"{blank}:/run/secrets/slicerfm_token:ro"])
    assert refused.returncode == 64 and "is empty" in refused.stderr
    private = tmp_path / "root-only"
    private.write_text("a-token-the-server-user-cannot-read\n")
    private.chmod(0o400)  # owned by root, not by the image's user
    refused = a_store.run(a_container, [*entrypoint, "serve"], volumes=[f"{private}:/run/secrets/slicerfm_token:ro"])
    assert refused.returncode == 64 and f"not readable by user slicerfm (uid {the_image_uid})" in refused.stderr
    refused = a_store.run(a_container, [*entrypoint, "serve", "--insecure-no-token"], env={"SLICERFM_TOKEN": "x" * 32})
    assert refused.returncode == 64 and "--insecure-no-token is not accepted" in refused.stderr


def test_asking_the_cpu_image_for_a_gpu_is_refused_at_start(a_store, a_container, an_image_description):
    refused = a_store.run(a_container, [*an_image_description["Config"]["Entrypoint"], "serve"],
                          env={"SLICERFM_DEVICE": "cuda", "SLICERFM_TOKEN": "x" * 32})
    assert refused.returncode == 64 and "this image has no torch" in refused.stderr


def test_the_backend_itself_still_refuses_a_public_address_without_a_token(a_store, a_container):
    refused = a_store.run(a_container, ["slicerfm-backend", "serve"])  # the image's SLICERFM_HOST=0.0.0.0
    assert refused.returncode == 2 and "refusing to listen on 0.0.0.0 without credentials" in refused.stderr


def test_weights_and_state_are_volumes_the_server_user_can_write(
        a_store, a_container, an_image_description, the_volumes, the_image_uid, tmp_path):
    config = an_image_description["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["SLICERFM_WEIGHTS_DIR"] == "/weights" and env["SLICERFM_STATE_DIR"] == "/var/lib/slicerfm"
    assert set(config["Volumes"]) == {"/weights", "/var/lib/slicerfm"}
    checkpoint = tmp_path / "checkpoint.pth"
    checkpoint.write_bytes(os.urandom(4096))
    checkpoint.chmod(0o444)
    imported = a_store.run(a_container,
                           [*config["Entrypoint"], "weights", "import", "sam-med3d", "/tmp/checkpoint.pth"],
                           volumes=[*oci.volume_args(the_volumes), f"{checkpoint}:/tmp/checkpoint.pth:ro"])
    assert imported.returncode == 0, imported.stderr
    stored = the_volumes["weights"] / "sam-med3d" / "main" / "sam_med3d_turbo.pth"
    assert stored.read_bytes() == checkpoint.read_bytes() and stored.stat().st_uid == the_image_uid
    wrote = a_store.run(a_container, ["sh", "-c", "echo state > /var/lib/slicerfm/probe"],
                        volumes=oci.volume_args(the_volumes))
    assert wrote.returncode == 0 and (the_volumes["state"] / "probe").stat().st_uid == the_image_uid


def test_other_commands_pass_through_the_entry_point(a_store, a_container, an_image_description):
    listed = a_store.run(a_container, [*an_image_description["Config"]["Entrypoint"], "engines"])
    assert listed.returncode == 0 and re.search(r"^classic\s+point,box", listed.stdout, re.M), listed.stdout


def test_the_build_time_ca_bundle_is_not_in_the_image(a_store, a_fresh_container, an_image_description):
    """The build mounts the host's CA bundle for pip (secret pip_ca); no trace of it may be left."""
    env = an_image_description["Config"]["Env"]
    assert not [item for item in env if item.startswith(("PIP_CERT=", "REQUESTS_CA_BUNDLE=", "SSL_CERT_FILE="))]
    root = Path(a_store.buildah("mount", a_fresh_container).stdout.strip())
    try:
        assert not (root / "run" / "secrets" / "pip_ca").exists()
        image_bundle = (root / "etc/ssl/certs/ca-certificates.crt").read_text()
        host_only = certificate_bodies(HOST_CA_BUNDLE.read_text()) - certificate_bodies(image_bundle)
        # Certificates only the host trusts (its proxy's CA) must occur in no file of the image.
        needles = [body[64:128].encode() for body in host_only]
        print(f"looking for {len(needles)} host-only certificates in the image")
        found = []
        for folder, _, files in os.walk(root):
            for name in files:
                path = Path(folder, name)
                if path.is_symlink() or not path.is_file() or path.stat().st_size > 8_000_000:
                    continue
                data = path.read_bytes()
                found += [str(path.relative_to(root)) for needle in needles if needle in data]
        assert found == []
    finally:
        a_store.buildah("umount", a_fresh_container, check=False)
