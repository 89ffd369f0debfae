#!/usr/bin/env bash
# Set up .venv (client + backend, editable, with the test, sam, medsam, vista3d, registration and ray extras), lint the
# repository (ruff, rules in ruff.toml) and run the default test suite.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k undo   or   bash scripts/test.sh -m core
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ./client -e './backend[test,sam,medsam,vista3d,registration,ray]' -r Testing/requirements.txt
.venv/bin/ruff check --no-cache .
# The warning SWIG prints while the interpreter shuts down (itk) is not pytest's to filter.
exec .venv/bin/python -W "ignore:builtin type swigvarlink has no __module__ attribute:DeprecationWarning" \
    -m pytest Testing "$@"
