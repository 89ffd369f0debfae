"""Faults against a real `slicerfm-backend serve` process with a state directory.

* ``kill -9`` while a click runs, then a restart: the same lease works and no segment
  voxel, lock or undo step done before the click is lost (the click in flight is);
* SIGTERM drains: the running click finishes, a new request is answered 503
  ``restarting`` with Retry-After, and a client sending one waits through the restart;
* memory comes back (the process's resident memory, VmRSS) after rejected requests that
  used to keep it: a seed declaring a huge array, a failed upload of a gigabyte of zeros,
  and five clients gone mid-upload (issue 14, finding 2), and after sessions with a long
  undo history end (build item 4).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from slicerfm_client import errors, geometry, protocol, wire
from slicerfm_client.client import SlicerFMClient
from slicerfm_client.launcher import free_port

EXECUTABLE = str(Path(sys.executable).with_name("slicerfm-backend"))
TOY_ENGINES = str(Path(__file__).resolve().parents[1] / "backend")
SHAPE = (20, 30, 40)
MB = 1 << 20


class ServerProcess:
    """``serve`` on loopback with the toy ``sphere`` and ``slow`` engines and a state dir."""

    def __init__(self, state_dir: Path, log: Path, port: int = 0, slow_s: float = 3.0):
        self.state_dir, self.log_path, self.port, self.slow_s = state_dir, log, port or free_port(), slow_s
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServerProcess":
        env = {**os.environ, "SLICERFM_STATE_DIR": str(self.state_dir), "PYTHONPATH": TOY_ENGINES,
               "SLICERFM_ENGINE_PLUGINS": "sphere=toy_engines:SphereEngine,slow=toy_engines:SlowEngine",
               "SLICERFM_TEST_SLOW_S": str(self.slow_s)}
        env.pop("SLICERFM_TOKEN", None)
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen([EXECUTABLE, "serve", "--port", str(self.port), "--engines", "sphere,slow"],
                                        env=env, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(self.url + protocol.PATH_INFO, timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)

    def rss(self) -> int:
        """Resident memory of the server process, in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def images_budget_used(self) -> float:
        for line in requests.get(self.url + protocol.PATH_METRICS, timeout=10).text.splitlines():
            if line.startswith('slicerfm_memory_used_bytes{budget="images"}'):
                return float(line.split()[-1])
        raise AssertionError("no images budget in /metrics")

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(60)
        self._log.close()
        return self.process.returncode


@pytest.fixture
def a_server_process(tmp_path):
    servers = []

    def start(**kwargs):
        server = ServerProcess(tmp_path / "state", tmp_path / "server.log", **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.process.poll() is None:
            server.stop(signal.SIGKILL)


def prepare(client, volume):
    client.connect("faults", heartbeat=False)
    client.set_image(*volume, "CT")
    client.add_point("liver", (10, 15, 20), True, engine="sphere")
    client.add_point("liver", (10, 15, 25), True, engine="sphere")
    client.add_point("liver", (10, 15, 30), True, engine="sphere")
    client.undo("liver")
    client.add_point("spleen", (4, 5, 6), True, engine="sphere")
    client.lock("spleen")


def click_in_background(client, point):
    outcome = {}

    def click():
        try:
            outcome["update"] = client.add_point("liver", point, True, engine="slow")
        except errors.SlicerFMError as error:
            outcome["error"] = error

    thread = threading.Thread(target=click)
    thread.start()
    return thread, outcome


def wait_until_busy(server):
    """Until the slow click holds the device (read from /metrics)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = requests.get(server.url + protocol.PATH_METRICS, timeout=5).text
        if 'slicerfm_device_busy{device="cpu"} 1.0' in text:
            return
        time.sleep(0.05)
    raise AssertionError("the slow click never reached the engine")


def test_kill_9_mid_click_then_restart_loses_no_voxel_lock_or_undo_step(a_server_process, a_ct_like_volume):
    server = a_server_process()
    client = SlicerFMClient(server.url, restart_wait_s=0)
    prepare(client, a_ct_like_volume)
    segments, labels = client.segments(), client.labelmap()[0]
    thread, outcome = click_in_background(client, (15, 20, 10))
    wait_until_busy(server)
    server.stop(signal.SIGKILL)
    thread.join(30)
    assert isinstance(outcome.get("error"), errors.ServerUnreachableError)  # the click in flight is lost
    server = a_server_process(port=server.port)
    assert client.segments() == segments  # the same lease, as before the click
    np.testing.assert_array_equal(client.labelmap()[0], labels)
    redone = client.redo("liver")  # the undone click is still on the redo stack
    assert redone.can_undo and redone.voxels > 0
    for _ in range(3):
        client.undo("liver")
    assert client.segments()[0]["voxels"] == 0 and not client.segments()[0]["can_undo"]
    with pytest.raises(errors.SegmentLockedError):
        client.add_point("spleen", (5, 5, 5), True, engine="sphere")


def test_sigterm_finishes_the_running_click_refuses_new_work_and_a_client_waits_through_the_restart(
        a_server_process, a_ct_like_volume):
    server = a_server_process()
    client = SlicerFMClient(server.url)
    prepare(client, a_ct_like_volume)
    thread, outcome = click_in_background(client, (15, 20, 10))
    wait_until_busy(server)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    refused = requests.get(server.url + protocol.PATH_ENGINES, timeout=5)
    assert refused.status_code == 503 and refused.json()["error"] == "restarting" and refused.headers["Retry-After"]
    thread.join(60)
    assert "update" in outcome and outcome["update"].voxels > 0  # the running click finished
    assert server.process.wait(60) is not None
    voxels = outcome["update"].voxels
    assert client.persistent_session
    waiting = SlicerFMClient(server.url)  # a user clicking while the server restarts
    waiting.session_token, waiting.session_info = client.session_token, dict(client.session_info)
    restarted = {}
    threading.Timer(2.0, lambda: restarted.update(server=a_server_process(port=server.port))).start()
    update = waiting.add_point("liver", (15, 20, 12), True, engine="sphere")  # waits, then goes through
    assert update.voxels >= voxels and restarted
    assert waiting.undo("liver").voxels == voxels


def raw_upload(url: str, image_id: str, head: bytes, body_pieces, total: int) -> None:
    """Send an upload's head and ``body_pieces``, then close the connection (client gone)."""
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"PUT {protocol.image_path(image_id)} HTTP/1.1\r\nHost: x\r\n"
                     f"Content-Length: {total}\r\n\r\n".encode() + head)
        for piece in body_pieces:
            sock.sendall(piece)


def message_head(dtype: str, shape, chunk_bytes: int, sha256: str = "0" * 64) -> bytes:
    header = json.dumps({"dtype": dtype, "shape": list(shape), "codec": "raw", "chunk_bytes": chunk_bytes,
                         "sha256": sha256, "meta": {"ijk_to_ras": np.eye(4).tolist(), "modality": "CT"}}).encode()
    return wire.MAGIC + len(header).to_bytes(4, "little") + header


def settle(server, baseline: int, slack: int) -> int:
    """Resident memory once the server has given back what it can (polls up to 20 s)."""
    deadline = time.monotonic() + 20
    rss = server.rss()
    while rss > baseline + slack and time.monotonic() < deadline:
        time.sleep(0.5)
        rss = server.rss()
    return rss


def test_memory_comes_back_after_requests_that_used_to_keep_it(a_server_process, a_ct_like_volume):
    server = a_server_process()
    client = SlicerFMClient(server.url)
    client.connect("memory", heartbeat=False)
    client.set_image(*a_ct_like_volume, "CT")
    client.add_point("liver", (10, 15, 20), True, engine="sphere")
    baseline = settle(server, 0, 0)
    held = server.images_budget_used()  # the attached image
    slack = 80 * MB

    # an 18 kB seed declaring a [2048, 1024, 1024] array: refused before allocating
    header = {"dtype": "uint8", "shape": [2048, 1024, 1024], "codec": "raw", "chunk_bytes": 4 * MB,
              "sha256": "0" * 64, "meta": {"segment": "liver", "bbox_kji": [[0, 0, 0], list(SHAPE)]}}
    raw = json.dumps(header).encode()
    seed = wire.MAGIC + len(raw).to_bytes(4, "little") + raw + b"\0" * 18_000
    refused = requests.post(server.url + protocol.PATH_SEED, data=seed,
                            headers={protocol.HEADER_SESSION: client.session_token})
    assert refused.status_code == 422
    assert settle(server, baseline, slack) < baseline + slack

    # a small upload of a gigabyte of zeros whose checksum is wrong: decoded, refused, freed
    import blosc2

    chunk = 4 * MB
    zeros = blosc2.compress2(np.zeros(chunk, np.uint8), typesize=1)
    head = message_head("uint8", (1024, 1024, 1024), chunk).replace(b'"codec": "raw"', b'"codec": "blosc2"')
    body = head + (len(zeros).to_bytes(4, "little") + zeros) * 256
    image_id = geometry.image_id("uint8", (1024, 1024, 1024), np.eye(4), "0" * 64)
    failed = requests.put(server.url + protocol.image_path(image_id), data=body)
    assert failed.status_code == 400 and len(body) < 100_000
    assert server.images_budget_used() == held
    assert settle(server, baseline, slack) < baseline + slack

    # five clients gone mid-upload, each after sending 60 MB of a 256 MB image
    noise = np.random.default_rng(0).integers(0, 255, 60 * MB, dtype=np.uint8).tobytes()
    head = message_head("uint8", (256, 1024, 1024), chunk)
    pieces = [len(noise[i:i + chunk]).to_bytes(4, "little") + noise[i:i + chunk] for i in range(0, len(noise), chunk)]
    for n in range(5):
        image_id = geometry.image_id("uint8", (256, 1024, 1024), np.eye(4), f"{n:064x}")
        raw_upload(server.url, image_id, head, pieces, total=len(head) + 64 * (chunk + 4) * 4)
    deadline = time.monotonic() + 30
    while server.images_budget_used() > held and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.images_budget_used() == held
    rss = settle(server, baseline, slack)
    print(f"resident memory: baseline {baseline / MB:.0f} MB, after the attacks {rss / MB:.0f} MB")
    assert rss < baseline + slack
    assert "Traceback" not in server.log_path.read_text()
    client.add_point("liver", (10, 15, 25), True, engine="sphere")  # and it goes on serving


def test_memory_comes_back_after_sessions_with_long_histories_end(a_server_process):
    server = a_server_process()
    rng = np.random.default_rng(1)
    shape = (64, 256, 256)  # 4 M voxels: a random full-image seed is a ~0.5 MB undo step at best
    array = rng.integers(0, 200, shape, dtype=np.uint8)
    holder = SlicerFMClient(server.url)
    holder.connect("holder", heartbeat=False)
    image_id = holder.set_image(array, np.eye(4), "CT")  # stays attached: its voxels are not what is measured
    baseline = settle(server, 0, 0)
    annotators = []
    for n in range(4):
        client = SlicerFMClient(server.url)
        client.connect(f"annotator {n}", heartbeat=False)
        client.attach_image(image_id)
        for step in range(10):
            client.seed(f"organ {step % 2}", rng.random(shape) < 0.5)
        annotators.append(client)
    grown = server.rss()
    for client in annotators:
        client.close()
    rss = settle(server, baseline, 40 * MB)
    print(f"resident memory: {baseline / MB:.0f} MB with the image attached, {grown / MB:.0f} MB with four "
          f"sessions of 10 random full-image seeds each, {rss / MB:.0f} MB after they ended")
    assert grown > baseline + 60 * MB, "the sessions did not use enough memory for the test to mean anything"
    assert rss < baseline + 40 * MB
    holder.add_point("liver", (10, 15, 25), True, engine="sphere")  # the server goes on
