"""Protocol overhead per click: where the time of one interaction goes.

Starts a REAL backend process, uploads the synthetic 512x512x300 int16 CT of
:mod:`slicerfm_backend.benchmark.phantom`, sends clicks through the client and prints, per
stage of the ``Server-Timing`` header and for the client round trip, the median / p90 / max
in ms, with the two parts of the overhead (server - engine; round trip - server). Engines:
``bench_ball`` (negligible compute: :mod:`slicerfm_backend.benchmark.ball`, registered
through ``SLICERFM_ENGINE_PLUGINS``) and ``classic``. The measurement is
:mod:`slicerfm_backend.benchmark.protocol` (also run by ``slicerfm-backend benchmark``).

    .venv/bin/python benchmarks/protocol_overhead.py            # 30 ball clicks + 10 classic
    .venv/bin/python benchmarks/protocol_overhead.py --clicks 50 --classic-clicks 0
"""

from __future__ import annotations

import argparse

from slicerfm_backend.benchmark import protocol


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=30, help="clicks with the negligible engine")
    parser.add_argument("--classic-clicks", type=int, default=10, help="clicks with 'classic' (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-click", action="store_true", help="also print every click")
    args = parser.parse_args(argv)
    figures = protocol.measure(args.clicks, args.classic_clicks, args.seed)
    protocol.print_figures(figures, per_click=args.per_click)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
