"""Regenerate ``wire_format1.npz``: messages written by the protocol-1.0 wire encoder.

The fixture holds what an older client (or server) sends -- format-1 messages of the
``blosc2`` (ZSTD 1 + bit-shuffle) and ``raw`` codecs -- so that tests can prove today's
reader still decodes them. It was made with ``client/slicerfm_client/wire.py`` as of commit
35fca06 (protocol 1.0), loaded straight from git::

    .venv/bin/python Testing/client/data/make_wire_format1.py 35fca06

Each case ``NAME`` is stored as ``NAME.message`` (the message bytes, uint8) and
``NAME.array`` (the array that was encoded).
"""

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def old_wire(commit: str):
    source = subprocess.run(["git", "show", f"{commit}:client/slicerfm_client/wire.py"],
                            check=True, capture_output=True, cwd=HERE).stdout
    path = Path(tempfile.mkdtemp()) / "wire_format1.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("wire_format1", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def cases():
    rng = np.random.default_rng(17)
    ct = rng.normal(40, 10, (6, 7, 9)).astype(np.int16)
    ct[:, :2] = -1024
    mask = np.zeros((5, 6, 7), np.uint8)
    mask[1:4, 2:5, 1:6] = 1
    floats = rng.normal(0, 1, (3, 4, 5)).astype(np.float32)
    floats.reshape(-1)[:4] = [np.nan, np.inf, -np.inf, -0.0]
    floats.reshape(-1)[4:5].view(np.uint32)[:] = 0x7FC01234  # a NaN with a payload
    labels = np.arange(24, dtype=np.uint16).reshape(2, 3, 4) * 700
    geometry = {"ijk_to_ras": np.diag([-0.8, -0.8, 2.5, 1.0]).tolist(), "modality": "CT"}
    return {
        "ct_image_upload": (ct, geometry, {"chunk_bytes": 200}),
        "seed_mask": (mask, {"segment": "liver", "bbox_kji": [[0, 0, 0], [5, 6, 7]]}, {}),
        "float_nan_payloads": (floats, {}, {"chunk_bytes": 64}),
        "raw_label_map": (labels, {"segments": []}, {"codec": "raw"}),
        "empty_mask": (np.zeros((0, 0, 0), np.uint8), {"bbox_kji": None}, {}),
    }


def main(commit: str) -> None:
    wire = old_wire(commit)
    stored = {}
    for name, (array, meta, options) in cases().items():
        stored[f"{name}.message"] = np.frombuffer(wire.encode(array, meta, **options), np.uint8)
        stored[f"{name}.array"] = array
    np.savez_compressed(HERE / "wire_format1.npz", **stored)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "35fca06")
