"""Protocol overhead per click: where the time of one interaction goes.

Starts a REAL backend process (``python -m slicerfm_backend serve`` through
:class:`slicerfm_client.launcher.LocalBackend`), uploads a synthetic 512x512x300 int16 CT,
sends N clicks with :class:`slicerfm_client.SlicerFMClient` and prints, per stage of the
``Server-Timing`` header (``MaskUpdate.timings_ms``: decode, queue, engine, commit, encode,
server) and for the client round trip, the median / p90 / max in ms, plus the two derived
figures that make up the protocol overhead:

* server work outside the engine = ``server - engine`` (JSON parse, prompt check, session
  lock, locks/diff/undo in ``SegmentSet.commit``, mask encoding), and
* HTTP + client = ``roundtrip - server`` (requests, uvicorn/starlette, loopback TCP,
  client-side decode of the mask message).

Engines measured
    ``bench_ball`` -- defined in this file (:class:`BallEngine`): a positive click adds a ball
    of radius 8 voxels around the point, a negative click removes it; it computes only inside
    the ball's bounding box (~17^3 voxels), so its time is negligible and the figures are the
    protocol's own. It reaches the server process through the supported plugin hook
    ``SLICERFM_ENGINE_PLUGINS="bench_ball=protocol_overhead:BallEngine"`` with this folder on
    the subprocess' ``PYTHONPATH`` (see ``slicerfm_backend.engines.registry``).
    ``classic`` -- the built-in engine, measured too unless ``--no-classic`` (when it fails
    to start or to run, that is reported and the ball figures still print).

Synthetic CT (:func:`make_synthetic_ct`, deterministic for a given ``seed``)
    Shape (K, J, I) = (300, 512, 512), int16 HU, voxel size 0.8 x 0.8 mm in plane and 1.5 mm
    between slices; ``ijk_to_ras`` = diag(-0.8, -0.8, 1.5) with the volume centred on the
    RAS origin (an LPS-stored axial CT as Slicer shows it). In mm about the volume centre
    (x = lateral along i, y = antero-posterior along j, z along k):

    * air -1000 HU outside the body;
    * body: elliptic cylinder x^2/170^2 + y^2/125^2 <= 1 of soft tissue 40 HU, with a
      subcutaneous fat rim -100 HU (outer 10 % of the ellipse);
    * organ-like ellipsoids (centre; semi-axes; HU): liver (-70,-10,40; 80,70,90; 60),
      spleen (95,30,60; 35,45,55; 50), kidneys (+-70,55,-30/-45; 28,30,50; 150),
      lungs (+-80,0,190; 70,90,80; -850);
    * aorta: cylinder of radius 12 mm at (10, 40), 200 HU;
    * spine: cylinder of radius 20 mm at (0, 85), 700 HU bone in 24 mm vertebrae separated
      by 6 mm discs of 80 HU;
    * Gaussian noise sigma 10 HU on every voxel (``numpy.random.default_rng(seed)``, drawn
      slice by slice in k order), then rounded to int16.

Run::

    .venv/bin/python benchmarks/protocol_overhead.py            # 30 ball clicks + 10 classic
    .venv/bin/python benchmarks/protocol_overhead.py --clicks 50 --classic-clicks 0
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from slicerfm_backend.engines.base import Engine, EngineCapabilities, EngineResult

HERE = Path(__file__).resolve().parent
SHAPE = (300, 512, 512)
SPACING_KJI = (1.5, 0.8, 0.8)
BALL_RADIUS = 8
BALL_ENGINE = "bench_ball"
PLUGIN_SPEC = f"{BALL_ENGINE}=protocol_overhead:BallEngine"

# name: (centre x, y, z mm; semi-axes a, b, c mm; HU)
ORGANS: Dict[str, Tuple[Tuple[float, float, float], Tuple[float, float, float], float]] = {
    "liver": ((-70.0, -10.0, 40.0), (80.0, 70.0, 90.0), 60.0),
    "spleen": ((95.0, 30.0, 60.0), (35.0, 45.0, 55.0), 50.0),
    "kidney_left": ((70.0, 55.0, -30.0), (28.0, 30.0, 50.0), 150.0),
    "kidney_right": ((-70.0, 55.0, -45.0), (28.0, 30.0, 50.0), 150.0),
    "lung_left": ((80.0, 0.0, 190.0), (70.0, 90.0, 80.0), -850.0),
    "lung_right": ((-80.0, 0.0, 190.0), (70.0, 90.0, 80.0), -850.0),
}
CLICK_ORGANS = ("liver", "spleen", "kidney_left", "kidney_right", "lung_left")


# -- synthetic data -----------------------------------------------------------------------

def synthetic_ijk_to_ras(shape: Sequence[int] = SHAPE,
                         spacing_kji: Sequence[float] = SPACING_KJI) -> np.ndarray:
    """diag(-si, -sj, sk) with voxel (0,0,0) placed so that the volume centre is RAS 0."""
    sk, sj, si = spacing_kji
    matrix = np.diag([-si, -sj, sk, 1.0])
    centre_ijk = (np.array(shape[::-1], dtype=float) - 1) / 2
    matrix[:3, 3] = -matrix[:3, :3] @ centre_ijk
    return matrix


def _mm_axes(shape, spacing_kji):
    """x (along i), y (along j) as 2-D (J, I) grids and z per slice, in mm about the centre."""
    nk, nj, ni = shape
    sk, sj, si = spacing_kji
    x = ((np.arange(ni, dtype=np.float32) - (ni - 1) / 2) * si)[None, :]
    y = ((np.arange(nj, dtype=np.float32) - (nj - 1) / 2) * sj)[:, None]
    z = (np.arange(nk, dtype=np.float32) - (nk - 1) / 2) * sk
    return x, y, z


def make_synthetic_ct(shape: Sequence[int] = SHAPE, seed: int = 0,
                      spacing_kji: Sequence[float] = SPACING_KJI) -> Tuple[np.ndarray, np.ndarray]:
    """The CT-like phantom described in the module docstring: ``(array int16 (K,J,I), ijk_to_ras)``."""
    rng = np.random.default_rng(seed)
    nk, nj, ni = shape
    x, y, z = _mm_axes(shape, spacing_kji)
    body = (x / 170.0) ** 2 + (y / 125.0) ** 2
    aorta = (x - 10.0) ** 2 + (y - 40.0) ** 2 <= 12.0**2
    spine = (x - 0.0) ** 2 + (y - 85.0) ** 2 <= 20.0**2
    out = np.empty(shape, dtype=np.int16)
    for k in range(nk):
        zk = float(z[k])
        hu = np.full((nj, ni), -1000.0, dtype=np.float32)
        hu[body <= 1.0] = -100.0
        hu[body <= 0.81] = 40.0  # 0.9^2: inner 90 % of the ellipse is soft tissue
        for (cx, cy, cz), (a, b, c), value in ORGANS.values():
            dz = ((zk - cz) / c) ** 2
            if dz >= 1.0:
                continue
            inside = ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0 - dz
            hu[inside] = value
        hu[aorta] = 200.0
        hu[spine] = 700.0 if (zk + 1000.0) % 30.0 < 24.0 else 80.0
        hu += 10.0 * rng.standard_normal((nj, ni), dtype=np.float32)
        np.rint(hu, out=hu)
        out[k] = hu
    return out, synthetic_ijk_to_ras(shape, spacing_kji)


def organ_point_kji(organ: str, offset: Sequence[float] = (0.0, 0.0, 0.0),
                    shape: Sequence[int] = SHAPE, spacing_kji: Sequence[float] = SPACING_KJI):
    """Voxel (k, j, i) of an organ's centre moved by ``offset`` x its semi-axes (x, y, z)."""
    (cx, cy, cz), (a, b, c), _ = ORGANS[organ]
    mm = (cx + offset[0] * a, cy + offset[1] * b, cz + offset[2] * c)
    sk, sj, si = spacing_kji
    nk, nj, ni = shape
    return (round(mm[2] / sk + (nk - 1) / 2), round(mm[1] / sj + (nj - 1) / 2),
            round(mm[0] / si + (ni - 1) / 2))


# (offset in semi-axes, positive): centre, four positive refinements, one negative click
# just outside the organ (+1.15 semi-axes along x), as a user would correct a leak.
_CLICK_PATTERN = (
    ((0.0, 0.0, 0.0), True), ((0.4, 0.0, 0.0), True), ((0.0, 0.4, 0.0), True),
    ((0.0, 0.0, 0.4), True), ((-0.4, -0.2, -0.3), True), ((1.15, 0.0, 0.0), False),
)


def click_plan(n: int) -> List[Tuple[str, Tuple[int, int, int], bool]]:
    """``n`` clicks (segment, point_kji, positive): organ by organ, six clicks each."""
    plan = []
    per_organ = max(1, -(-n // len(CLICK_ORGANS)))
    for organ in CLICK_ORGANS:
        for offset, positive in _CLICK_PATTERN[:per_organ]:
            plan.append((organ, organ_point_kji(organ, offset), positive))
    while len(plan) < n:  # more than six per organ: cycle the pattern again
        plan += plan[: n - len(plan)]
    return plan[:n]


# -- the negligible engine ------------------------------------------------------------------

class BallEngine(Engine):
    """Adds (positive) or removes (negative) a ball of BALL_RADIUS voxels around the last
    click, computing only inside the ball's bounding box: its compute time is negligible."""

    name = BALL_ENGINE
    capabilities = EngineCapabilities(("point",), ("CT", "MR", "unknown"), False, ("cpu",),
                                      "benchmark: ball around the last click")

    def segment(self, request):
        prompt = request.prompts[-1]
        shape = request.image.array.shape
        centre = np.round(prompt.point_kji).astype(int)
        start = tuple(int(max(0, c - BALL_RADIUS)) for c in centre)
        stop = tuple(int(min(n, c + BALL_RADIUS + 1)) for c, n in zip(centre, shape))
        bbox = (start, stop)
        k, j, i = np.ogrid[start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]]
        ball = (k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2 <= BALL_RADIUS**2
        mask = request.previous.region(bbox)
        if prompt.positive:
            mask |= ball
        else:
            mask &= ~ball
        return EngineResult(bbox, mask)


# -- running a backend ----------------------------------------------------------------------

def backend_env() -> Dict[str, str]:
    """Environment for the server subprocess: this folder importable, bench_ball registered."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    plugins = env.get("SLICERFM_ENGINE_PLUGINS")
    env["SLICERFM_ENGINE_PLUGINS"] = f"{plugins},{PLUGIN_SPEC}" if plugins else PLUGIN_SPEC
    return env


def start_backend(engines: Sequence[str], log_path: str):
    from slicerfm_client.launcher import LocalBackend, default_command

    backend = LocalBackend(default_command(), engines=list(engines), env=backend_env(),
                           log_path=log_path, startup_timeout_s=120.0)
    backend.start()
    return backend


def log_tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- statistics -------------------------------------------------------------------------

def stats(values: Sequence[float]) -> Tuple[float, float, float]:
    a = np.asarray(values, dtype=float)
    return float(np.median(a)), float(np.percentile(a, 90)), float(a.max())


def print_breakdown(title: str, updates, skip_first: bool = True) -> None:
    """Per-stage median / p90 / max (ms) of ``MaskUpdate``s, plus the derived overheads."""
    used = updates[1:] if skip_first and len(updates) > 1 else updates
    excluded = ", first (engine load/warm-up) excluded:" if used is not updates else ":"
    print(f"\n{title}: {len(updates)} clicks" + excluded)
    if updates and used is not updates:
        first = updates[0]
        print(f"  first click: roundtrip {first.roundtrip_ms:.1f} ms, "
              f"server {first.timings_ms.get('server', float('nan')):.1f} ms, "
              f"engine {first.timings_ms.get('engine', float('nan')):.1f} ms")
    stages: List[str] = []
    for update in used:
        for name in update.timings_ms:
            if name not in stages:
                stages.append(name)
    rows = []
    for name in stages:
        values = [u.timings_ms[name] for u in used if name in u.timings_ms]
        rows.append((f"{name}", *stats(values)))
    rows.append(("roundtrip (client)", *stats([u.roundtrip_ms for u in used])))
    rows.append(("= server - engine", *stats([u.timings_ms["server"] - u.timings_ms["engine"] for u in used])))
    rows.append(("= roundtrip - server", *stats([u.roundtrip_ms - u.timings_ms["server"] for u in used])))
    print(f"  {'stage (ms)':<22} {'median':>9} {'p90':>9} {'max':>9}")
    for name, med, p90, mx in rows:
        print(f"  {name:<22} {med:9.2f} {p90:9.2f} {mx:9.2f}")
    voxels = [int(np.prod(u.mask.shape)) for u in used]
    nbytes = [u.wire_bytes for u in used]
    print(f"  response: median {np.median(nbytes):,.0f} B on the wire (max {max(nbytes):,}), "
          f"changed box median {np.median(voxels):,.0f} voxels (max {max(voxels):,})")


def run_clicks(client, engine: str, plan) -> list:
    updates = []
    for segment, point, positive in plan:
        updates.append(client.add_point(segment, point, positive=positive, engine=engine))
    return updates


def print_clicks(updates, plan) -> None:
    print(f"  {'#':>3} {'segment':<13} {'point_kji':<16} {'+/-':<3} {'engine':>9} {'outside':>8} "
          f"{'http+cli':>8} {'roundtrip':>9} {'bytes':>9} {'box':>14}")
    for n, (update, (segment, point, positive)) in enumerate(zip(updates, plan)):
        t = update.timings_ms
        box = "none" if update.bbox is None else "x".join(str(b - a) for a, b in zip(*update.bbox))
        print(f"  {n:>3} {segment:<13} {str(tuple(point)):<16} {'+' if positive else '-':<3} "
              f"{t.get('engine', 0):9.1f} {t.get('server', 0) - t.get('engine', 0):8.1f} "
              f"{update.roundtrip_ms - t.get('server', 0):8.1f} {update.roundtrip_ms:9.1f} "
              f"{update.wire_bytes:9,} {box:>14}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=30, help="clicks with the negligible engine")
    parser.add_argument("--classic-clicks", type=int, default=10, help="clicks with 'classic' (0: skip)")
    parser.add_argument("--no-classic", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-click", action="store_true", help="also print every click")
    args = parser.parse_args(argv)

    from slicerfm_client import errors, protocol
    from slicerfm_client.client import SlicerFMClient

    t0 = time.perf_counter()
    array, ijk_to_ras = make_synthetic_ct(seed=args.seed)
    print(f"synthetic CT {array.shape} {array.dtype}, {array.nbytes / 1e6:.1f} MB, "
          f"generated in {time.perf_counter() - t0:.1f} s (seed {args.seed})")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")

    want_classic = not args.no_classic and args.classic_clicks > 0
    engines = [BALL_ENGINE] + (["classic"] if want_classic else [])
    log_path = os.path.join(tempfile.gettempdir(), f"slicerfm-bench-{os.getpid()}.log")
    try:
        backend = start_backend(engines, log_path)
    except errors.SlicerFMError as error:
        if not want_classic:
            raise
        print(f"\n!! the server did not start with engines {engines}: {error}\n{log_tail(log_path)}")
        print("!! retrying without 'classic'")
        want_classic = False
        engines = [BALL_ENGINE]
        backend = start_backend(engines, log_path)
    print(f"server: {' '.join(backend.command)} serve --engines {','.join(engines)} "
          f"(pid {backend.process.pid}, {backend.url}, log {log_path})")
    try:
        client = SlicerFMClient(backend.url)
        client.connect("benchmark", heartbeat=False)
        t0 = time.perf_counter()
        client.set_image(array, ijk_to_ras, "CT")
        print(f"upload + attach: {time.perf_counter() - t0:.2f} s")

        floor = []
        for _ in range(30):
            t0 = time.perf_counter()
            client.heartbeat()
            floor.append((time.perf_counter() - t0) * 1000.0)
        med, p90, mx = stats(floor[1:])
        print(f"HTTP floor: POST {protocol.PATH_HEARTBEAT} (JSON, no work) round trip: "
              f"median {med:.2f} ms, p90 {p90:.2f} ms, max {mx:.2f} ms (29 calls)")

        plan = click_plan(args.clicks)
        updates = run_clicks(client, BALL_ENGINE, plan)
        print_breakdown(f"engine {BALL_ENGINE} (negligible compute, ball r={BALL_RADIUS} vox)", updates)
        if args.per_click:
            print_clicks(updates, plan)

        if want_classic:
            for segment in {s for s, _, _ in plan}:
                client.delete_segment(segment)
            plan = click_plan(args.classic_clicks)
            try:
                updates = run_clicks(client, "classic", plan)
            except errors.SlicerFMError as error:
                print(f"\n!! engine classic failed: {type(error).__name__}: {error}\n{log_tail(log_path)}")
            else:
                print_breakdown("engine classic", updates)
                print_clicks(updates, plan)
        client.close()
    finally:
        backend.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
