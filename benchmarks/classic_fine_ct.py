"""The classic engine on the sample CT resampled to 512x512x300: Dice and engine time per click.

The sample abdomen CT and its reference labels resampled (SimpleITK) onto a 512x512x300
grid over the same field of view; the simulated user clicks ``--clicks`` times per structure
(the five large organs and the ten small and thin ones of issue 18; ``--large-only``: the
organs), the engine in-process. The measurement is :mod:`slicerfm_backend.benchmark.classic_fine`
(also run by ``slicerfm-backend benchmark``).

    .venv/bin/python benchmarks/classic_fine_ct.py [--clicks 5] [--large-only]
"""

from __future__ import annotations

import argparse

from slicerfm_backend.benchmark import classic_fine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--large-only", action="store_true", help="only the five large organs")
    args = parser.parse_args()
    structures = classic_fine.ORGANS if args.large_only else {**classic_fine.ORGANS, **classic_fine.SMALL}
    classic_fine.print_figures(classic_fine.measure(args.clicks, log=lambda line: None, structures=structures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
