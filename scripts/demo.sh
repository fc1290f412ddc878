#!/usr/bin/env bash
# Set up .venv and run the main job: `cloudfiles demo` on local disk, memory and a local Dask cluster.
# Extra arguments go to `cloudfiles demo` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[all]'
exec .venv/bin/cloudfiles demo "$@"
