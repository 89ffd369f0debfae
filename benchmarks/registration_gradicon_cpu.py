"""uniGradICON pipeline cost with random weights: network time versus total time, and peak
memory, on brain_pair (subject A moving onto subject B, 160x192x224 at 1 mm).

The package's network with every U-Net's last layer given small random values, saved in the
released layout and loaded through the engine's real loading path; see
:func:`slicerfm_backend.benchmark.registration.gradicon_run` (also run by
``slicerfm-backend benchmark --engines unigradicon``).

    .venv/bin/python benchmarks/registration_gradicon_cpu.py [--threads 2] [--io-steps 0]
        [--shape 175] [--repeats 1] [--device cpu] [--upstream]
"""

from __future__ import annotations

import argparse

from slicerfm_backend.benchmark import registration


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--io-steps", default="0", help="comma-separated IO step counts, e.g. 0,10")
    parser.add_argument("--similarity", default="lncc")
    parser.add_argument("--shape", type=int, default=175, help="network side (default 175)")
    parser.add_argument("--output-grid", default="fixed", choices=("fixed", "native"))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--upstream", action="store_true",
                        help="also time the package's own pipeline (preprocess + register_pair, no IO)")
    args = parser.parse_args()
    figures = registration.gradicon_run(args.shape, [int(v) for v in args.io_steps.split(",")], args.repeats,
                                        args.device, args.threads, args.upstream, similarity=args.similarity,
                                        output_grid=args.output_grid)
    registration.print_figures({"unigradicon": figures})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
