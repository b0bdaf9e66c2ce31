#!/usr/bin/env bash
# Regenerates mesoslite/proto/*_pb2.py and *_pb2.pyi from mesoslite/proto/*.proto.
#
#   scripts/gen_proto.sh            # write next to the .proto files (then commit them)
#   scripts/gen_proto.sh OUT_DIR    # write under OUT_DIR/mesoslite/proto/ instead
#
# Needs the test extras: grpcio-tools (bundled protoc, plus google/protobuf/*.proto)
# and mypy-protobuf (protoc-gen-mypy, for typed .pyi stubs). Set PYTHON to pick the
# interpreter (default: `python` on PATH, e.g. the activated .venv).
#
# Import paths are rooted at the repository root, so `import "mesoslite/proto/x.proto"`
# generates the module `mesoslite.proto.x_pb2`. The generated files are committed;
# tests/unit/proto/test_generated.py regenerates into a temporary directory and
# fails if they differ.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

OUT="${1:-.}"
mkdir -p "$OUT"

PYTHON="${PYTHON:-python}"
PYTHON_PATH="$(command -v "$PYTHON")" || { echo "gen_proto: no '$PYTHON' on PATH" >&2; exit 1; }

PLUGIN="$(dirname "$PYTHON_PATH")/protoc-gen-mypy"
if [[ ! -x "$PLUGIN" ]]; then
  PLUGIN="$(command -v protoc-gen-mypy)" || {
    echo "gen_proto: protoc-gen-mypy not found; install mypy-protobuf" >&2
    exit 1
  }
fi

shopt -s nullglob
export LC_ALL=C
PROTOS=(mesoslite/proto/*.proto)
if (( ${#PROTOS[@]} == 0 )); then
  echo "gen_proto: no .proto files under mesoslite/proto" >&2
  exit 1
fi

"$PYTHON_PATH" -m grpc_tools.protoc \
  -I. \
  --plugin=protoc-gen-mypy="$PLUGIN" \
  --python_out="$OUT" \
  --mypy_out=quiet:"$OUT" \
  "${PROTOS[@]}"
