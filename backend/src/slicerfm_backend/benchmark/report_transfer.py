"""Report templates: upload and response sizes, codec speed, server memory against size."""

from __future__ import annotations

from typing import Mapping

from .report_format import mb, ms, not_measured, num, plot_link, section_block, table

WRITERS = ("1.0", "format 1", "format 2")


def render(sections: Mapping, plots: Mapping, folder: str) -> str:
    parts = ["## Uploads and responses", "", plot_link(plots, "plot_transfer", "upload and response bytes", folder),
             "Protocol 1.0 = ZSTD 1 + bit-shuffle, what clients sent before; format 1 = today's writer for a 1.0 "
             "server (shuffle + bytedelta for integers); format 2 = `blosc2-slicedelta`, what a client sends a "
             "server of protocol 1.1 (docs/PROTOCOL.md section 7).", ""]
    parts.append(section_block(sections, "codecs", "Wire codecs in-process: bytes and speed", 3, _codecs,
                               not_measured("`--sections codecs`")))
    parts.append(section_block(sections, "uploads", "Through a real server: uploads, memory, responses", 3, _uploads,
                               not_measured("`--sections uploads`")))
    parts.append(section_block(sections, "pump", "Slicer module: the worker pump under PythonQt's GIL", 3, _pump,
                               not_measured("`--sections pump`")))
    parts += ["### Server memory against volume size", "",
              plot_link(plots, "plot_memory", "memory against size", folder)]
    uploads = sections.get("uploads")
    if uploads:
        parts.append(_memory(uploads["figures"]))
    return "\n".join(parts)


def _codecs(f: Mapping) -> str:
    vols = f["volumes"]
    images = {k: v for k, v in vols.items() if not k.startswith(("labels", "mask"))}
    results = {k: v for k, v in vols.items() if k.startswith(("labels", "mask"))}
    lines = [f"blosc2 {f['blosc2']} (C-Blosc2 {f['c_blosc2']}); the same message written three ways and decoded "
             "again in this process (exact round trips checked). **Upload bytes** (wire message / raw):", ""]
    body = []
    for row in images.values():
        w, raw = row["writers"], row["raw_bytes"]
        body.append([row["name"], mb(raw), *(num(w[n]["bytes"] / raw, 4) for n in WRITERS),
                     num(w["format 2"]["bytes"] / w["1.0"]["bytes"])])
    lines.append(table(["image", "raw", "protocol 1.0", "format 1", "**format 2**", "format 2 / 1.0"], body))
    if "phantom" in vols:
        ratio = vols["phantom"]["writers"]["format 2"]["bytes"] / vols["phantom"]["raw_bytes"]
        lines.append(f"The phantom's Gaussian noise (σ = 10 HU) sets a floor: no lossless coder that does not know "
                     f"the noise-free phantom goes below **{f['phantom_floor']:.3f}** of raw; format 2 "
                     f"({ratio:.3f}) is within {100 * (ratio / f['phantom_floor'] - 1):.0f} % of it.\n")
    lines.append("Design notes from development (not remeasured by this command): higher ZSTD levels gained under "
                 "1 % at a third of the speed; predicting each voxel from in-plane neighbours as well as the "
                 "previous slice gained on some CTs and lost on others, so format 2 uses the slice difference only; "
                 "float images keep format 1, where a sample decides between bit-shuffle and byte-shuffle.\n")
    clock = f["clock"]
    rounds = f"{f['repeats']} round{'s' if f['repeats'] > 1 else ''}"
    lines.append(f"**Speed**: one blosc2 thread, raw MB per second of {clock} (fastest of {rounds}), "
                 "encode + decode in sequence on one core (decode includes the SHA-256 check); speed-up = median "
                 "over the rounds of the paired ratio of times:\n")
    body = []
    for row in images.values():
        raw = row["raw_bytes"] / 1e6
        cells = []
        for n in ("1.0", "format 2"):
            w = row["writers"][n]
            cells.append(f"{raw / w['encode_s']:.0f} / {raw / w['decode_s']:.0f} / "
                         f"{raw / (w['encode_s'] + w['decode_s']):.0f}")
        body.append([row["name"], *cells, f"{row['writers']['format 2']['speedup']:.2f}×"])
    lines.append(table(["image", "protocol 1.0 enc / dec / both", "format 2 enc / dec / both", "format 2 speed-up"],
                       body))
    if results:
        lines.append("**Results** (server → client) stay format 1, which protocol-1.0 clients read, with the "
                     "filters chosen per message (bit-shuffle for 0/1 masks; for label maps whichever of bit-shuffle "
                     "and no filter compresses a sample smaller):\n")
        body = [[row["name"], mb(row["raw_bytes"]), num(row["writers"]["1.0"]["bytes"] / row["raw_bytes"], 4),
                 num(row["writers"]["format 1"]["bytes"] / row["raw_bytes"], 4),
                 num(row["writers"]["format 2"]["bytes"] / row["raw_bytes"], 4)] for row in results.values()]
        lines.append(table(["result", "raw", "1.0", "**format 1 (sent)**", "format 2 (if clients read it)"], body))
    return "\n".join(lines) + "\n"


def _uploads(f: Mapping) -> str:
    lines = ["A fresh server process per image (after a 1 KB warm-up upload that pays its lazy blosc2 import). "
             "**Per wire format** (one streamed `PUT` each: encode + send + decode + SHA-256 + store, fastest of "
             f"{f['rounds']}, formats interleaved; speed-up against 1.0 in brackets):", ""]
    body = []
    for row in f["images"].values():
        formats = row.get("formats")
        if not formats:
            continue
        old = formats["1.0"]["seconds"]
        body.append([row["name"], *(f"{formats[n]['bytes']:,} B, {formats[n]['seconds'] * 1e3:,.1f} ms "
                                    f"({old / formats[n]['seconds']:.2f}×)" for n in WRITERS)])
    if body:
        lines.append(table(["image", "protocol 1.0", "format 1", "**format 2**"], body))
    lines.append("**The client's first upload** of each image (format 2):\n")
    rows = list(f["images"].values())
    header = ["", *(r["name"] for r in rows)]
    body = [["wire", *(f"{mb(r['wire_bytes'])} = {r['wire_bytes'] / r['raw_bytes']:.3f} of raw" for r in rows)],
            ["hash + content id (client)", *(f"{ms(r['hash_s'] * 1e3)} ms" for r in rows)],
            ["`upload_image` (HEAD + streamed PUT; server decodes, verifies, stores)",
             *(f"{ms(r['upload_s'] * 1e3)} ms ({r['raw_bytes'] / 1e6 / r['upload_s']:.0f} MB/s raw)" for r in rows)],
            ["first `set_image` until ready",
             *(f"{ms((r['hash_s'] + r['upload_s'] + r['attach_s']) * 1e3)} ms" for r in rows)],
            ["re-upload of the same image (hash + HEAD, no body)", *(f"{ms(r['reupload_s'] * 1e3)} ms" for r in rows)],
            ["server peak memory growth (VmHWM)",
             *(f"+{mb(r['server_hwm_after'] - r['server_hwm_before'])} = {r['hwm_growth_per_raw']:.2f} × raw"
               for r in rows)]]
    lines.append(table(header, body, "l" + "r" * len(rows)))
    for row in rows:
        responses = row.get("responses")
        if responses:
            lines.append(_responses(responses))
    return "\n".join(lines) + "\n"


def _responses(r: Mapping) -> str:
    lines = [f"**Responses per click** on the synthetic CT, against a full uint8 label volume "
             f"({mb(r['label_volume_bytes'])} raw):", ""]
    body = [[f"`{engine}` ×{d['clicks']}", f"{d['median_bytes']:,.0f}", f"{d['max_bytes']:,}",
             f"{d['median_per_label_volume']:.1e}", f"{d['labelmap_message_bytes']:,}"]
            for engine, d in r["engines"].items()]
    lines.append(table(["engine", "median bytes", "max bytes", "median / label volume",
                        "whole label map message"], body))
    lines.append("A click's answer carries only the changed box of one segment; the last column is the wire size of "
                 "exporting all those segments as one label map.")
    return "\n".join(lines) + "\n"


def _memory(f: Mapping) -> str:
    rows = f.get("memory_vs_size") or []
    if not rows:
        return ""
    body = [[r["name"], mb(r["raw_bytes"]), f"+{mb(r['hwm_growth_bytes'])}",
             f"{r['hwm_growth_bytes'] / r['raw_bytes']:.2f}"] for r in rows]
    return ("Server peak memory (VmHWM) growth during the first upload of synthetic CTs of several sizes and the "
            "images above (same run as the uploads):\n\n"
            + table(["image", "raw", "peak growth", "× raw"], body)
            + "\nThe server holds an uploaded volume once: it decodes the stream straight into the final array "
              "and undoes the slice difference in place, 256 KiB at a time. VISTA3D's memory against size is in "
              "its own section.\n")


def _pump(f: Mapping) -> str:
    lines = ["Inside Slicer the main thread keeps the GIL while Qt's event loop waits for the next timer tick, so the "
             "module's worker thread runs only when the main thread runs Python (`SlicerFM/SlicerFMLib/pump.py`). "
             "This reproduces it: the main thread loops \"one pump tick, then block holding the GIL "
             f"(`ctypes.PyDLL(None).usleep`) for the rest of the {f['interval_ms']} ms interval\" while a "
             f"`BackgroundWorker` uploads the synthetic CT ({mb(f['raw_bytes'])} raw) to a real backend process, or "
             f"makes {f['round_trips']} small requests (`client.info`, what the round trips of clicks cost). "
             f"`wait_s = 0` is the pump before the fix; the module's default is `wait_s = {f['default_wait_s']:g}` "
             "(the main thread stays free for UI events the rest of each interval, and waits only while data "
             "moves, not while a job computes on the server). Rows interleaved over "
             f"{f['repeats']} round{'s' if f['repeats'] > 1 else ''}; compare the ratios within the run:", ""]
    body = []
    clicks = {r["wait_s"]: r for r in f["round_trip_rows"]}
    old_up = next(r for r in f["upload"] if r["wait_s"] == 0.0)["median_s"]
    old_rt = clicks[0.0]["median_s"]
    for row in f["upload"]:
        wait = row["wait_s"]
        label = ("free (does not hold the GIL)" if wait is None else "pump before the fix (`wait_s = 0`)"
                 if wait == 0 else f"`wait_s = {wait:g}`" + (" (default)" if wait == f["default_wait_s"] else ""))
        rt = clicks[wait]
        up_cell = f"{row['median_s']:.2f}" + (f" = {old_up / row['median_s']:.1f}× faster" if wait else "")
        rt_cell = f"{rt['median_s']:.3f}" + (f" = {old_rt / rt['median_s']:.1f}× faster" if wait else "")
        body.append([label, up_cell, f"{row['ticks']:.0f}" if wait is not None else "–", rt_cell,
                     f"{rt['ticks']:.0f}" if wait is not None else "–"])
    lines.append(table(["main thread", "upload, s (median)", "ticks", f"{f['round_trips']} round trips, s (median)",
                        "ticks"], body))
    lines.append("The upload gains less than round trips: most of its time is spent in C code that releases the GIL "
                 "for whole 4 MiB chunks (hashing, blosc2 compression, socket writes), so the old pump starved it "
                 "only between chunks; a click's round trips need the GIL at every step (send, receive, parse). "
                 "`Testing/module/test_pump_gil.py` checks the same condition by counting ticks (no timing "
                 "assertion).")
    return "\n".join(lines) + "\n"
