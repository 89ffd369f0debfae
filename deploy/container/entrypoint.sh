#!/bin/sh
# Container entry point. `serve` (the default command) starts only with an access token, because
# the image listens on every interface of the container (SLICERFM_HOST=0.0.0.0). The token comes
# from a file: the secret at $SLICERFM_TOKEN_FILE (default /run/secrets/slicerfm_token), or
# --token-file FILE; SLICERFM_TOKEN in the environment also works but shows in `inspect`.
# With a CUDA device asked for (SLICERFM_DEVICE or --device), serve first checks that torch sees
# a GPU. Any other command (engines, weights, evaluate, ...) goes to slicerfm-backend unchanged.
set -eu

fail() {
    echo "slicerfm: $*" >&2
    exit 64
}

# A token file that is absent, unreadable or blank is refused here: the server strips the file's
# whitespace, and a blank token would leave it open to anyone who can reach the port.
check_token_file() {
    [ -e "$1" ] || return 1
    [ -r "$1" ] || fail "the token file $1 is not readable by user $(id -un) (uid $(id -u));" \
                        "make it readable by that uid (e.g. chown $(id -u) or chmod 0444 on the host)"
    [ -n "$(tr -d '[:space:]' < "$1" | head -c 1)" ] || fail "the token file $1 is empty"
    return 0
}

if [ "$#" -eq 0 ]; then set -- serve; fi
case "$1" in -*) set -- serve "$@" ;; esac   # `run IMAGE --engines ...` means serve with options
if [ "$1" != "serve" ]; then exec slicerfm-backend "$@"; fi

given_file=""
device="${SLICERFM_DEVICE:-auto}"
previous=""
for arg in "$@"; do
    case "$arg" in
        --insecure-no-token)
            fail "--insecure-no-token is not accepted in the container image: set a token" ;;
        --token-file=*) given_file="${arg#--token-file=}" ;;
        --device=*) device="${arg#--device=}" ;;
    esac
    if [ "$previous" = "--token-file" ]; then given_file="$arg"; fi
    if [ "$previous" = "--device" ]; then device="$arg"; fi
    previous="$arg"
done

# The backend loads its engines at the first click: check a requested GPU now, not then.
case "$device" in
    cuda*)
        status=0
        python -c 'import sys
try:
    import torch
except ImportError:
    sys.exit(2)
sys.exit(0 if torch.cuda.is_available() else 3)' || status=$?
        if [ "$status" -eq 2 ]; then
            fail "device $device asked for, but this image has no torch (the CPU image serves the" \
                 "built-in engines): use the CUDA image, or SLICERFM_DEVICE=cpu"
        elif [ "$status" -ne 0 ]; then
            fail "device $device asked for, but no CUDA GPU is visible in the container: pass the" \
                 "GPUs in (docker run --gpus all; podman run --device nvidia.com/gpu=all; compose:" \
                 "deploy.resources.reservations.devices) or serve on the CPU with SLICERFM_DEVICE=cpu"
        fi ;;
esac

if [ -n "$given_file" ]; then
    check_token_file "$given_file" || fail "the token file $given_file given with --token-file does not exist"
    exec slicerfm-backend "$@"
fi
secret="${SLICERFM_TOKEN_FILE:-/run/secrets/slicerfm_token}"
if check_token_file "$secret"; then
    shift
    exec slicerfm-backend serve --token-file "$secret" "$@"
fi
if [ -n "$(printf '%s' "${SLICERFM_TOKEN:-}" | tr -d '[:space:]')" ]; then
    exec slicerfm-backend "$@"
fi
fail "no access token. This image listens on ${SLICERFM_HOST:-0.0.0.0}:${SLICERFM_PORT:-8765} and every" \
     "client must send a token. Mount one as a secret at $secret (podman/docker: --secret," \
     "compose: secrets:, Kubernetes: a Secret volume), or point SLICERFM_TOKEN_FILE at a mounted" \
     "file. Create one with: openssl rand -hex 24 > slicerfm_token"
