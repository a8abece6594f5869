#!/usr/bin/env bash
# Memory returned after a burst (issue 11, defect 10): RSS of Sluice (2 shards, the mock broker
# upstream) idle, at the peak of a burst of large produce requests (48 producers, 4 MiB requests,
# 4 in flight each, 8 s), and at intervals for 60 s after the load ends. Prints `LABEL key=value`
# lines. Needs the release binaries:
#   cargo build --release -p sluice -p sluice-loadtest --bins
#   loadtest/scripts/memory-return.sh [LABEL]
# Ports 29092 (mock broker), 29192 and 29200+ (Sluice) must be free. Runs in a scratch directory.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN=${BIN:-$ROOT/target/release}
label=${1:-run}
cd "$(mktemp -d)"
trap 'kill ${SL:-} ${MB:-} 2>/dev/null || true' EXIT
$BIN/sluice-mock-broker --ports 29092 --partitions 8 --produce-delay-us 20000 --log-cap-mib 64 >/dev/null 2>&1 &
MB=$!
cat > sluice.toml <<TOML
[runtime]
shards = 2
[listener]
advertised_host = "127.0.0.1"
bootstrap_port = 29192
broker_port_base = 29200
[upstream]
bootstrap_servers = ["127.0.0.1:29092"]
TOML
$BIN/sluice --config sluice.toml >sluice.log 2>&1 &
SL=$!
sleep 1.5
rss() { awk '/VmRSS/ {print int($2/1024)}' /proc/$SL/status; }
echo "$label idle_rss_mb=$(rss)"
$BIN/sluice-load --bootstrap 127.0.0.1:29192 --producers 48 --acks 1 --record-size 1048576 --records-per-batch 4 --in-flight 4 --duration-s 8 --quiet >/dev/null 2>&1 &
LD=$!
peak=0
while kill -0 $LD 2>/dev/null; do r=$(rss); ((r>peak)) && peak=$r; sleep 0.2; done
echo "$label peak_rss_mb=$peak"
for t in 0 5 10 20 30 45 60; do
  sleep_for=$(( t==0 ? 0 : (t<=10 ? 5 : (t<=30 ? 10 : 15)) )); sleep $sleep_for
  echo "$label t=${t}s rss_mb=$(rss)"
done
