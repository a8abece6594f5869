#!/usr/bin/env python3
"""Side-by-side benchmark of Sluice and its peers against the mock broker: every scenario, every
system, several passes; medians with min and max, ratios to direct, a latency-versus-load SVG.

Usage (from the repository root, after `cargo build --release -p sluice -p sluice-loadtest`):
    loadtest/scripts/bench.py --quick     # 3 passes, short windows: < 10 min on 2 cores
    loadtest/scripts/bench.py --full      # 5 passes, longer windows, 90% load level too
    (also reachable as `loadtest/scripts/compare.sh --quick` / `--full`)
    loadtest/scripts/bench.py --scaling --quick --shards 1,2,4,8   # core scaling (Sluice only)

Writes loadtest/results/<date>-<machine>-<quick|full|scaling>.{md,json,svg} (--results-dir, --machine) and
every run's sluice-load report under --out (default /tmp/sluice-bench). Python 3 standard library
only. Environment as compare.sh: BIN (the binaries; default $CARGO_TARGET_DIR/release or
target/release), SLUICE_BIN (the gateway binary; default BIN/sluice), LOAD_CPUS (0), BROKER_CPUS (1), GATEWAY_CPUS (1), PEERS_DIR (~/.cache/sluice),
KROXYLICIOUS_VERSION (0.13.0), SPIN_US (0). See loadtest/README.md for the scenarios.
"""

import argparse
import datetime
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOPIC, FETCH_TOPIC, IDLE_TOPIC = "sluice-load", "sluice-fetch", "sluice-idle"
ALL_SYSTEMS = ["direct", "sluice", "haproxy", "kroxylicious", "kafka-proxy"]
# Not in the default set: "sluice-base", a second Sluice build (SLUICE_BASE_BIN) for A/B runs of a
# change, and "sluice-policy", Sluice with the extra TOML in SLUICE_POLICY_TOML appended (and
# runtime.spin_before_park_us from POLICY_SPIN_US when set, for an A/B of spinning).

PROFILES = {
    "quick": dict(passes=3, ceil=(1, 3), short=(0.5, 2), hol=(0.5, 3),
                  levels=[10, 25, 50, 75], idle=[1000, 10000], hold=1.0),
    "full": dict(passes=5, ceil=(2, 8), short=(1, 5), hol=(1, 8),
                 levels=[10, 25, 50, 75, 90], idle=[1000, 10000], hold=3.0),
    # A check of this script itself (about a minute), not a measurement.
    "tiny": dict(passes=3, ceil=(0.2, 0.5), short=(0.1, 0.3), hol=(0.1, 0.5),
                 levels=[25, 75], idle=[100, 300], hold=0.2),
}


def cpu_busy_s():
    """Busy CPU seconds of the whole machine so far (/proc/stat: all but idle and iowait)."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")


def children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def env(name, default):
    return os.environ.get(name) or default


def expand_cpus(s):
    out = []
    for part in s.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-")
            out += list(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def port_free(p):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", p))
            return True
        except OSError:
            return False


def pick_base():
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    for _ in range(100):
        base = random.randint(10000, lo - 200)
        if all(port_free(p) for p in (base, base + 1, base + 2, base + 3, base + 101, base + 102)):
            return base
    sys.exit("no free port range found")


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def machine_info():
    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None
    status = git("status", "--porcelain")
    if os.environ.get("SLUICE_COMMIT"):
        # The script and binaries were copied from a commit into another checkout (a device run).
        return dict(cpu_model=cpu, cores=os.cpu_count(), kernel=platform.release(),
                    mem_gib=round(mem_kib / 2**20, 1), hostname=socket.gethostname(),
                    git_commit=os.environ["SLUICE_COMMIT"], git_dirty=False,
                    nofile_limit=resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    return dict(cpu_model=cpu, cores=os.cpu_count(), kernel=platform.release(),
                mem_gib=round(mem_kib / 2**20, 1), hostname=socket.gethostname(),
                git_commit=git("rev-parse", "HEAD"), git_dirty=bool(status),
                nofile_limit=resource.getrlimit(resource.RLIMIT_NOFILE)[1])


class Bench:
    def __init__(self, a):
        self.a = a
        self.prof = PROFILES[a.profile]
        self.passes = a.passes or self.prof["passes"]
        default_bin = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                                   "release")
        self.bin = env("BIN", default_bin)
        self.sluice_bin = env("SLUICE_BIN", os.path.join(self.bin, "sluice"))
        self.load_cpus = env("LOAD_CPUS", "0")
        self.broker_cpus = env("BROKER_CPUS", "1")
        self.gw_cpus = env("GATEWAY_CPUS", "1")
        self.gw_list = expand_cpus(self.gw_cpus)
        self.peers = env("PEERS_DIR", os.path.expanduser("~/.cache/sluice"))
        self.krox_ver = env("KROXYLICIOUS_VERSION", "0.13.0")
        self.out = a.out
        os.makedirs(os.path.join(self.out, "runs"), exist_ok=True)
        self.procs = []
        self.base = pick_base()
        self.runs = []  # one dict per sluice-load run
        self.skipped = {}
        self.versions = {}
        # File descriptors: idle connections need one per client in the generator and the mock
        # broker, two per client in a gateway (client + upstream).
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 4 * max(self.prof["idle"]) + 1000
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.idle_cap = (self.nofile - 200) // 2

    # ---- processes -------------------------------------------------------------------------
    def spawn(self, cmd, logname, **kw):
        f = open(os.path.join(self.out, logname), "w")
        p = subprocess.Popen(cmd, stdout=kw.pop("stdout", f), stderr=f, **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []

    def start_mock(self, sysname, advertised=None, extra=()):
        cmd = [f"{self.bin}/sluice-mock-broker", "--ports", "0,0", "--partitions", "8",
               "--cpus", self.broker_cpus, "--synthetic-fetch-topic", FETCH_TOPIC,
               "--synthetic-records", "16", "--synthetic-value-bytes", "1024", *extra]
        if advertised:
            cmd += ["--advertised-ports", advertised]
        p = self.spawn(cmd, f"mock-{sysname}.log", stdout=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        addrs = re.findall(r"[0-9.]+:[0-9]+", line)
        if len(addrs) < 2:
            sys.exit(f"mock broker did not start: {line!r}")
        return addrs[0], addrs[1]

    def wait_port(self, p, port, tries=150):
        for _ in range(tries):
            if p.poll() is not None:
                return False
            if listening(port):
                return True
            time.sleep(0.1)
        return False

    def start_system(self, s):
        """Fresh mock broker and gateway; returns (bootstrap, gateway pid) or None if skipped."""
        b = self.base
        taskset = ["taskset", "-c", self.gw_cpus]
        ngw = len(self.gw_list)
        if s == "direct":
            m1, _ = self.start_mock(s)
            return m1, None
        if s in ("sluice", "sluice-base", "sluice-policy"):
            binary = self.sluice_bin
            extra = ""
            if s == "sluice-base":
                binary = os.environ.get("SLUICE_BASE_BIN", "")
                if not binary:
                    self.skipped[s] = "SLUICE_BASE_BIN not set"
                    return None
            if s == "sluice-policy":
                path = os.environ.get("SLUICE_POLICY_TOML", "")
                if not path:
                    self.skipped[s] = "SLUICE_POLICY_TOML not set"
                    return None
                with open(path) as f:
                    extra = f.read()
            m1, _ = self.start_mock(s)
            cfg = os.path.join(self.out, f"{s}.toml")
            # POLICY_SPIN_US: an A/B of runtime.spin_before_park_us (sluice-policy only).
            spin = env("SPIN_US", "0")
            if s == "sluice-policy":
                spin = env("POLICY_SPIN_US", spin)
            with open(cfg, "w") as f:
                f.write(f"""[runtime]
shards = 1
cpus = [{self.gw_list[0]}]
spin_before_park_us = {spin}
[listener]
bind_address = "127.0.0.1"
advertised_host = "127.0.0.1"
bootstrap_port = {b}
broker_port_base = {b + 100}
[upstream]
bootstrap_servers = ["{m1}"]
[limits]
max_connections_per_shard = 100000
[shutdown]
drain_timeout_ms = 1000
[log]
level = "warn"
{extra}""")
            p = self.spawn(taskset + [binary, "--config", cfg], f"{s}.log")
            if not self.wait_port(p, b):
                sys.exit(f"{s} did not start: see " + os.path.join(self.out, f"{s}.log"))
            return f"127.0.0.1:{b}", p.pid
        if s == "haproxy":
            hp = shutil.which("haproxy")
            if not hp:
                self.skipped[s] = "haproxy not installed (loadtest/scripts/install-peers.sh haproxy)"
                return None
            self.versions[s] = subprocess.run([hp, "-v"], capture_output=True,
                                              text=True).stdout.splitlines()[0]
            m1, m2 = self.start_mock(s, f"{b + 1},{b + 2}")
            cfg = os.path.join(self.out, "haproxy.cfg")
            maxconn = max(4096, min(self.idle_cap + 16, 100000))
            with open(cfg, "w") as f:
                f.write(f"""global
    nbthread {ngw}
    maxconn {maxconn}
defaults
    mode tcp
    maxconn {maxconn}
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend node1
    bind 127.0.0.1:{b + 1}
    default_backend node1
backend node1
    server mock1 {m1}
frontend node2
    bind 127.0.0.1:{b + 2}
    default_backend node2
backend node2
    server mock2 {m2}
""")
            p = self.spawn(taskset + [hp, "-db", "-f", cfg], "haproxy.log")
            if not self.wait_port(p, b + 1):
                sys.exit("haproxy did not start: see " + os.path.join(self.out, "haproxy.log"))
            return f"127.0.0.1:{b + 1}", p.pid
        if s == "kroxylicious":
            kdir = os.path.join(self.peers, f"kroxylicious-{self.krox_ver}")
            if not os.path.exists(os.path.join(kdir, ".complete")) or not shutil.which("java"):
                self.skipped[s] = (f"not installed: io.kroxylicious:kroxylicious-app:{self.krox_ver}"
                                   " is not resolvable on this machine's Maven Central mirror"
                                   " (loadtest/scripts/install-peers.sh kroxylicious)")
                return None
            m1, _ = self.start_mock(s)
            cfg = os.path.join(self.out, "kroxylicious.yaml")
            with open(cfg, "w") as f:
                f.write(f"""management:
  bindAddress: 127.0.0.1
  port: {b + 3}
virtualClusters:
  - name: mock
    targetCluster:
      bootstrapServers: {m1}
    gateways:
      - name: default
        portIdentifiesNode:
          bootstrapAddress: 127.0.0.1:{b}
          advertisedBrokerAddressPattern: 127.0.0.1
          nodeStartPort: {b + 1}
          nodeIdRanges:
            - name: mock
              start: 1
              end: 2
    logNetwork: false
    logFrames: false
""")
            p = self.spawn(taskset + ["java", f"-XX:ActiveProcessorCount={ngw}", "-Xms1g", "-Xmx1g",
                                      "-cp", f"{kdir}/*", "io.kroxylicious.app.Kroxylicious",
                                      "--config", cfg], "kroxylicious.log")
            if not self.wait_port(p, b, 600):
                sys.exit("kroxylicious did not start")
            return f"127.0.0.1:{b}", p.pid
        if s == "kafka-proxy":
            kp = os.path.join(self.peers, "bin", "kafka-proxy")
            if not os.access(kp, os.X_OK):
                self.skipped[s] = ("not installed: github.com/grepplabs/kafka-proxy is not served by"
                                   " this machine's Go module proxy"
                                   " (loadtest/scripts/install-peers.sh kafka-proxy)")
                return None
            m1, m2 = self.start_mock(s)
            p = self.spawn(taskset + [kp, "server",
                                      "--bootstrap-server-mapping", f"{m1},127.0.0.1:{b + 1}",
                                      "--bootstrap-server-mapping", f"{m2},127.0.0.1:{b + 2}",
                                      "--dynamic-listeners-disable",
                                      "--http-listen-address", f"127.0.0.1:{b + 3}",
                                      "--log-level", "warning"], "kafka-proxy.log",
                           env=dict(os.environ, GOMAXPROCS=str(ngw)))
            if not self.wait_port(p, b + 1):
                sys.exit("kafka-proxy did not start")
            return f"127.0.0.1:{b + 1}", p.pid
        sys.exit(f"unknown system {s}")

    # ---- runs ------------------------------------------------------------------------------
    def load(self, sysname, scenario, pas, bootstrap, gw_pid, args, level=None):
        tag = f"{scenario}{'' if level is None else f'-{level}'}-{sysname}-p{pas}"
        jpath = os.path.join(self.out, "runs", f"{tag}.json")
        cmd = [f"{self.bin}/sluice-load", "--bootstrap", bootstrap, "--cpus", self.load_cpus,
               "--quiet", "--label", tag, "--json", jpath] + [str(x) for x in args]
        if gw_pid:
            cmd += ["--gateway-pid", str(gw_pid)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        with open(os.path.join(self.out, "runs", f"{tag}.txt"), "w") as f:
            f.write(" ".join(cmd) + "\n" + r.stdout + r.stderr)
        if r.returncode != 0 or not os.path.exists(jpath):
            log(f"  {tag}: sluice-load failed (rc {r.returncode}): {r.stderr.strip()[-300:]}")
            return None
        rep = json.load(open(jpath))
        self.runs.append(dict(system=sysname, scenario=scenario, level=level, pass_=pas,
                              report=rep))
        return rep

    def scenario_args(self):
        w, d = self.prof["short"]
        cw, cd = self.prof["ceil"]
        hw, hd = self.prof["hol"]
        win = lambda w, d: ["--warmup-s", w, "--duration-s", d]
        return {
            # Produce ceiling: 1 KiB records, 16 per batch (16 KiB requests), closed loop.
            "produce-ceiling": ["--producers", 4, "--acks", 1, "--record-size", 1024,
                                "--records-per-batch", 16, "--in-flight", 8] + win(cw, cd),
            # Fetch ceiling: consumers on the mock's synthetic topic (1 KiB x 16 batches).
            "fetch-ceiling": ["--producers", 0, "--consumers", 2, "--topic", FETCH_TOPIC,
                              "--fetch-max-wait-ms", 500] + win(w, d),
            # Per-hop floor: one connection, one 100 B Produce in flight.
            "floor": ["--producers", 1, "--acks", 1, "--record-size", 100,
                      "--records-per-batch", 1, "--in-flight", 1] + win(w, d),
            # Small requests: 100 B, one per request, 4 connections x 16 in flight.
            "small": ["--producers", 4, "--acks", 1, "--record-size", 100,
                      "--records-per-batch", 1, "--in-flight", 16] + win(w, d),
            # Head-of-line: 50 open-loop producers, alone and next to 50 long polls.
            "hol-alone": ["--producers", 50, "--acks", 1, "--record-size", 1024,
                          "--records-per-batch", 1, "--in-flight", 4, "--rate", 100] + win(hw, hd),
            "hol-mixed": ["--producers", 50, "--acks", 1, "--record-size", 1024,
                          "--records-per-batch", 1, "--in-flight", 4, "--rate", 100,
                          "--consumers", 50, "--fetch-topic", IDLE_TOPIC,
                          "--fetch-max-wait-ms", 500] + win(hw, hd),
        }

    def latency_args(self, level):
        w, d = self.prof["short"]
        rate = self.calib_req_s * level / 100 / 4
        return ["--producers", 4, "--acks", 1, "--record-size", 1024, "--records-per-batch", 16,
                "--in-flight", 8, "--rate", f"{rate:.1f}", "--warmup-s", w, "--duration-s", d]

    def run(self):
        t0 = time.time()
        busy0, ours0 = cpu_busy_s(), children_cpu_s()
        sa = self.scenario_args()
        self.calib_req_s = None
        systems = self.a.systems
        for pas in range(1, self.passes + 1):
            for s in systems:
                if s in self.skipped:
                    continue
                started = self.start_system(s)
                if started is None:
                    log(f"pass {pas} {s}: skipped: {self.skipped[s]}")
                    continue
                boot, gw = started
                log(f"pass {pas} {s}: bootstrap {boot} gateway pid {gw}")
                for name in ["produce-ceiling", "fetch-ceiling", "floor", "small",
                             "hol-alone", "hol-mixed"]:
                    rep = self.load(s, name, pas, boot, gw, sa[name])
                    if (rep and name == "produce-ceiling" and s == "direct"
                            and self.calib_req_s is None):
                        self.calib_req_s = rep["produce"]["requests_per_s"]
                        log(f"  latency-vs-load reference: direct ceiling "
                            f"{self.calib_req_s:.0f} req/s "
                            f"({rep['produce']['mb_per_s']:.0f} MB/s)")
                if self.calib_req_s is None:
                    sys.exit("no direct produce ceiling to set the latency-vs-load rates: "
                             "'direct' must be the first system")
                for lv in self.prof["levels"]:
                    self.load(s, "latency", pas, boot, gw, self.latency_args(lv), level=lv)
                self.stop_all()
            # Idle connections: a fresh gateway (and mock) per size, gateways only.
            for s in systems:
                if s == "direct" or s in self.skipped:
                    continue
                for n in self.prof["idle"]:
                    n_eff = min(n, self.idle_cap)
                    started = self.start_system(s)
                    if started is None:
                        continue
                    boot, gw = started
                    time.sleep(0.3)
                    rep = self.load(s, "idle", pas, boot, gw,
                                    ["--idle-connections", n_eff, "--hold-s", self.prof["hold"]],
                                    level=n)
                    if rep:
                        i = rep["idle"]
                        log(f"  idle {s} {n_eff}: {i['rss_kib_per_connection']:.1f} KiB/conn "
                            f"({i['opened']} opened, {i['alive_after_hold']} alive)")
                    self.stop_all()
        self.wall_s = time.time() - t0
        # CPU used meanwhile by processes this script did not start (all its children are
        # waited for, so their CPU is in RUSAGE_CHILDREN): another workload disturbing the run.
        self.other_cpu_s = max(0.0, (cpu_busy_s() - busy0) - (children_cpu_s() - ours0))
        log(f"done in {self.wall_s:.0f} s")


# ---- summary ---------------------------------------------------------------------------------
def stat(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return dict(median=statistics.median(vals), min=min(vals), max=max(vals), n=len(vals))


def fmt_stat(st, digits=0, signed=False):
    if st is None:
        return "-"
    f = (lambda v: f"{v:+.{digits}f}") if signed else (lambda v: f"{v:.{digits}f}")
    return f"{f(st['median'])} [{f(st['min'])}–{f(st['max'])}]"


def summarize(b):
    runs = b.runs
    systems = [s for s in b.a.systems if s not in b.skipped]

    def get(s, scen, fn, level=None):
        out = {}
        for r in runs:
            if r["system"] == s and r["scenario"] == scen and r["level"] == level:
                try:
                    out[r["pass_"]] = fn(r["report"])
                except (KeyError, TypeError):
                    out[r["pass_"]] = None
        return out

    def added(s, scen, fn, level=None):
        """Per pass: system minus direct of the same pass."""
        mine, base = get(s, scen, fn, level), get("direct", scen, fn, level)
        return [mine[p] - base[p] for p in mine
                if p in base and mine[p] is not None and base[p] is not None]

    P = lambda r: r["produce"]
    F = lambda r: r["fetch"]
    G = lambda r: r["gateway"]
    fig = {}
    for s in systems:
        d = fig[s] = {}
        st = lambda scen, fn, level=None: stat(list(get(s, scen, fn, level).values()))
        d["produce_ceiling_mb_s"] = st("produce-ceiling", lambda r: P(r)["mb_per_s"])
        d["produce_ceiling_p99_us"] = st("produce-ceiling", lambda r: P(r)["latency_us"]["p99"])
        d["produce_ceiling_errors"] = st("produce-ceiling", lambda r: P(r)["errors_total"])
        d["fetch_ceiling_mb_s"] = st("fetch-ceiling", lambda r: F(r)["mb_per_s"])
        d["floor_p50_us"] = st("floor", lambda r: P(r)["latency_us"]["p50"])
        d["floor_p99_us"] = st("floor", lambda r: P(r)["latency_us"]["p99"])
        d["small_req_s"] = st("small", lambda r: P(r)["requests_per_s"])
        d["hol_alone_p99_us"] = st("hol-alone", lambda r: P(r)["latency_us"]["p99"])
        d["hol_mixed_p99_us"] = st("hol-mixed", lambda r: P(r)["latency_us"]["p99"])
        d["hol_fetch_p50_ms"] = st("hol-mixed", lambda r: F(r)["latency_us"]["p50"] / 1000)
        d["hol_fetch_requests"] = st("hol-mixed", lambda r: F(r)["requests"])
        if s != "direct":
            d["produce_ceiling_core_s_per_gb"] = st("produce-ceiling",
                                                    lambda r: G(r)["core_s_per_gb"])
            d["produce_ceiling_gw_cores"] = st("produce-ceiling", lambda r: G(r)["cores"])
            d["fetch_ceiling_core_s_per_gb"] = st("fetch-ceiling", lambda r: G(r)["core_s_per_gb"])
            d["small_cpu_us_per_req"] = st("small", lambda r: G(r)["cpu_us_per_request"])
            d["floor_added_p50_us"] = stat(added(s, "floor", lambda r: P(r)["latency_us"]["p50"]))
            d["floor_added_p99_us"] = stat(added(s, "floor", lambda r: P(r)["latency_us"]["p99"]))
            for n in b.prof["idle"]:
                d[f"idle_{n}_kib_per_conn"] = st("idle",
                                                 lambda r: r["idle"]["rss_kib_per_connection"], n)
                d[f"idle_{n}_opened"] = st("idle", lambda r: r["idle"]["alive_after_hold"], n)
                d[f"idle_{n}_rss_held_mib"] = st("idle",
                                                 lambda r: r["idle"]["rss_kib_held"] / 1024, n)
        hol = {p: (m - a) for p, a in get(s, "hol-alone", lambda r: P(r)["latency_us"]["p99"]).items()
               for q, m in get(s, "hol-mixed", lambda r: P(r)["latency_us"]["p99"]).items()
               if p == q and a is not None and m is not None}
        d["hol_delta_p99_us"] = stat(list(hol.values()))
        lat = d["latency"] = {}
        for lv in b.prof["levels"]:
            e = lat[lv] = {}
            for q in ("p50", "p99", "p999"):
                e[q] = st("latency", lambda r, q=q: P(r)["latency_us"][q], lv)
                if s != "direct":
                    e[f"added_{q}"] = stat(added(s, "latency",
                                                 lambda r, q=q: P(r)["latency_us"][q], lv))
            e["mb_s"] = st("latency", lambda r: P(r)["mb_per_s"], lv)
            e["errors"] = st("latency", lambda r: P(r)["errors_total"], lv)
    return fig


def ratio(fig, s, key, digits=2):
    a, d = fig[s].get(key), fig.get("direct", {}).get(key)
    if not a or not d or not d["median"]:
        return "-"
    return f"{a['median'] / d['median']:.{digits}f}"


def write_md(b, fig, path, svg_name, json_name, machine):
    systems = [s for s in b.a.systems if s not in b.skipped]
    L = []
    w = L.append
    p = b.prof
    w(f"# {b.date}: {b.a.profile} comparison, mock broker, {machine['cores']}-core machine\n")
    w(f"- **Machine**: {machine['cpu_model']}, {machine['cores']} cores, kernel "
      f"{machine['kernel']}, {machine['mem_gib']} GiB RAM (host `{machine['hostname']}`); "
      f"RLIMIT_NOFILE {b.nofile} (hard).")
    w(f"- **Command**: `loadtest/scripts/bench.py --{b.a.profile}` (`compare.sh --{b.a.profile}`); "
      f"wall time {b.wall_s:.0f} s; {b.passes} passes, each system on a fresh mock broker per "
      f"pass. Every figure: median [min–max] over the passes.")
    w(f"- **Other load**: processes not started by this benchmark used {b.other_cpu_s:.0f} "
      f"core-seconds during it ({b.other_cpu_s / b.wall_s:.2f} cores on average, of "
      f"{machine['cores']}; /proc/stat busy time minus this script's children).")
    w(f"- **Commit**: working tree at {machine['git_commit']}"
      f"{' (plus uncommitted changes)' if machine['git_dirty'] else ''}; gateway binary "
      f"`{b.sluice_bin}`.")
    if b.a.note:
        w(f"- **Note**: {b.a.note}")
    w(f"- **Pinning**: sluice-load on CPUs {b.load_cpus}, sluice-mock-broker on {b.broker_cpus}, the "
      f"gateway on {b.gw_cpus} (Sluice: 1 shard, spin 0; HAProxy: `nbthread "
      f"{len(b.gw_list)}`, TCP mode). On 2 cores the gateway shares its core with the mock broker, "
      f"so throughput ratios are relative, not a gateway ceiling.")
    vers = "; ".join(f"{k}: {v}" for k, v in b.versions.items())
    if vers:
        w(f"- **Versions**: {vers}.")
    for s, why in b.skipped.items():
        w(f"- **{s}**: {why}.")
    w(f"- Raw: `{json_name}` (every run's figures), plot `{svg_name}`.\n")

    def table(title, note, cols):
        w(f"## {title}\n")
        if note:
            w(note + "\n")
        w("| system | " + " | ".join(c[0] for c in cols) + " |")
        w("|---|" + "---:|" * len(cols))
        for s in systems:
            w(f"| {s} | " + " | ".join(c[1](s) for c in cols) + " |")
        w("")

    F = lambda key, dg=0, sg=False: (lambda s: fmt_stat(fig[s].get(key), dg, sg))
    R = lambda key: (lambda s: ratio(fig, s, key))
    cw, cd = p["ceil"]
    w_, d_ = p["short"]
    table("Produce ceiling",
          f"4 connections, 1 KiB records × 16 per request, acks=1, 8 in flight, closed loop; "
          f"{cw} s warm-up, {cd} s measured. CPU: gateway utime+stime over the window.",
          [("MB/s", F("produce_ceiling_mb_s", 1)), ("vs direct", R("produce_ceiling_mb_s")),
           ("p99 µs", F("produce_ceiling_p99_us")),
           ("gw core-s/GB", F("produce_ceiling_core_s_per_gb", 3)),
           ("gw cores", F("produce_ceiling_gw_cores", 2))])
    table("Fetch ceiling",
          f"2 consumers, the mock's synthetic topic (1 KiB × 16 batches, up to 1 MiB per "
          f"partition per Fetch), {w_} s + {d_} s.",
          [("MB/s", F("fetch_ceiling_mb_s", 1)), ("vs direct", R("fetch_ceiling_mb_s")),
           ("gw core-s/GB", F("fetch_ceiling_core_s_per_gb", 3))])
    table("Per-hop floor",
          "1 connection, one 100 B Produce in flight, closed loop. Added: this system minus direct "
          "of the same pass.",
          [("p50 µs", F("floor_p50_us")), ("p99 µs", F("floor_p99_us")),
           ("added p50 µs", F("floor_added_p50_us", 0, True)),
           ("added p99 µs", F("floor_added_p99_us", 0, True))])
    table("Small requests",
          "4 connections × 16 in flight, 100 B records, one per request, closed loop.",
          [("req/s", F("small_req_s")), ("vs direct", R("small_req_s")),
           ("gw CPU µs/request", F("small_cpu_us_per_req", 2))])
    w("## Latency versus load\n")
    w(f"Open loop (latency from the intended send time), 4 connections, 1 KiB × 16 per request, "
      f"at {', '.join(map(str, p['levels']))}% of direct's produce ceiling in pass 1 "
      f"({b.calib_req_s:.0f} req/s, {b.calib_req_s * 16 * 1024 / 1e6:.0f} MB/s of values); the "
      f"same offered load for every system and pass. Added: minus direct of the same pass. "
      f"Plot: `{svg_name}`.\n")
    w("\"Own ceiling\": the offered load as a share of this system's own produce ceiling "
      "(median); past 100% the system is overloaded, the queue grows for the whole window and the "
      "latencies are those of the backlog, not of the hop.\n")
    w("| load | system | own ceiling | MB/s | p50 µs | p99 µs | p99.9 µs | added p50 µs | added p99 µs | added p99.9 µs |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for lv in p["levels"]:
        for s in systems:
            e = fig[s]["latency"][lv]
            ceil = fig[s].get("produce_ceiling_mb_s")
            own = (f"{e['mb_s']['median'] / ceil['median'] * 100:.0f}%"
                   if ceil and e["mb_s"] and ceil["median"] else "-")
            w(f"| {lv}% | {s} | {own} | {fmt_stat(e['mb_s'], 1)} | {fmt_stat(e['p50'])} | "
              f"{fmt_stat(e['p99'])} | {fmt_stat(e['p999'])} | "
              f"{fmt_stat(e.get('added_p50'), 0, True)} | {fmt_stat(e.get('added_p99'), 0, True)} | "
              f"{fmt_stat(e.get('added_p999'), 0, True)} |")
    w("")
    hw, hd = p["hol"]
    table("Head-of-line: 50 producers alone vs next to 50 long polls",
          f"50 producer connections, open loop 100 req/s each (1 KiB, one record per request, 4 "
          f"in flight); then the same next to 50 consumers long-polling (Fetch max_wait_ms 500, "
          f"min_bytes 1) a topic nobody produces to. {hw} s + {hd} s each. A gateway that shared "
          f"upstream connections would queue Produce behind the 500 ms polls.",
          [("p99 µs alone", F("hol_alone_p99_us")), ("p99 µs with polls", F("hol_mixed_p99_us")),
           ("Δ p99 µs", F("hol_delta_p99_us", 0, True)),
           ("poll p50 ms", F("hol_fetch_p50_ms", 0)),
           ("polls answered", F("hol_fetch_requests"))])
    gws = [s for s in systems if s != "direct"]
    w("## Idle connections: gateway RSS\n")
    capped = [n for n in p["idle"] if n > b.idle_cap]
    note = ""
    if capped:
        note = (f" RLIMIT_NOFILE's hard limit here is {b.nofile} and cannot be raised (no "
                f"CAP_SYS_RESOURCE), and a gateway holds two descriptors per client connection, so "
                f"the {', '.join(map(str, capped))} row opens {b.idle_cap} connections.")
    w("N connections to the bootstrap port, one ApiVersions each (the gateway attaches an upstream "
      "connection), held "
      f"{p['hold']} s; KiB per connection = (VmRSS while held − VmRSS before) / N. A fresh gateway "
      f"per row. Connections alive: those answering a second ApiVersions after the hold.{note}\n")
    w("| system | connections | KiB per connection | VmRSS held MiB | alive after hold |")
    w("|---|---:|---:|---:|---:|")
    for s in gws:
        for n in p["idle"]:
            w(f"| {s} | {min(n, b.idle_cap)} | {fmt_stat(fig[s].get(f'idle_{n}_kib_per_conn'), 1)} | "
              f"{fmt_stat(fig[s].get(f'idle_{n}_rss_held_mib'), 1)} | "
              f"{fmt_stat(fig[s].get(f'idle_{n}_opened'))} |")
    w("")
    errs = [(r["system"], r["scenario"], r["level"], r["pass_"]) for r in b.runs
            if any((r["report"].get(k) or {}).get("errors_total") for k in ("produce", "fetch"))]
    if errs:
        names = [f"{a}/{c}" + ("" if l is None else f"@{l}") + f"/p{p_}" for a, c, l, p_ in errs]
        w(f"Runs with errors: {', '.join(names)} (see the JSON).\n")
    open(path, "w").write("\n".join(L))


def write_svg(b, fig, path):
    systems = [s for s in b.a.systems if s not in b.skipped]
    levels = b.prof["levels"]
    colors = {"direct": "#444444", "sluice": "#1f77b4", "haproxy": "#d62728",
              "kroxylicious": "#2ca02c", "kafka-proxy": "#9467bd"}
    W, H, ml, mr, mt, mb = 760, 460, 70, 170, 40, 50
    pw, ph = W - ml - mr, H - mt - mb
    vals = [v for s in systems for lv in levels for q in ("p50", "p99")
            for v in ((fig[s]["latency"][lv][q] or {}).get("min"),
                      (fig[s]["latency"][lv][q] or {}).get("max")) if v]
    import math
    lo = 10 ** math.floor(math.log10(max(1, min(vals)))) if vals else 10
    hi = 10 ** math.ceil(math.log10(max(vals))) if vals else 10000
    if hi <= lo:
        hi = lo * 10
    x = lambda lv: ml + pw * lv / 100
    y = lambda v: mt + ph * (1 - (math.log10(max(v, lo)) - math.log10(lo)) /
                             (math.log10(hi) - math.log10(lo)))
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{ml}" y="20" font-size="14">Produce latency vs offered load '
         f'({b.date}, {b.a.profile}, {os.cpu_count()} cores): median of {b.passes} passes, '
         f'bars min–max</text>']
    e = hi
    while e >= lo:
        yy = y(e)
        o.append(f'<line x1="{ml}" y1="{yy:.1f}" x2="{ml + pw}" y2="{yy:.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{ml - 6}" y="{yy + 4:.1f}" text-anchor="end">'
                 f'{int(e) if e < 1e6 else f"{e:.0e}"}</text>')
        e /= 10
    for t in range(0, 101, 25):
        o.append(f'<line x1="{x(t):.1f}" y1="{mt}" x2="{x(t):.1f}" y2="{mt + ph}" stroke="#eee"/>')
        o.append(f'<text x="{x(t):.1f}" y="{mt + ph + 18}" text-anchor="middle">{t}%</text>')
    o.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
    o.append(f'<text x="{ml + pw / 2}" y="{H - 10}" text-anchor="middle">offered load, % of '
             f'direct produce ceiling ({b.calib_req_s:.0f} req/s)</text>')
    o.append(f'<text x="16" y="{mt + ph / 2}" transform="rotate(-90 16 {mt + ph / 2})" '
             f'text-anchor="middle">latency µs (log)</text>')
    ly = mt + 10
    for si, s in enumerate(systems):
        c = colors.get(s, "#000")
        # Systems side by side around each load level, so that their bars do not overlap.
        x = lambda lv, si=si: ml + pw * lv / 100 + (si - (len(systems) - 1) / 2) * 6
        for q, dash in (("p99", ""), ("p50", ' stroke-dasharray="5,4"')):
            pts = [(lv, fig[s]["latency"][lv][q]) for lv in levels if fig[s]["latency"][lv][q]]
            if not pts:
                continue
            path_d = " ".join(f"{'M' if i == 0 else 'L'}{x(lv):.1f},{y(st['median']):.1f}"
                              for i, (lv, st) in enumerate(pts))
            o.append(f'<path d="{path_d}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
            for lv, st in pts:
                o.append(f'<line x1="{x(lv):.1f}" y1="{y(st["min"]):.1f}" x2="{x(lv):.1f}" '
                         f'y2="{y(st["max"]):.1f}" stroke="{c}"/>')
                o.append(f'<circle cx="{x(lv):.1f}" cy="{y(st["median"]):.1f}" r="3" fill="{c}"/>')
            o.append(f'<line x1="{ml + pw + 12}" y1="{ly}" x2="{ml + pw + 40}" y2="{ly}" '
                     f'stroke="{c}" stroke-width="2"{dash}/>')
            o.append(f'<text x="{ml + pw + 46}" y="{ly + 4}">{s} {q}</text>')
            ly += 18
    o.append("</svg>")
    open(path, "w").write("\n".join(o) + "\n")


# ---- core scaling (--scaling) ----------------------------------------------------------------
# Sluice with N shards on the first N gateway CPUs, the generator and the mock broker on CPUs of
# their own, 8 connections per shard (--conns-per-shard), pipelined closed loop (sluice-load
# --pipelined: one thread per connection writes every request its window has room for in one
# writev, then reads the responses). For each N: direct
# with the same connections (what the generator and the mock can do without a gateway: the
# load-side ceiling), then Sluice. Per-shard figures come from the shards' threads
# (/proc/PID/task: CPU) and Sluice's /metrics (bytes and connections by shard), sampled over the
# measured window.
# The mock broker keeps no copy of produced batches (offsets still advance): less work per byte
# on the load side. Nothing is fetched in these runs.
MOCK_SINK = ("--log-cap-mib", "0")
SCALING_PROFILES = {"quick": dict(passes=3, win=(1, 3)), "full": dict(passes=5, win=(2, 8)),
                    "tiny": dict(passes=3, win=(0.3, 1))}


def scaling_scenarios(n, cps, win):
    w, d = win
    c = n * cps
    common = ["--acks", 1, "--warmup-s", w, "--duration-s", d, "--partitions", 8]
    return {
        # Small requests: 100 B, one record per request, 16 in flight.
        "small": ["--producers", c, "--record-size", 100, "--records-per-batch", 1,
                  "--in-flight", 16, "--pipelined"] + common,
        # Produce throughput: 1 KiB x 16 (16 KiB requests), 8 in flight.
        "produce": ["--producers", c, "--record-size", 1024, "--records-per-batch", 16,
                    "--in-flight", 8, "--pipelined"] + common,
    }


def shard_threads(pid):
    """{shard index: utime+stime seconds} of the threads named sluice-shard-N."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tids:
        try:
            raw = open(f"/proc/{pid}/task/{t}/stat").read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        f = raw[raw.rindex(")") + 2:].split()
        # glommio names a shard's threads "sluice-shard-N-<thread id>", cut to 15 characters:
        # the executor and its helper thread, summed (unambiguous up to 10 shards).
        m = re.match(r"sluice-shard-(\d)(?:-|$)", name)
        if m:
            k = int(m.group(1))
            out[k] = out.get(k, 0) + (int(f[11]) + int(f[12])) / tick
    return out


def scrape(port):
    """Per-shard figures from /metrics: {shard: {"bytes_in": .., "active": ..}}."""
    import urllib.request
    out = {}
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return out
    for m in re.finditer(r'^sluice_bytes_total\{shard="(\d+)",side="downstream",direction="in"\} '
                         r'([0-9.e+]+)$', text, re.M):
        out.setdefault(int(m.group(1)), {})["bytes_in"] = float(m.group(2))
    for m in re.finditer(r'^sluice_connections_active\{shard="(\d+)"\} ([0-9.e+]+)$',
                         text, re.M):
        out.setdefault(int(m.group(1)), {})["active"] = float(m.group(2))
    return out


class Scaling(Bench):
    def __init__(self, a):
        a.profile_scaling = a.profile
        super().__init__(a)
        self.sprof = SCALING_PROFILES[a.profile]
        self.passes = a.passes or self.sprof["passes"]
        self.shard_counts = [int(x) for x in a.shards.split(",")]
        self.gw_list = expand_cpus(env("GATEWAY_CPUS", "0-15"))
        if max(self.shard_counts) > len(self.gw_list):
            sys.exit(f"GATEWAY_CPUS has {len(self.gw_list)} CPUs, fewer than "
                     f"{max(self.shard_counts)} shards")
        overlap = set(self.gw_list[:max(self.shard_counts)]) & (
            set(expand_cpus(self.load_cpus)) | set(expand_cpus(self.broker_cpus)))
        self.overlap = sorted(overlap)
        if overlap:
            log(f"warning: shards share CPUs {self.overlap} with the generator or the mock broker")

    def start_sluice(self, n):
        b = self.base
        m1, _ = self.start_mock("sluice", extra=MOCK_SINK)
        cpus = self.gw_list[:n]
        cfg = os.path.join(self.out, f"sluice-{n}.toml")
        with open(cfg, "w") as f:
            f.write(f"""[runtime]
shards = {n}
cpus = [{", ".join(str(c) for c in cpus)}]
spin_before_park_us = {env('SPIN_US', '0')}
[listener]
bind_address = "127.0.0.1"
advertised_host = "127.0.0.1"
bootstrap_port = {b}
broker_port_base = {b + 100}
[upstream]
bootstrap_servers = ["{m1}"]
[limits]
max_connections_per_shard = 100000
[shutdown]
drain_timeout_ms = 1000
[admin]
listen = "127.0.0.1:{b + 3}"
[log]
level = "warn"
""")
        cl = ",".join(str(c) for c in cpus)
        p = self.spawn(["taskset", "-c", cl, self.sluice_bin, "--config", cfg], f"sluice-{n}.log")
        if not self.wait_port(p, b) or not self.wait_port(p, b + 3):
            sys.exit(f"sluice did not start: see {self.out}/sluice-{n}.log")
        return f"127.0.0.1:{b}", p.pid

    def sampled_load(self, sysname, scen, n, pas, boot, gw, args):
        """Runs sluice-load; for a gateway, samples per-shard CPU and counters over the
        measured window ([warm-up + 0.3 s, end - 0.2 s] from the generator's start)."""
        tag = f"scaling-{scen}-n{n}-{sysname}-p{pas}"
        jpath = os.path.join(self.out, "runs", f"{tag}.json")
        cmd = [f"{self.bin}/sluice-load", "--bootstrap", boot, "--cpus", self.load_cpus,
               "--quiet", "--label", tag, "--json", jpath] + [str(x) for x in args]
        if gw:
            cmd += ["--gateway-pid", str(gw)]
        w, d = self.sprof["win"]
        t0 = time.time()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        shards = None
        if gw:
            time.sleep(max(0.0, t0 + w + 0.3 - time.time()))
            c0, m0, s0 = shard_threads(gw), scrape(self.base + 3), time.time()
            time.sleep(max(0.0, t0 + w + d - 0.2 - time.time()))
            c1, m1, s1 = shard_threads(gw), scrape(self.base + 3), time.time()
            span = s1 - s0
            shards = {}
            for k in sorted(set(c1) | set(m1)):
                shards[k] = dict(
                    cpu_busy=round((c1.get(k, 0) - c0.get(k, 0)) / span, 3),
                    mb_in_per_s=round((m1.get(k, {}).get("bytes_in", 0)
                                       - m0.get(k, {}).get("bytes_in", 0)) / span / 1e6, 2),
                    active=m1.get(k, {}).get("active"))
        out, err = proc.communicate(timeout=600)
        with open(os.path.join(self.out, "runs", f"{tag}.txt"), "w") as f:
            f.write(" ".join(cmd) + "\n" + out + err)
        if proc.returncode != 0 or not os.path.exists(jpath):
            log(f"  {tag}: sluice-load failed (rc {proc.returncode}): {err.strip()[-300:]}")
            return None
        rep = json.load(open(jpath))
        self.runs.append(dict(system=sysname, scenario=scen, level=n, pass_=pas, report=rep,
                              shards=shards))
        P = rep["produce"]
        msg = (f"  {tag}: {P['requests_per_s']:.0f} req/s {P['mb_per_s']:.0f} MB/s "
               f"p99 {P['latency_us']['p99']} µs errors {P['errors_total']}")
        if shards:
            busy = [v["cpu_busy"] for v in shards.values()]
            msg += f"; shard busy {min(busy):.2f}-{max(busy):.2f}"
        log(msg)
        return rep

    def run(self):
        t0 = time.time()
        busy0, ours0 = cpu_busy_s(), children_cpu_s()
        cps = self.a.conns_per_shard
        for pas in range(1, self.passes + 1):
            for n in self.shard_counts:
                sc = scaling_scenarios(n, cps, self.sprof["win"])
                for s in ("direct", "sluice"):
                    if s == "direct":
                        boot, gw = self.start_mock(s, extra=MOCK_SINK)[0], None
                    else:
                        boot, gw = self.start_sluice(n)
                    for scen, args in sc.items():
                        self.sampled_load(s, scen, n, pas, boot, gw, args)
                    self.stop_all()
        self.wall_s = time.time() - t0
        self.other_cpu_s = max(0.0, (cpu_busy_s() - busy0) - (children_cpu_s() - ours0))
        log(f"done in {self.wall_s:.0f} s")


def scaling_summary(b):
    fig = {}
    for scen in ("small", "produce"):
        rows = fig[scen] = {}
        for n in b.shard_counts:
            r = rows[n] = {}
            for s in ("direct", "sluice"):
                runs = [x for x in b.runs if x["system"] == s and x["scenario"] == scen
                        and x["level"] == n]
                r[f"{s}_req_s"] = stat([x["report"]["produce"]["requests_per_s"] for x in runs])
                r[f"{s}_mb_s"] = stat([x["report"]["produce"]["mb_per_s"] for x in runs])
                r[f"{s}_p99_us"] = stat([x["report"]["produce"]["latency_us"]["p99"]
                                         for x in runs])
                r[f"{s}_errors"] = stat([x["report"]["produce"]["errors_total"] for x in runs])
                if s == "sluice":
                    r["gw_cores"] = stat([(x["report"].get("gateway") or {}).get("cores")
                                          for x in runs])
                    r["gw_cpu_us_per_req"] = stat(
                        [(x["report"].get("gateway") or {}).get("cpu_us_per_request")
                         for x in runs])
                    busy, spread_b, spread_c, acc = [], [], [], []
                    for x in runs:
                        sh = x.get("shards") or {}
                        cb = [v["cpu_busy"] for v in sh.values()]
                        mb = [v["mb_in_per_s"] for v in sh.values()]
                        ac = [v["active"] or 0 for v in sh.values()]
                        if cb:
                            busy.append(max(cb))
                            spread_c.append(max(cb) / min(cb) if min(cb) > 0 else None)
                        if mb:
                            spread_b.append(max(mb) / min(mb) if min(mb) > 0 else None)
                        if ac:
                            acc.append(f"{int(min(ac))}-{int(max(ac))}")
                    r["busiest_shard_cpu"] = stat(busy)
                    r["shard_ratio_bytes"] = stat(spread_b)
                    r["shard_ratio_cpu"] = stat(spread_c)
                    r["conns_min_max"] = acc
        base = rows.get(b.shard_counts[0], {}).get("sluice_req_s")
        n0 = b.shard_counts[0]
        for n in b.shard_counts:
            r = rows[n]
            # Efficiency per pass would pair unrelated runs; use medians (min and max of T(N)
            # over T(1)'s median for the range).
            t = r["sluice_req_s"]
            if base and t:
                f = lambda v: v / (n / n0 * base["median"])
                r["efficiency"] = dict(median=f(t["median"]), min=f(t["min"]), max=f(t["max"]))
            d = r["direct_req_s"]
            if d and t:
                r["vs_direct"] = t["median"] / d["median"]
    return fig


def write_scaling_md(b, fig, path, svg_name, json_name, machine):
    L = []
    w = L.append
    w(f"# {b.date}: core scaling, 1 to {max(b.shard_counts)} shards, mock broker, "
      f"{machine['cores']}-core machine\n")
    w(f"- **Machine**: {machine['cpu_model']}, {machine['cores']} cores, kernel "
      f"{machine['kernel']}, {machine['mem_gib']} GiB RAM (host `{machine['hostname']}`); "
      f"RLIMIT_NOFILE {b.nofile}.")
    w(f"- **Command**: `loadtest/scripts/bench.py --scaling --{b.a.profile} --shards "
      f"{b.a.shards} --conns-per-shard {b.a.conns_per_shard}`; wall time {b.wall_s:.0f} s; "
      f"{b.passes} passes (each pass: every N, direct then Sluice, fresh mock broker and gateway "
      f"each). Every figure: median [min–max] over the passes.")
    w(f"- **Other load**: processes not started by this benchmark used {b.other_cpu_s:.0f} "
      f"core-seconds during it ({b.other_cpu_s / b.wall_s:.2f} cores on average).")
    w(f"- **Commit**: {machine['git_commit']}"
      f"{' (plus uncommitted changes)' if machine['git_dirty'] else ''}; gateway binary "
      f"`{b.sluice_bin}`.")
    if b.a.note:
        w(f"- **Note**: {b.a.note}")
    w(f"- **Pinning**: Sluice's N shards on CPUs {', '.join(str(c) for c in b.gw_list[:max(b.shard_counts)])} "
      f"(the first N; `runtime.cpus`), sluice-load on {b.load_cpus}, sluice-mock-broker on "
      f"{b.broker_cpus}" + (f"; **shards share CPUs {b.overlap} with the load**" if b.overlap
                            else "; no CPU is shared between the gateway and the load") + ".")
    w(f"- **Load**: {b.a.conns_per_shard} connections per shard (N × {b.a.conns_per_shard}), "
      f"closed loop, acks=1, `sluice-load --pipelined` (one thread per connection writes every "
      f"request its window has room for in one writev, then reads the responses); the mock "
      f"broker keeps no copy of the batches (`--log-cap-mib 0`); {b.sprof['win'][0]} s warm-up, "
      f"{b.sprof['win'][1]} s measured. Direct: the same load straight at the mock broker (the "
      f"load side's ceiling with these CPUs).")
    w(f"- **Per shard**: CPU of each `sluice-shard-N` thread (/proc/PID/task) and "
      f"`sluice_bytes_total{{side=\"downstream\",direction=\"in\"}}` by shard (/metrics), over "
      f"the measured window minus its first 0.3 s and last 0.2 s; connections per shard: "
      f"`sluice_connections_active` at the end of that window. Busiest/idlest: max/min over "
      f"the shards of one run. Efficiency: T(N) / (N × T(1)), medians (range: min and max of "
      f"T(N) over the median T(1)).")
    w(f"- Raw: `{json_name}`; plot `{svg_name}`.\n")
    for scen, title, unit in (("small", "Small requests: 100 B, one record per request, 16 in "
                               "flight per connection", "req/s"),
                              ("produce", "Produce: 1 KiB × 16 records (16 KiB requests), 8 in "
                               "flight per connection", "MB/s")):
        w(f"## {title}\n")
        key = "req_s" if unit == "req/s" else "mb_s"
        w(f"| shards | conns | direct {unit} | Sluice {unit} | efficiency | Sluice / direct | "
          f"gateway cores | gateway CPU µs/req | busiest shard CPU | busiest/idlest shard (bytes) | "
          f"busiest/idlest (CPU) | connections per shard, min-max (each pass) | Sluice p99 µs |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        for n in b.shard_counts:
            r = fig[scen][n]
            eff = r.get("efficiency")
            e = (f"{eff['median']:.2f} [{eff['min']:.2f}–{eff['max']:.2f}]" if eff else "-")
            vd = f"{r['vs_direct']:.2f}" if r.get("vs_direct") else "-"
            w(f"| {n} | {n * b.a.conns_per_shard} | {fmt_stat(r[f'direct_{key}'])} | "
              f"{fmt_stat(r[f'sluice_{key}'])} | {e} | {vd} | {fmt_stat(r['gw_cores'], 2)} | "
              f"{fmt_stat(r['gw_cpu_us_per_req'], 2)} | {fmt_stat(r['busiest_shard_cpu'], 2)} | {fmt_stat(r['shard_ratio_bytes'], 2)} | "
              f"{fmt_stat(r['shard_ratio_cpu'], 2)} | {', '.join(r['conns_min_max'])} | "
              f"{fmt_stat(r['sluice_p99_us'])} |")
        w("")
    errs = [(r["system"], r["scenario"], r["level"], r["pass_"]) for r in b.runs
            if (r["report"].get("produce") or {}).get("errors_total")]
    if errs:
        w("Runs with errors: " + ", ".join(f"{a}/{c}/n{l}/p{p_}" for a, c, l, p_ in errs) + "\n")
    open(path, "w").write("\n".join(L))


def write_scaling_svg(b, fig, path):
    W, H, ml, mr, mt, mb = 720, 420, 80, 190, 40, 50
    pw, ph = W - ml - mr, H - mt - mb
    ns = b.shard_counts
    n0 = ns[0]
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'font-family="sans-serif" font-size="12">', f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{ml}" y="20" font-size="14">Throughput vs shards, relative to 1 shard '
         f'({b.date}, median of {b.passes}, bars min–max)</text>']
    top = max(ns) / n0
    x = lambda n: ml + pw * (n - n0) / max(1, (max(ns) - n0))
    y = lambda v: mt + ph * (1 - v / top)
    for t in range(0, int(top) + 1, max(1, int(top) // 8)):
        o.append(f'<line x1="{ml}" y1="{y(t):.1f}" x2="{ml + pw}" y2="{y(t):.1f}" stroke="#eee"/>')
        o.append(f'<text x="{ml - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t}x</text>')
    for n in ns:
        o.append(f'<text x="{x(n):.1f}" y="{mt + ph + 18}" text-anchor="middle">{n}</text>')
    o.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
    o.append(f'<text x="{ml + pw / 2}" y="{H - 10}" text-anchor="middle">shards (CPUs)</text>')
    o.append(f'<line x1="{x(n0):.1f}" y1="{y(1):.1f}" x2="{x(max(ns)):.1f}" y2="{y(top):.1f}" '
             f'stroke="#999" stroke-dasharray="4,4"/>')
    ly = mt + 10
    o.append(f'<line x1="{ml + pw + 12}" y1="{ly}" x2="{ml + pw + 40}" y2="{ly}" stroke="#999" '
             f'stroke-dasharray="4,4"/><text x="{ml + pw + 46}" y="{ly + 4}">linear</text>')
    ly += 18
    series = [("small", "sluice", "#1f77b4", "", "Sluice, small req/s"),
              ("produce", "sluice", "#d62728", "", "Sluice, produce MB/s"),
              ("small", "direct", "#1f77b4", ' stroke-dasharray="2,3"', "direct (load ceiling), small"),
              ("produce", "direct", "#d62728", ' stroke-dasharray="2,3"', "direct (load ceiling), produce")]
    for scen, s, c, dash, label in series:
        rows = fig[scen]
        base = (rows[n0].get("sluice_req_s") or {}).get("median")
        if not base:
            continue
        pts = [(n, rows[n][f"{s}_req_s"]) for n in ns if rows[n].get(f"{s}_req_s")]
        d = " ".join(f"{'M' if i == 0 else 'L'}{x(n):.1f},{y(st['median'] / base):.1f}"
                     for i, (n, st) in enumerate(pts))
        o.append(f'<path d="{d}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
        for n, st in pts:
            o.append(f'<line x1="{x(n):.1f}" y1="{y(st["min"] / base):.1f}" x2="{x(n):.1f}" '
                     f'y2="{y(st["max"] / base):.1f}" stroke="{c}"/>')
            o.append(f'<circle cx="{x(n):.1f}" cy="{y(st["median"] / base):.1f}" r="3" fill="{c}"/>')
        o.append(f'<line x1="{ml + pw + 12}" y1="{ly}" x2="{ml + pw + 40}" y2="{ly}" stroke="{c}" '
                 f'stroke-width="2"{dash}/><text x="{ml + pw + 46}" y="{ly + 4}">{label}</text>')
        ly += 18
    o.append("</svg>")
    open(path, "w").write("\n".join(o) + "\n")


def require_binaries(b):
    """Exits with the build command unless Sluice and both load-test binaries are executable."""
    for exe in (b.sluice_bin, os.path.join(b.bin, "sluice-load"),
                os.path.join(b.bin, "sluice-mock-broker")):
        if not os.access(exe, os.X_OK):
            sys.exit(f"{exe} missing: cargo build --release -p sluice -p sluice-loadtest "
                     f"(or set BIN)")


def results_stem(a, machine, kind):
    """`<date>-<machine>-<kind>`, the file name of a run's results without extension; the machine
    is `--machine` or `<cores>core-<cpu model>`."""
    slug = a.machine or f"{machine['cores']}core-" + re.sub(
        r"[^a-z0-9]+", "-", machine["cpu_model"].lower()).strip("-")
    return f"{a.date}-{slug}-{kind}"


def scaling_main(a):
    b = Scaling(a)
    b.date = a.date
    require_binaries(b)
    machine = machine_info()
    stem = results_stem(a, machine, "scaling")
    log(f"scaling: shards {a.shards}, {b.passes} passes; out {b.out}; results "
        f"{a.results_dir}/{stem}.*")
    try:
        b.run()
    finally:
        b.stop_all()
    fig = scaling_summary(b)
    os.makedirs(a.results_dir, exist_ok=True)
    md, js, svg = (os.path.join(a.results_dir, f"{stem}.{e}") for e in ("md", "json", "svg"))
    write_scaling_svg(b, fig, svg)
    write_scaling_md(b, fig, md, os.path.basename(svg), os.path.basename(js), machine)
    slim = [dict(system=r["system"], scenario=r["scenario"], shards=r["level"],
                 pass_no=r["pass_"], args=r["report"]["params"],
                 produce={k: v for k, v in r["report"]["produce"].items()
                          if k != "service_time_us"},
                 gateway=r["report"].get("gateway"), per_shard=r["shards"]) for r in b.runs]
    json.dump(dict(date=a.date, kind="scaling", profile=a.profile, passes=b.passes,
                   wall_s=round(b.wall_s, 1), sluice_bin=b.sluice_bin, note=a.note,
                   other_cpu_s=round(b.other_cpu_s, 1), machine=machine,
                   pinning=dict(load=b.load_cpus, broker=b.broker_cpus,
                                gateway=b.gw_list[:max(b.shard_counts)]),
                   conns_per_shard=a.conns_per_shard,
                   figures={scen: {str(n): v for n, v in rows.items()} for scen, rows in fig.items()},
                   runs=slim), open(js, "w"), indent=1)
    print(open(md).read())
    log(f"wrote {md}, {js}, {svg}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="profile", action="store_const", const="quick")
    g.add_argument("--full", dest="profile", action="store_const", const="full")
    g.add_argument("--tiny", dest="profile", action="store_const", const="tiny",
                   help="a one-minute check of the script itself, not a measurement")
    ap.set_defaults(profile="quick")
    ap.add_argument("--passes", type=int, help="override the profile's passes (at least 3)")
    ap.add_argument("--systems", default=" ".join(ALL_SYSTEMS),
                    help="space-separated, direct first (default: %(default)s)")
    ap.add_argument("--out", default=env("OUT", "/tmp/sluice-bench"), help="raw runs and logs")
    ap.add_argument("--results-dir", default=os.path.join(ROOT, "loadtest", "results"))
    ap.add_argument("--machine", help="machine name in the file names (default: <cores>core-<cpu>)")
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    ap.add_argument("--note", help="a line added to the report's header (e.g. how Sluice was built)")
    ap.add_argument("--scaling", action="store_true",
                    help="core scaling instead: Sluice with each of --shards (direct as the load "
                         "ceiling); GATEWAY_CPUS lists the shards' CPUs (default 0-15)")
    ap.add_argument("--shards", default="1,2,4,8", help="--scaling: shard counts (%(default)s)")
    ap.add_argument("--conns-per-shard", type=int, default=8,
                    help="--scaling: generator connections per shard (%(default)s)")
    a = ap.parse_args()
    if a.passes is not None and a.passes < 3:
        sys.exit("--passes must be at least 3 (median with min and max)")
    if a.scaling:
        return scaling_main(a)
    a.systems = a.systems.split()
    if a.systems[0] != "direct":
        sys.exit("--systems must start with direct (the reference)")
    if a.passes is not None and a.passes < 3:
        sys.exit("--passes must be at least 3 (median with min and max)")
    b = Bench(a)
    b.date = a.date
    require_binaries(b)
    machine = machine_info()
    stem = results_stem(a, machine, a.profile)
    log(f"{a.profile}: {b.passes} passes of {' '.join(a.systems)} on {machine['cpu_model']} "
        f"({machine['cores']} cores); out {b.out}; results {a.results_dir}/{stem}.*")
    try:
        b.run()
    finally:
        b.stop_all()
    fig = summarize(b)
    os.makedirs(a.results_dir, exist_ok=True)
    md, js, svg = (os.path.join(a.results_dir, f"{stem}.{e}") for e in ("md", "json", "svg"))
    write_svg(b, fig, svg)
    write_md(b, fig, md, os.path.basename(svg), os.path.basename(js), machine)
    slim = []
    for r in b.runs:
        rep = r["report"]
        keep = {k: rep.get(k) for k in ("mode", "produce", "fetch", "gateway", "idle")}
        for k in ("produce", "fetch"):
            if keep[k]:
                keep[k] = {kk: vv for kk, vv in keep[k].items() if kk != "service_time_us"}
        slim.append(dict(system=r["system"], scenario=r["scenario"], level=r["level"],
                         pass_no=r["pass_"], args=rep["params"], **keep))
    json.dump(dict(date=a.date, profile=a.profile, passes=b.passes, wall_s=round(b.wall_s, 1),
                   sluice_bin=b.sluice_bin, note=a.note, other_cpu_s=round(b.other_cpu_s, 1),
                   machine=machine, pinning=dict(load=b.load_cpus, broker=b.broker_cpus,
                                                 gateway=b.gw_cpus),
                   latency_reference_req_s=b.calib_req_s, skipped=b.skipped, versions=b.versions,
                   figures={s: {k: v for k, v in d.items()} for s, d in fig.items()},
                   runs=slim), open(js, "w"), indent=1)
    print(open(md).read())
    log(f"wrote {md}, {js}, {svg}")


if __name__ == "__main__":
    main()
