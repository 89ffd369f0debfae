"""Report template: the classic engine on the structures of issue 18 (section ``classic_suite``)."""

from __future__ import annotations

from typing import Mapping

from .report_format import not_measured, section_block

GROUPS = {
    "ct_large": "spleen, kidneys, liver, stomach on `abdomen_ct/example_ct.nii.gz` (3 mm) with "
                "`example_seg_fast_force_split.nii.gz`",
    "ct_small": "gallbladder, pancreas, adrenal glands, aorta, inferior vena cava, portal/splenic vein, vertebrae "
                "L1–L3 on the same CT",
    "mr_abdomen": "the organs of `ct_mr_common_labels.json` with more than 400 voxels on `example_mr_sm.nii.gz` / "
                  "`example_seg_mr.nii.gz` (3 mm)",
    "flair": "the edema of `brain_flair` (1.5 mm)",
    "brain": "the 30 `voxelmorph_eval_labels` of `brain_pair/labels.json` on subject B's T1 (1 mm) with its aseg",
}


def render(sections: Mapping) -> str:
    return section_block(sections, "classic_suite", "The classic engine on small, thin and MR structures (issue 18)",
                         3, _suite, not_measured("`--sections classic_suite`"))


def _suite(f: Mapping) -> str:
    from ..evaluation.suite import GOALS, MAX_DROP, markdown_table

    how = "the engine in-process" if f["in_process"] else "a real server process through the client"
    lines = [f"The simulated user of `slicerfm-backend evaluate` clicks {f['clicks']} times per structure, driving "
             f"{how} (`benchmarks/dice_table.py` prints the same; `--groups`, `--only` and `--in-process` narrow it "
             "for quick iterations). Groups:", ""]
    lines += [f"- **{group}**: {text};" for group, text in GROUPS.items()]
    goals = "; ".join(f"{g} " + ", ".join(f"@{n} ≥ {v}" for n, v in d.items()) for g, d in GOALS.items())
    lines += ["", f"Goals (mean Dice per group after n clicks): {goals} (ct_large: no regression from the engine of "
              f"2026-11-23). Clicks never hurt: no click among the first 10 lowers Dice by more than {MAX_DROP}, and "
              "Dice after 10 clicks is not below Dice after 5 (the last two columns of the group table). How the "
              "engine handles these structures, and the figures of earlier versions: [CLASSIC.md](CLASSIC.md).", ""]
    lines.append(markdown_table(f["structures"]))
    return "\n".join(lines) + "\n"
