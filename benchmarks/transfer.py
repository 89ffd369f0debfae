"""Transfer costs through a real server: upload size and speed per wire format, server
memory during an upload, response sizes per click.

Images: the synthetic 512x512x300 int16 CT (157 MB raw), the sample CT
``abdomen_ct/example_ct.nii.gz`` and the DICOM series ``abdomen_ct/example_ct_dicom``; each
on a fresh server. ``--memory-sizes`` adds the phantom at other sizes (server memory
against volume size). The measurement is :mod:`slicerfm_backend.benchmark.uploads` (also
run by ``slicerfm-backend benchmark``).

    .venv/bin/python benchmarks/transfer.py               # ~1.5 min on 2 cores
    .venv/bin/python benchmarks/transfer.py --rounds 1 --memory-sizes 40x256x256,100x512x512
"""

from __future__ import annotations

import argparse

from slicerfm_backend.benchmark import uploads
from slicerfm_backend.benchmark.common import load_average


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", default="phantom,sample_ct,dicom_ct")
    parser.add_argument("--classic-organs", default="liver,spleen,kidney_left,kidney_right,lung_left")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the per-format upload comparison")
    parser.add_argument("--memory-sizes", default="", help="phantom sizes KxJxI for memory against size")
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.memory_sizes.split(",") if s]
    print(f"load average {load_average()}")
    figures = uploads.measure([k for k in args.images.split(",") if k], args.rounds, sizes,
                              [o for o in args.classic_organs.split(",") if o])
    uploads.print_figures(figures)
    print(f"\nload average at the end {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
