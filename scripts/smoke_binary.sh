#!/usr/bin/env bash
# Smoke test of the frozen binary as a user runs it: up (detached), execute a task to
# completion, down.
set -euo pipefail
binary=${1:-dist/mesoslite}
data_dir=$(mktemp -d)
port_master=${SMOKE_MASTER_PORT:-15050}
port_agent=${SMOKE_AGENT_PORT:-15051}
cleanup() {
  "$binary" down --data-dir "$data_dir" >/dev/null 2>&1 || true
  rm -rf "$data_dir"
}
trap cleanup EXIT

"$binary" version
"$binary" up --detach --data-dir "$data_dir" --port "$port_master" --agent-port "$port_agent"
out=$("$binary" execute --master "127.0.0.1:$port_master" --name smoke \
  --command 'echo hello from mesoslite' --wait)
echo "$out"
echo "$out" | grep -q "TASK_FINISHED"
# Tasks must not inherit the one-file binary's private library path.
"$binary" execute --master "127.0.0.1:$port_master" --name smoke-env \
  --command 'case "$LD_LIBRARY_PATH" in *_MEI*) exit 1;; esac' --wait >/dev/null
set +e
"$binary" execute --master "127.0.0.1:$port_master" --name smoke-fail --command 'exit 3' --wait
status=$?
set -e
[ "$status" -eq 3 ] || { echo "expected exit status 3, got $status" >&2; exit 1; }
"$binary" down --data-dir "$data_dir"
echo "smoke test passed"
