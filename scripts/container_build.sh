#!/usr/bin/env bash
# Build a SlicerFM backend image with podman on a machine that cannot pull from a registry.
#
#   bash scripts/container_build.sh cpu|cuda [extra podman build arguments...]
#   e.g. bash scripts/container_build.sh cpu --build-arg EXTRAS=sam
#
# Without SLICERFM_BASE_IMAGE it makes the base itself: debootstrap a Debian bookworm root
# (Debian's Python 3.11) and `podman import` it as localhost/slicerfm-base:bookworm (once; kept
# in the store). The build runs with --isolation=chroot (no OCI runtime needed) and passes the
# host's CA bundle as the build secret pip_ca, mounted for the pip step only, so pip works
# behind a TLS-intercepting proxy; it is never part of the image. Prints time and image size.
#
# Environment:
#   SLICERFM_CONTAINER_ROOT  podman/buildah store used here (default build/containers in the
#                            repository; kept apart from the machine's default store)
#   SLICERFM_BASE_IMAGE      base image already in that store (skips debootstrap)
#   SLICERFM_DEBIAN_MIRROR   mirror for debootstrap (default http://deb.debian.org/debian)
#   SLICERFM_BUILD_CA        CA bundle for pip's step (default /etc/ssl/certs/ca-certificates.crt;
#                            empty: none)
#   SLICERFM_IMAGE           tag to build (default localhost/slicerfm-backend:<flavour>)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/container_lib.sh

flavour="${1:-}"
case "$flavour" in
    cpu|cuda) shift ;;
    *) echo "usage: $0 cpu|cuda [podman build arguments...]" >&2; exit 2 ;;
esac
require_tools podman buildah
image="${SLICERFM_IMAGE:-localhost/slicerfm-backend:$flavour}"

base="${SLICERFM_BASE_IMAGE:-}"
if [ -z "$base" ]; then
    base=localhost/slicerfm-base:bookworm
    if ! pm image exists "$base"; then
        require_tools debootstrap
        require_root "debootstrap"
        rootfs="$CONTAINER_ROOT/bookworm-rootfs"
        rm -rf "$rootfs"
        started=$(date +%s)
        echo "debootstrap: Debian bookworm minbase with python3 -> $rootfs"
        debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm \
            "$rootfs" "${SLICERFM_DEBIAN_MIRROR:-http://deb.debian.org/debian}" > "$CONTAINER_ROOT/debootstrap.log" 2>&1 \
            || { tail -20 "$CONTAINER_ROOT/debootstrap.log" >&2; echo "error: debootstrap failed (log: $CONTAINER_ROOT/debootstrap.log)" >&2; exit 1; }
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -c . | pm import --change 'CMD ["/bin/bash"]' - "$base" > /dev/null
        rm -rf "$rootfs"
        echo "base $base made in $(( $(date +%s) - started )) s"
    fi
fi

ca_args=()
ca="${SLICERFM_BUILD_CA-/etc/ssl/certs/ca-certificates.crt}"
if [ -n "$ca" ]; then
    [ -r "$ca" ] || { echo "error: SLICERFM_BUILD_CA=$ca is not readable" >&2; exit 1; }
    ca_args=(--secret "id=pip_ca,src=$ca")
fi

started=$(date +%s)
pm build --isolation=chroot --format docker --pull=never --layers=false \
    --build-arg "BASE=$base" "${ca_args[@]}" \
    -f "deploy/container/Containerfile.$flavour" -t "$image" "$@" .
seconds=$(( $(date +%s) - started ))
size=$(pm image inspect "$image" --format '{{.Size}}')
echo "built $image from $base in $seconds s; image size $(( size / 1000000 )) MB ($size bytes), load: $(cut -d' ' -f1-3 /proc/loadavg)"
