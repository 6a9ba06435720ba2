#!/usr/bin/env bash
# Installs checkov, pinned, into its own virtualenv (default: .venv-checkov/ at the repo root).
#
# Why a separate venv: checkov pulls in a large dependency tree (boto3, networkx, bc-python-hcl2,
# pinned ranges of requests, packaging, ...) that may clash with the functions' pinned runtime
# and dev requirements in .venv. Nothing imports checkov: tests/infra/test_terraform.py runs its
# CLI, and calls this script when the venv is missing.
#
# Usage: scripts/install_checkov.sh            (idempotent: a complete install is left alone)
# Env:   CHECKOV_VENV  where to install (default <repo>/.venv-checkov)
#        PYTHON        interpreter that creates the venv (default python3)
set -euo pipefail
CHECKOV_VERSION=3.3.30
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${CHECKOV_VENV:-$ROOT/.venv-checkov}
PY=${PYTHON:-python3}
MARKER="$VENV/.installed-checkov-$CHECKOV_VERSION"

if [ -f "$MARKER" ] && [ -x "$VENV/bin/checkov" ]; then
  exit 0
fi
# A half-finished install (no marker) is started over rather than trusted.
rm -rf "$VENV"
"$PY" -m venv "$VENV"
quiet_pip() {  # pip's notes about unused local index locations are noise here
  "$VENV/bin/python" -m pip "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }
}
quiet_pip install --quiet --disable-pip-version-check --upgrade pip
quiet_pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
"$VENV/bin/checkov" --version >/dev/null
touch "$MARKER"
echo "checkov $CHECKOV_VERSION installed in $VENV"
