#!/usr/bin/env bash
# Build the CPU image here (scripts/container_build.sh) and smoke-test it (deploy/tests):
# `slicerfm-backend serve` inside it, a click through the client from outside, the health
# check, the non-root user, the token rules, the volumes, and no build-time CA bundle left.
#
#   bash scripts/container_smoke.sh            build, then test
#   SLICERFM_SMOKE_BUILD=0 bash scripts/container_smoke.sh   test the image already built
#
# Needs root (debootstrap, podman/buildah stores, a network namespace), podman, buildah,
# debootstrap, iproute2 and ../shared/data (or SLICERFM_DATA). The test runs in a private
# network namespace with only loopback up: the image listens on 0.0.0.0, which there is loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/container_lib.sh
require_tools podman buildah unshare ip
require_root "the smoke test (a network namespace, volumes owned by the image's uid)"

export SLICERFM_IMAGE="${SLICERFM_IMAGE:-localhost/slicerfm-backend:cpu}"
started=$(date +%s)
if [ "${SLICERFM_SMOKE_BUILD:-1}" != 0 ]; then
    bash scripts/container_build.sh cpu
fi
built=$(date +%s)

# The client side: slicerfm-client (and the backend's evaluation helpers) plus pytest, from
# .venv (scripts/test.sh makes it; made here when it is absent or lacks them).
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
if ! .venv/bin/python -c "import slicerfm_client, slicerfm_backend.evaluation.evaluate, pytest" 2> /dev/null; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ./client -e './backend[test]'
fi

status=0
unshare --net -- sh -c 'ip link set lo up && exec .venv/bin/python -m pytest deploy/tests -p no:cacheprovider "$@"' \
    smoke -q "$@" || status=$?
echo "container smoke: build $(( built - started )) s, tests $(( $(date +%s) - built )) s, load: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
