"""Report templates: registration (classic on brain_pair, uniGradICON's pipeline), VISTA3D,
and the GPU suite."""

from __future__ import annotations

from typing import Mapping

from .report_format import gib, ms, not_measured, num, plot_link, section_block, table

PUBLISHED_GRADICON_GIB = {"0": 3.4, "10": 11.4}  # docs/MODELS.md §3: without IO, with LNCC IO (175³)


def render(sections: Mapping, plots: Mapping, folder: str) -> str:
    parts = ["## Registration", "", plot_link(plots, "plot_registration", "registration Dice per structure", folder)]
    parts.append(section_block(sections, "registration", "Built-in `classic` engine on brain_pair", 3, _classic,
                               not_measured("`--sections registration`")))
    parts.append(section_block(sections, "unigradicon", "uniGradICON pipeline on the CPU (random weights)", 3,
                               _gradicon, not_measured("`--engines unigradicon`")))
    parts.append(section_block(sections, "vista3d", "VISTA3D", 2, _vista,
                               not_measured("`--engines vista3d`")))
    parts.append(section_block(sections, "gpu", "On a GPU", 2, _gpu, _gpu_missing()))
    return "\n".join(parts)


def _classic(f: Mapping) -> str:
    c = f["classic"]
    size = "160 × 192 × 224 at 1 mm" if c.get("shrink", 1) == 1 else f"downsampled by {c['shrink']} (quick run)"
    lines = ["Subject A (moving) onto subject B (fixed): T1 brain MRI, skull-stripped, affinely pre-aligned, "
             f"{size} (`../shared/data/brain_pair`). Mean Dice over the {len(c['labels'])} "
             "`voxelmorph_eval_labels` of `labels.json`, the moving label map carried onto the fixed grid with nearest "
             "neighbour; folding = fraction of the field's voxels with det(I + ∂d/∂x) ≤ 0. In-process "
             "`evaluate-registration` (the command's own code); CPU time is the process's own (all threads) during "
             "the registration.", ""]
    lines.append(table(["run", "mean Dice", "folding", "registration wall", "registration CPU"], [
        ["before registration", num(c["mean_dice_before"]), "–", "–", "–"],
        ["**classic** (default schedule)", f"**{c['mean_dice_after']:.3f}**",
         f"**{100 * c['neg_jacobian_fraction']:.3f} %**",
         f"{c['runtime_s']:.1f} s", f"{c['cpu_s']:.1f} s" if c.get("cpu_s") is not None else "–"]]))
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in c["timings_s"].items() if k != "total")
    lines.append(f"Stages (wall): {stages}. The whole command (reading four NIfTI files, registration, carrying the "
                 f"label map twice) took {c['command_wall_s']:.1f} s wall and {c['command_cpu_s']:.1f} s CPU; the "
                 f"process peaked at {c['peak_rss_bytes'] / 2**30:.2f} GiB RSS.")
    after = {str(k): v for k, v in c["dice_after"].items()}
    names = c.get("label_names", {})
    lowest = sorted(after, key=after.get)[:3]
    lines.append("Lowest structures after registration: " + ", ".join(
        f"{names.get(k, k)} ({k}): {after[k]:.3f}" for k in lowest) + ".")
    if c.get("shrink", 1) == 1:
        met = [c["mean_dice_after"] >= 0.78, c["neg_jacobian_fraction"] < 0.001, c["runtime_s"] < 30]
        lines.append(f"Against the goal (mean Dice ≥ 0.78, folding < 0.1 %, under 30 s on 2 cores): "
                     f"{'met' if met[0] else 'not met'}, {'met' if met[1] else 'not met'}, "
                     f"{'met' if met[2] else 'not met'} (the time depends on the machine's load).")
    return "\n".join(lines) + "\n"


def _gradicon(f: Mapping) -> str:
    g = f["unigradicon"]
    side = g["shape"][0]
    lines = [f"The package's network (`make_network`, {side}³) with random weights (every U-Net's last layer "
             "N(0, 10⁻³), seed 0), saved in the released layout and loaded through the engine's checkpoint path, "
             f"registers brain_pair subject A onto subject B on {g['device']} ({g['threads']} torch threads). Only "
             "times and memory are figures. *Model* is the network (IO included); *overhead* is everything else the "
             "engine does: normalisation, the field in RAS on the fixed grid, the negative-Jacobian fraction.", ""]
    body = []
    for steps, runs in g["runs"].items():
        for n, r in enumerate(runs, 1):
            t = r["timings_s"]
            body.append([f"IO {steps}, run {n}", f"{t['model']:.1f} s", f"{t['total']:.1f} s",
                         f"{r['overhead_s']:.2f} s = **{100 * r['overhead_share']:.1f} %**"])
    lines.append(table(["run", "model", "total", "overhead"], body))
    lines.append(f"Process peak RSS {gib(g['peak_rss_bytes'])}; load (build + checkpoint) {g['load_s']:.1f} s. The "
                 "overhead goal is < 15 % of the total. Instance optimisation at 175³ does not fit a 2-core, 24 GB "
                 "machine (one step was killed at 11 GB resident during development): the engine estimates ≈2,100 "
                 "bytes per network voxel for IO and, on the CPU, refuses a run that would not fit in "
                 "`MemAvailable` with a clear message. The GPU suite measures it.")
    return "\n".join(lines) + "\n"


def _vista(f: Mapping) -> str:
    lines = []
    network = f.get("network")
    if network:
        lines += [f"### Time on {network['device']} (full network, random weights)", "",
                  f"`vista3d132` (218 M parameters) with `torch.manual_seed(0)` weights: the compute is the real one, "
                  f"the labels are meaningless. Image `{network['image']}` ({'×'.join(map(str, network['shape']))}), "
                  f"{network['classes']} classes, {network['threads']} threads, precision {network['precision']}.", ""]
        body = [[f"one 128³ window, {k} class(es) (encoder + class head)", f"{v:.1f} s"]
                for k, v in network["window_s"].items()]
        whole = network.get("whole")
        if whole:
            body.append([f"whole volume: 1.5 mm crop {whole['working_shape_xyz']} (x, y, z), {whole['windows']} "
                         f"windows × {whole['class_groups']} class group(s)",
                         f"**{whole['seconds']:.0f} s** ({whole['per_window_s']:.1f} s median per window)"])
            body.append(["not computed (outside the foreground crop)",
                         f"{whole['not_computed_voxels']:,} of {whole['voxels']:,} voxels, reported in the result"])
            body.append(["result on the wire (random labels: noise is the worst case)",
                         f"{whole['raw_bytes']:,} → {whole['wire_bytes']:,} B"])
        body.append(["peak RSS of the process", gib(network["peak_rss_bytes"])])
        lines.append(table(["what", "figure"], body, "ll"))
        lines.append("On the CPU this is minutes per window: `segment_auto` says so in the log and in the result "
                     "meta. A point click costs one window (same encoder, point head instead of class head).\n")
    lines += ["### Wire size of a multi-label result", "",
              "The result travels as one uint8 label map message with the dictionary in its meta. Real multi-label "
              "maps (TotalSegmentator's labels shipped with the sample data):", ""]
    lines.append(table(["label map", "labels", "raw uint8", "wire (with dictionary)", "one uint8 mask per label"], [
        [r["name"], r["labels"], f"{r['raw_bytes']:,} B", f"**{r['wire_bytes']:,} B** "
         f"({r['raw_bytes'] / r['wire_bytes']:.1f}× smaller)", f"{r['one_mask_per_label_bytes']:,} B"]
        for r in f["wire"]]))
    memory = f.get("memory")
    if memory:
        lines += ["### Peak memory against volume size (synthetic CT, stand-in network)", "",
                  "Synthetic int16 CTs (an elliptic body with a bright rod), spacing "
                  f"{' × '.join(str(v) for v in memory['spacing_ijk'])} mm, \"everything\" (117 classes), each size in "
                  "a fresh process (peak RSS = VmHWM). The network is a **reduced-cost stand-in** returning logits of "
                  "the real shape (117 × 128³ float32, 0.92 GiB per window): everything the engine allocates is real "
                  "(image, 1.5 mm working volume, band accumulator, class-group maxima, label maps); the network's "
                  "own activations are not included (on a GPU they are in GPU memory).", ""]
        body = [["×".join(map(str, r["size_ijk"])), gib(r["input_bytes"]), str(r["working_xyz"]),
                 f"{r['windows']} × {r['class_groups']}", gib(r["accumulator_bytes"]),
                 f"**{gib(r['peak_rss_bytes'])}**",
                 gib(r["peak_rss_bytes"] - r["input_bytes"]), f"{r['seconds']:.0f} s"] for r in memory["sizes"]]
        lines.append(table(["size (I×J×K)", "input", "1.5 mm crop (x, y, z)", "windows × class groups",
                            "accumulator", "peak RSS", "peak − input", "time (stand-in)"], body))
        lines.append(f"The accumulator stays under its bound ({memory['accumulator_mb']:.0f} MB) by running the 117 "
                     "classes in groups, each group re-running the windows: the bound trades memory for time.")
    return "\n".join(lines) + "\n"


def _gpu_missing() -> str:
    return ("Not measured yet: no GPU was available where this report was made. The GPU suite is ready to run in one "
            "call on a machine with one CUDA GPU (under 8 minutes); prepare it here with `bash "
            "benchmarks/gpu_suite.sh --prepare`, run `bash benchmarks/gpu_suite.sh` there, then bring its "
            "`gpu.json` back with `slicerfm-backend benchmark --report-only --gpu-results gpu.json --out docs`.\n")


def _gpu(f: Mapping) -> str:
    lines = [f"{f.get('device_name')} (CUDA {f.get('cuda')}, torch {f.get('torch')}), by `benchmarks/gpu_suite.sh`; "
             "random weights throughout (times and memory are real).", ""]
    sam = f.get("sam_med3d")
    if sam:
        body = [[p, ms(v["encoder_ms"]), ms(v["decoder_median_ms"]), gib(v.get("gpu_peak_bytes"))]
                for p, v in sam.get("precisions", {}).items()]
        lines += ["**SAM-Med3D**, one 128³ crop of the sample CT, in-process:", "",
                  table(["precision", "image encoder (ms)", "decoder median (ms)", "peak GPU memory"], body)]
        server = sam.get("server")
        if server:
            refine = server["groups"].get("refine", {})
            first = server["groups"].get("load+first", {})
            ratio = server.get("refinement_ratio", {})
            lines.append(f"Through a real server (the engine's default precision: bf16 on CUDA, fp32 on the CPU): "
                         f"first click {ms(first.get('roundtrip', {}).get('median'))} ms "
                         f"(engine load included), refinement click {ms(refine.get('roundtrip', {}).get('median'))} ms "
                         f"of which decoder {ms(refine.get('engine.decoder', {}).get('median'))} ms and pipeline "
                         f"{ms(refine.get('pipeline', {}).get('median'))} ms; protocol overhead (round trip − engine) "
                         f"{ms(refine.get('roundtrip-engine', {}).get('median'))} ms; round trip / decoder "
                         f"{num(ratio.get('median'), 2)}.\n")
    vista = f.get("vista3d")
    if vista and vista.get("window_s"):
        whole = vista.get("whole", {})
        lines.append(f"**VISTA3D** ({vista.get('precision')}): one 128³ window {num(vista['window_s'].get('1'), 3)} s "
                     f"(1 class), {num(vista['window_s'].get('117'), 3)} s (117 classes); the sample CT \"everything\" "
                     f"{num(whole.get('seconds'), 1)} s over {whole.get('windows')} windows; peak GPU memory "
                     f"{gib(whole.get('gpu_peak_bytes'))}.\n")
    gradicon = f.get("unigradicon")
    if gradicon:
        body = []
        for steps, runs in gradicon["runs"].items():
            best = min(runs, key=lambda r: r["timings_s"]["total"])
            published = PUBLISHED_GRADICON_GIB.get(steps) if gradicon["shape"][0] == 175 else None
            body.append([f"{gradicon['shape'][0]}³, IO {steps}", f"{best['timings_s']['total']:.2f} s",
                         gib(best.get("gpu_peak_bytes")), f"{published} GB" if published else "–"])
        lines += ["**uniGradICON** on brain_pair:", "",
                  table(["run", "total", "peak GPU memory", "published"], body)]
    medsam = f.get("medsam", {}).get("model")
    if medsam:
        lines.append(f"**MedSAM** ({medsam['precision']}): encoder {medsam['encoder_ms']['median']:.1f} ms and decoder "
                     f"{medsam['decoder_ms']['median']:.1f} ms per slice; peak GPU memory "
                     f"{gib(medsam.get('gpu_peak_bytes'))}.\n")
    for part, why in f.get("failed", {}).items():
        lines.append(f"- {part}: failed ({why}).")
    for part, why in f.get("skipped", {}).items():
        lines.append(f"- {part}: not measured ({why}).")
    return "\n".join(lines) + "\n"
