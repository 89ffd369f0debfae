"""Fixtures of the container smoke test: the built image, a working container, a served backend.

Run through `bash scripts/container_smoke.sh`, which builds the image and sets
SLICERFM_CONTAINER_ROOT / SLICERFM_IMAGE; a missing setting is a failure, not a skip.
"""

from __future__ import annotations

import itertools
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oci  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
STARTUP_S = 180  # a cold start on a loaded 2-core machine


def _required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the smoke test with `bash scripts/container_smoke.sh`", pytrace=False)
    return value


@pytest.fixture(scope="session")
def a_private_network():
    """The image binds 0.0.0.0: keep it off the machine's interfaces (only loopback here)."""
    lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    interfaces = sorted(line.split(":")[0].strip() for line in lines)
    if interfaces != ["lo"]:
        pytest.fail(f"network interfaces {interfaces}: the smoke test must run in its own network namespace "
                    "with only loopback (the image listens on 0.0.0.0): use `bash scripts/container_smoke.sh`",
                    pytrace=False)


@pytest.fixture(scope="session")
def a_store() -> oci.Store:
    return oci.Store(Path(_required_env("SLICERFM_CONTAINER_ROOT")))


@pytest.fixture(scope="session")
def an_image(a_store) -> str:
    image = _required_env("SLICERFM_IMAGE")
    if a_store.podman("image", "exists", image, check=False).returncode != 0:
        pytest.fail(f"image {image} is not in the store {a_store.root}: build it with "
                    "`bash scripts/container_build.sh cpu`", pytrace=False)
    return image


@pytest.fixture(scope="session")
def an_image_description(a_store, an_image) -> dict:
    return a_store.inspect(an_image)


@pytest.fixture(scope="session")
def the_image_uid(an_image_description) -> int:
    user = an_image_description["Config"].get("User", "")
    return int(user.split(":")[0])


def _working_container(store: oci.Store, image: str, volumes) -> str:
    """A buildah working container of the image (its filesystem, config, user and environment).

    buildah 1.28 mounts its own folder at an image VOLUME (/weights, /var/lib/slicerfm) and,
    depending on the order of the --volume options, over the host folder given there; a
    container runtime puts the given folder there. So the working container's copy of the
    config drops the VOLUME entries (the image keeps them: see the volume test).
    """
    name = f"slicerfm-smoke-{os.getpid()}-{next(_serial)}"
    store.buildah("from", "--pull-never", "--name", name, image)
    for volume in volumes:
        store.buildah("config", "--volume", f"{volume}-", name)
    return name


_serial = itertools.count()


@pytest.fixture(scope="session")
def a_container(a_store, an_image, an_image_description):
    """The working container the server runs in (session-wide; runs leave their mount points)."""
    name = _working_container(a_store, an_image, an_image_description["Config"].get("Volumes") or {})
    yield name
    a_store.buildah("rm", name, check=False)


@pytest.fixture
def a_fresh_container(a_store, an_image, an_image_description):
    """A working container no command has run in yet: the image's filesystem as built."""
    name = _working_container(a_store, an_image, an_image_description["Config"].get("Volumes") or {})
    yield name
    a_store.buildah("rm", name, check=False)


@pytest.fixture(scope="session")
def a_data_dir() -> Path:
    path = Path(os.environ.get("SLICERFM_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.fail(f"sample data not found at {path}: set SLICERFM_DATA to the shared/data folder", pytrace=False)
    return path


def _owned_dir(path: Path, uid: int) -> Path:
    path.mkdir(parents=True)
    os.chown(path, uid, uid)
    return path


@pytest.fixture(scope="session")
def the_volumes(tmp_path_factory, the_image_uid) -> dict:
    """Host folders for the image's volumes and its token secret, owned by the image's user."""
    root = tmp_path_factory.mktemp("volumes")
    token = secrets.token_hex(24)
    token_file = root / "slicerfm_token"
    token_file.write_text(token + "\n")
    os.chown(token_file, the_image_uid, the_image_uid)
    token_file.chmod(0o400)
    return {"token": token, "token_file": token_file, "weights": _owned_dir(root / "weights", the_image_uid),
            "state": _owned_dir(root / "state", the_image_uid)}


@pytest.fixture(scope="session")
def a_served_backend(a_private_network, a_store, a_container, an_image_description, the_volumes, tmp_path_factory):
    """`serve` started the way the image starts it (its entry point and command), on its port."""
    from slicerfm_client.client import SlicerFMClient

    config = an_image_description["Config"]
    command = [*config["Entrypoint"], *(config.get("Cmd") or [])]
    port = int(next(iter(config["ExposedPorts"])).split("/")[0])
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    log = open(log_path, "w")
    launcher = subprocess.Popen(a_store.run_args(a_container, command, volumes=oci.volume_args(the_volumes)),
                                stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_S
    while True:
        if launcher.poll() is not None:
            pytest.fail(f"the server exited with {launcher.returncode}:\n{log_path.read_text()}", pytrace=False)
        try:
            SlicerFMClient(url, timeout_s=2).info()
            break
        except Exception:  # not listening yet
            if time.monotonic() > deadline:
                oci.stop(launcher, oci.server_process(launcher))
                pytest.fail(f"no answer on {url} after {STARTUP_S} s:\n{log_path.read_text()}", pytrace=False)
            time.sleep(0.5)
    server_pid = oci.server_process(launcher)
    backend = {"url": url, "port": port, "launcher": launcher, "server_pid": server_pid, "log": log_path}
    yield backend
    code = oci.stop(launcher, server_pid)
    log.close()
    # uvicorn shuts down, then re-raises SIGTERM (buildah reports "exited on terminated").
    assert code is not None and "Application shutdown complete" in log_path.read_text(), \
        f"the server did not stop cleanly on SIGTERM:\n{log_path.read_text()}"
