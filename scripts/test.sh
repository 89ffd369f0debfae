#!/usr/bin/env bash
# Set up .venv (client, backend with test/sam/medsam/vista3d/registration/bench/ray extras, web
# with its test extra, editable) and Debian's Chromium for the browser tests, lint the
# repository (ruff, rules in ruff.toml), then run the default suite.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k undo   or   bash scripts/test.sh -m core
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
CHROMIUM="${SLICERFM_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
    # The browser tests drive Debian's chromium through Playwright (never `playwright install`).
    if command -v apt-get >/dev/null; then
        SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "scripts/test.sh: Chromium is missing at $CHROMIUM and apt-get is not available;" \
             "install chromium or set SLICERFM_CHROMIUM" >&2
        exit 1
    fi
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ./client \
    -e './backend[test,sam,medsam,vista3d,registration,bench,ray]' -e './web[test]' -r Testing/requirements.txt
.venv/bin/ruff check --no-cache .
# The warning SWIG prints while the interpreter shuts down (itk) is not pytest's to filter.
exec .venv/bin/python -W "ignore:builtin type swigvarlink has no __module__ attribute:DeprecationWarning" \
    -m pytest Testing "$@"
