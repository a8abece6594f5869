#!/usr/bin/env bash
# Installs the non-Java scenario clients used by the integration tests:
#   - librdkafka via Python confluent-kafka (a PyPI wheel that bundles librdkafka) into a venv,
#     running tests/clients/python/scenario.py;
#   - franz-go (Go module proxy) built from tests/clients/go into a binary.
#
# Idempotent and quiet: prints nothing unless something fails (then the failing step's output goes
# to stderr and the exit status is non-zero). A second run with unchanged inputs is a few file
# checks.
#
# Needs: python3 (3.8+, with the venv module), Go 1.26+ (go.mod of franz-go v1.22). Network: PyPI
# and the Go module proxy, first run only.
#
# Environment:
#   SLUICE_CACHE   cache root (default: $HOME/.cache/sluice)
#   PYTHON         Python interpreter for the venv (default: python3)
#
# Result:
#   $SLUICE_CACHE/venv/bin/python tests/clients/python/scenario.py ...
#   $SLUICE_CACHE/bin/franz-scenario ...
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLIENTS="$(cd "$HERE/../clients" && pwd)"
CACHE_ROOT="${SLUICE_CACHE:-$HOME/.cache/sluice}"
VENV="$CACHE_ROOT/venv"
BIN_DIR="$CACHE_ROOT/bin"
FRANZ="$BIN_DIR/franz-scenario"
PYTHON="${PYTHON:-python3}"

mkdir -p "$CACHE_ROOT" "$BIN_DIR"
# Serialise concurrent installs (parallel test binaries sharing a cache).
exec 9>"$CACHE_ROOT/.clients-install.lock"
flock 9

log_file="$(mktemp)"
trap 'rm -f "$log_file"' EXIT
# run STEP CMD...: run quietly; on failure show what it printed.
run() {
  local step="$1"
  shift
  if ! "$@" >>"$log_file" 2>&1; then
    echo "clients-install: $step failed:" >&2
    cat "$log_file" >&2
    exit 1
  fi
}

# --- librdkafka (confluent-kafka) ------------------------------------------------------------
req="$CLIENTS/python/requirements.txt"
py_stamp="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" || ! -f "$VENV/.sluice-stamp" || "$(cat "$VENV/.sluice-stamp")" != "$py_stamp" ]]; then
  command -v "$PYTHON" >/dev/null || { echo "clients-install: $PYTHON not found" >&2; exit 1; }
  rm -rf "$VENV"
  run "python venv" "$PYTHON" -m venv "$VENV"
  run "pip install confluent-kafka" "$VENV/bin/python" -m pip install --disable-pip-version-check \
    --no-input -q -r "$req"
  run "confluent-kafka import check" "$VENV/bin/python" -c \
    'import confluent_kafka, confluent_kafka.admin; assert confluent_kafka.libversion()[1] >= 0x020c0000, "librdkafka too old for KIP-848"'
  echo "$py_stamp" >"$VENV/.sluice-stamp"
fi

# --- franz-go --------------------------------------------------------------------------------
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
  PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null || { echo "clients-install: go not found (Go 1.26+ needed for franz-go)" >&2; exit 1; }
go_dir="$CLIENTS/go"
go_stamp="$(cat "$go_dir/go.mod" "$go_dir/go.sum" "$go_dir"/*.go | sha256sum | cut -d' ' -f1) $(go env GOVERSION)"
if [[ ! -x "$FRANZ" || ! -f "$FRANZ.stamp" || "$(cat "$FRANZ.stamp")" != "$go_stamp" ]]; then
  # GOTOOLCHAIN=local: never download a toolchain; GOFLAGS: go.sum is committed, use it as is.
  (
    cd "$go_dir"
    export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"
    run "go build franz-scenario" go build -trimpath -o "$FRANZ.tmp" .
  )
  mv -f "$FRANZ.tmp" "$FRANZ"
  echo "$go_stamp" >"$FRANZ.stamp"
fi
