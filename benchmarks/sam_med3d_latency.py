"""SAM-Med3D (``sam-med3d``) latency through a real server and the client, on this machine.

RANDOM weights (``torch.manual_seed(0)``) saved in the released layout and loaded by a real
server; the sample CT uploaded; clicks through the client. Only timings and memory are
figures. Runs (see :mod:`slicerfm_backend.benchmark.sam_med3d`, also run by
``slicerfm-backend benchmark``):

* ``default`` -- organ clicks with the random weights as they are (masks spread, extension
  crops up to 8 per segment); refinement round trip / decoder with 8 crops;
* ``simulated`` -- the simulated user of ``slicerfm-backend evaluate`` on the spleen with one
  crop (``max_crops=1``): refinement round trip / decoder with one crop;
* ``empty`` -- organ clicks with the decoder's output layer zeroed (empty masks, one crop
  per click site, far click opens a second crop);
* ``model`` -- the network alone in-process (one encoder pass, decoder passes);
* ``pipeline`` -- the engine's own work alone in-process (stand-in network): upsampling and
  pasting per refinement click with one crop and with eight.

The default runs ``default`` and ``simulated`` in one go, so both ratios come from the same
machine load (printed before and after).

    .venv/bin/python benchmarks/sam_med3d_latency.py                 # default + simulated
    .venv/bin/python benchmarks/sam_med3d_latency.py --runs empty     # ~1.5 min
    .venv/bin/python benchmarks/sam_med3d_latency.py --runs model,pipeline
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from slicerfm_backend.benchmark import sam_med3d
from slicerfm_backend.benchmark.common import load_average


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="default,simulated",
                        help="comma-separated among default, simulated, empty, model, pipeline")
    parser.add_argument("--organs", default="1,5", help="label ids of organs to click (first click + refinements each)")
    parser.add_argument("--refinements", type=int, default=6, help="refinement clicks per organ")
    parser.add_argument("--simulated-clicks", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    runs = [r for r in args.runs.split(",") if r]
    before = load_average()
    figures = sam_med3d.measure(runs, args.refinements, [int(v) for v in args.organs.split(",") if v],
                                args.simulated_clicks, args.device)
    sam_med3d.print_figures(figures)
    print(f"\nload average {before} before, {load_average()} after")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
