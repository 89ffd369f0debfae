"""Protocol overhead per click: where the time of one interaction goes.

A REAL server process (:func:`.servers.start_backend`), the client over loopback HTTP, the
synthetic CT of :mod:`.phantom`; clicks from :func:`.phantom.click_plan`. Per stage of the
``Server-Timing`` header (``MaskUpdate.timings_ms``: decode, queue, engine and its own
stages, commit, encode, server) and for the client's round trip: median / p90 / max in ms,
the first click (engine load, warm-up) left out. Two derived figures make up the overhead:

* server work outside the engine = ``server - engine`` (JSON parse, prompt check, session
  lock, locks/diff/undo in ``SegmentSet.commit``, mask encoding);
* HTTP + client = ``roundtrip - server`` (requests, uvicorn/starlette, loopback TCP, the
  client's decoding of the mask message).

Engines: ``bench_ball`` (negligible compute: the protocol's own cost) and ``classic``.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence

from . import phantom
from .ball import NAME as BALL
from .common import summary


def stage_table(updates) -> Dict[str, dict]:
    """Per stage of ``Server-Timing`` (in order of appearance) and the derived ones: a summary."""
    names: List[str] = []
    for update in updates:
        names += [n for n in update.timings_ms if n not in names]
    table = {n: summary([u.timings_ms[n] for u in updates if n in u.timings_ms]) for n in names}
    table["roundtrip"] = summary([u.roundtrip_ms for u in updates])
    table["server-engine"] = summary([u.timings_ms["server"] - u.timings_ms["engine"] for u in updates])
    table["roundtrip-server"] = summary([u.roundtrip_ms - u.timings_ms["server"] for u in updates])
    table["roundtrip-engine"] = summary([u.roundtrip_ms - u.timings_ms["engine"] for u in updates])
    return table


def click_rows(updates, plan) -> List[dict]:
    """One row per click: segment, point, sign, engine / server / round trip ms, bytes, box."""
    rows = []
    for update, (segment, point, positive) in zip(updates, plan):
        t = update.timings_ms
        box = None if update.bbox is None else [b - a for a, b in zip(*update.bbox)]
        rows.append({"segment": segment, "point_kji": list(point), "positive": bool(positive),
                     "engine_ms": t.get("engine", 0.0), "server_ms": t.get("server", 0.0),
                     "roundtrip_ms": update.roundtrip_ms, "response_bytes": update.wire_bytes, "box": box})
    return rows


def engine_figures(updates, plan) -> dict:
    """Figures of one engine's clicks; the first (load/warm-up) reported apart."""
    used = updates[1:] if len(updates) > 1 else updates
    first = updates[0]
    return {
        "clicks": len(updates),
        "first_click": {"roundtrip_ms": first.roundtrip_ms, "server_ms": first.timings_ms.get("server"),
                        "engine_ms": first.timings_ms.get("engine")},
        "stages_ms": stage_table(used),
        "response_bytes": summary([u.wire_bytes for u in used]),
        "box_voxels": summary([int(u.mask.size) for u in used]),
        "per_click": click_rows(updates, plan),
    }


def heartbeat_ms(client, calls: int = 30) -> dict:
    """Round trip of a JSON request that does no work (the HTTP floor); first call left out."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        client.heartbeat()
        times.append(1000.0 * (time.perf_counter() - start))
    return summary(times[1:])


def measure(ball_clicks: int = 30, classic_clicks: int = 10, seed: int = 0,
            shape: Sequence[int] = phantom.SHAPE, log=print) -> dict:
    """Run the clicks on a fresh server; figures as described in the module docstring."""
    from slicerfm_client.client import SlicerFMClient

    from .servers import start_backend

    start = time.perf_counter()
    spacing = phantom.same_field_of_view(shape)
    array, ijk_to_ras = phantom.make_synthetic_ct(shape, seed, spacing)
    log(f"  synthetic CT {array.shape} {array.dtype} ({array.nbytes / 1e6:.1f} MB) in "
        f"{time.perf_counter() - start:.1f} s")
    engines = [BALL] + (["classic"] if classic_clicks else [])
    backend = start_backend(engines, "protocol")
    figures: dict = {"image": {"shape": list(array.shape), "dtype": str(array.dtype), "raw_bytes": array.nbytes,
                               "spacing_kji": list(spacing), "seed": seed}, "engines": {}}
    try:
        with SlicerFMClient(backend.url) as client:
            client.connect("benchmark protocol", heartbeat=False)
            start = time.perf_counter()
            client.set_image(array, ijk_to_ras, "CT")
            figures["upload_s"] = time.perf_counter() - start
            figures["heartbeat_ms"] = heartbeat_ms(client)
            for engine, clicks in ((BALL, ball_clicks), ("classic", classic_clicks)):
                if not clicks:
                    continue
                plan = phantom.click_plan(clicks, shape, spacing)
                updates = [client.add_point(s, p, positive=pos, engine=engine) for s, p, pos in plan]
                figures["engines"][engine] = engine_figures(updates, plan)
                for segment in {s for s, _, _ in plan}:
                    client.delete_segment(segment)
                log(f"  {engine}: {clicks} clicks, round trip median "
                    f"{figures['engines'][engine]['stages_ms']['roundtrip']['median']:.1f} ms")
    finally:
        backend.stop()
    figures["summary"] = headline(figures)
    return figures


def headline(figures: dict) -> Dict[str, Optional[float]]:
    """The figures to compare between runs: medians of overhead and round trips."""
    out = {"heartbeat_ms": figures["heartbeat_ms"]["median"]}
    for engine, data in figures["engines"].items():
        stages = data["stages_ms"]
        out[f"{engine}_roundtrip_ms"] = stages["roundtrip"]["median"]
        out[f"{engine}_engine_ms"] = stages["engine"]["median"]
        out[f"{engine}_overhead_ms"] = stages["roundtrip-engine"]["median"]
    return out


def print_figures(figures: dict, per_click: bool = False) -> None:
    """The figures as the text tables of ``benchmarks/protocol_overhead.py``."""
    image = figures["image"]
    print(f"synthetic CT {image['shape']} {image['dtype']}, {image['raw_bytes'] / 1e6:.1f} MB; "
          f"upload + attach {figures['upload_s']:.2f} s")
    hb = figures["heartbeat_ms"]
    print(f"HTTP floor (heartbeat, JSON, no work): median {hb['median']:.2f} ms, p90 {hb['p90']:.2f}, "
          f"max {hb['max']:.2f} ({hb['n']} calls)")
    for engine, data in figures["engines"].items():
        first = data["first_click"]
        print(f"\nengine {engine}: {data['clicks']} clicks, first (load/warm-up) left out: round trip "
              f"{first['roundtrip_ms']:.1f} ms, engine {first['engine_ms']:.1f} ms")
        print(f"  {'stage (ms)':<22} {'median':>9} {'p90':>9} {'max':>9}")
        for name, row in data["stages_ms"].items():
            print(f"  {name:<22} {row['median']:9.2f} {row['p90']:9.2f} {row['max']:9.2f}")
        size, box = data["response_bytes"], data["box_voxels"]
        print(f"  response: median {size['median']:,.0f} B on the wire (max {size['max']:,.0f}), changed box "
              f"median {box['median']:,.0f} voxels (max {box['max']:,.0f})")
        if per_click:
            for n, row in enumerate(data["per_click"]):
                sign = "+" if row["positive"] else "-"
                print(f"  {n:>3} {row['segment']:<13} {str(tuple(row['point_kji'])):<16} {sign} engine "
                      f"{row['engine_ms']:8.1f} server {row['server_ms']:8.1f} round trip {row['roundtrip_ms']:8.1f} "
                      f"{row['response_bytes']:8,} B box {row['box']}")
