#!/usr/bin/env bash
# README command (2) and CI's test command: installs what the tests need (idempotent) and runs them.
# torch is installed first and pinned: an unpinned resolve would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The three installs below are mostly waiting on downloads and disk: they run side by side (CI time).
logs=$(mktemp -d)
pids=()
# a failed main install must not leave the others running (a rerun would race them for .venv-ls or dpkg's lock)
stop_installs() {
  for entry in ${pids[@]+"${pids[@]}"}; do
    pkill -TERM -P "${entry%%:*}" 2>/dev/null || true  # the pip or apt-get inside the background group
    kill "${entry%%:*}" 2>/dev/null || true
  done
  rm -rf "$logs"
}
trap stop_installs EXIT
# Label Studio pins its own SDK and pyarrow: it lives in its own venv and runs as a real server in tests.
if [ ! -x .venv-ls/bin/label-studio ]; then
  { "$PY" -m venv .venv-ls && .venv-ls/bin/pip install -q "label-studio==1.23.2"; } >"$logs/label-studio.log" 2>&1 &
  pids+=("$!:label-studio")
fi
# Headless Chromium renders the evaluation report in a test (Debian's package; the machine runs as root).
if ! command -v chromium >/dev/null; then
  { apt-get update -qq && apt-get install -y -qq chromium; } >"$logs/chromium.log" 2>&1 &
  pids+=("$!:chromium")
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[serve,test,spark]"
for entry in ${pids[@]+"${pids[@]}"}; do
  wait "${entry%%:*}" || { echo "installing ${entry#*:} failed:" >&2; cat "$logs/${entry#*:}.log" >&2; exit 1; }
done
pids=()
trap - EXIT
rm -rf "$logs"
export FRONTWIRE_REQUIRE_CHROMIUM="${FRONTWIRE_REQUIRE_CHROMIUM:-1}"
# The Spark test runs the batch job on local[2] (Java 17 is on the machine).
export FRONTWIRE_REQUIRE_SPARK="${FRONTWIRE_REQUIRE_SPARK:-1}" SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON="$PWD/.venv/bin/python"
export MLFLOW_DISABLE_TELEMETRY=true HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export FRONTWIRE_REQUIRE_LABEL_STUDIO="${FRONTWIRE_REQUIRE_LABEL_STUDIO:-1}"
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
