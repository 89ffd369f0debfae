"""Dice per simulated click for the issue's structures, through a real server and the client.

Same path as ``slicerfm-backend evaluate`` (one server process for all cases): the CT organs
spleen (1), right and left kidney (2, 3), liver (5), stomach (6) on
abdomen_ct/example_ct.nii.gz with example_seg_fast_force_split.nii.gz, and edema on
brain_flair. Prints Dice after 1, 3, 5, 10 clicks, clicks to 0.85 and the mean over the CT
organs at 5 clicks.

    .venv/bin/python benchmarks/dice_table.py [--engine classic] [--clicks 10] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench_common import DATA, require_data
from slicerfm_backend.evaluation.evaluate import evaluate_with_client, load_case
from slicerfm_client.client import SlicerFMClient
from slicerfm_client.launcher import LocalBackend, default_command

CT = ("abdomen_ct/example_ct.nii.gz", "abdomen_ct/example_seg_fast_force_split.nii.gz", "CT")
CASES = [
    ("spleen", *CT, 1), ("kidney_right", *CT, 2), ("kidney_left", *CT, 3),
    ("liver", *CT, 5), ("stomach", *CT, 6),
    ("flair_edema", "brain_flair/BraTS2021_01646_img.nii.gz",
     "brain_flair/BraTS2021_01646_edema_label.nii.gz", "MR", 1),
]
CT_ORGANS = {"spleen", "kidney_right", "kidney_left", "liver", "stomach"}


def at(dices, clicks):
    """Dice after ``clicks`` clicks (the last value when the simulation stopped early)."""
    return dices[min(clicks, len(dices)) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="classic")
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--json")
    args = parser.parse_args()
    require_data()
    rows = {}
    with LocalBackend(default_command(), engines=[args.engine]) as backend:
        with SlicerFMClient(backend.url) as client:
            client.connect("dice_table")
            for name, image, label, modality, label_id in CASES:
                array, ijk_to_ras, reference, spacing = load_case(str(DATA / image), str(DATA / label), label_id)
                result = evaluate_with_client(client, array, ijk_to_ras, reference, spacing,
                                              args.engine, args.clicks, modality, verbose=False)
                rows[name] = result
    print(f"engine {args.engine}, {args.clicks} simulated clicks, through a real server and the client")
    print(f"{'structure':<14}{'@1':>8}{'@3':>8}{'@5':>8}{'@10':>8}{'to 0.85':>9}{'median ms':>11}{'max ms':>9}")
    for name, result in rows.items():
        dices, latency = result["dice"], np.asarray(result["latency_s"]) * 1000
        print(f"{name:<14}" + "".join(f"{at(dices, n):8.3f}" for n in (1, 3, 5, 10))
              + f"{str(result['clicks_to']['0.85']):>9}{np.median(latency):11.0f}{latency.max():9.0f}")
    mean5 = np.mean([at(rows[n]["dice"], 5) for n in CT_ORGANS])
    print(f"mean Dice at 5 clicks over the CT organs: {mean5:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
