"""Shared fixtures (sample data location, a small CT-like volume) and the test markers.

Markers: a test module that needs torch says so with ``pytestmark = pytest.mark.torch``;
every other test gets the ``core`` marker, so ``pytest -m core`` runs the torch-free core.
In an environment without torch, ``-m core`` leaves the torch modules uncollected (they
import torch at the top); running the whole suite there stops with a message instead.
"""

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# Ray in tests stays on loopback: its one-machine mode binds every service to 127.0.0.1
# (otherwise it picks the machine's network address). Read when ray is imported, so set
# before any test module imports it; usage statistics off.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))
TORCH_MARK = "pytestmark = pytest.mark.torch"


def _needs_torch(path: Path) -> bool:
    return path.suffix == ".py" and path.name.startswith("test_") and TORCH_MARK in path.read_text(encoding="utf-8")


def pytest_ignore_collect(collection_path, config):
    """Without torch, keep the torch modules out of a ``-m core`` run; refuse any other run."""
    if importlib.util.find_spec("torch") is not None or not _needs_torch(Path(collection_path)):
        return None
    if config.getoption("markexpr") == "core":
        return True
    raise pytest.UsageError(f"{collection_path.name} needs torch, which is not installed: run the torch-free "
                            "core with `-m core`, or install the extras (bash scripts/test.sh)")


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("torch") is None:
            item.add_marker(pytest.mark.core)


def data_dir() -> Path:
    """The shared sample data: $SLICERFM_DATA, else ../shared/data beside the repository."""
    path = Path(os.environ.get("SLICERFM_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.fail(f"sample data not found at {path}: set SLICERFM_DATA to the shared/data folder",
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def a_data_dir() -> Path:
    return data_dir()


@pytest.fixture
def a_ct_like_volume():
    """A small int16 volume (K, J, I) = (20, 30, 40) with a bright block, and its geometry."""
    rng = np.random.default_rng(0)
    array = rng.normal(-800, 20, (20, 30, 40)).astype(np.int16)
    array[5:15, 10:20, 10:30] = 60
    ijk_to_ras = np.diag([-0.8, -0.8, 2.5, 1.0])
    ijk_to_ras[:3, 3] = [10.0, 20.0, -30.0]
    return array, ijk_to_ras


@pytest.fixture(scope="session")
def a_ray_cluster():
    """A one-node Ray cluster on loopback (4 logical CPUs), shared by the tests that serve
    on Ray; its processes import the test engine plugins in Testing/cluster."""
    from ray_cluster import LocalRayCluster

    cluster = LocalRayCluster(cpus=4, pythonpath=[str(Path(__file__).resolve().parent / "cluster")])
    try:
        yield cluster.start()
    finally:
        cluster.stop()
