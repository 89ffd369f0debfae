"""Backend fixtures: a real uvicorn server in a thread with the toy engines registered."""

import sys
import threading
import time
from pathlib import Path

import pytest
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from slicerfm_backend.app import make_app  # noqa: E402
from slicerfm_backend.engines import registry  # noqa: E402
from slicerfm_backend.settings import Settings  # noqa: E402
from slicerfm_client.client import SlicerFMClient  # noqa: E402
from slicerfm_client.launcher import free_port  # noqa: E402

TOY_ENGINES = {
    "sphere": "toy_engines:SphereEngine",
    "flood": "toy_engines:FloodEngine",
    "broken": "toy_engines:BrokenEngine",
    "unloadable": "toy_engines:UnloadableEngine",
    "crashing": "toy_engines:CrashingEngine",
    "oom": "toy_engines:OutOfMemoryEngine",
    "slow": "toy_engines:SlowEngine",
}


@pytest.fixture(autouse=True)
def toy_engines_registered(monkeypatch):
    for name, target in TOY_ENGINES.items():
        monkeypatch.setitem(registry.ENGINE_CLASSES, name, target)


class ThreadServer:
    """A uvicorn server on 127.0.0.1 in a daemon thread; ``.url``, ``.state``, ``.stop()``."""

    def __init__(self, **settings):
        settings.setdefault("engines", ["sphere", "flood", "broken", "unloadable", "crashing", "oom", "slow"])
        settings.setdefault("port", free_port())
        self.settings = Settings(**settings)
        self.app = make_app(self.settings)
        self.state = self.app.state.slicerfm
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.settings.port,
                                log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.settings.port}"

    def client(self, **kwargs) -> SlicerFMClient:
        return SlicerFMClient(self.url, **kwargs)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def a_server_factory():
    servers = []

    def make(**settings):
        server = ThreadServer(**settings)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def a_server(a_server_factory):
    return a_server_factory()


@pytest.fixture
def a_connected_client(a_server, a_ct_like_volume):
    """A client with a claimed session and the small CT-like volume attached."""
    client = a_server.client()
    client.connect("tests", heartbeat=False)
    array, ijk_to_ras = a_ct_like_volume
    client.set_image(array, ijk_to_ras, "CT")
    yield client
    client.close()


class LabServer:
    """A server with users (``alice`` and ``bob``: annotators, ``root``: admin, ``carol``:
    revoked) in a state directory; ``tokens[name]`` are their tokens."""

    def __init__(self, factory, state_dir: Path, **settings):
        from slicerfm_backend.auth.users import UserStore

        store = UserStore(state_dir)
        self.tokens = {"alice": store.add("alice"), "bob": store.add("bob"),
                       "root": store.add("root", role="admin"), "carol": store.add("carol")}
        store.revoke("carol")
        self.store = store
        self.state_dir = state_dir
        self.server = factory(state_dir=state_dir, **settings)

    def client(self, user: str, **kwargs) -> SlicerFMClient:
        return self.server.client(token=self.tokens[user], **kwargs)

    def headers(self, user: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    @property
    def url(self):
        return self.server.url

    @property
    def state(self):
        return self.server.state


@pytest.fixture
def a_lab_server(a_server_factory, tmp_path):
    return LabServer(a_server_factory, tmp_path / "state")


@pytest.fixture
def a_lab_server_sharing_images(a_server_factory, tmp_path):
    """A :class:`LabServer` with ``share_images`` on: every user may attach every image."""
    return LabServer(a_server_factory, tmp_path / "state", share_images=True)
