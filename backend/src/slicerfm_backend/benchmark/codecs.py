"""Wire codecs side by side, in-process: bytes on the wire and speed, protocol 1.0's format
against today's (no server, no network).

For each array, three ways of writing the same message:

* ``1.0``: what protocol-1.0 writers sent -- format 1, codec ``blosc2``, ZSTD level 1 +
  bit-shuffle for every dtype;
* ``format 1``: today's writer for a reader of format 1 (a server of protocol 1.0, and every
  response a server sends) -- ``blosc2`` with the filters chosen per dtype;
* ``format 2``: ``wire.best_codec`` for a reader of format 2 (a server of protocol 1.1) --
  ``blosc2-slicedelta`` for integer images, the format-1 writer otherwise.

Speeds are MB of raw data per second: ``enc`` (writing the message; the SHA-256 is computed
once beforehand), ``dec`` (``wire.decode``: decompress, undo the transform, verify the
SHA-256) and ``both`` = raw / (t_enc + t_dec), end to end on one core. With one blosc2
thread all the work runs in the measuring thread and times are its CPU time
(``time.thread_time``), so other processes on a shared machine do not count. Each time is
the fastest of ``repeats`` rounds, the writers interleaved in every round; the speed-up is
the median over rounds of the paired ratio of times.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np


def protocol_1_0_pieces(array: np.ndarray, sha256: str, meta: Optional[dict] = None) -> Iterator[bytes]:
    """The message a protocol-1.0 writer sent, piece by piece: format 1, ZSTD 1 + bit-shuffle
    for every dtype (its ``wire.encode_iter`` as of commit 35fca06)."""
    import blosc2

    from slicerfm_client import wire

    chunk_bytes = wire.DEFAULT_CHUNK_BYTES - wire.DEFAULT_CHUNK_BYTES % array.itemsize
    header = wire.Header(dtype=array.dtype.name, shape=array.shape, codec=wire.CODEC_BLOSC2,
                         chunk_bytes=chunk_bytes, sha256=sha256, meta=meta or {}).to_json()
    yield wire.MAGIC + len(header).to_bytes(4, "little") + header
    raw = wire.byte_view(array)
    for offset in range(0, len(raw), chunk_bytes):
        data = blosc2.compress2(raw[offset : offset + chunk_bytes], typesize=array.itemsize,
                                codec=blosc2.Codec.ZSTD, clevel=1, filters=[blosc2.Filter.BITSHUFFLE])
        yield len(data).to_bytes(4, "little") + data


Writer = Callable[[np.ndarray, str, Optional[dict]], Iterator[bytes]]


def writers() -> Dict[str, Writer]:
    """writer name -> ``pieces(array, sha256, meta)``, the message as an iterator of bytes."""
    from slicerfm_client import wire

    return {
        "1.0": protocol_1_0_pieces,
        "format 1": lambda array, sha, meta=None: wire.encode_iter(array, meta, sha256=sha, codec=wire.CODEC_BLOSC2),
        "format 2": lambda array, sha, meta=None: wire.encode_iter(
            array, meta, sha256=sha, codec=wire.best_codec(array.dtype, 2)),
    }


def measure_array(array: np.ndarray, repeats: int, clock: Callable[[], float]) -> Dict[str, dict]:
    """writer -> ``{"bytes", "encode_s", "decode_s", "speedup"}`` (fastest round; speed-up
    over 1.0 as the median of paired ratios); asserts exact round trips."""
    from slicerfm_client import wire

    sha = wire.array_sha256(array)
    times: Dict[str, List[Tuple[float, float]]] = {name: [] for name in writers()}
    sizes: Dict[str, int] = {}
    for _ in range(repeats):
        for name, write in writers().items():
            t0 = clock()
            message = b"".join(write(array, sha))
            t1 = clock()
            _, decoded = wire.decode(message)
            t2 = clock()
            if decoded.tobytes() != array.tobytes():
                raise AssertionError(f"{name}: the round trip changed the data")
            sizes[name] = len(message)
            times[name].append((t1 - t0, t2 - t1))
            del message, decoded
    old = [sum(t) for t in times["1.0"]]
    return {name: {"bytes": sizes[name], "encode_s": min(t[0] for t in rounds),
                   "decode_s": min(t[1] for t in rounds),
                   "speedup": float(np.median([o / sum(t) for o, t in zip(old, rounds)]))}
            for name, rounds in times.items()}


def read_volume(path, dtype=None) -> np.ndarray:
    """A volume file as a contiguous numpy ``(K, J, I)`` array (optionally cast)."""
    import SimpleITK as sitk

    array = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    return np.ascontiguousarray(array if dtype is None else array.astype(dtype))


def read_dicom_series(folder) -> Tuple[np.ndarray, np.ndarray]:
    """A DICOM series as ``(array (K, J, I), ijk_to_ras)``."""
    import SimpleITK as sitk

    from ..imaging import ijk_to_ras_from_sitk

    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(folder))
    if not names:
        raise SystemExit(f"no DICOM series in {folder}; set SLICERFM_DATA to the shared data folder")
    reader.SetFileNames(names)
    image = reader.Execute()
    return np.ascontiguousarray(sitk.GetArrayFromImage(image)), ijk_to_ras_from_sitk(image)


def volumes() -> Dict[str, Tuple[str, Callable[[], np.ndarray]]]:
    """key -> (name printed, loader), in the order printed."""
    from .common import data_file
    from .phantom import make_synthetic_ct

    def ct(name):
        return data_file(f"abdomen_ct/{name}")

    return {
        "phantom": ("phantom 300x512x512 int16", lambda: make_synthetic_ct()[0]),
        "sample_ct": ("sample CT 112x101x122 int16", lambda: read_volume(ct("example_ct.nii.gz"), np.int16)),
        "dicom_ct": ("small real CT (DICOM) 20x512x512 int16", lambda: read_dicom_series(ct("example_ct_dicom"))[0]),
        "mr": ("MR 20x91x117 int16", lambda: read_volume(ct("example_mr_sm.nii.gz"))),
        "flair": ("FLAIR MR 104x160x160 float32",
                  lambda: read_volume(data_file("brain_flair/BraTS2021_01646_img.nii.gz"))),
        "t1": ("T1 MR [0,1] 224x192x160 float32",
               lambda: read_volume(data_file("brain_pair/subjA_vxm_T1norm.nii.gz"))),
        "labels61": ("label map, 61 labels, uint8",
                     lambda: read_volume(ct("example_seg_fast_force_split.nii.gz"), np.uint8)),
        "labels31": ("label map, 31 labels, 20x512x512 uint8",
                     lambda: read_volume(ct("example_seg_dicom.nii.gz"), np.uint8)),
        "mask": ("0/1 mask (liver) uint8",
                 lambda: (read_volume(ct("example_seg_fast_force_split.nii.gz")) == 5).astype(np.uint8)),
    }


def measure(keys: Optional[Sequence[str]] = None, repeats: int = 5, threads: int = 1, log=print) -> dict:
    """Every volume of :func:`volumes` (or those in ``keys``): raw bytes and per-writer figures."""
    import blosc2

    from .phantom import noise_entropy_floor

    blosc2.set_nthreads(threads)
    clock = time.thread_time if threads == 1 else time.perf_counter
    catalogue = volumes()
    rows = {}
    for key in keys or list(catalogue):
        name, load = catalogue[key]
        array = load()
        rows[key] = {"name": name, "raw_bytes": int(array.nbytes), "writers": measure_array(array, repeats, clock)}
        log(f"  {name}: format 2 {rows[key]['writers']['format 2']['bytes'] / array.nbytes:.4f} of raw")
        del array
    figures = {"blosc2": blosc2.__version__, "c_blosc2": blosc2.VERSION_STRING, "threads": threads,
               "clock": "thread CPU time" if threads == 1 else "wall time", "repeats": repeats,
               "phantom_floor": noise_entropy_floor(),
               "volumes": rows}
    figures["summary"] = {f"{key}_format2_ratio": row["writers"]["format 2"]["bytes"] / row["raw_bytes"]
                          for key, row in rows.items()}
    figures["summary"].update({f"{key}_format2_speedup": row["writers"]["format 2"]["speedup"]
                               for key, row in rows.items()})
    return figures


def print_figures(figures: dict) -> None:
    """The table of ``benchmarks/wire_codecs.py``."""
    print(f"blosc2 {figures['blosc2']} (C-Blosc2 {figures['c_blosc2']}), {figures['threads']} blosc2 threads; "
          f"MB of raw data per second of {figures['clock']}, fastest of {figures['repeats']}")
    print("per writer: wire/raw, enc MB/s, dec MB/s, enc+dec MB/s; last: format 2 bytes / 1.0 bytes, "
          "speed-up end to end over 1.0 of format 2 and of format 1 (median of the rounds' ratios)")
    print(f"{'array':<40} {'raw MB':>7} | {'1.0 (bit-shuffle)':^24} | {'format 1 (per dtype)':^24} | "
          f"{'format 2 (best codec)':^24} | {'bytes':>5} {'f2 x':>5} {'f1 x':>5}")
    for key, row in figures["volumes"].items():
        raw = row["raw_bytes"]
        mb = raw / 1e6
        cells = []
        for writer in row["writers"].values():
            enc, dec = writer["encode_s"], writer["decode_s"]
            cells.append(f"{writer['bytes'] / raw:6.4f} {mb / enc:5.0f} {mb / dec:5.0f} {mb / (enc + dec):5.0f}")
        w = row["writers"]
        print(f"{row['name']:<40} {mb:7.1f} | " + " | ".join(cells)
              + f" | {w['format 2']['bytes'] / w['1.0']['bytes']:5.3f} {w['format 2']['speedup']:5.2f}"
              + f" {w['format 1']['speedup']:5.2f}")
        if key == "phantom":
            print(f"{'  (noise entropy floor of the phantom)':<40} {'':7} | {figures['phantom_floor']:6.4f}")
