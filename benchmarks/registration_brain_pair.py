"""Registration figures on brain_pair: subject A (moving) onto subject B (fixed), T1 brain
MRI, 1 mm, 160 x 192 x 224; mean Dice over the 30 ``voxelmorph_eval_labels`` before and
after, folding (negative-Jacobian fraction), runtime, CPU time, peak memory.

Runs ``slicerfm-backend evaluate-registration`` in this process (or against ``--server``),
so the figures are exactly what that command prints. The load average is printed too:
on a shared machine other processes slow the wall-clock time down.

    .venv/bin/python benchmarks/registration_brain_pair.py [--engine classic] [--io-steps N]
        [--affine] [--checkpoint ENGINE=PATH] [--server URL] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

from bench_common import require_data
from slicerfm_backend.cli import build_parser


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="classic")
    parser.add_argument("--io-steps", dest="io_steps", type=int)
    parser.add_argument("--affine", action="store_true")
    parser.add_argument("--checkpoint", action="append", default=[])
    parser.add_argument("--server")
    parser.add_argument("--json", help="write the evaluate-registration report here")
    args = parser.parse_args()
    pair = require_data() / "brain_pair"
    labels = json.loads((pair / "labels.json").read_text())["voxelmorph_eval_labels"]
    out = args.json or "/tmp/registration_brain_pair.json"
    argv = ["evaluate-registration", "--engine", args.engine,
            "--fixed", str(pair / "subjB_l2r_T1norm.nii.gz"), "--moving", str(pair / "subjA_vxm_T1norm.nii.gz"),
            "--fixed-labels", str(pair / "subjB_l2r_aseg.nii.gz"),
            "--moving-labels", str(pair / "subjA_vxm_aseg.nii.gz"),
            "--fixed-modality", "MR", "--moving-modality", "MR",
            "--labels", ",".join(str(label) for label in labels), "--json", out]
    if args.io_steps is not None:
        argv += ["--io-steps", str(args.io_steps)]
    if args.affine:
        argv.append("--affine")
    for spec in args.checkpoint:
        argv += ["--checkpoint", spec]
    if args.server:
        argv += ["--server", args.server]
    command = build_parser().parse_args(argv)
    load_before = os.getloadavg()[0]
    cpu, wall = time.process_time(), time.perf_counter()
    code = command.func(command)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if code:
        return code
    report = json.loads(open(out, encoding="utf-8").read())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print()
    print(f"engine {args.engine}: mean Dice {report['mean_dice_before']:.3f} -> {report['mean_dice_after']:.3f} "
          f"over {len(labels)} labels; folding {100 * report['neg_jacobian_fraction']:.4f} %; "
          f"registration {report['runtime_s']:.1f} s wall" +
          (f", {report['cpu_s']:.1f} s CPU" if report.get("cpu_s") is not None else ""))
    print(f"whole command (reading, registration, warping labels): wall {wall:.1f} s, CPU {cpu:.1f} s "
          f"(all threads of this process), peak RSS {peak / 2**20:.0f} MiB; {os.cpu_count()} CPUs, "
          f"load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
