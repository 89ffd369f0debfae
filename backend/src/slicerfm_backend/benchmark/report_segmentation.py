"""Report templates: interactive segmentation (Dice per click, the classic engine on a
clinical-size CT, latency per stage and protocol overhead, SAM-Med3D)."""

from __future__ import annotations

from typing import List, Mapping

from . import report_classic
from .report_format import ms, not_measured, num, plot_link, section_block, spread, table


def render(sections: Mapping, plots: Mapping, folder: str) -> str:
    parts = ["## Interactive segmentation", "",
             plot_link(plots, "plot_dice", "Dice per click", folder)]
    parts.append(section_block(sections, "dice", "Dice per simulated click", 3, _dice,
                               not_measured("`slicerfm-backend benchmark --sections dice`")))
    parts.append(section_block(sections, "classic_fine", "The classic engine on a clinical-size grid", 3, _fine,
                               not_measured("`--sections classic_fine`")))
    parts.append(report_classic.render(sections))
    parts += ["### Latency per stage", "", plot_link(plots, "plot_latency", "latency per stage", folder),
              "Each bar is one kind of interaction, split into its stages (medians). The panels come from the "
              "sections below.", ""]
    parts.append(section_block(sections, "protocol", "Per-click latency and protocol overhead (synthetic "
                               "512×512×300 CT)", 4, _protocol, not_measured("`--sections protocol`")))
    parts.append(section_block(sections, "sam_med3d", "SAM-Med3D (`sam-med3d`) on the CPU, random weights", 3, _sam,
                               not_measured("`--engines sam-med3d`")))
    parts.append(section_block(sections, "medsam", "MedSAM (`medsam`) on the CPU, random weights", 3, _medsam,
                               not_measured("`--engines medsam`")))
    return "\n".join(parts)


def _worst_drop(dices: List[float]):
    """(drop, click number after which it happened, before, after) of the largest one-click fall."""
    best = None
    for n in range(1, len(dices)):
        drop = dices[n - 1] - dices[n]
        if drop > 0 and (best is None or drop > best[0]):
            best = (drop, n + 1, dices[n - 1], dices[n])
    return best


def _dice(f: Mapping) -> str:
    lines = ["The simulated user of `slicerfm-backend evaluate` (first click at the deepest point of the reference, "
             "each next one at the deepest point of the largest error region, positive in missed object and negative "
             "in overflow) drives a real server process through the client. CT: `abdomen_ct/example_ct.nii.gz` "
             "(122×101×112, 3 mm) with `example_seg_fast_force_split.nii.gz`; MR: `brain_flair` edema. Latency is "
             "the client's round trip per click. The built-in `classic` engine on the 61 structures of issue 18 (small "
             "and thin CT structures, abdominal MR, FLAIR, 30 brain structures on T1), how it works and every "
             "variant tried: [CLASSIC.md](CLASSIC.md) (benchmark section `classic_suite`).", ""]
    for engine, rows in f["engines"].items():
        lines.append(f"**{engine}**, {f['clicks']} clicks per structure:\n")
        body = [[f"{name} ({row['label_id']})", *(num(row["at"][n]) for n in ("1", "3", "5", "10")),
                 row["clicks_to_0.85"] or f"not within {len(row['dice'])}", ms(row["latency_ms"]["median"], 0),
                 ms(row["latency_ms"]["max"], 0)] for name, row in rows.items()]
        lines.append(table(["structure", "@1", "@3", "@5", "@10", "clicks to 0.85", "median ms/click", "max ms"], body))
        mean = f["summary"].get(f"{engine}_mean_dice_at_5_ct")
        if mean is not None:
            lines.append(f"**Mean Dice at 5 clicks over the CT organs measured: {mean:.3f}** (goal ≥ 0.85).\n")
        lines.append(_dice_notes(rows))
        lines.append("")
    for engine, why in f.get("not_measured", {}).items():
        lines.append(f"- `{engine}`: not measured here — {why}. Random weights give meaningless masks, so this "
                     "benchmark does not report a Dice for it.")
    return "\n".join(lines) + "\n"


def _dice_notes(rows: Mapping) -> str:
    quick = [n for n, r in rows.items() if r["clicks_to_0.85"] is not None and r["clicks_to_0.85"] <= 2]
    never = [n for n, r in rows.items() if r["clicks_to_0.85"] is None]
    notes = ["What to expect:", ""]
    if quick:
        notes.append(f"- Reaching Dice 0.85 within two clicks: {', '.join(quick)}.")
    if never:
        notes.append(f"- Not reaching 0.85 within the clicks measured: {', '.join(never)} (structures of mixed "
                     "content or low contrast need more clicks, each covering one more part).")
    drops = []
    for name, row in rows.items():
        worst = _worst_drop(row["dice"])
        if worst and worst[0] > 0.01:
            drops.append(f"{name} click {worst[1]} ({worst[2]:.2f} → {worst[3]:.2f})")
    if drops:
        notes.append("- A click can make the result worse for one step before the next clicks repair it; the "
                     "largest one-click falls: " + "; ".join(drops) + ". (`Testing/backend/test_classic_engine.py` "
                     "checks that within the first five clicks on the CT organs no click lowers Dice by more than "
                     "0.05.)")
    return "\n".join(notes) + "\n"


def _fine(f: Mapping) -> str:
    shape = "×".join(str(v) for v in reversed(f["shape"]))
    spacing = " × ".join(f"{v:.2f}" for v in reversed(f["spacing_kji"]))
    lines = [f"The sample CT and its labels resampled (SimpleITK, linear / nearest) to {shape} over the same field "
             f"of view ({spacing} mm), {f['clicks']} clicks per organ, the engine in-process (one per-image cache "
             "shared by the organs, as in a session):", ""]
    lines.append(table(["structure", f"Dice per click 1–{f['clicks']}"],
                       [[n, " ".join(f"{d:.3f}" for d in o["dice"])] for n, o in f["organs"].items()], "ll"))
    e = f["engine_ms"]
    lines.append(f"Engine time per click over the {e['n']} clicks: **median {e['median']:.0f} ms, p90 {e['p90']:.0f} "
                 f"ms, max {e['max']:.0f} ms**.")
    slow = _slowest(f)
    if slow:
        stages = ", ".join(f"{k} {v:.0f} ms" for k, v in slow["stages"].items() if k not in ("total", "roi_voxels"))
        voxels = slow["stages"].get("roi_voxels")
        lines.append(f"The slowest was click {slow['click']} on the {slow['organ']}"
                     + (f" (ROI of {voxels:,.0f} working voxels" if voxels else " (")
                     + f"; {stages}).")
    return "\n".join(lines) + "\n"


def _slowest(f: Mapping):
    from .classic_fine import slowest_click

    return slowest_click(f)


STAGE_NAMES = {"decode": "decode (request)", "queue": "queue (device scheduler)", "engine": "engine",
               "commit": "commit (locks, changed box, undo)", "encode": "encode (mask message)",
               "server": "server total", "roundtrip": "round trip at the client",
               "server-engine": "server − engine", "roundtrip-server": "round trip − server (HTTP + client)",
               "roundtrip-engine": "**protocol overhead** (round trip − engine)"}


def _stage_rows(stages: Mapping) -> List[List[str]]:
    rows = []
    for name, s in stages.items():
        if name in ("engine.total", "engine.roi_voxels"):
            continue
        label = STAGE_NAMES.get(name, f"– {name[len('engine.'):]}" if name.startswith("engine.") else name)
        rows.append([label, ms(s["median"], 2), ms(s["p90"], 2), ms(s["max"], 2)])
    return rows


def _protocol(f: Mapping) -> str:
    image = f["image"]
    spacing = " × ".join(f"{v:g}" for v in reversed(image.get("spacing_kji", (1.5, 0.8, 0.8))))
    lines = [f"A real server process, the client over loopback HTTP, a synthetic CT phantom "
             f"({'×'.join(map(str, image['shape']))} {image['dtype']}, {spacing} mm; organs as ellipsoids, "
             "noise σ 10 HU; see `slicerfm_backend/benchmark/phantom.py`). Stages come from the `Server-Timing` "
             "header; the first click of each engine (engine load) is left out.", ""]
    hb = f["heartbeat_ms"]
    for engine, data in f["engines"].items():
        what = ("a ball of radius 8 voxels around the click: its compute is negligible, so these are the "
                "protocol's own costs" if engine == "bench_ball" else "the built-in engine")
        lines.append(f"`{engine}` ({what}), {data['clicks']} clicks:\n")
        lines.append(table(["stage (ms)", "median", "p90", "max"], _stage_rows(data["stages_ms"])))
        size = data["response_bytes"]
        lines.append(f"Response: {size['median']:,.0f} B median on the wire per click (max {size['max']:,.0f}); "
                     f"changed box median {data['box_voxels']['median']:,.0f} voxels.\n")
    lines.append(f"A JSON heartbeat (no work) takes {hb['median']:.2f} ms median in the same run: most of the "
                 "bench_ball round trip is HTTP on loopback. Every `classic` click stays bounded: its region of "
                 "interest is capped at 900,000 working voxels and 330 mm per axis.")
    return "\n".join(lines) + "\n"


SAM_GROUPS = {"load+first": "first click on a fresh server (engine load + encoder + decoder)",
              "first": "first click of another segment (new crop: encoder + decoder)",
              "refine": "refinement in a cached crop (decoder only)",
              "refine+encoder": "refinement that opened a crop (encoder ran)",
              "far": "far click on the first segment"}
SAM_RUNS = {"default": "**Random weights as they are**: the random masks fill the crop and touch its faces, so "
                       "the first click of each segment opens extension crops up to `max_crops` = 8 (8 encoder "
                       "passes), as a real object reaching crop faces would.",
            "empty": "**One crop per click site** (the decoder's output layer zeroed: every mask is empty, no "
                     "extension crop opens): an object that fits in one 128³ crop (192 mm).",
            "simulated": "**The simulated user with one crop** (`sam-med3d.max_crops=1`, random weights): the "
                         "clicks of `slicerfm-backend evaluate` on the spleen."}


def _sam_run(name: str, run: Mapping) -> str:
    lines = [SAM_RUNS.get(name, name), ""]
    body = []
    for group, label in SAM_GROUPS.items():
        t = run["groups"].get(group)
        if t:
            body.append([f"{label}, {t['roundtrip']['n']} click(s)", spread(t["roundtrip"]), spread(t["server"]),
                         spread(t["engine.encoder"]), spread(t["engine.decoder"]), spread(t["pipeline"])])
    lines.append(table(["click", "round trip", "server", "encoder", "decoder", "pipeline"], body))
    refine = run["groups"].get("refine")
    ratio = run["refinement_ratio"]
    if refine and ratio["n"]:
        verdict = "within" if ratio["median"] <= 2 else "above"
        lines.append(f"Refinement round trip / decoder: **median {ratio['median']:.2f}** [{ratio['min']:.2f}–"
                     f"{ratio['max']:.2f}] over {ratio['n']} clicks, {verdict} the goal of ≤ 2; server − engine "
                     f"{refine['server-engine']['median']:.1f} ms, HTTP + client {refine['http']['median']:.1f} ms.")
    memory = run.get("memory")
    if memory:
        peak = max(s["VmHWM"] for s in memory.values())
        lines.append(f"Server peak memory (VmHWM) {peak / 1e9:.2f} GB; after start-up "
                     f"{memory['after start-up']['VmHWM'] / 1e6:.0f} MB.")
    return "\n".join(lines) + "\n"


def _sam(f: Mapping) -> str:
    lines = [f"torch {f['torch']}, {f['threads']} threads, device {f['device']}. The network (medim SAM-Med3D, "
             "≈100.5 M parameters) gets **random weights** (`torch.manual_seed(0)`) saved in the released layout; "
             "a real server loads them (`SLICERFM_CHECKPOINTS`), the sample CT is uploaded and clicks go through the "
             "client. Only timings and memory are figures here. *Pipeline* = `engine.total − encoder − decoder`: "
             "crop resampling, z-normalisation, upsampling the logits and pasting them onto the image grid. Times "
             "in ms, median [min–max].", ""]
    for name, run in f["runs"].items():
        if name == "pipeline":
            cells = "; ".join(f"{row['crops']} crop{'s' if row['crops'] > 1 else ''}: median "
                              f"{row['pipeline_ms']['median']:.1f} ms [{row['pipeline_ms']['min']:.1f}–"
                              f"{row['pipeline_ms']['max']:.1f}]" for row in run.values())
            lines.append("**The engine's own work alone** (in-process, a stand-in network of negligible cost, "
                         f"refinement clicks on the sample CT): upsampling and pasting per click — {cells}.\n")
            continue
        if name == "model":
            d = run["decoder_ms"]
            lines.append(f"**Network alone** (in-process, one crop around the spleen): crop resample + z-normalise "
                         f"{run['prepare_ms']:.1f} ms; image encoder {run['encoder_ms']:,.0f} ms (after a warm-up "
                         f"pass); decoder median {d['median']:.1f} ms [{d['min']:.1f}–{d['max']:.1f}] over {d['n']} "
                         "passes with 1–10 points. design/MODELS.md gives ≈12.6 s for the encoder and ≈30 ms for a "
                         "refinement pass on 2 CPU cores.\n")
        else:
            lines.append(_sam_run(name, run))
    lines.append("The first click on a fresh server also pays the engine's load (reading the 402 MB checkpoint, "
                 "building the network): it shows in `server`, before the `engine` stage starts. A refinement click "
                 "decodes only the crop(s) holding the new point and pastes only the crops meeting their footprint, "
                 "answering only that box. The paste never builds a crop's whole 128³ mask: per image axis a table "
                 "holds the crop index of each image voxel, and the trilinear upsampling is evaluated only at those "
                 "indices (two taps per axis), then thresholded -- on the GPU when the network runs there, so only "
                 "the pasted box comes back; which crop faces a prediction touches comes from the logits' boundary "
                 "planes.")
    return "\n".join(lines) + "\n"


def _medsam(f: Mapping) -> str:
    lines = ["segment-anything's ViT-B at MedSAM's 1024-pixel input with **random weights** saved as "
             "`medsam_vit_b.pth` (the same compute as the released weights); see docs/MEDSAM.md for the engine. "
             "Only timings, memory and bytes are figures here.", ""]
    model = f.get("model")
    if model:
        e, d = model["encoder_ms"], model["decoder_ms"]
        prepare = ", ".join(f"{name} {ms:.1f} ms" for name, ms in model["prepare_ms"].items())
        lines.append(table(["per slice (in-process)", "figure"], [
            ["preprocessing of a 512 × 512 slice", prepare],
            ["image encoder (ViT-B, 1024 × 1024)", f"{spread(e, 0)} ms ({model['precision']})"],
            ["prompt encoder + mask decoder + mask output", f"{spread(d)} ms"],
            ["embedding kept per slice", f"{model['embedding_bytes'] / 2**20:.2f} MiB"]], "ll"))
    server = f.get("server")
    if server:
        p = server["propagation"]
        box, click = server["box"], server["click"]
        lines.append(f"Through a real server on the sample CT: a slice box on the liver (engine load + encoder + "
                     f"decoder) {box['roundtrip_ms']:,.0f} ms round trip; propagation over {p['slices_computed']} "
                     f"slices {p['wall_s']:.1f} s (**{p['per_slice_s']:.2f} s per slice**); a click on the prompted "
                     f"slice (cached embedding) {click['roundtrip_ms']:,.0f} ms. Every mask is the whole slice (so "
                     f"that propagation runs its course): the propagation's answer is {p['response_bytes']:,} B, "
                     f"where the reference liver over the same slices would take {p['reference_liver_bytes']:,} B. "
                     f"Server peak memory {server['server_peak_bytes'] / 2**20:,.0f} MiB.")
    return "\n".join(lines) + "\n"
