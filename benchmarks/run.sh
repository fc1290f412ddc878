#!/usr/bin/env bash
# The side-by-side benchmark suite (issue 5) in one command:
#   bash benchmarks/run.sh            # full run (~30 min on 2 cores): results/latest.*, docs/performance.md
#   bash benchmarks/run.sh --quick    # smoke run (a few minutes): results/quick.*
# Other options go to benchmarks/run.py (see --help). The peers live in benchmarks/.venv, made here
# on first use (and refreshed when requirements.txt or pyproject.toml change), so the original
# `cloudfiles` module never shadows ours in the project's own environment.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
PYTHON="${PYTHON:-python3}"
VENV="$HERE/.venv"
STAMP="$VENV/.installed"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
want="$(cat "$HERE/requirements.txt" "$REPO/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]; then
  echo "benchmarks/run.sh: installing the peers into $VENV ..."
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt" -e "$REPO[dask]"
  echo "$want" > "$STAMP"
fi
exec "$VENV/bin/python" "$HERE/run.py" "$@"
