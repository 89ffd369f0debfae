"""The report's PNG plots, drawn from the figures document (matplotlib, Agg).

Each ``plot_*`` takes the document's sections and a folder, writes one PNG and returns its
file name, or returns None when none of the sections it draws was measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..evaluation.plots import (draw_dice_before_after, draw_dice_per_click, new_figure, registration_title,
                                save)

WRITER_COLOURS = {"1.0": "tab:grey", "format 1": "tab:blue", "format 2": "tab:green"}
LAST_STAGES = ("server − engine", "HTTP + client")
STAGE_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
                 "tab:olive", "tab:cyan", "tab:grey")


def figures(sections: Mapping, name: str) -> Optional[dict]:
    section = sections.get(name)
    return None if section is None else section["figures"]


def plot_dice(sections: Mapping, folder: Path) -> Optional[str]:
    """Dice per click: a panel per engine measured (and the classic engine on 512³-like CT)."""
    dice, fine = figures(sections, "dice"), figures(sections, "classic_fine")
    panels: List[Tuple[str, Dict[str, Sequence[float]]]] = []
    for engine, rows in (dice or {}).get("engines", {}).items():
        panels.append((f"{engine}: through a real server", {n: r["dice"] for n, r in rows.items()}))
    if fine:
        shape = "×".join(str(v) for v in reversed(fine["shape"]))
        panels.append((f"classic on the CT resampled to {shape}", {n: o["dice"] for n, o in fine["organs"].items()}))
    if not panels:
        return None
    figure, axes = new_figure(5.0 * len(panels), 3.8, 1, len(panels))
    for ax, (title, series) in zip(axes[0], panels):
        draw_dice_per_click(ax, series, goal=0.85, title=title)
    return _save(figure, folder, "dice_per_click.png")


def draw_stacked(ax, rows: Mapping[str, Mapping[str, float]], unit: str, title: str) -> None:
    """Horizontal bars, one per row, each stacked from its stages (in the row's order)."""
    stages: List[str] = []
    for parts in rows.values():
        stages += [s for s in parts if s not in stages]
    stages.sort(key=lambda s: s in LAST_STAGES)  # the protocol's share after the engine's stages
    labels = list(rows)
    left = [0.0] * len(labels)
    for index, stage in enumerate(stages):
        widths = [float(rows[label].get(stage) or 0.0) for label in labels]
        ax.barh(labels, widths, left=left, height=0.6, color=STAGE_COLOURS[index % len(STAGE_COLOURS)], label=stage)
        left = [a + b for a, b in zip(left, widths)]
    for y, total in enumerate(left):
        ax.text(total, y, f" {total:,.0f}" if total >= 100 else f" {total:.3g}", va="center", fontsize=7)
    ax.set_xlim(0, max(left) * 1.2 if left and max(left) > 0 else 1)
    ax.set_xlabel(unit)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.tick_params(axis="y", labelsize=7)


def _protocol_rows(protocol: dict) -> Dict[str, Dict[str, float]]:
    rows = {}
    for engine, data in protocol["engines"].items():
        stages = data["stages_ms"]
        parts = {k[len("engine."):]: v["median"] for k, v in stages.items()
                 if k.startswith("engine.") and k not in ("engine.total", "engine.roi_voxels")}
        engine_ms = stages["engine"]["median"]
        if not parts or sum(parts.values()) > engine_ms * 1.05:
            parts = {"engine": engine_ms}
        else:
            parts["engine (rest)"] = max(0.0, engine_ms - sum(parts.values()))
        parts.update({"server − engine": stages["server-engine"]["median"],
                      "HTTP + client": stages["roundtrip-server"]["median"]})
        rows[f"{engine} (median click)"] = parts
    return rows


def _sam_rows(sam: dict, group: str) -> Dict[str, Dict[str, float]]:
    rows = {}
    for run, data in sam["runs"].items():
        table = data.get("groups", {}).get(group) if isinstance(data, dict) else None
        if not table:
            continue
        rows[f"{run}"] = {"encoder": table["engine.encoder"]["median"], "decoder": table["engine.decoder"]["median"],
                          "pipeline": table["pipeline"]["median"], "server − engine": table["server-engine"]["median"],
                          "HTTP + client": table["http"]["median"]}
    return rows


def _registration_rows(sections: Mapping) -> Dict[str, Dict[str, float]]:
    rows = {}
    classic = (figures(sections, "registration") or {}).get("classic")
    if classic:
        rows["classic (brain_pair)"] = {k: v for k, v in classic["timings_s"].items() if k != "total"}
    gradicon = (figures(sections, "unigradicon") or {}).get("unigradicon")
    if gradicon:
        for steps, runs in gradicon["runs"].items():
            best = min(runs, key=lambda r: r["timings_s"]["total"])
            rows[f"uniGradICON {gradicon['shape'][0]}³, IO {steps}"] = {
                k: v for k, v in best["timings_s"].items() if k != "total"}
    return rows


def plot_latency(sections: Mapping, folder: Path) -> Optional[str]:
    """Time per stage, a panel per engine measured (each in its own unit)."""
    panels = []
    protocol = figures(sections, "protocol")
    if protocol:
        panels.append((_protocol_rows(protocol), "ms", "click on a 512×512×300 CT (real server)"))
    sam = figures(sections, "sam_med3d")
    if sam:
        first = {**_sam_rows(sam, "load+first"), **{f"{k} (new crop)": v for k, v in _sam_rows(sam, "first").items()}}
        if first:
            panels.append(({k: {s: v / 1000 for s, v in p.items()} for k, p in first.items()}, "s",
                           "SAM-Med3D first click (CPU, random weights)"))
        refine = _sam_rows(sam, "refine")
        if refine:
            panels.append((refine, "ms", "SAM-Med3D refinement click (CPU)"))
    vista = (figures(sections, "vista3d") or {}).get("network")
    if vista:
        rows = {f"one window, {k} class(es)": {"network": v} for k, v in vista["window_s"].items()}
        if vista.get("whole", {}).get("per_window_s"):
            rows["whole volume, per window"] = {"network + paste": vista["whole"]["per_window_s"]}
        panels.append((rows, "s", f"VISTA3D ({vista['device']})"))
    registration = _registration_rows(sections)
    if registration:
        panels.append((registration, "s", "registration stages"))
    if not panels:
        return None
    figure, axes = new_figure(7.0, 2.3 * len(panels) + 0.5, len(panels), 1)
    for ax, (rows, unit, title) in zip(axes[:, 0], panels):
        draw_stacked(ax, rows, unit, title)
    return _save(figure, folder, "latency_per_stage.png")


def plot_transfer(sections: Mapping, folder: Path) -> Optional[str]:
    """Upload bytes / raw per image and writer; response bytes against a full label volume."""
    codecs, uploads = figures(sections, "codecs"), figures(sections, "uploads")
    images = [(row["name"], row) for row in (codecs or {}).get("volumes", {}).values()
              if "label map" not in row["name"] and "mask" not in row["name"]]
    responses = None
    for row in (uploads or {}).get("images", {}).values():
        responses = row.get("responses") or responses
    if not images and not responses:
        return None
    count = (1 if images else 0) + (1 if responses else 0)
    figure, axes = new_figure(6.0 * count, 3.8, 1, count)
    ax_list = list(axes[0])
    if images:
        ax = ax_list.pop(0)
        width = 0.8 / 3
        for index, writer in enumerate(("1.0", "format 1", "format 2")):
            xs = [n + (index - 1) * width for n in range(len(images))]
            ax.bar(xs, [row["writers"][writer]["bytes"] / row["raw_bytes"] for _, row in images], width,
                   color=WRITER_COLOURS[writer], label=writer)
        if codecs and "phantom" in codecs["volumes"]:
            position = list(codecs["volumes"]).index("phantom")
            ax.plot([position - 0.45, position + 0.45], [codecs["phantom_floor"]] * 2, "k:", label="noise floor")
        ax.set_xticks(range(len(images)))
        ax.set_xticklabels([name.replace(" int16", "").replace(" float32", "") for name, _ in images],
                           rotation=25, ha="right", fontsize=7)
        ax.set_ylabel("upload bytes / raw bytes")
        ax.set_title("uploads: wire / raw by writer (lower is better)", fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, axis="y")
    if responses:
        ax = ax_list.pop(0)
        bars = {f"{e} click (median)": d["median_bytes"] for e, d in responses["engines"].items()}
        bars.update({f"label map message ({e} segments)": d["labelmap_message_bytes"]
                     for e, d in responses["engines"].items()})
        bars["uint8 label volume, raw"] = responses["label_volume_bytes"]
        ax.barh(list(bars), list(bars.values()), color="tab:blue")
        ax.set_xscale("log")
        ax.set_xlabel("bytes (log scale)")
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title("responses on the 512×512×300 CT", fontsize=10)
    return _save(figure, folder, "transfer_bytes.png")


def plot_memory(sections: Mapping, folder: Path) -> Optional[str]:
    """Server peak memory growth during an upload against raw size; VISTA3D peak against size."""
    uploads = figures(sections, "uploads")
    vista = (figures(sections, "vista3d") or {}).get("memory")
    if not (uploads and uploads.get("memory_vs_size")) and not vista:
        return None
    count = (1 if uploads and uploads.get("memory_vs_size") else 0) + (1 if vista else 0)
    figure, axes = new_figure(5.0 * count, 3.8, 1, count)
    ax_list = list(axes[0])
    if uploads and uploads.get("memory_vs_size"):
        ax = ax_list.pop(0)
        rows = uploads["memory_vs_size"]
        raw = [r["raw_bytes"] / 1e6 for r in rows]
        ax.plot(raw, [r["hwm_growth_bytes"] / 1e6 for r in rows], "o-", label="server peak growth (VmHWM)")
        ax.plot(raw, raw, "k:", label="the volume once")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("raw volume (MB)")
        ax.set_ylabel("MB")
        ax.set_title("server memory during an upload", fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, which="both")
    if vista:
        ax = ax_list.pop(0)
        rows = vista["sizes"]
        inputs = [r["input_bytes"] / 2**30 for r in rows]
        ax.plot(inputs, [r["peak_rss_bytes"] / 2**30 for r in rows], "o-", label="peak RSS")
        ax.plot(inputs, [r["accumulator_bytes"] / 2**30 for r in rows], "s--", label="accumulator")
        for r, x in zip(rows, inputs):
            ax.annotate("×".join(map(str, r["size_ijk"])), (x, r["peak_rss_bytes"] / 2**30), fontsize=6)
        ax.set_xlabel("input volume (GiB)")
        ax.set_ylabel("GiB")
        ax.set_title(f"VISTA3D 'everything' (stand-in network, bound {vista['accumulator_mb']:.0f} MB)", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return _save(figure, folder, "memory_vs_size.png")


def plot_registration(sections: Mapping, folder: Path) -> Optional[str]:
    """Classic registration on brain_pair: Dice per structure before/after, folding."""
    classic = (figures(sections, "registration") or {}).get("classic")
    if not classic:
        return None
    labels = [str(v) for v in classic["labels"]]
    figure, axes = new_figure(6.5, 0.2 * len(labels) + 1.4)
    title = registration_title(classic, "classic")
    if classic.get("shrink", 1) > 1:
        title += f" (images downsampled by {classic['shrink']})"
    draw_dice_before_after(axes[0, 0], labels, classic["dice_before"], classic["dice_after"],
                           classic.get("label_names"), title)
    return _save(figure, folder, "registration_dice.png")


def plot_gpu(sections: Mapping, folder: Path) -> Optional[str]:
    """GPU suite: SAM-Med3D encoder/decoder per precision, peak GPU memory per model."""
    gpu = figures(sections, "gpu")
    if not gpu:
        return None
    sam = gpu.get("sam_med3d", {}).get("precisions", {})
    memory = {k: v / 2**30 for k, v in gpu.get("peak_gpu_bytes", {}).items() if v}
    count = (2 if sam else 0) + (1 if memory else 0)
    if not count:
        return None
    figure, axes = new_figure(4.2 * count, 3.4, 1, count)
    ax_list = list(axes[0])
    if sam:
        for key, label in (("encoder_ms", "image encoder (one 128³ crop)"), ("decoder_median_ms", "decoder")):
            ax = ax_list.pop(0)
            ax.bar(list(sam), [sam[p][key] for p in sam], color="tab:blue")
            ax.set_ylabel("ms")
            ax.set_title(f"SAM-Med3D {label}", fontsize=10)
    if memory:
        ax = ax_list.pop(0)
        ax.barh(list(memory), list(memory.values()), color="tab:purple")
        ax.set_xlabel("peak GPU memory (GiB)")
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(gpu.get("device_name", "GPU"), fontsize=10)
    return _save(figure, folder, "gpu.png")


PLOTS = (plot_dice, plot_latency, plot_transfer, plot_memory, plot_registration, plot_gpu)


def draw_all(sections: Mapping, folder: Path) -> Dict[str, str]:
    """Every plot whose sections were measured: function name -> file name."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for plot in PLOTS:
        name = plot(sections, folder)
        if name:
            out[plot.__name__] = name
    return out


def _save(figure, folder: Path, name: str) -> str:
    save(figure, str(folder / name))
    return name
