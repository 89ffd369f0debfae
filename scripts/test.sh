#!/usr/bin/env bash
# Set up .venv (client + backend, editable, with test, sam, medsam, vista3d, registration and ray extras) and run the default test suite.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k undo
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ./client -e './backend[test,sam,medsam,vista3d,registration,ray]' -r Testing/requirements.txt
exec .venv/bin/python -m pytest Testing "$@"
