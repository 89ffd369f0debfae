# shellcheck shell=bash
# Shared by scripts/container_build.sh and scripts/container_smoke.sh (sourced, not run).
# podman and buildah work on their own store under $CONTAINER_ROOT, so that nothing here
# touches the machine's default store (other users' images) and `rm -rf` cleans it up.

CONTAINER_ROOT="$(mkdir -p "${SLICERFM_CONTAINER_ROOT:-build/containers}" && cd "${SLICERFM_CONTAINER_ROOT:-build/containers}" && pwd)"
export SLICERFM_CONTAINER_ROOT="$CONTAINER_ROOT"

pm() { podman --root "$CONTAINER_ROOT/storage" --runroot "$CONTAINER_ROOT/run" "$@"; }
bh() { buildah --root "$CONTAINER_ROOT/storage" --runroot "$CONTAINER_ROOT/run" "$@"; }

require_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" > /dev/null || {
            echo "error: $tool is not installed (Debian: apt-get install podman buildah debootstrap)" >&2
            exit 1
        }
    done
}

require_root() {
    [ "$(id -u)" = 0 ] || {
        echo "error: $1 needs root; run as root (here: sudo)" >&2
        exit 1
    }
}
