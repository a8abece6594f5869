#!/usr/bin/env bash
# Same load twice: straight to the mock broker, then through Sluice (1 shard), with pinning.
# Usage: loadtest/scripts/direct-vs-sluice.sh [sluice-load options...]
# Env: BIN (dir with sluice, sluice-load, sluice-mock-broker; default target/release),
#      OUT (dir for JSON reports; default /tmp/sluice-bench), LOAD_CPUS, BROKER_CPUS, SLUICE_CPU,
#      BASE_PORT (default 47000: Sluice bootstrap on it, node N on BASE_PORT + 100 + N; the mock
#      broker takes two ephemeral ports), SPIN_US (runtime.spin_before_park_us, default 0),
#      SHARDS (default 1; SLUICE_CPU then lists one CPU per shard, e.g. "6, 7").
set -euo pipefail
BIN="${BIN:-target/release}"
OUT="${OUT:-/tmp/sluice-bench}"
LOAD_CPUS="${LOAD_CPUS:-0}"
BROKER_CPUS="${BROKER_CPUS:-1}"
SLUICE_CPU="${SLUICE_CPU:-1}"
BASE="${BASE_PORT:-47000}"
mkdir -p "$OUT"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for port in "$BASE" $((BASE + 101)) $((BASE + 102)); do
    if listening "$port"; then
        echo "port $port is in use: pick another BASE_PORT" >&2
        exit 1
    fi
done
"$BIN/sluice-mock-broker" --ports 0,0 --cpus "$BROKER_CPUS" --partitions 8 >"$OUT/mock.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q '^listening on' "$OUT/mock.log" && break; sleep 0.1; done
MOCK="$(grep -o '^listening on [0-9.]*:[0-9]*' "$OUT/mock.log" | awk '{print $3}')"
[[ -n "$MOCK" ]] || { echo "mock broker did not start:" >&2; cat "$OUT/mock.log" >&2; exit 1; }
cat >"$OUT/sluice.toml" <<TOML
[runtime]
shards = ${SHARDS:-1}
cpus = [$SLUICE_CPU]
spin_before_park_us = ${SPIN_US:-0}
[listener]
bind_address = "127.0.0.1"
advertised_host = "127.0.0.1"
bootstrap_port = $BASE
broker_port_base = $((BASE + 100))
[upstream]
bootstrap_servers = ["$MOCK"]
[log]
level = "warn"
TOML
"$BIN/sluice" --config "$OUT/sluice.toml" >"$OUT/sluice.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do listening "$BASE" && break; sleep 0.1; done
kill -0 "${pids[1]}" || { echo "sluice did not start:" >&2; cat "$OUT/sluice.log" >&2; exit 1; }

echo "== direct"
"$BIN/sluice-load" --bootstrap "$MOCK" --cpus "$LOAD_CPUS" --label direct \
    --json "$OUT/direct.json" --quiet "$@"
echo "== via sluice"
"$BIN/sluice-load" --bootstrap "127.0.0.1:$BASE" --cpus "$LOAD_CPUS" \
    --label via-sluice --json "$OUT/via-sluice.json" --quiet "$@"
