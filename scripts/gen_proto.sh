#!/usr/bin/env bash
# Regenerates mesoslite/proto/*_pb2.py and *_pb2.pyi from mesoslite/proto/*.proto.
#
#   scripts/gen_proto.sh            # write next to the .proto files
#   scripts/gen_proto.sh OUT_DIR    # write under OUT_DIR (mirrors mesoslite/proto/)
#
# Uses grpcio-tools' bundled protoc and mypy-protobuf's protoc-gen-mypy (both from
# the test extras). Import paths are rooted at the repository root, so the
# generated modules are `mesoslite.proto.X_pb2`. Generated files are committed;
# tests/unit/proto/test_generated.py checks that they are up to date.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

OUT="${1:-.}"
mkdir -p "$OUT"

PYTHON="${PYTHON:-python}"
PLUGIN="$(dirname "$(command -v "$PYTHON")")/protoc-gen-mypy"
if [[ ! -x "$PLUGIN" ]]; then
  PLUGIN="$(command -v protoc-gen-mypy)"
fi

# Fixed order so that output never depends on the shell's glob order.
PROTOS=(
  mesoslite/proto/mesos.proto
  mesoslite/proto/scheduler.proto
  mesoslite/proto/executor.proto
  mesoslite/proto/quota.proto
  mesoslite/proto/maintenance.proto
  mesoslite/proto/allocator.proto
  mesoslite/proto/master.proto
  mesoslite/proto/agent.proto
  mesoslite/proto/internal.proto
)
EXISTING=()
for p in "${PROTOS[@]}"; do
  [[ -f "$p" ]] && EXISTING+=("$p")
done

"$PYTHON" -m grpc_tools.protoc \
  -I. \
  --plugin=protoc-gen-mypy="$PLUGIN" \
  --python_out="$OUT" \
  --mypy_out="$OUT" \
  "${EXISTING[@]}"
