"""Peak memory of VISTA3D automatic segmentation ("everything", 117 classes) against volume
size, up to a 1024x1024x768 CT, on synthetic volumes, each size in a fresh process, with a
reduced-cost stand-in network (logits of the real shape); see
:func:`slicerfm_backend.benchmark.vista3d.memory_run` (also run by ``slicerfm-backend
benchmark --engines vista3d``).

    .venv/bin/python benchmarks/vista3d_memory.py [--sizes 256x256x192,512x512x384,1024x1024x768]
                                                  [--spacing 0.7,0.7,1.0] [--accumulator-mb 3072]
"""

from __future__ import annotations

import argparse

from slicerfm_backend.benchmark import vista3d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(vista3d.MEMORY_SIZES))
    parser.add_argument("--spacing", default=",".join(str(v) for v in vista3d.MEMORY_SPACING))
    parser.add_argument("--accumulator-mb", type=float, default=3072)
    args = parser.parse_args()
    spacing = [float(v) for v in args.spacing.split(",")]
    rows = vista3d.memory_run(args.sizes.split(","), spacing, args.accumulator_mb, log=lambda line: None)
    vista3d.print_figures({"wire": [], "memory": {"accumulator_mb": args.accumulator_mb, "spacing_ijk": spacing,
                                                  "sizes": rows}})


if __name__ == "__main__":
    main()
