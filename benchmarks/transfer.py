"""Transfer costs: upload size and speed, server memory during an upload, response sizes.

For each image -- the synthetic 512x512x300 int16 CT of ``protocol_overhead.py`` (157 MB raw),
the sample CT ``abdomen_ct/example_ct.nii.gz`` (read with SimpleITK, cast to int16) and a
small real CT, the DICOM series ``abdomen_ct/example_ct_dicom`` (20 x 512 x 512 int16), from
the sample data (``$SLICERFM_DATA``, else ``../shared/data``) -- a fresh REAL backend process
is started (``LocalBackend`` with ``default_command()``; engines ``bench_ball`` and
``classic``) and this prints:

* raw bytes, wire bytes and their fraction (the client's codec for this server: format 2,
  ``blosc2-slicedelta`` for integer images, 4 MiB chunks; see ``wire_codecs.py``);
* the client-side stages of a first upload: SHA-256 + content id, encoding alone (the wire
  message produced and thrown away, no network), ``upload_image`` (HEAD + streamed PUT, which
  returns once the server has decoded, checksummed and stored the image), ``attach_image``;
  throughput = raw MB / time;
* (after a 1 KB warm-up upload, which pays the server's lazy blosc2 import)
* server memory: ``VmHWM`` (peak RSS) and ``VmRSS`` of the server process from
  ``/proc/<pid>/status`` after start-up and after the upload; the growth of the peak relative
  to the raw size (1.00 = the volume held exactly once);
* re-upload of the same image: ``upload_image`` again (hash + HEAD, no body), median of 3;
* the upload in each wire format, through the same server: the message a protocol-1.0
  client sent (bit-shuffle), today's format 1 (what goes to a 1.0 server) and format 2:
  wire bytes and the time of one streamed ``PUT`` (encode + send + the server's decode,
  SHA-256 check and store; the hash and content id computed beforehand), the fastest of
  ``--rounds`` rounds with the formats interleaved (each upload carries its own origin
  in the geometry, so that every one is a new image to the server);
* on the synthetic CT: bytes of mask responses per click, as a fraction of a full uint8 label
  volume (512x512x300 = 78.6 MB raw) and of that label map's own wire message, for the
  negligible ``bench_ball`` engine (30 clicks, 17^3 ball boxes) and for ``classic`` centre
  clicks on five organs (``--classic-organs``).

Run::

    .venv/bin/python benchmarks/transfer.py               # ~1.5 min on 2 cores
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import DATA, proc_status  # noqa: E402
from wire_codecs import read_dicom_series, writers  # noqa: E402
from protocol_overhead import (  # noqa: E402
    BALL_ENGINE,
    click_plan,
    log_tail,
    make_synthetic_ct,
    organ_point_kji,
    start_backend,
)

REAL_CT = str(DATA / "abdomen_ct" / "example_ct.nii.gz")
SMALL_REAL_CT_DICOM = DATA / "abdomen_ct" / "example_ct_dicom"
FULL_LABEL_SHAPE = (300, 512, 512)


def read_real_ct(path: str):
    from slicerfm_backend.imaging import read_image

    array, ijk_to_ras, _ = read_image(path)
    return np.ascontiguousarray(array.astype(np.int16)), ijk_to_ras


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def measure_upload(name: str, array: np.ndarray, ijk_to_ras, client, pid: int) -> None:
    from slicerfm_client import geometry, protocol, wire

    raw = array.nbytes
    print(f"  {name}: shape {list(array.shape)} {array.dtype}, raw {mb(raw)}")
    before = proc_status(pid)

    t0 = time.perf_counter()
    sha = wire.array_sha256(array)
    image_id = geometry.image_id(array.dtype.name, array.shape, ijk_to_ras, sha)
    t_hash = time.perf_counter() - t0

    meta = {"ijk_to_ras": geometry.as_matrix(ijk_to_ras).tolist(), "modality": "CT"}
    # the codec upload_image picks for this server
    codec = wire.best_codec(array.dtype, protocol.wire_format_for(client.server_info["protocol_version"]))
    t0 = time.perf_counter()
    wire_bytes = sum(len(piece) for piece in wire.encode_iter(array, meta, codec=codec, sha256=sha))
    t_encode = time.perf_counter() - t0

    t0 = time.perf_counter()
    client.upload_image(array, ijk_to_ras, "CT", image_id=image_id, data_sha256=sha)
    t_upload = time.perf_counter() - t0
    t0 = time.perf_counter()
    client.attach_image(image_id)
    t_attach = time.perf_counter() - t0
    after = proc_status(pid)

    reupload = []
    for _ in range(3):
        t0 = time.perf_counter()
        client.upload_image(array, ijk_to_ras, "CT")
        reupload.append(time.perf_counter() - t0)
    head = []
    for _ in range(5):
        t0 = time.perf_counter()
        assert client.has_image(image_id)
        head.append(time.perf_counter() - t0)

    print(f"  wire bytes            {wire_bytes:,} = {wire_bytes / raw:.3f} of raw ({raw / wire_bytes:.1f}:1), "
          f"codec {codec}")
    print(f"  hash + content id     {t_hash * 1e3:8.1f} ms  ({raw / 1e6 / t_hash:7.0f} MB/s raw)")
    print(f"  encode only (client)  {t_encode * 1e3:8.1f} ms  ({raw / 1e6 / t_encode:7.0f} MB/s raw)")
    print(f"  upload_image (PUT)    {t_upload * 1e3:8.1f} ms  ({raw / 1e6 / t_upload:7.0f} MB/s raw)  "
          f"HEAD + encode + send + server decode/verify/store")
    print(f"  attach_image          {t_attach * 1e3:8.1f} ms")
    total = t_hash + t_upload + t_attach
    print(f"  first set_image total {total * 1e3:8.1f} ms  ({raw / 1e6 / total:7.0f} MB/s raw) until the server is ready")
    print(f"  re-upload (hash+HEAD) {np.median(reupload) * 1e3:8.1f} ms median of 3 "
          f"(HEAD alone {np.median(head) * 1e3:.1f} ms median of 5)")
    hwm_growth = after["VmHWM"] - before["VmHWM"]
    print(f"  server VmHWM          {mb(before['VmHWM'])} -> {mb(after['VmHWM'])}: +{mb(hwm_growth)} "
          f"= {hwm_growth / raw:.2f} x raw")
    print(f"  server VmRSS          {mb(before['VmRSS'])} -> {mb(after['VmRSS'])}: "
          f"+{mb(after['VmRSS'] - before['VmRSS'])} = {(after['VmRSS'] - before['VmRSS']) / raw:.2f} x raw")


def compare_formats(array: np.ndarray, ijk_to_ras, url: str, rounds: int) -> None:
    """One streamed PUT per wire format and round; prints bytes and raw MB/s per format."""
    import requests

    from slicerfm_client import geometry, protocol, wire

    sha = wire.array_sha256(array)
    raw_mb = array.nbytes / 1e6
    best: dict = {}
    http = requests.Session()
    for round_index in range(rounds):
        for index, (name, pieces) in enumerate(writers().items()):
            matrix = geometry.as_matrix(ijk_to_ras).copy()
            matrix[0, 3] += 1000.0 + 10.0 * (round_index * 3 + index)  # a new content id each time
            meta = {"ijk_to_ras": matrix.tolist(), "modality": "CT"}
            image_id = geometry.image_id(array.dtype.name, array.shape, matrix, sha)
            sent = [0]

            def counted(stream):
                for piece in stream:
                    sent[0] += len(piece)
                    yield piece

            t0 = time.perf_counter()
            response = http.put(url + protocol.image_path(image_id), data=counted(pieces(array, sha, meta)),
                                headers={protocol.HEADER_PROTOCOL: protocol.PROTOCOL_VERSION,
                                         "Content-Type": protocol.MEDIA_TYPE_MESSAGE})
            elapsed = time.perf_counter() - t0
            if response.status_code != 201:
                raise RuntimeError(f"{name} upload answered {response.status_code}: {response.text[:300]}")
            best[name] = (sent[0], min(elapsed, best.get(name, (0, float("inf")))[1]))
    old_bytes, old_time = best["1.0"]
    print(f"  upload per wire format (one streamed PUT: encode + send + server decode/verify/store; "
          f"fastest of {rounds}):")
    for name, (size, elapsed) in best.items():
        print(f"    {name:<9} {size:13,} B = {size / array.nbytes:.4f} of raw ({size / old_bytes:.3f} x 1.0)  "
              f"{elapsed * 1e3:8.1f} ms = {raw_mb / elapsed:6.0f} MB/s raw ({old_time / elapsed:.2f} x 1.0's speed)")


def warm_up(client, pid: int) -> None:
    """A tiny first upload: the server imports blosc2 lazily on its first decode (~0.3 s,
    ~20 MB), which would otherwise be counted in the measured upload and its memory."""
    before = proc_status(pid)
    tiny = np.arange(8 * 8 * 8, dtype=np.int16).reshape(8, 8, 8)
    t0 = time.perf_counter()
    client.upload_image(tiny, np.eye(4), "CT")
    elapsed = time.perf_counter() - t0
    after = proc_status(pid)
    print(f"  (warm-up: first upload to a fresh server, 1 KB image: {elapsed * 1e3:.1f} ms, server "
          f"VmHWM +{mb(after['VmHWM'] - before['VmHWM'])} -- blosc2 import; not counted below)")


def response_sizes(client, array_shape, classic_organs) -> None:
    from slicerfm_client import errors, wire

    full_raw = int(np.prod(FULL_LABEL_SHAPE))
    print(f"\n== mask responses on the synthetic CT (full uint8 label volume {list(FULL_LABEL_SHAPE)} "
          f"= {full_raw:,} B raw)")
    rows = []
    plan = click_plan(30)
    ball = [client.add_point(s, p, positive=pos, engine=BALL_ENGINE) for s, p, pos in plan]
    rows.append((f"{BALL_ENGINE} x{len(ball)}", ball))
    labels, segments = client.labelmap()
    ball_labelmap = len(wire.encode(labels, {"segments": segments}))
    for segment in {s for s, _, _ in plan}:
        client.delete_segment(segment)
    classic = []
    for organ in classic_organs:
        try:
            classic.append(client.add_point(organ, organ_point_kji(organ), engine="classic"))
        except errors.SlicerFMError as error:
            print(f"  !! classic failed on {organ}: {type(error).__name__}: {error}")
            break
    if classic:
        rows.append((f"classic x{len(classic)} ({','.join(classic_organs[:len(classic)])})", classic))
    labels, segments = client.labelmap()
    labelmap_wire = len(wire.encode(labels, {"segments": segments}))
    print(f"  label map message of the classic segments: {labelmap_wire:,} B on the wire "
          f"({labelmap_wire / full_raw:.5f} of raw); of the {BALL_ENGINE} segments: {ball_labelmap:,} B")
    print(f"  {'engine / clicks':<44} {'median B':>9} {'max B':>9} {'median/raw':>11} {'max/raw':>9} "
          f"{'median/labelmap msg':>20}")
    for name, updates in rows:
        sizes = np.array([u.wire_bytes for u in updates])
        print(f"  {name:<44} {np.median(sizes):9,.0f} {sizes.max():9,} {np.median(sizes) / full_raw:11.2e} "
              f"{sizes.max() / full_raw:9.2e} {np.median(sizes) / labelmap_wire:20.3f}")
    for update in classic:
        box = "none" if update.bbox is None else "x".join(str(b - a) for a, b in zip(*update.bbox))
        print(f"    classic {update.segment:<13} box {box:>13} ({update.mask.size:,} voxels, "
              f"{update.voxels:,} set): {update.wire_bytes:,} B = {update.wire_bytes / update.mask.size:.4f} B/box voxel")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classic-organs", default="liver,spleen,kidney_left,kidney_right,lung_left")
    parser.add_argument("--real-ct", default=REAL_CT)
    parser.add_argument("--small-real-ct", default=str(SMALL_REAL_CT_DICOM), help="a DICOM series folder")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the per-format upload comparison")
    args = parser.parse_args(argv)
    from slicerfm_client.client import SlicerFMClient

    classic_organs = [o for o in args.classic_organs.split(",") if o]
    datasets = []
    t0 = time.perf_counter()
    synthetic = make_synthetic_ct()
    import blosc2

    print(f"synthetic CT generated in {time.perf_counter() - t0:.1f} s; {os.cpu_count()} CPUs, "
          f"blosc2 {blosc2.__version__}, load average {os.getloadavg()[0]:.2f}")
    datasets.append(("synthetic CT", synthetic))
    if os.path.exists(args.real_ct):
        datasets.append((f"real CT {os.path.basename(args.real_ct)}", read_real_ct(args.real_ct)))
    else:
        raise SystemExit(f"{args.real_ct} not found; set SLICERFM_DATA to the shared data folder")
    datasets.append((f"small real CT {os.path.basename(args.small_real_ct)} (DICOM)",
                     read_dicom_series(Path(args.small_real_ct))))

    for name, (array, ijk_to_ras) in datasets:
        log_path = os.path.join(tempfile.gettempdir(), f"slicerfm-transfer-{os.getpid()}.log")
        engines = [BALL_ENGINE] + (["classic"] if classic_organs and name == "synthetic CT" else [])
        backend = start_backend(engines, log_path)
        try:
            client = SlicerFMClient(backend.url)
            client.connect("benchmark", heartbeat=False)
            print(f"\n== {name}: fresh server pid {backend.process.pid}, engines {','.join(engines)}")
            warm_up(client, backend.process.pid)
            measure_upload(name, array, ijk_to_ras, client, backend.process.pid)
            compare_formats(array, ijk_to_ras, backend.url, args.rounds)
            if name == "synthetic CT":
                response_sizes(client, array.shape, classic_organs)
            client.close()
        except Exception:
            print(log_tail(log_path))
            raise
        finally:
            backend.stop()
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
