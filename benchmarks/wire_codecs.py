"""Wire codecs side by side: bytes on the wire and speed, protocol 1.0's format against today's.

In-process (no server, no network), on the volumes a SlicerFM user uploads and the results
a server sends back. For each array, three ways of writing the same message:

* ``1.0``: what protocol-1.0 writers sent -- format 1, codec ``blosc2``, ZSTD level 1 +
  bit-shuffle for every dtype;
* ``format 1``: today's writer for a reader of format 1 (a server of protocol 1.0, and every
  response a server sends) -- ``blosc2`` with the filters chosen per dtype (shuffle +
  bytedelta for multi-byte integers; for floats and label maps bit-shuffle or none/shuffle,
  whichever compresses a 1 MiB sample smaller; bit-shuffle for 0/1 masks);
* ``format 2``: ``wire.best_codec`` for a reader of format 2 (a server of protocol 1.1) --
  ``blosc2-slicedelta`` for integer images (zigzag difference from the previous slice,
  byte-shuffle, ZSTD 1), the format-1 writer otherwise.

It prints wire bytes / raw bytes, and speeds in MB of raw data per second: ``enc`` (writing
the message, SHA-256 excluded: it is the same for all and computed once beforehand), ``dec``
(``wire.decode``: decompress, undo the transform, verify the SHA-256), and ``enc+dec``,
their sum end to end on one core (``raw / (t_enc + t_dec)``; in an upload both run at once
on two machines, so this is the conservative figure). blosc2 runs ``--threads`` threads;
with the default 1 all the work runs in the measuring thread and the times are that
thread's CPU time (``time.thread_time``), so that other processes on a shared machine do
not count (with more threads: wall time). Each time is the fastest of ``--repeats`` rounds,
with the three writers interleaved in every round so that load hits them alike; compare
speeds as ratios within one run.

Volumes (``$SLICERFM_DATA``, else ``../shared/data``):

* the 512x512x300 int16 CT-like phantom of ``protocol_overhead.py`` (noise sigma 10 HU:
  its entropy, 5.37 bits a voxel, is a floor of 0.336 of raw for any lossless coder that
  does not know the noise-free phantom; printed beside it);
* the sample CT ``abdomen_ct/example_ct.nii.gz`` (112x101x122, 3 mm, cast to int16);
* a small real CT: the DICOM series ``abdomen_ct/example_ct_dicom`` (20 slices 512x512,
  0.98 x 0.98 x 2 mm, int16);
* an MR (``example_mr_sm``, int16), float32 MR (BraTS FLAIR; brain_pair T1 in [0, 1]);
* results: uint8 label maps (TotalSegmentator labels of the sample data, 61 and 31
  structures) and a 0/1 mask (the liver of one of them).

Run::

    .venv/bin/python benchmarks/wire_codecs.py                 # ~2 min on 2 cores
    .venv/bin/python benchmarks/wire_codecs.py --only ct --repeats 5
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import DATA, require_data  # noqa: E402

PHANTOM_NOISE_SIGMA_HU = 10.0


def protocol_1_0_pieces(array: np.ndarray, sha256: str) -> Iterator[bytes]:
    """The message a protocol-1.0 writer sent, piece by piece: format 1, ZSTD 1 + bit-shuffle
    for every dtype (its ``wire.encode_iter`` as of commit 35fca06)."""
    import blosc2

    from slicerfm_client import wire

    chunk_bytes = wire.DEFAULT_CHUNK_BYTES - wire.DEFAULT_CHUNK_BYTES % array.itemsize
    header = wire.Header(dtype=array.dtype.name, shape=array.shape, codec=wire.CODEC_BLOSC2,
                         chunk_bytes=chunk_bytes, sha256=sha256, meta={}).to_json()
    yield wire.MAGIC + len(header).to_bytes(4, "little") + header
    raw = wire.byte_view(array)
    for offset in range(0, len(raw), chunk_bytes):
        data = blosc2.compress2(raw[offset : offset + chunk_bytes], typesize=array.itemsize,
                                codec=blosc2.Codec.ZSTD, clevel=1, filters=[blosc2.Filter.BITSHUFFLE])
        yield len(data).to_bytes(4, "little") + data


def writers() -> Dict[str, Callable[[np.ndarray, str, Optional[dict]], Iterator[bytes]]]:
    """writer name -> ``pieces(array, sha256, meta)``, the message as an iterator of bytes."""
    from slicerfm_client import wire

    def protocol_1_0(array, sha, meta=None):
        pieces = protocol_1_0_pieces(array, sha)
        if meta:  # the 1.0 writer's header with meta, as an upload has it
            first = next(pieces)
            header = wire.Header.from_json(first[8:])
            header.meta = meta
            raw = header.to_json()
            pieces = iter([wire.MAGIC + len(raw).to_bytes(4, "little") + raw, *pieces])
        return pieces

    return {
        "1.0": protocol_1_0,
        "format 1": lambda array, sha, meta=None: wire.encode_iter(array, meta, sha256=sha, codec=wire.CODEC_BLOSC2),
        "format 2": lambda array, sha, meta=None: wire.encode_iter(
            array, meta, sha256=sha, codec=wire.best_codec(array.dtype, 2)),
    }


def measure(array: np.ndarray, repeats: int, clock: Callable[[], float]) -> Dict[str, Tuple[int, float, float, float]]:
    """writer -> (wire bytes, encode s, decode s, speed-up over 1.0) by ``clock``; asserts
    exact round trips. The times are the fastest round's; the speed-up is the median over
    rounds of ``(enc + dec of 1.0) / (enc + dec of this writer)`` in the same round."""
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
    # The fastest round: other processes only ever add time (cache misses, even in CPU time);
    # the paired ratio cancels what a round's load did to all writers alike.
    old = [sum(t) for t in times["1.0"]]
    return {name: (sizes[name], min(t[0] for t in rounds), min(t[1] for t in rounds),
                   float(np.median([o / sum(t) for o, t in zip(old, rounds)])))
            for name, rounds in times.items()}


def phantom_floor() -> float:
    """Entropy of round(N(0, sigma^2)) in bits, as a fraction of 16 bits."""
    sigma = PHANTOM_NOISE_SIGMA_HU
    cdf = [0.5 * (1 + math.erf((k + 0.5) / (sigma * math.sqrt(2)))) for k in range(-100, 100)]
    probabilities = np.diff([0.0] + cdf + [1.0])
    probabilities = probabilities[probabilities > 0]
    return float(-(probabilities * np.log2(probabilities)).sum() / 16)


def read_dicom_series(folder: Path) -> Tuple[np.ndarray, np.ndarray]:
    """A DICOM series as ``(array (K, J, I), ijk_to_ras)``."""
    import SimpleITK as sitk

    from slicerfm_backend.imaging import ijk_to_ras_from_sitk

    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(folder))
    if not names:
        raise SystemExit(f"no DICOM series in {folder}; set SLICERFM_DATA to the shared data folder")
    reader.SetFileNames(names)
    image = reader.Execute()
    return np.ascontiguousarray(sitk.GetArrayFromImage(image)), ijk_to_ras_from_sitk(image)


def read_volume(path: Path, dtype=None) -> np.ndarray:
    import SimpleITK as sitk

    if not path.exists():
        raise SystemExit(f"{path} not found; set SLICERFM_DATA to the shared data folder")
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    return np.ascontiguousarray(array if dtype is None else array.astype(dtype))


def volumes(only: List[str]) -> Dict[str, Callable[[], np.ndarray]]:
    """name -> loader, in the order printed."""
    from protocol_overhead import make_synthetic_ct

    ct = DATA / "abdomen_ct"
    catalogue = {
        "phantom 300x512x512 int16": lambda: make_synthetic_ct()[0],
        "sample CT 112x101x122 int16": lambda: read_volume(ct / "example_ct.nii.gz", np.int16),
        "small real CT (DICOM) 20x512x512 int16": lambda: read_dicom_series(ct / "example_ct_dicom")[0],
        "MR 20x91x117 int16": lambda: read_volume(ct / "example_mr_sm.nii.gz"),
        "FLAIR MR 104x160x160 float32": lambda: read_volume(DATA / "brain_flair" / "BraTS2021_01646_img.nii.gz"),
        "T1 MR [0,1] 224x192x160 float32": lambda: read_volume(DATA / "brain_pair" / "subjA_vxm_T1norm.nii.gz"),
        "label map, 61 labels, uint8": lambda: read_volume(ct / "example_seg_fast_force_split.nii.gz", np.uint8),
        "label map, 31 labels, 20x512x512 uint8": lambda: read_volume(ct / "example_seg_dicom.nii.gz", np.uint8),
        "0/1 mask (liver) uint8": lambda: (read_volume(ct / "example_seg_fast_force_split.nii.gz") == 5)
        .astype(np.uint8),
    }
    return {name: load for name, load in catalogue.items() if not only or any(word in name for word in only)}


def print_row(name: str, raw: int, results: Dict[str, Tuple[int, float, float, float]]) -> None:
    mb = raw / 1e6
    cells = []
    for writer, (size, t_enc, t_dec, _) in results.items():
        cells.append(f"{size / raw:6.4f} {mb / t_enc:5.0f} {mb / t_dec:5.0f} {mb / (t_enc + t_dec):5.0f}")
    print(f"{name:<40} {mb:7.1f} | " + " | ".join(cells)
          + f" | {results['format 2'][0] / results['1.0'][0]:5.3f} {results['format 2'][3]:5.2f}"
          + f" {results['format 1'][3]:5.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timing rounds (the fastest counts)")
    parser.add_argument("--threads", type=int, default=1, help="blosc2 threads (default 1: per core)")
    parser.add_argument("--only", nargs="*", default=[], help="volumes whose name contains one of these words")
    args = parser.parse_args(argv)
    require_data()
    import blosc2

    blosc2.set_nthreads(args.threads)
    # With one blosc2 thread all the work runs in this thread: its CPU time is what the work
    # costs, whatever else the machine runs (wall time on a shared machine is not).
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    print(f"blosc2 {blosc2.__version__} (C-Blosc2 {blosc2.VERSION_STRING}), {blosc2.nthreads} blosc2 threads, "
          f"numpy {np.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print("per writer: wire/raw, enc MB/s, dec MB/s, enc+dec MB/s (raw MB per "
          f"{'second of this thread' + chr(39) + 's CPU time' if args.threads == 1 else 'wall second'}; fastest of "
          f"{args.repeats}); last: format 2 bytes / 1.0 bytes, "
          "speed-up end to end over 1.0 of format 2 and of format 1 (median of the rounds' ratios)")
    print(f"{'array':<40} {'raw MB':>7} | {'1.0 (bit-shuffle)':^24} | {'format 1 (per dtype)':^24} | "
          f"{'format 2 (best codec)':^24} | {'bytes':>5} {'f2 x':>5} {'f1 x':>5}")
    for name, load in volumes(args.only).items():
        array = load()
        print_row(name, array.nbytes, measure(array, args.repeats, clock))
        if name.startswith("phantom"):
            print(f"{'  (noise entropy floor of the phantom)':<40} {'':7} | {phantom_floor():6.4f}")
        del array
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
