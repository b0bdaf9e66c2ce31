#!/usr/bin/env bash
# Build the one-file executable dist/mesoslite with PyInstaller.
# A one-file binary unpacks everything it carries at every start, so what the product
# never runs stays out: httpx's optional console extras (rich, pygments), and test-only
# or optional packages (bcrypt, zstd).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
"$python" -m PyInstaller --noconfirm --clean --onefile --name mesoslite \
  --log-level WARN --specpath build \
  --collect-submodules mesoslite \
  --collect-data mesoslite \
  --exclude-module tkinter --exclude-module pytest \
  --exclude-module numpy --exclude-module PyInstaller \
  --exclude-module rich --exclude-module pygments --exclude-module markdown_it \
  --exclude-module bcrypt --exclude-module backports.zstd \
  mesoslite/__main__.py
ls -l dist/mesoslite
