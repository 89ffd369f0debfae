"""uniGradICON pipeline cost on the CPU with random weights: network time versus total time,
and peak memory, on brain_pair (subject A moving onto subject B, 160x192x224 at 1 mm).

The weights are random (the released ones are not needed for timing): the package's network
with every U-Net's last layer given small random values, saved in the released layout and
loaded through the engine's real loading path. Run from the repository root:

    .venv/bin/python benchmarks/registration_gradicon_cpu.py [--threads 2] [--io-steps 0]
        [--shape 175] [--output-grid fixed|native] [--repeats 1] [--device cpu] [--upstream]

``model`` is the network time (forward, and IO steps when asked); ``overhead`` is everything
else the engine does (normalisation, resize, field conversion to RAS on the fixed grid,
negative-Jacobian fraction) as a share of the total.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import proc_status, require_data  # noqa: E402


def random_checkpoint(shape, path: Path) -> Path:
    import torch

    from slicerfm_backend.registration.gradicon.model import build_network

    torch.manual_seed(0)
    network = build_network(shape)
    with torch.no_grad():
        for name, parameter in network.regis_net.named_parameters():
            if "lastConv" in name:
                parameter.normal_(0.0, 1e-3)
    torch.save(network.regis_net.state_dict(), str(path))
    return path


def upstream(checkpoint, shape, fixed, fixed_ijk_to_ras, moving, moving_ijk_to_ras) -> None:
    """Time ``unigradicon.preprocess`` + ``icon_registration.itk_wrapper.register_pair`` (no
    IO) on the same pair and weights; the package computes both directions."""
    import contextlib
    import io

    import itk
    import numpy as np
    import torch
    import unigradicon
    from icon_registration import itk_wrapper

    from slicerfm_backend.imaging import sitk_geometry_from_ijk_to_ras

    def to_itk(array, ijk_to_ras):
        image = itk.image_from_array(np.ascontiguousarray(array, dtype=np.float32))
        spacing, origin, direction = sitk_geometry_from_ijk_to_ras(ijk_to_ras)
        image.SetSpacing(spacing)
        image.SetOrigin(origin)
        image.SetDirection(itk.matrix_from_array(np.array(direction).reshape(3, 3)))
        return image

    network = unigradicon.make_network([1, 1, *shape], include_last_step=True)
    network.regis_net.load_state_dict(torch.load(str(checkpoint), weights_only=True))
    network.eval()
    fixed_image, moving_image = to_itk(fixed, fixed_ijk_to_ras), to_itk(moving, moving_ijk_to_ras)
    unigradicon.preprocess(fixed_image, "mri")  # ITK's lazy loading, not counted
    start = time.perf_counter()
    fixed_in = unigradicon.preprocess(fixed_image, "mri")
    moving_in = unigradicon.preprocess(moving_image, "mri")
    with contextlib.redirect_stdout(io.StringIO()):
        itk_wrapper.register_pair(network, moving_in, fixed_in, finetune_steps=None)
    print(f"upstream preprocess + register_pair (no IO): {time.perf_counter() - start:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--io-steps", type=int, default=0)
    parser.add_argument("--similarity", default="lncc")
    parser.add_argument("--shape", type=int, default=175, help="network side (default 175)")
    parser.add_argument("--output-grid", default="fixed", choices=("fixed", "native"))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--upstream", action="store_true",
                        help="also time the package's own pipeline (preprocess + register_pair, no IO)")
    args = parser.parse_args()

    import numpy as np
    import torch

    from slicerfm_backend.imaging import read_image
    from slicerfm_backend.registration.base import RegistrationImage, RegistrationRequest
    from slicerfm_backend.registration.gradicon.engine import UniGradICONEngine

    torch.set_num_threads(args.threads)
    data = require_data() / "brain_pair"
    fixed, fixed_ijk_to_ras, _ = read_image(str(data / "subjB_l2r_T1norm.nii.gz"))
    moving, moving_ijk_to_ras, _ = read_image(str(data / "subjA_vxm_T1norm.nii.gz"))
    shape = (args.shape,) * 3
    print(f"brain_pair: moving A {moving.shape} onto fixed B {fixed.shape}; network {shape}; "
          f"device {args.device}; torch threads {torch.get_num_threads()}; io_steps {args.io_steps}")

    with tempfile.TemporaryDirectory() as folder:
        checkpoint = random_checkpoint(shape, Path(folder) / "Step_2_final.trch")
        engine = UniGradICONEngine(args.device, {"checkpoint": str(checkpoint), "network_shape": shape})
        start = time.perf_counter()
        engine.load()
        print(f"load (build + checkpoint): {time.perf_counter() - start:.1f} s")
        if args.upstream:
            upstream(checkpoint, shape, fixed, fixed_ijk_to_ras, moving, moving_ijk_to_ras)
    request = RegistrationRequest(
        RegistrationImage(fixed, fixed_ijk_to_ras, "MR"), RegistrationImage(moving, moving_ijk_to_ras, "MR"),
        io_steps=args.io_steps, similarity=args.similarity, output_grid=args.output_grid)

    def progress(stage, done, total):
        if stage == "instance optimisation" and total:
            print(f"  IO step {done}/{total} at {time.perf_counter() - run_start:.1f} s", flush=True)

    for repeat in range(args.repeats):
        run_start = time.perf_counter()
        result = engine.register(request, progress)
        t = result.timings_s
        overhead = t["total"] - t["model"]
        parts = ", ".join(f"{k} {v:.2f} s" for k, v in t.items())
        print(f"run {repeat + 1}: {parts}")
        print(f"  model {t['model']:.1f} s of total {t['total']:.1f} s; overhead outside the network "
              f"{overhead:.2f} s = {100 * overhead / t['total']:.1f}% of the total")
        print(f"  field {result.field.shape} float32 ({result.field.vectors_ras.nbytes / 2**20:.0f} MiB); "
              f"negative-Jacobian fraction {result.neg_jacobian_fraction:.5f}; "
              f"max |d| {float(np.abs(result.field.vectors_ras).max()):.2f} mm")
        if "gpu_peak_memory_bytes" in result.details:
            print(f"  GPU peak memory {result.details['gpu_peak_memory_bytes'] / 2**30:.2f} GiB")
    memory = proc_status(os.getpid())
    print(f"process peak RSS (VmHWM) {memory['VmHWM'] / 2**30:.2f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
