#!/bin/sh
# Build step shared by Containerfile.cpu and Containerfile.cuda: installs slicerfm-client and
# slicerfm-backend[$EXTRAS] into the virtual environment /opt/slicerfm.
#
# Inputs (build arguments, seen here as environment variables):
#   EXTRAS           backend extras, comma-separated ("" = the built-in engines only)
#   TORCH_VERSION    torch release the extras need (the project pins one)
#   TORCH_INDEX_URL  where that torch build comes from (CPU or CUDA wheels)
#   INDEX_URL, EXTRA_INDEX_URL, FIND_LINKS
#                    optional package sources for pip (a hospital's mirror, or local wheel
#                    folders mounted for the build); empty: PyPI
# Mounted for this step only (never part of the image):
#   /src/client, /src/backend   the sources (read-only)
#   /run/secrets/pip_ca         optional CA bundle for a TLS-intercepting proxy
#                               (build secret `pip_ca`)
set -eu

if [ -f /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi
if [ -n "${INDEX_URL:-}" ]; then export PIP_INDEX_URL="$INDEX_URL"; fi
if [ -n "${EXTRA_INDEX_URL:-}" ]; then export PIP_EXTRA_INDEX_URL="$EXTRA_INDEX_URL"; fi
if [ -n "${FIND_LINKS:-}" ]; then export PIP_FIND_LINKS="$FIND_LINKS"; fi
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

python3 -m venv /opt/slicerfm
python=/opt/slicerfm/bin/python

# pip builds a project inside its folder; the bind mounts are read-only, so build from a copy
# (without a developer's build leftovers).
work=$(mktemp -d)
cp -R /src/client /src/backend "$work/"
rm -rf "$work"/backend/src/*.egg-info "$work"/client/*.egg-info "$work"/backend/build "$work"/client/build

torch_version() { "$python" -c "import torch; print(torch.__version__)"; }

if [ -n "${EXTRAS:-}" ]; then
    # Every extra (sam, medsam, vista3d, registration) runs on torch. Install the pinned release from the
    # chosen build first, so that the extras' plain "torch==X" finds it already there.
    "$python" -m pip install --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION"
    torch_build=$(torch_version)
    "$python" -m pip install "$work/client" "$work/backend[$EXTRAS]"
    # A dependency asking for another torch would make pip swap the build (CPU for CUDA or back).
    if [ "$(torch_version)" != "$torch_build" ]; then
        echo "error: installing the extras replaced torch $torch_build with $(torch_version)" >&2
        exit 1
    fi
else
    "$python" -m pip install "$work/client" "$work/backend"
fi
rm -rf "$work"
/opt/slicerfm/bin/slicerfm-backend --version
