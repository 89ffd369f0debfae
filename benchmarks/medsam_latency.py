"""MedSAM (``medsam``) on this machine: per-slice encoder and decoder time, a 40-slice
propagation through a real server and the client, cache bytes per slice, response bytes.

RANDOM weights (segment-anything's ViT-B, ``torch.manual_seed(0)``) saved as MedSAM ships
``medsam_vit_b.pth``; with ``--full-masks`` (the default) every mask is the whole slice so
that propagation runs exactly ``--slices`` slices. See
:mod:`slicerfm_backend.benchmark.medsam` (also run by ``slicerfm-backend benchmark --engines
medsam``) for what is measured.

Run::

    .venv/bin/python benchmarks/medsam_latency.py --model-only   # ~1 min on 2 idle CPU cores
    .venv/bin/python benchmarks/medsam_latency.py                # ~6 min on 2 idle CPU cores
"""

from __future__ import annotations

import argparse

from slicerfm_backend.benchmark import medsam
from slicerfm_backend.benchmark.common import load_average


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-only", action="store_true", help="time the network in this process")
    parser.add_argument("--repeat", type=int, default=3, help="encoder passes with --model-only")
    parser.add_argument("--slices", type=int, default=40, help="slices to propagate (half per direction)")
    parser.add_argument("--no-full-masks", dest="full_masks", action="store_false",
                        help="keep the random decoder (propagation then stops wherever its masks do)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    print(f"load average {load_average()}")
    if args.model_only:
        figures = {"model": medsam.model_only(args.repeat, args.device)}
    else:
        figures = {"server": medsam.server_run(args.slices, args.full_masks, args.device)}
    medsam.print_figures(figures)
    print(f"load average at the end {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
