"""A real full and a real read-only state directory under a running server (needs root: it
mounts a small tmpfs), on the sample CT with the built-in engine.

    sudo .venv/bin/python benchmarks/lab_faults.py

1. clicks work; the disk is then filled (a filler file): the next click answers 503
   ``storage_unavailable`` ("... is full"), reads and other endpoints still answer, the
   segment is unchanged; the filler is removed and the next click works;
2. a read-only bind mount over the directory: new sessions and uploads answer 503 ("...
   read-only"), reads still answer; unmounted, they work again;
3. the server is restarted on the directory: the session comes back with every click that
   was answered 200 and nothing of those answered 503.

The test suite injects the same errors in-process (Testing/backend/test_persistence.py);
this script checks them against a real filesystem. Prints one line per check; exit 1 on a
failed one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import require_data  # noqa: E402
from slicerfm_client import errors, protocol  # noqa: E402
from slicerfm_client.client import SlicerFMClient  # noqa: E402
from slicerfm_client.launcher import free_port  # noqa: E402

VENV_BIN = Path(sys.executable).parent
FAILED = []


def check(what: str, ok: bool, detail: str = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}")
    if not ok:
        FAILED.append(what)


def start(state: Path, port: int, log) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "SLICERFM_TOKEN"}
    process = subprocess.Popen([str(VENV_BIN / "slicerfm-backend"), "serve", "--port", str(port),
                                "--state-dir", str(state)], env=env, stdout=log, stderr=log)
    for _ in range(600):
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/info", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def refused(call, words: str):
    try:
        call()
    except errors.ServerBusyError as error:
        return error.code == protocol.ERROR_STORAGE and words in str(error), str(error)
    return False, "answered 200"


def main() -> int:
    if os.geteuid() != 0:
        raise SystemExit("this script mounts a tmpfs: run it as root")
    from slicerfm_backend.imaging import read_image

    image, ijk_to_ras, _ = read_image(str(require_data() / "abdomen_ct" / "example_ct.nii.gz"))
    with tempfile.TemporaryDirectory(prefix="slicerfm-faults-") as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(state)], check=True)
        port = free_port()
        log = open(Path(tmp) / "server.log", "wb")
        server = start(state, port, log)
        try:
            client = SlicerFMClient(f"http://127.0.0.1:{port}", restart_wait_s=0)
            client.connect("faults", heartbeat=False)
            client.set_image(image, ijk_to_ras, "CT")
            kept = [client.add_point("spleen", (104, 32, 23), True)]
            filler = state / "filler"
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
            ok, text = refused(lambda: client.add_point("spleen", (93, 51, 15), True), "is full")
            check("a click on a full disk answers 503 storage_unavailable 'is full'", ok, text)
            check("reads still answer on a full disk", client.segments()[0]["voxels"] == kept[-1].voxels)
            check("other endpoints still answer on a full disk", bool(client.engines()))
            filler.unlink()
            kept.append(client.add_point("spleen", (93, 51, 15), True))
            check("with room again the click works", kept[-1].voxels >= kept[0].voxels)
            # read-only: a read-only bind mount over the directory. (Files the server already has
            # open stay writable through it, as on Linux generally; new ones are refused.)
            subprocess.run(["mount", "--bind", str(state), str(state)], check=True)
            subprocess.run(["mount", "-o", "remount,bind,ro", str(state)], check=True)
            ok, text = refused(lambda: SlicerFMClient(f"http://127.0.0.1:{port}").connect("new", heartbeat=False),
                               "read-only")
            check("a new session on a read-only directory answers 503 'is read-only'", ok, text)
            other = (image[::2] + 1).astype(np.int32)
            ok, text = refused(lambda: client.upload_image(other, ijk_to_ras, "CT"), "read-only")
            check("an upload on a read-only directory answers 503 'is read-only'", ok, text)
            check("reads still answer on a read-only directory", client.segments()[0]["voxels"] == kept[-1].voxels)
            subprocess.run(["umount", str(state)], check=True)
            SlicerFMClient(f"http://127.0.0.1:{port}").connect("new", heartbeat=False)
            check("writable again, a new session works", True)
            kept.append(client.add_point("spleen", (100, 40, 20), True))
            labels = client.labelmap()[0]
            server.terminate()
            server.wait(60)
            server = start(state, port, log)
            again = SlicerFMClient(f"http://127.0.0.1:{port}")
            again.session_token = client.session_token
            check("after a restart the same lease finds every click answered 200",
                  bool(np.array_equal(again.labelmap()[0], labels)))
            undone = 0
            while again.segments()[0]["can_undo"]:
                again.undo("spleen")
                undone += 1
            check("and exactly those undo steps", undone == len(kept), f"{undone} steps")
        finally:
            server.terminate()
            server.wait(60)
            log.close()
            subprocess.run(["umount", str(state)])
    print(f"{len(FAILED)} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
