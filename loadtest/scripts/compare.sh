#!/usr/bin/env bash
# The same sluice-load scenario against the mock broker (two node ids), once per system under test:
# direct, Sluice (1 shard), HAProxy (TCP mode), Kroxylicious (no filters), grepplabs/kafka-proxy.
# Every system gets a fresh mock broker and the same CPU pinning; the gateway's CPU time is read from
# /proc/PID/stat over the measured window. Install the peers first: loadtest/scripts/install-peers.sh
# (a peer that is not installed is skipped with a message, not an error).
# Usage: loadtest/scripts/compare.sh [sluice-load options...]
#        loadtest/scripts/compare.sh --quick|--full [bench.py options...]   (runs bench.py: every
#        scenario, 3+ passes, results in loadtest/results/<date>-<machine>-<quick|full>.*)
#   e.g. loadtest/scripts/compare.sh --producers 2 --acks 1 --duration-s 4 --warmup-s 1
# Env: BIN (sluice, sluice-load, sluice-mock-broker; default target/release), OUT (default
#      /tmp/sluice-compare), LOAD_CPUS (default 0), BROKER_CPUS (default 1), GATEWAY_CPUS (default 1;
#      list or range, e.g. "2,3"), SYSTEMS (default "direct sluice haproxy kroxylicious kafka-proxy"),
#      PEERS_DIR (default ~/.cache/sluice), KROXYLICIOUS_VERSION (default 0.13.0), BASE_PORT
#      (default: a free one picked at random in 10000 to the ephemeral range; the gateways listen on BASE_PORT..+3 and
#      BASE_PORT+101..+102), SPIN_US (Sluice runtime.spin_before_park_us, default 0), SHARDS (Sluice
#      shards, default 1, pinned to the first SHARDS of GATEWAY_CPUS).
# Direct vs Sluice only: SYSTEMS="direct sluice" loadtest/scripts/compare.sh ...
set -euo pipefail
# The scripted scenario matrix (every scenario and system, 3+ passes, medians, SVG): bench.py.
case "${1:-}" in
    --quick | --full | --tiny) exec python3 "$(dirname "$0")/bench.py" "$@" ;;
esac
BIN="${BIN:-target/release}"
OUT="${OUT:-/tmp/sluice-compare}"
LOAD_CPUS="${LOAD_CPUS:-0}"
BROKER_CPUS="${BROKER_CPUS:-1}"
GATEWAY_CPUS="${GATEWAY_CPUS:-1}"
SYSTEMS="${SYSTEMS:-direct sluice haproxy kroxylicious kafka-proxy}"
PEERS_DIR="${PEERS_DIR:-$HOME/.cache/sluice}"
KROXYLICIOUS_VERSION="${KROXYLICIOUS_VERSION:-0.13.0}"
TICKS="$(getconf CLK_TCK)"

for b in sluice sluice-load sluice-mock-broker; do
    [[ -x "$BIN/$b" ]] || { echo "$BIN/$b missing: cargo build --release -p sluice -p sluice-loadtest" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "compare.sh needs python3 (for the table)" >&2; exit 1; }

# CPUs of a list/range ("1", "2,3", "4-7") and how many there are.
expand_cpus() {
    local out=() part a b
    IFS=',' read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        part="${part// /}"
        if [[ "$part" == *-* ]]; then a="${part%-*}"; b="${part#*-}"; out+=($(seq "$a" "$b")); else out+=("$part"); fi
    done
    echo "${out[@]}"
}
read -ra GW_CPU_LIST <<<"$(expand_cpus "$GATEWAY_CPUS")"
NGW="${#GW_CPU_LIST[@]}"
SHARDS="${SHARDS:-1}"
((SHARDS >= 1 && SHARDS <= NGW)) || { echo "SHARDS=$SHARDS needs as many GATEWAY_CPUS (have $NGW)" >&2; exit 1; }

# The measured window, from the scenario's own options (sluice-load defaults: 10 s, no warm-up).
DURATION=10 WARMUP=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[$i]}" in
        --duration-s) DURATION="${args[$((i + 1))]}" ;;
        --duration-s=*) DURATION="${args[$i]#*=}" ;;
        --warmup-s) WARMUP="${args[$((i + 1))]}" ;;
        --warmup-s=*) WARMUP="${args[$i]#*=}" ;;
        --bootstrap | --bootstrap=* | --json | --json=* | --label | --label=* | --cpus | --cpus=*)
            echo "compare.sh sets ${args[$i]%%=*} itself: leave it out" >&2; exit 1 ;;
    esac
done

mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.cpu "$OUT"/*.skipped "$OUT"/results.md
pids=()
stop_all() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
trap stop_all EXIT
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports_free() {
    local p
    for p in "$@"; do if listening "$p"; then return 1; fi; done
}
gw_ports() { echo "$1" $(($1 + 1)) $(($1 + 2)) $(($1 + 3)) $(($1 + 101)) $(($1 + 102)); }
if [[ -n "${BASE_PORT:-}" ]]; then
    BASE="$BASE_PORT"
    ports_free $(gw_ports "$BASE") || { echo "a port in $(gw_ports "$BASE") is in use: pick another BASE_PORT" >&2; exit 1; }
else
    # Below the ephemeral range, so that neither the mock brokers' listeners (port 0) nor client
    # sockets can take a gateway port between the check and the gateway's bind.
    EPH_LO="$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
    for _ in $(seq 50); do
        BASE=$((10000 + RANDOM % (EPH_LO - 10200)))
        ports_free $(gw_ports "$BASE") && break
        BASE=""
    done
    [[ -n "$BASE" ]] || { echo "no free port range found" >&2; exit 1; }
fi

# Fresh mock broker; sets MOCK1, MOCK2 (its host:port per node). $1 = advertised ports or "".
start_mock() {
    local adv=() log="$OUT/mock-$SYS.log"
    [[ -n "$1" ]] && adv=(--advertised-ports "$1")
    "$BIN/sluice-mock-broker" --ports 0,0 --cpus "$BROKER_CPUS" --partitions 8 "${adv[@]}" >"$log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do grep -q '^listening on' "$log" && break; sleep 0.1; done
    local m=()
    mapfile -t m < <(grep '^listening on' "$log" | grep -o '[0-9.]*:[0-9]*' | head -2)
    MOCK1="${m[0]:-}" MOCK2="${m[1]:-}"
    [[ -n "${MOCK2:-}" ]] || { echo "mock broker did not start:" >&2; cat "$log" >&2; exit 1; }
}

# Waits for the gateway ($GW pid) to listen on port $1; 1 if it died or never listened.
wait_gateway() {
    for _ in $(seq "${2:-150}"); do
        kill -0 "$GW" 2>/dev/null || return 1
        listening "$1" && return 0
        sleep 0.1
    done
    return 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Runs the scenario against bootstrap $1; samples the gateway's CPU over the measured window.
run_load() {
    "$BIN/sluice-load" --bootstrap "$1" --cpus "$LOAD_CPUS" --label "$SYS" \
        --json "$OUT/$SYS.json" --quiet "${args[@]}" >"$OUT/$SYS.txt" 2>&1 &
    local load=$! c0 c1
    pids+=("$load")
    if [[ -n "${GW:-}" ]]; then
        sleep "$WARMUP"
        c0="$(cpu_ticks "$GW")"
        sleep "$DURATION"
        c1="$(cpu_ticks "$GW")"
        echo "$(((c1 - c0))) $TICKS $DURATION" >"$OUT/$SYS.cpu"
    fi
    wait "$load" || { echo "sluice-load failed for $SYS:" >&2; cat "$OUT/$SYS.txt" >&2; }
    cat "$OUT/$SYS.txt"
}

skip() { echo "$1" >"$OUT/$SYS.skipped"; echo "-- skipped: $1"; }

for SYS in $SYSTEMS; do
    echo "== $SYS"
    GW=""
    case "$SYS" in
    direct)
        start_mock ""
        run_load "$MOCK1"
        ;;
    sluice)
        start_mock ""
        cat >"$OUT/sluice.toml" <<TOML
[runtime]
shards = $SHARDS
cpus = [$(IFS=,; echo "${GW_CPU_LIST[*]:0:$SHARDS}")]
spin_before_park_us = ${SPIN_US:-0}
[listener]
bind_address = "127.0.0.1"
advertised_host = "127.0.0.1"
bootstrap_port = $BASE
broker_port_base = $((BASE + 100))
[upstream]
bootstrap_servers = ["$MOCK1"]
[log]
level = "warn"
TOML
        taskset -c "$GATEWAY_CPUS" "$BIN/sluice" --config "$OUT/sluice.toml" >"$OUT/sluice.log" 2>&1 &
        GW=$!; pids+=("$GW")
        wait_gateway "$BASE" || { echo "sluice did not start:" >&2; cat "$OUT/sluice.log" >&2; exit 1; }
        run_load "127.0.0.1:$BASE"
        ;;
    haproxy)
        command -v haproxy >/dev/null || { skip "haproxy not installed (loadtest/scripts/install-peers.sh)"; continue; }
        # TCP mode cannot rewrite Metadata: one frontend per broker, and the mock broker advertises
        # the frontends' ports instead of its own.
        start_mock "$((BASE + 1)),$((BASE + 2))"
        cat >"$OUT/haproxy.cfg" <<CFG
global
    nbthread $NGW
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend node1
    bind 127.0.0.1:$((BASE + 1))
    default_backend node1
backend node1
    server mock1 $MOCK1
frontend node2
    bind 127.0.0.1:$((BASE + 2))
    default_backend node2
backend node2
    server mock2 $MOCK2
CFG
        taskset -c "$GATEWAY_CPUS" haproxy -db -f "$OUT/haproxy.cfg" >"$OUT/haproxy.log" 2>&1 &
        GW=$!; pids+=("$GW")
        wait_gateway "$((BASE + 1))" || { echo "haproxy did not start:" >&2; cat "$OUT/haproxy.log" >&2; exit 1; }
        run_load "127.0.0.1:$((BASE + 1))"
        ;;
    kroxylicious)
        KDIR="$PEERS_DIR/kroxylicious-$KROXYLICIOUS_VERSION"
        [[ -f "$KDIR/.complete" ]] || { skip "kroxylicious $KROXYLICIOUS_VERSION not installed in $KDIR (loadtest/scripts/install-peers.sh kroxylicious)"; continue; }
        command -v java >/dev/null || { skip "java not found"; continue; }
        start_mock ""
        # Port per broker: bootstrap on BASE, node N (1, 2) on BASE + N; management on BASE + 3.
        cat >"$OUT/kroxylicious.yaml" <<YAML
management:
  bindAddress: 127.0.0.1
  port: $((BASE + 3))
virtualClusters:
  - name: mock
    targetCluster:
      bootstrapServers: $MOCK1
    gateways:
      - name: default
        portIdentifiesNode:
          bootstrapAddress: 127.0.0.1:$BASE
          advertisedBrokerAddressPattern: 127.0.0.1
          nodeStartPort: $((BASE + 1))
          nodeIdRanges:
            - name: mock
              start: 1
              end: 2
    logNetwork: false
    logFrames: false
YAML
        # -XX:ActiveProcessorCount makes Netty size its event loops (2 x CPUs) from the pinned set.
        taskset -c "$GATEWAY_CPUS" java -XX:ActiveProcessorCount="$NGW" -Xms1g -Xmx1g \
            -cp "$KDIR/*" io.kroxylicious.app.Kroxylicious --config "$OUT/kroxylicious.yaml" \
            >"$OUT/kroxylicious.log" 2>&1 &
        GW=$!; pids+=("$GW")
        wait_gateway "$BASE" 600 || { echo "kroxylicious did not start:" >&2; tail -30 "$OUT/kroxylicious.log" >&2; exit 1; }
        run_load "127.0.0.1:$BASE"
        ;;
    kafka-proxy)
        KP="$PEERS_DIR/bin/kafka-proxy"
        [[ -x "$KP" ]] || { skip "kafka-proxy not installed in $KP (loadtest/scripts/install-peers.sh kafka-proxy)"; continue; }
        start_mock ""
        GOMAXPROCS="$NGW" taskset -c "$GATEWAY_CPUS" "$KP" server \
            --bootstrap-server-mapping "$MOCK1,127.0.0.1:$((BASE + 1))" \
            --bootstrap-server-mapping "$MOCK2,127.0.0.1:$((BASE + 2))" \
            --dynamic-listeners-disable \
            --http-listen-address "127.0.0.1:$((BASE + 3))" \
            --log-level warning >"$OUT/kafka-proxy.log" 2>&1 &
        GW=$!; pids+=("$GW")
        wait_gateway "$((BASE + 1))" || { echo "kafka-proxy did not start:" >&2; cat "$OUT/kafka-proxy.log" >&2; exit 1; }
        run_load "127.0.0.1:$((BASE + 1))"
        ;;
    *) echo "unknown system '$SYS' (direct sluice haproxy kroxylicious kafka-proxy)" >&2; exit 1 ;;
    esac
    stop_all
done

OUT="$OUT" SYSTEMS="$SYSTEMS" GATEWAY_CPUS="$GATEWAY_CPUS" LOAD_CPUS="$LOAD_CPUS" \
    BROKER_CPUS="$BROKER_CPUS" SCENARIO="$*" python3 - <<'PY'
import json, os
out, systems = os.environ["OUT"], os.environ["SYSTEMS"].split()
rows, base = [], None
for s in systems:
    jp, sk = f"{out}/{s}.json", f"{out}/{s}.skipped"
    if os.path.exists(sk) or not os.path.exists(jp):
        why = open(sk).read().strip() if os.path.exists(sk) else "no report"
        rows.append((s, None, why)); continue
    r = json.load(open(jp))
    p, f = r.get("produce"), r.get("fetch")
    sides = [x for x in (p, f) if x]
    mbs = sum(x["mb_per_s"] for x in sides)
    gb = sum(x["bytes"] for x in sides) / 1e9
    lat = (p or f)["latency_us"]
    errs = sum(x["errors_total"] for x in sides)
    cpu = None
    cp = f"{out}/{s}.cpu"
    if os.path.exists(cp):
        ticks, hz, dur = open(cp).read().split()
        core_s = int(ticks) / int(hz)
        cpu = (core_s / gb if gb else float("nan"), core_s / float(dur))
    d = dict(mbs=mbs, p50=lat["p50"], p99=lat["p99"], cpu=cpu, errs=errs)
    if s == "direct": base = d
    rows.append((s, d, None))
hdr = ["system", "MB/s", "vs direct", "p50 µs", "p99 µs", "added p99 µs", "gw core-s/GB", "gw cores", "errors"]
lines = []
for s, d, why in rows:
    if d is None:
        lines.append([s, "-", "-", "-", "-", "-", "-", "-", f"skipped: {why}"]); continue
    ratio = f"{d['mbs'] / base['mbs']:.2f}" if base and base["mbs"] else "-"
    added = f"{d['p99'] - base['p99']:+d}" if base and s != "direct" else "-"
    cpu = f"{d['cpu'][0]:.2f}" if d["cpu"] else "-"
    cores = f"{d['cpu'][1]:.2f}" if d["cpu"] else "-"
    lines.append([s, f"{d['mbs']:.1f}", ratio, str(d["p50"]), str(d["p99"]), added, cpu, cores, str(d["errs"])])
w = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(hdr[:-1])]
fmt = lambda l: "  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(l[:-1])) + "  " + l[-1]
print(); print(fmt(hdr)); [print(fmt(l)) for l in lines]
env = f"gateway CPUs {os.environ['GATEWAY_CPUS']}, load CPUs {os.environ['LOAD_CPUS']}, broker CPUs {os.environ['BROKER_CPUS']}"
with open(f"{out}/results.md", "w") as md:
    md.write(f"Scenario: `sluice-load {os.environ['SCENARIO']}`; {env}.\n\n")
    md.write("| " + " | ".join(hdr) + " |\n|" + "|".join("---" if i == 0 else "---:" for i in range(len(hdr))) + "|\n")
    for l in lines: md.write("| " + " | ".join(l) + " |\n")
    md.write("\nLatency: produce (fetch when there is no produce) from sluice-load's JSON. gw core-s/GB: the "
             "gateway process's utime+stime over the measured window per GB (10^9 B) of record batches "
             "forwarded; gw cores: that CPU time / window length.\n")
print(f"\n{out}/results.md and {out}/<system>.json written")
PY
