#!/usr/bin/env bash
# `make bench`: run every benchmark (benchmarks/*_bench.py) in turn; each writes <name>.json into
# docs/benchmarks/ and renders <name>.md from it. Stops at the first benchmark that fails (its exit
# status is this script's).
set -euo pipefail

cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
# These first, in this order; then any other benchmark, alphabetically.
BENCHMARKS=(benchmarks.index_bench benchmarks.model_server_bench benchmarks.edge_bench)
for f in benchmarks/*_bench.py; do
  module="benchmarks.$(basename "$f" .py)"
  if [[ " ${BENCHMARKS[*]} " != *" ${module} "* ]]; then
    BENCHMARKS+=("$module")
  fi
done

mkdir -p docs/benchmarks
# Reports newer than this marker are the ones this run wrote.
marker="$(mktemp)"
trap 'rm -f "$marker"' EXIT

for module in "${BENCHMARKS[@]}"; do
  echo
  echo "==================== ${module} ===================="
  start=$SECONDS
  rc=0
  "$PY" -m "$module" || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "bench: ${module} failed (exit status ${rc})" >&2
    exit "$rc"
  fi
  echo "(${module}: $((SECONDS - start)) s)"
done

echo
echo "Reports written to docs/benchmarks/:"
written=0
for f in docs/benchmarks/*.json docs/benchmarks/*.md; do
  if [[ -f "$f" && "$f" -nt "$marker" ]]; then
    echo "  $f"
    written=$((written + 1))
  fi
done
if [[ $written -eq 0 ]]; then
  echo "  (none)"
fi
