"""Transfer costs through a real server: upload size and speed, server memory during an
upload (against the volume's size), and response sizes per click.

For each image a fresh server process is started (engines ``bench_ball`` and ``classic``),
and after a 1 KB warm-up upload (which pays the server's lazy blosc2 import) this measures:

* raw bytes, wire bytes (the client's codec for this server: format 2 for integer images)
  and the client's stages of a first upload: SHA-256 + content id, encoding alone (the
  message produced and thrown away), ``upload_image`` (HEAD + streamed PUT, which returns
  once the server has decoded, checksummed and stored the image), ``attach_image``;
* the server's memory: ``VmHWM`` (peak RSS) and ``VmRSS`` from ``/proc/<pid>/status`` before
  and after the upload; the growth of the peak against the raw size (1.00 = held once);
* a re-upload of the same image (hash + HEAD, no body), median of 3;
* optionally the upload in each wire format of :mod:`.codecs` (``rounds`` rounds, formats
  interleaved, fastest kept; each upload a new content id through its geometry's origin);
* on the synthetic CT, optionally, the bytes of mask responses per click against a full
  uint8 label volume, for ``bench_ball`` (30 clicks) and ``classic`` centre clicks.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from .ball import NAME as BALL
from .common import proc_status


def warm_up(client, pid: int) -> dict:
    """A tiny first upload (the server imports blosc2 on its first decode); its cost."""
    before = proc_status(pid)
    tiny = np.arange(8 * 8 * 8, dtype=np.int16).reshape(8, 8, 8)
    start = time.perf_counter()
    client.upload_image(tiny, np.eye(4), "CT")
    return {"seconds": time.perf_counter() - start,
            "hwm_growth_bytes": proc_status(pid)["VmHWM"] - before["VmHWM"]}


def first_upload(array: np.ndarray, ijk_to_ras, client, pid: int) -> dict:
    """Client stages, wire bytes and server memory of the first upload of ``array``."""
    from slicerfm_client import geometry, protocol, wire

    before = proc_status(pid)
    t0 = time.perf_counter()
    sha = wire.array_sha256(array)
    image_id = geometry.image_id(array.dtype.name, array.shape, ijk_to_ras, sha)
    t_hash = time.perf_counter() - t0
    meta = {"ijk_to_ras": geometry.as_matrix(ijk_to_ras).tolist(), "modality": "CT"}
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
    again = []
    for _ in range(3):
        t0 = time.perf_counter()
        client.upload_image(array, ijk_to_ras, "CT")
        again.append(time.perf_counter() - t0)
    return {"shape": list(array.shape), "dtype": str(array.dtype), "raw_bytes": int(array.nbytes),
            "wire_bytes": wire_bytes, "codec": codec, "hash_s": t_hash, "encode_s": t_encode,
            "upload_s": t_upload, "attach_s": t_attach, "reupload_s": float(np.median(again)),
            "server_hwm_before": before["VmHWM"], "server_hwm_after": after["VmHWM"],
            "server_rss_before": before["VmRSS"], "server_rss_after": after["VmRSS"],
            "hwm_growth_per_raw": (after["VmHWM"] - before["VmHWM"]) / array.nbytes}


def upload_formats(array: np.ndarray, ijk_to_ras, url: str, rounds: int) -> Dict[str, dict]:
    """writer -> ``{"bytes", "seconds"}``: one streamed PUT per format and round (fastest)."""
    import requests

    from slicerfm_client import geometry, protocol, wire

    from .codecs import writers

    sha = wire.array_sha256(array)
    best: Dict[str, dict] = {}
    http = requests.Session()
    for round_index in range(rounds):
        for index, (name, pieces) in enumerate(writers().items()):
            matrix = geometry.as_matrix(ijk_to_ras).copy()
            matrix[0, 3] += 1000.0 + 10.0 * (round_index * 3 + index)  # a new content id each time
            meta = {"ijk_to_ras": matrix.tolist(), "modality": "CT"}
            image_id = geometry.image_id(array.dtype.name, array.shape, matrix, sha)
            sent = [0]

            def counted(stream, sent=sent):
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
            old = best.get(name, {"seconds": float("inf")})
            best[name] = {"bytes": sent[0], "seconds": min(elapsed, old["seconds"])}
    return best


def response_sizes(client, classic_organs: Sequence[str], label_shape: Sequence[int]) -> dict:
    """Mask response bytes per click on the synthetic CT (already attached to ``client``)."""
    from slicerfm_client import wire

    from .phantom import click_plan, organ_point_kji

    full_raw = int(np.prod(label_shape))
    plan = click_plan(30)
    ball = [client.add_point(s, p, positive=pos, engine=BALL) for s, p, pos in plan]
    labels, segments = client.labelmap()
    ball_map = len(wire.encode(labels, {"segments": segments}))
    for segment in {s for s, _, _ in plan}:
        client.delete_segment(segment)
    classic = [client.add_point(organ, organ_point_kji(organ), engine="classic") for organ in classic_organs]
    labels, segments = client.labelmap()
    classic_map = len(wire.encode(labels, {"segments": segments}))
    rows = {}
    for name, updates, map_bytes in ((BALL, ball, ball_map), ("classic", classic, classic_map)):
        if not updates:
            continue
        sizes = np.array([u.wire_bytes for u in updates])
        rows[name] = {"clicks": len(updates), "median_bytes": float(np.median(sizes)), "max_bytes": int(sizes.max()),
                      "median_per_label_volume": float(np.median(sizes)) / full_raw,
                      "labelmap_message_bytes": map_bytes,
                      "boxes": [[b - a for a, b in zip(*u.bbox)] if u.bbox else None for u in updates]}
    return {"label_volume_bytes": full_raw, "organs": list(classic_organs), "engines": rows}


def measure_image(name: str, array: np.ndarray, ijk_to_ras, rounds: int = 0,
                  classic_organs: Sequence[str] = (), log=print) -> dict:
    """One image on a fresh server: its first upload, optionally the formats and responses."""
    from slicerfm_client.client import SlicerFMClient

    from .common import log_tail
    from .servers import log_path, start_backend

    engines = [BALL] + (["classic"] if classic_organs else [])
    backend = start_backend(engines, "transfer")
    try:
        with SlicerFMClient(backend.url) as client:
            client.connect("benchmark transfer", heartbeat=False)
            pid = backend.process.pid
            out = {"name": name, "warm_up": warm_up(client, pid)}
            out.update(first_upload(array, ijk_to_ras, client, pid))
            if rounds:
                out["formats"] = upload_formats(array, ijk_to_ras, backend.url, rounds)
            if classic_organs:
                out["responses"] = response_sizes(client, classic_organs, array.shape)
    except Exception:
        log(log_tail(log_path("transfer")))
        raise
    finally:
        backend.stop()
    log(f"  {name}: wire {out['wire_bytes'] / out['raw_bytes']:.3f} of raw, upload {out['upload_s'] * 1e3:.0f} ms, "
        f"server peak +{(out['server_hwm_after'] - out['server_hwm_before']) / 1e6:.1f} MB")
    return out


Loader = Callable[[], Tuple[np.ndarray, np.ndarray]]


def images(keys: Sequence[str]) -> Dict[str, Tuple[str, Loader]]:
    """key -> (name, loader of ``(array, ijk_to_ras)``): ``phantom``, ``sample_ct``,
    ``dicom_ct`` and ``phantom_KxJxI`` (the phantom at another size)."""
    from .codecs import read_dicom_series
    from .common import data_file
    from .phantom import make_synthetic_ct

    def sample_ct():
        from ..imaging import read_image

        array, ijk_to_ras, _ = read_image(str(data_file("abdomen_ct/example_ct.nii.gz")))
        return np.ascontiguousarray(array.astype(np.int16)), ijk_to_ras

    out: Dict[str, Tuple[str, Loader]] = {}
    for key in keys:
        if key == "phantom":
            out[key] = ("synthetic CT 300x512x512", make_synthetic_ct)
        elif key == "sample_ct":
            out[key] = ("sample CT 112x101x122", sample_ct)
        elif key == "dicom_ct":
            out[key] = ("small real CT (DICOM) 20x512x512",
                        lambda: read_dicom_series(data_file("abdomen_ct/example_ct_dicom")))
        elif key.startswith("phantom_"):
            shape = tuple(int(v) for v in key.split("_", 1)[1].split("x"))
            out[key] = (f"synthetic CT {'x'.join(map(str, shape))}", lambda shape=shape: make_synthetic_ct(shape))
        else:
            raise ValueError(f"unknown image {key!r}")
    return out


def measure(keys: Sequence[str] = ("phantom", "sample_ct", "dicom_ct"), rounds: int = 3,
            memory_sizes: Sequence[Sequence[int]] = (), classic_organs: Sequence[str] = (
                "liver", "spleen", "kidney_left", "kidney_right", "lung_left"), log=print) -> dict:
    """Every image of ``keys`` (formats compared, responses on the phantom) and the phantom
    at each of ``memory_sizes`` (first upload only, for memory against size)."""
    import blosc2

    figures: dict = {"blosc2": blosc2.__version__, "rounds": rounds, "images": {}, "memory_vs_size": []}
    extra = [f"phantom_{'x'.join(str(v) for v in shape)}" for shape in memory_sizes]
    for key, (name, load) in images(list(keys) + extra).items():
        array, ijk_to_ras = load()
        is_extra = key in extra
        row = measure_image(name, array, ijk_to_ras, 0 if is_extra else rounds,
                            classic_organs if key == "phantom" else (), log)
        del array
        if not is_extra:
            figures["images"][key] = row
        figures["memory_vs_size"].append({"name": name, "shape": row["shape"], "raw_bytes": row["raw_bytes"],
                                          "hwm_growth_bytes": row["server_hwm_after"] - row["server_hwm_before"],
                                          "rss_growth_bytes": row["server_rss_after"] - row["server_rss_before"]})
    figures["memory_vs_size"].sort(key=lambda r: r["raw_bytes"])
    figures["summary"] = headline(figures)
    return figures


def headline(figures: dict) -> Dict[str, Optional[float]]:
    """Wire / raw, upload MB/s and peak growth / raw per image; response medians."""
    out: Dict[str, Optional[float]] = {}
    for key, row in figures["images"].items():
        out[f"{key}_wire_per_raw"] = row["wire_bytes"] / row["raw_bytes"]
        out[f"{key}_upload_MBps"] = row["raw_bytes"] / 1e6 / row["upload_s"]
        out[f"{key}_peak_growth_per_raw"] = row["hwm_growth_per_raw"]
        for engine, data in row.get("responses", {}).get("engines", {}).items():
            out[f"{engine}_response_median_bytes"] = data["median_bytes"]
    return out


def print_figures(figures: dict) -> None:
    """The text of ``benchmarks/transfer.py``."""
    mb = 1e6
    for row in figures["images"].values():
        raw = row["raw_bytes"]
        print(f"\n== {row['name']}: {row['shape']} {row['dtype']}, raw {raw / mb:.1f} MB "
              f"(warm-up upload {row['warm_up']['seconds'] * 1e3:.1f} ms, not counted)")
        print(f"  wire bytes            {row['wire_bytes']:,} = {row['wire_bytes'] / raw:.3f} of raw, "
              f"codec {row['codec']}")
        for label, field in (("hash + content id", "hash_s"), ("encode only (client)", "encode_s"),
                             ("upload_image (PUT)", "upload_s"), ("attach_image", "attach_s"),
                             ("re-upload (hash+HEAD)", "reupload_s")):
            print(f"  {label:<22}{row[field] * 1e3:9.1f} ms  ({raw / mb / row[field]:7.0f} MB/s raw)")
        growth = row["server_hwm_after"] - row["server_hwm_before"]
        print(f"  server VmHWM          {row['server_hwm_before'] / mb:.1f} -> {row['server_hwm_after'] / mb:.1f} MB: "
              f"+{growth / mb:.1f} MB = {growth / raw:.2f} x raw")
        for name, fmt in row.get("formats", {}).items():
            old = row["formats"]["1.0"]
            print(f"    {name:<9} {fmt['bytes']:13,} B = {fmt['bytes'] / raw:.4f} of raw  "
                  f"{fmt['seconds'] * 1e3:8.1f} ms "
                  f"= {raw / mb / fmt['seconds']:6.0f} MB/s raw ({old['seconds'] / fmt['seconds']:.2f} x 1.0's speed)")
        responses = row.get("responses")
        if responses:
            print(f"  mask responses (full uint8 label volume {responses['label_volume_bytes']:,} B raw):")
            for engine, data in responses["engines"].items():
                print(f"    {engine} x{data['clicks']}: median {data['median_bytes']:,.0f} B, "
                      f"max {data['max_bytes']:,} B, "
                      f"median / label volume {data['median_per_label_volume']:.2e}; label map message "
                      f"{data['labelmap_message_bytes']:,} B")
    if figures["memory_vs_size"]:
        print("\nserver peak memory growth during an upload, against the raw size:")
        for row in figures["memory_vs_size"]:
            print(f"  {row['name']:<36} raw {row['raw_bytes'] / mb:8.1f} MB  "
                  f"peak +{row['hwm_growth_bytes'] / mb:8.1f} MB "
                  f"({row['hwm_growth_bytes'] / row['raw_bytes']:.2f} x raw)")
