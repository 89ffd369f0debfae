"""VISTA3D with the full network (vista3d132, random weights: the same compute as the
released weights): time of one 128^3 window, whole-volume automatic segmentation of the
sample CT (the 30-slice one by default: the full one needs ~27 windows), peak memory, and the
wire size of multi-label results. See :mod:`slicerfm_backend.benchmark.vista3d` (also run by
``slicerfm-backend benchmark --engines vista3d``).

    .venv/bin/python benchmarks/vista3d_cpu.py [--classes everything|liver,spleen,...] [--threads N]
    .venv/bin/python benchmarks/vista3d_cpu.py --wire-only   # seconds
"""

from __future__ import annotations

import argparse

from slicerfm_backend.benchmark import vista3d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default="everything")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--image", default=vista3d.SMALL_CT, help="image under the shared data folder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--wire-only", action="store_true",
                        help="only the wire size of the sample data's real multi-label maps")
    args = parser.parse_args()
    figures = {"wire": vista3d.wire_of_label_maps()}
    if not args.wire_only:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        figures["network"] = vista3d.network_run(args.image, args.classes, args.device)
    vista3d.print_figures(figures)


if __name__ == "__main__":
    main()
