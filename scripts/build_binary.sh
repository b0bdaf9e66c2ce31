#!/usr/bin/env bash
# Build the one-file executable dist/mesoslite with PyInstaller.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
"$python" -m PyInstaller --noconfirm --clean --onefile --name mesoslite \
  --log-level WARN --specpath build \
  --collect-submodules mesoslite \
  --collect-data mesoslite \
  --exclude-module tkinter --exclude-module pytest \
  --exclude-module numpy --exclude-module PyInstaller \
  mesoslite/__main__.py
ls -l dist/mesoslite
