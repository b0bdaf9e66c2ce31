#!/usr/bin/env bash
# Install mesoslite into ./.venv (Python >= 3.11). Then run `.venv/bin/mesoslite up`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
echo "installed: $(.venv/bin/mesoslite version)"
