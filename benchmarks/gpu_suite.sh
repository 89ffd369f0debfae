#!/usr/bin/env bash
# The GPU suite: SAM-Med3D, VISTA3D, uniGradICON (and MedSAM when present) on one CUDA GPU,
# random weights, in one call, in under 8 minutes on a datacentre GPU.
# What it measures: slicerfm_backend/benchmark/gpu.py; the report: docs/BENCHMARKS.md "On a GPU".
#
#   bash benchmarks/gpu_suite.sh --prepare      # HERE, with PyPI and ../shared/data reachable:
#                                               # builds .gpu/ (packages the GPU machine lacks,
#                                               # sample data), ~45 MB, git-ignored
#   bash benchmarks/gpu_suite.sh                # THERE, on the GPU machine, from the repository
#                                               # root with .gpu/ beside it: writes $OUT/gpu.json
#                                               # (or ./gpu.json) and gpu.log
#   bash benchmarks/gpu_suite.sh --device cpu --tiny   # a dry run of every part on the CPU
#
# Then, here: slicerfm-backend benchmark --report-only --gpu-results gpu.json --out docs
#
# The GPU machine is expected to have python3 with a CUDA torch (and numpy, scipy, requests,
# scikit-image, einops, huggingface_hub, ...) but no access to any package index: everything
# else comes from .gpu/site.tar.xz (unpacked wheels for its Python, made by --prepare). With
# neither .gpu/ nor those packages it stops and says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
GPU_DIR=${SLICERFM_GPU_DIR:-$ROOT/.gpu}
PY_VERSION=${SLICERFM_GPU_PYTHON_VERSION:-3.12}
# Packages the GPU image lacks (pinned like backend/pyproject.toml), unpacked for its Python.
PACKAGES=(simpleitk==2.5.7 blosc2==4.14.1 ndindex numexpr fastapi==0.165.0 starlette opentelemetry-api
          importlib-metadata pydantic==2.14.4 pydantic-core==2.50.5 pydantic-settings==2.16.3 python-dotenv
          typing-inspection annotated-types uvicorn==0.54.0 monai==1.6.1 medim==0.1.2 appdirs
          unigradicon==1.0.6 icon_registration==1.1.9 segment-anything==1.0)
DATA_FILES=(abdomen_ct/example_ct.nii.gz abdomen_ct/example_seg_fast_force_split.nii.gz
            brain_pair/subjA_vxm_T1norm.nii.gz brain_pair/subjB_l2r_T1norm.nii.gz)

prepare() {
  local data=${SLICERFM_DATA:-$ROOT/../shared/data} site
  site=$(mktemp -d)
  trap 'rm -rf "$site"' RETURN
  mkdir -p "$GPU_DIR/data"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version "$PY_VERSION" --implementation cp --target "$site" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 "${PACKAGES[@]}"
  rm -rf "$site/bin"
  tar -C "$site" -cf - . | XZ_OPT=${XZ_OPT:--6} xz -T0 > "$GPU_DIR/site.tar.xz"  # -6: ~40 MB
  for f in "${DATA_FILES[@]}"; do
    mkdir -p "$GPU_DIR/data/$(dirname "$f")"
    cp "$data/$f" "$GPU_DIR/data/$f"
  done
  printf '%s\n' "python $PY_VERSION" "${PACKAGES[@]}" > "$GPU_DIR/MANIFEST"
  du -sh "$GPU_DIR"
  echo "ready: carry .gpu with the repository and run 'bash benchmarks/gpu_suite.sh' on the GPU machine"
}

# An import placeholder for ITK, which unigradicon imports at module level for its file
# helpers (the engine never calls them) and which is far too large (1.5 GB) to carry.
itk_placeholder() {
  local shim=$1/itk
  mkdir -p "$shim"
  cat > "$shim/__init__.py" <<'PY'
"""Placeholder written by benchmarks/gpu_suite.sh: ITK is not installed on this machine.
unigradicon and icon_registration import it at module level; the SlicerFM engine never
calls ITK, so any use of it here is an error."""


class _Missing:
    def __init__(self, name):
        self._name = name

    def __getattr__(self, name):
        return _Missing(f"{self._name}.{name}")

    def __getitem__(self, key):
        return _Missing(f"{self._name}[...]")

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"{self._name}: ITK is not installed here (GPU suite placeholder)")


def __getattr__(name):
    return _Missing(f"itk.{name}")
PY
}

run_suite() {
  local device=cuda tiny=() parts=() python=${SLICERFM_GPU_PYTHON:-}
  while [ $# -gt 0 ]; do
    case $1 in
      --device) device=$2; shift 2 ;;
      --tiny) tiny=(--tiny); shift ;;
      --parts) parts=(--parts "$2"); shift 2 ;;
      *) echo "unknown option $1" >&2; exit 2 ;;
    esac
  done
  if [ -z "$python" ]; then
    if [ "$device" = cpu ] && [ -x "$ROOT/.venv/bin/python" ]; then python=$ROOT/.venv/bin/python; else python=python3; fi
  fi
  local out=${OUT:-$ROOT} work=/tmp/slicerfm-gpu
  mkdir -p "$work" "$out"
  local extra=$work/extra
  if [ -f "$GPU_DIR/site.tar.xz" ] && [ ! -f "$work/site/.done" ]; then
    rm -rf "$work/site" && mkdir -p "$work/site"
    tar -C "$work/site" -xJf "$GPU_DIR/site.tar.xz" && touch "$work/site/.done"
  fi
  local path=$ROOT/backend/src:$ROOT/client
  [ -d "$work/site" ] && path=$path:$work/site
  if ! PYTHONPATH=$path "$python" -c "import itk" 2>/dev/null; then
    itk_placeholder "$extra"
    path=$path:$extra
  fi
  export PYTHONPATH=$path${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 SLICERFM_PROGRESS=off
  if [ -d "$GPU_DIR/data" ] && [ -z "${SLICERFM_DATA:-}" ]; then export SLICERFM_DATA=$GPU_DIR/data; fi
  "$python" - <<'PY'
import importlib, sys
missing = []
for name in ("torch", "numpy", "scipy", "SimpleITK", "blosc2", "fastapi", "uvicorn", "pydantic_settings", "requests",
             "monai", "medim", "unigradicon", "slicerfm_backend", "slicerfm_client"):
    try:
        importlib.import_module(name)
    except Exception as error:  # noqa: BLE001
        missing.append(f"{name} ({type(error).__name__}: {error})")
if missing:
    sys.exit("missing: " + "; ".join(missing) + "\nrun 'bash benchmarks/gpu_suite.sh --prepare' where PyPI is reachable")
import torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}"
      + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
PY
  # Under 8 minutes on one GPU: the suite stops itself at 7.5; gpu.json holds every part done by then.
  timeout "${SLICERFM_GPU_TIMEOUT:-450}" "$python" -m slicerfm_backend.benchmark.gpu --device "$device" \
    "${tiny[@]}" "${parts[@]}" --out "$out/gpu.json" 2>&1 | tee "$out/gpu.log"
  return "${PIPESTATUS[0]}"
}

case ${1:-} in
  --prepare) prepare ;;
  -h|--help) sed -n '2,22p' "$0" ;;
  *) run_suite "$@" ;;
esac
