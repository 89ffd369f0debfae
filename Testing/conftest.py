"""Shared fixtures: sample data location, toy engines, in-process and real servers."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


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
