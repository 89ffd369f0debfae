"""Wire codecs side by side: bytes on the wire and speed, protocol 1.0's format against today's.

In-process (no server, no network), on the volumes a SlicerFM user uploads and the results a
server sends back; see :mod:`slicerfm_backend.benchmark.codecs` (also run by
``slicerfm-backend benchmark``) for the writers, the clocks and the volumes.

    .venv/bin/python benchmarks/wire_codecs.py                 # ~2 min on 2 cores
    .venv/bin/python benchmarks/wire_codecs.py --only CT --repeats 5
"""

from __future__ import annotations

import argparse

from slicerfm_backend.benchmark import codecs
from slicerfm_backend.benchmark.common import load_average


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timing rounds (the fastest counts)")
    parser.add_argument("--threads", type=int, default=1, help="blosc2 threads (default 1: per core)")
    parser.add_argument("--only", nargs="*", default=[], help="volumes whose name contains one of these words")
    args = parser.parse_args(argv)
    keys = [key for key, (name, _) in codecs.volumes().items()
            if not args.only or any(word in name for word in args.only)]
    print(f"load average {load_average()}")
    codecs.print_figures(codecs.measure(keys, args.repeats, args.threads, log=lambda line: None))
    print(f"load average at the end {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
