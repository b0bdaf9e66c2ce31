#!/usr/bin/env bash
# Install what the tests need, then run every check: lint, types, the whole test suite,
# and the frozen binary's smoke test. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
. .venv/bin/activate

echo "== ruff"; ruff check mesoslite tests bench scripts; ruff format --check mesoslite tests bench scripts
echo "== mypy"; mypy

echo "== pytest"
set +e
python -m pytest -q -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
[ "$status" -eq 0 ] || exit "$status"

echo "== frozen binary"
scripts/build_binary.sh
scripts/smoke_binary.sh dist/mesoslite
