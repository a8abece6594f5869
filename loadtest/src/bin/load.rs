//! `sluice-load`: a Kafka load generator speaking the protocol itself with pre-encoded record
//! batches. Produce (acks 0/1/all) over N connections with an in-flight window each, closed loop
//! or open loop at a fixed rate with coordinated-omission correction; optional Fetch consumers.
//! See README.md.

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use clap::Parser;
use hdrhistogram::Histogram;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;
use sluice_loadtest::batch::{encode_batch, BatchIter, BatchSpec};
use sluice_loadtest::latency::{new_histogram, LatencyRecorder, Schedule};
use sluice_loadtest::meta::{parse_cpus, pin, RunMeta};
use sluice_loadtest::wire::{
    decode_response, encode_request, negotiate, patch_correlation_id, read_frame,
};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, IoSlice, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel, RecvTimeoutError};
use std::time::{Duration, Instant};

const CLIENT_ID: &str = "sluice-load";
/// Versions this tool speaks (highest common with the broker is used).
const PRODUCE: (i16, i16) = (3, 12);
const FETCH: (i16, i16) = (4, 12);
const METADATA: (i16, i16) = (1, 12);
/// Threads that open and check idle connections (`--idle-connections`).
const IDLE_THREADS: usize = 16;

#[derive(Parser, Debug, Clone, Serialize)]
#[command(
    name = "sluice-load",
    about = "Kafka load generator (produce/fetch) for Sluice"
)]
struct Args {
    /// Bootstrap address (host:port): Metadata is asked here, then partition leaders are used.
    #[arg(long, default_value = "127.0.0.1:19092")]
    bootstrap: String,
    /// Topic (auto-created by brokers that allow it; the mock broker always has it).
    #[arg(long, default_value = "sluice-load")]
    topic: String,
    /// Use the first P partitions of the topic (default: all).
    #[arg(long)]
    partitions: Option<usize>,
    /// Producer connections.
    #[arg(long, default_value_t = 4)]
    producers: usize,
    /// Consumer (Fetch) connections.
    #[arg(long, default_value_t = 0)]
    consumers: usize,
    /// Produce acks: 0, 1 or all (-1).
    #[arg(long, default_value = "1", value_parser = ["0", "1", "all", "-1"])]
    acks: String,
    /// Value bytes per record.
    #[arg(long, default_value_t = 1024)]
    record_size: usize,
    /// Records per batch (one batch per Produce request).
    #[arg(long, default_value_t = 16)]
    records_per_batch: usize,
    /// Key bytes per record; 0 = unkeyed (null keys).
    #[arg(long, default_value_t = 0)]
    key_size: usize,
    /// Produce requests in flight per connection (ignored with acks=0: nothing is answered).
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// Pipelined closed loop (acks 1/all, no --rate): each producer connection is one thread
    /// that writes every request its in-flight window has room for in one `write`, then reads
    /// every response already arrived; no writer thread, no channels. Far fewer syscalls and
    /// thread wake-ups per request than the default (two threads per connection), for
    /// throughput runs that must not be limited by the generator (core scaling).
    #[arg(long)]
    pipelined: bool,
    /// Open loop: Produce requests per second per connection (latency measured from the intended
    /// send time). Without it: closed loop, as fast as the in-flight window allows.
    #[arg(long)]
    rate: Option<f64>,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration_s: f64,
    /// Warm-up seconds: load runs but is not measured.
    #[arg(long, default_value_t = 0.0)]
    warmup_s: f64,
    /// Topic the consumers fetch (default: --topic), e.g. a topic nobody produces to, for
    /// long-poll consumers next to producers.
    #[arg(long)]
    fetch_topic: Option<String>,
    /// Fetch max_wait_ms.
    #[arg(long, default_value_t = 500)]
    fetch_max_wait_ms: i32,
    /// Fetch min_bytes.
    #[arg(long, default_value_t = 1)]
    fetch_min_bytes: i32,
    /// Fetch partition_max_bytes.
    #[arg(long, default_value_t = 1_048_576)]
    fetch_partition_max_bytes: i32,
    /// Fetch max_bytes.
    #[arg(long, default_value_t = 52_428_800)]
    fetch_max_bytes: i32,
    /// A response not read within this is counted as a timeout and its connection closed.
    #[arg(long, default_value_t = 30_000)]
    request_timeout_ms: u64,
    /// Pin the generator's threads round-robin to these CPUs (e.g. `0,1` or `4-7`).
    #[arg(long)]
    cpus: Option<String>,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Sample this process (the gateway under test) from /proc: CPU time (utime+stime, all
    /// threads) over the measured window and VmRSS at its start and end; stored in the report as
    /// `gateway`, with CPU µs per request and core-seconds per GB.
    #[arg(long)]
    gateway_pid: Option<u32>,
    /// Idle mode: open N connections to --bootstrap, send one ApiVersions on each (so a gateway
    /// attaches its upstream connection), hold them all --hold-s seconds, then check each still
    /// answers an ApiVersions. No producers or consumers. With --gateway-pid, the report's `idle`
    /// has the gateway's VmRSS before and while the connections are held.
    #[arg(long)]
    idle_connections: Option<usize>,
    /// Idle mode: seconds to hold the connections once all are open (RSS is sampled at the end).
    #[arg(long, default_value_t = 2.0)]
    hold_s: f64,
    /// Free-form label stored in the report (e.g. "direct" or "via-sluice").
    #[arg(long)]
    label: Option<String>,
    /// No per-second progress line.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Clone, Serialize)]
struct Versions {
    produce: i16,
    fetch: i16,
    metadata: i16,
}

#[derive(Debug, Clone, Serialize)]
struct Cluster {
    /// node id -> host:port, as the bootstrap server advertised them.
    brokers: BTreeMap<i32, String>,
    /// partition -> leader node id, for the partitions used.
    leaders: BTreeMap<i32, i32>,
    /// The same for --fetch-topic (equal to `leaders` without it).
    fetch_leaders: BTreeMap<i32, i32>,
    versions: Versions,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

#[derive(Debug, Default, Clone, Serialize)]
struct Errors {
    /// Error codes in responses (per partition).
    protocol: u64,
    /// Connect, read or write failures; malformed responses.
    io: u64,
    /// Responses not received within --request-timeout-ms.
    timeouts: u64,
    /// Responses whose correlation id was not the expected one.
    correlation: u64,
}

impl Errors {
    fn total(&self) -> u64 {
        self.protocol + self.io + self.timeouts + self.correlation
    }
    fn add(&mut self, o: &Errors) {
        self.protocol += o.protocol;
        self.io += o.io;
        self.timeouts += o.timeouts;
        self.correlation += o.correlation;
    }
}

/// What one connection measured inside the window.
struct ConnResult {
    requests: u64,
    records: u64,
    bytes: u64,
    errors: Errors,
    corrected: Histogram<u64>,
    service: Histogram<u64>,
}

impl ConnResult {
    fn new() -> Self {
        Self {
            requests: 0,
            records: 0,
            bytes: 0,
            errors: Errors::default(),
            corrected: new_histogram(),
            service: new_histogram(),
        }
    }
    fn merge(&mut self, o: &ConnResult) {
        self.requests += o.requests;
        self.records += o.records;
        self.bytes += o.bytes;
        self.errors.add(&o.errors);
        let _ = self.corrected.add(&o.corrected);
        let _ = self.service.add(&o.service);
    }
}

#[derive(Debug, Serialize)]
struct Latency {
    count: u64,
    mean: f64,
    p50: u64,
    p90: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        Self {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Stats {
    connections: usize,
    requests: u64,
    records: u64,
    bytes: u64,
    seconds: f64,
    requests_per_s: f64,
    records_per_s: f64,
    mb_per_s: f64,
    /// µs; CO-corrected (from the intended send time) in open loop.
    latency_us: Latency,
    /// µs; from the actual send time.
    service_time_us: Latency,
    errors: Errors,
    errors_total: u64,
}

impl Stats {
    fn of(r: &ConnResult, connections: usize, seconds: f64) -> Self {
        Self {
            connections,
            requests: r.requests,
            records: r.records,
            bytes: r.bytes,
            seconds,
            requests_per_s: r.requests as f64 / seconds,
            records_per_s: r.records as f64 / seconds,
            mb_per_s: r.bytes as f64 / seconds / 1e6,
            latency_us: Latency::of(&r.corrected),
            service_time_us: Latency::of(&r.service),
            errors: r.errors.clone(),
            errors_total: r.errors.total(),
        }
    }
}

/// The gateway process over the measured window (`--gateway-pid`).
#[derive(Debug, Serialize)]
struct Gateway {
    pid: u32,
    /// utime + stime of all its threads over the window.
    cpu_s: f64,
    /// cpu_s / window seconds.
    cores: f64,
    /// cpu_s in µs per request measured (produce + fetch).
    cpu_us_per_request: Option<f64>,
    /// cpu_s per 10^9 record-batch bytes measured (produce + fetch).
    core_s_per_gb: Option<f64>,
    rss_kib_start: u64,
    rss_kib_end: u64,
}

/// Idle mode (`--idle-connections`).
#[derive(Debug, Serialize)]
struct Idle {
    connections: usize,
    /// Connections opened and answered their ApiVersions.
    opened: usize,
    /// Connections that answered a second ApiVersions after the hold.
    alive_after_hold: usize,
    errors: u64,
    open_s: f64,
    hold_s: f64,
    gateway_pid: Option<u32>,
    /// Gateway VmRSS before the first connection and at the end of the hold.
    rss_kib_before: Option<u64>,
    rss_kib_held: Option<u64>,
    /// (held - before) / opened.
    rss_kib_per_connection: Option<f64>,
}

#[derive(Serialize)]
struct Report<'a> {
    label: Option<&'a str>,
    mode: &'static str,
    meta: RunMeta,
    cpus_pinned: &'a [usize],
    params: &'a Args,
    cluster: Option<&'a Cluster>,
    produce: Option<Stats>,
    fetch: Option<Stats>,
    gateway: Option<Gateway>,
    idle: Option<Idle>,
}

/// utime + stime (seconds, all threads) and VmRSS (KiB) of a process, from /proc.
fn proc_sample(pid: u32, ticks_per_s: f64) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces): state is field 3, utime 14,
    // stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks as f64 / ticks_per_s, rss))
}

/// Clock ticks per second of /proc/PID/stat (`getconf CLK_TCK`; 100 on Linux if unavailable).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Idle mode: N connections, one ApiVersions each, held, then checked.
fn idle(args: &Args, n: usize) -> Result<Idle> {
    let ticks = clock_ticks();
    let rss = |pid: Option<u32>| pid.and_then(|p| proc_sample(p, ticks)).map(|(_, r)| r);
    let rss_before = rss(args.gateway_pid);
    let timeout = Duration::from_millis(args.request_timeout_ms);
    let t0 = Instant::now();
    // Opened (and later checked) from several threads: each connection costs a round trip
    // through the gateway, its upstream connect and, on the mock broker, a thread start.
    let threads = n.clamp(1, IDLE_THREADS);
    let av = ApiVersionsRequest::default();
    let open_one = |i: usize| -> Option<TcpStream> {
        let r = connect(&args.bootstrap, timeout).and_then(|mut s| {
            let resp: ApiVersionsResponse = roundtrip(&mut s, ApiKey::ApiVersions, 0, 1, &av)?;
            if resp.error_code != 0 {
                bail!("ApiVersions error {}", resp.error_code);
            }
            Ok(s)
        });
        r.map_err(|e| {
            if i < 5 || i % 1000 == 0 {
                eprintln!("idle connection {i}: {e:#}");
            }
        })
        .ok()
    };
    let mut conns: Vec<TcpStream> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let open_one = &open_one;
                sc.spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .filter_map(open_one)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut errors = (n - conns.len()) as u64;
    let open_s = t0.elapsed().as_secs_f64();
    let opened = conns.len();
    eprintln!("{opened} of {n} idle connections open in {open_s:.2}s; holding");
    std::thread::sleep(Duration::from_secs_f64(args.hold_s));
    let rss_held = rss(args.gateway_pid);
    let chunk = opened.div_ceil(threads).max(1);
    let alive: usize = std::thread::scope(|sc| {
        let av = &av;
        let hs: Vec<_> = conns
            .chunks_mut(chunk)
            .map(|part| {
                sc.spawn(move || {
                    part.iter_mut()
                        .map(|s| {
                            roundtrip::<_, ApiVersionsResponse>(s, ApiKey::ApiVersions, 0, 2, av)
                                .is_ok()
                        })
                        .filter(|ok| *ok)
                        .count()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    errors += (opened - alive) as u64;
    drop(conns);
    let per_conn = match (rss_before, rss_held) {
        (Some(b), Some(h)) if opened > 0 => Some((h as f64 - b as f64) / opened as f64),
        _ => None,
    };
    Ok(Idle {
        connections: n,
        opened,
        alive_after_hold: alive,
        errors,
        open_s,
        hold_s: args.hold_s,
        gateway_pid: args.gateway_pid,
        rss_kib_before: rss_before,
        rss_kib_held: rss_held,
        rss_kib_per_connection: per_conn,
    })
}

fn idle_main(args: &Args, n: usize, cpus: &[usize], meta: RunMeta) -> Result<()> {
    pin(cpus, 0);
    let r = idle(args, n)?;
    let fmt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    println!(
        "\nidle: {} of {} connections opened in {:.2}s, {} alive after {}s; gateway VmRSS {} -> {} KiB ({} KiB per connection); errors {}",
        r.opened,
        r.connections,
        r.open_s,
        r.alive_after_hold,
        r.hold_s,
        fmt(r.rss_kib_before),
        fmt(r.rss_kib_held),
        r.rss_kib_per_connection
            .map_or("-".to_string(), |v| format!("{v:.1}")),
        r.errors
    );
    let report = Report {
        label: args.label.as_deref(),
        mode: "idle",
        meta,
        cpus_pinned: cpus,
        params: args,
        cluster: None,
        produce: None,
        fetch: None,
        gateway: None,
        idle: Some(r),
    };
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let cpus = match &args.cpus {
        Some(s) => parse_cpus(s).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    if let Some(n) = args.idle_connections {
        if n == 0 || args.hold_s < 0.0 {
            bail!("--idle-connections must be positive and --hold-s not negative");
        }
        return idle_main(&args, n, &cpus, RunMeta::collect());
    }
    if args.producers == 0 && args.consumers == 0 {
        bail!("nothing to do: --producers 0 and --consumers 0");
    }
    if args.duration_s <= 0.0 || args.warmup_s < 0.0 {
        bail!("--duration-s must be positive and --warmup-s not negative");
    }
    if args.rate.is_some_and(|r| r <= 0.0) {
        bail!("--rate must be positive");
    }
    let meta = RunMeta::collect();
    pin(&cpus, 0);
    let cluster = bootstrap(&args)?;
    eprintln!(
        "bootstrap {}: {} brokers, {} partitions, produce v{} fetch v{} metadata v{}",
        args.bootstrap,
        cluster.brokers.len(),
        cluster.leaders.len(),
        cluster.versions.produce,
        cluster.versions.fetch,
        cluster.versions.metadata
    );

    let start = Instant::now() + Duration::from_millis(50);
    let window_start = start + Duration::from_secs_f64(args.warmup_s);
    let end = window_start + Duration::from_secs_f64(args.duration_s);
    let plan = Plan {
        args: &args,
        cluster: &cluster,
        cpus: &cpus,
        start,
        window_start,
        end,
    };

    let produce_ctr = Counters::default();
    let fetch_ctr = Counters::default();
    let running = AtomicUsize::new(0);
    let producers = assign(&cluster.leaders, args.producers);
    let consumers = split(&cluster.fetch_leaders, args.consumers);
    let ticks = clock_ticks();
    let (presults, fresults, gw_samples) = std::thread::scope(|s| {
        // Gateway sampler: at the start and the end of the measured window.
        let sampler = args.gateway_pid.map(|pid| {
            s.spawn(move || {
                let mut out = Vec::new();
                for t in [window_start, end] {
                    let now = Instant::now();
                    if t > now {
                        std::thread::sleep(t - now);
                    }
                    out.push(proc_sample(pid, ticks));
                }
                (pid, out)
            })
        });
        let mut ph = Vec::new();
        for (i, (node, parts)) in producers.iter().enumerate() {
            running.fetch_add(1, Ordering::SeqCst);
            let (plan, ctr, running) = (&plan, &produce_ctr, &running);
            ph.push(s.spawn(move || {
                let r = produce_conn(plan, i, *node, parts, ctr);
                running.fetch_sub(1, Ordering::SeqCst);
                r
            }));
        }
        let mut fh = Vec::new();
        let first_consumer_thread = 2 * producers.len();
        for (i, (node, parts)) in consumers.iter().enumerate() {
            running.fetch_add(1, Ordering::SeqCst);
            let (plan, ctr, running) = (&plan, &fetch_ctr, &running);
            fh.push(s.spawn(move || {
                let r = fetch_conn(plan, first_consumer_thread + i, *node, parts, ctr);
                running.fetch_sub(1, Ordering::SeqCst);
                r
            }));
        }
        progress(&args, start, &running, &produce_ctr, &fetch_ctr);
        let join = |h: Vec<std::thread::ScopedJoinHandle<'_, ConnResult>>| {
            h.into_iter()
                .map(|h| h.join().unwrap_or_else(|_| ConnResult::new()))
                .collect::<Vec<_>>()
        };
        let gw = sampler.and_then(|h| h.join().ok());
        (join(ph), join(fh), gw)
    });

    let seconds = args.duration_s;
    let fold = |rs: &[ConnResult]| {
        let mut all = ConnResult::new();
        for r in rs {
            all.merge(r);
        }
        all
    };
    let produce =
        (!presults.is_empty()).then(|| Stats::of(&fold(&presults), presults.len(), seconds));
    let fetch =
        (!fresults.is_empty()).then(|| Stats::of(&fold(&fresults), fresults.len(), seconds));
    let mode = if args.rate.is_some() {
        "open-loop"
    } else {
        "closed-loop"
    };
    print_table(&args, mode, produce.as_ref(), fetch.as_ref());
    let gateway = match gw_samples {
        Some((pid, v)) => match v.as_slice() {
            [Some((c0, r0)), Some((c1, r1))] => {
                let cpu_s = c1 - c0;
                let sides = [produce.as_ref(), fetch.as_ref()];
                let reqs: u64 = sides.iter().flatten().map(|s| s.requests).sum();
                let bytes: u64 = sides.iter().flatten().map(|s| s.bytes).sum();
                let g = Gateway {
                    pid,
                    cpu_s,
                    cores: cpu_s / seconds,
                    cpu_us_per_request: (reqs > 0).then(|| cpu_s * 1e6 / reqs as f64),
                    core_s_per_gb: (bytes > 0).then(|| cpu_s / (bytes as f64 / 1e9)),
                    rss_kib_start: *r0,
                    rss_kib_end: *r1,
                };
                println!(
                    "gateway pid {pid}: {:.2} cores, {} µs CPU/request, {} core-s/GB, VmRSS {} KiB",
                    g.cores,
                    g.cpu_us_per_request
                        .map_or("-".into(), |v| format!("{v:.2}")),
                    g.core_s_per_gb.map_or("-".into(), |v| format!("{v:.3}")),
                    g.rss_kib_end
                );
                Some(g)
            }
            _ => {
                eprintln!("gateway pid {pid}: could not read /proc/{pid}");
                None
            }
        },
        None => None,
    };
    let report = Report {
        label: args.label.as_deref(),
        mode,
        meta,
        cpus_pinned: &cpus,
        params: &args,
        cluster: Some(&cluster),
        produce,
        fetch,
        gateway,
        idle: None,
    };
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    let errors = report.produce.as_ref().map_or(0, |s| s.errors_total)
        + report.fetch.as_ref().map_or(0, |s| s.errors_total);
    if errors > 0 {
        eprintln!("{errors} errors");
    }
    Ok(())
}

struct Plan<'a> {
    args: &'a Args,
    cluster: &'a Cluster,
    cpus: &'a [usize],
    start: Instant,
    window_start: Instant,
    end: Instant,
}

impl Plan<'_> {
    fn in_window(&self, t: Instant) -> bool {
        t >= self.window_start && t < self.end
    }
    fn acks(&self) -> i16 {
        match self.args.acks.as_str() {
            "0" => 0,
            "1" => 1,
            _ => -1,
        }
    }
}

/// Reads the next Produce response of producer `idx`: (time received, correlation id, body).
/// `None` when the connection ends, the read times out or the response is malformed, each
/// counted in `errors` and reported on stderr.
fn read_produce_response(
    reader: &mut impl std::io::Read,
    version: i16,
    idx: usize,
    addr: &str,
    timeout: Duration,
    errors: &mut Errors,
) -> Option<(Instant, i32, ProduceResponse)> {
    let frame = match read_frame(reader) {
        Ok(Some(f)) => f,
        Ok(None) => {
            eprintln!("producer {idx}: connection closed by {addr}");
            errors.io += 1;
            return None;
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            eprintln!("producer {idx}: no response within {timeout:?}");
            errors.timeouts += 1;
            return None;
        }
        Err(e) => {
            eprintln!("producer {idx}: read: {e}");
            errors.io += 1;
            return None;
        }
    };
    let received = Instant::now();
    match decode_response::<ProduceResponse>(frame, version) {
        Ok((corr, body)) => Some((received, corr, body)),
        Err(e) => {
            eprintln!("producer {idx}: bad Produce response: {e:#}");
            errors.io += 1;
            None
        }
    }
}

fn connect(addr: &str, timeout: Duration) -> Result<TcpStream> {
    use std::net::ToSocketAddrs;
    let mut last = None;
    for a in addr
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
    {
        match TcpStream::connect_timeout(&a, Duration::from_secs(10)) {
            Ok(s) => {
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(timeout))?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| anyhow::anyhow!("{addr}: no address"), |e| e.into()))
        .with_context(|| format!("connecting to {addr}"))
}

fn roundtrip<Req, Resp>(
    s: &mut TcpStream,
    key: ApiKey,
    v: i16,
    corr: i32,
    req: &Req,
) -> Result<Resp>
where
    Req: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::HeaderVersion,
    Resp: kafka_protocol::protocol::Decodable + kafka_protocol::protocol::HeaderVersion,
{
    let frame = encode_request(key, v, corr, CLIENT_ID, req)?;
    s.write_all(&frame)?;
    let resp = read_frame(s)?.context("connection closed")?;
    let (c, body) = decode_response::<Resp>(resp, v)?;
    if c != corr {
        bail!("correlation id {c}, expected {corr}");
    }
    Ok(body)
}

fn bootstrap(args: &Args) -> Result<Cluster> {
    let mut s = connect(&args.bootstrap, Duration::from_secs(30))?;
    let av: ApiVersionsResponse = roundtrip(
        &mut s,
        ApiKey::ApiVersions,
        0,
        1,
        &ApiVersionsRequest::default(),
    )?;
    if av.error_code != 0 {
        bail!("ApiVersions error {}", av.error_code);
    }
    let range = |k: ApiKey| {
        av.api_keys
            .iter()
            .find(|a| a.api_key == k as i16)
            .map(|a| (a.min_version, a.max_version))
    };
    let versions = Versions {
        produce: negotiate(PRODUCE, range(ApiKey::Produce)).context("no common Produce version")?,
        fetch: negotiate(FETCH, range(ApiKey::Fetch)).context("no common Fetch version")?,
        metadata: negotiate(METADATA, range(ApiKey::Metadata))
            .context("no common Metadata version")?,
    };
    let fetch_topic = args
        .fetch_topic
        .clone()
        .unwrap_or_else(|| args.topic.clone());
    let mut names = vec![args.topic.clone()];
    if fetch_topic != args.topic {
        names.push(fetch_topic.clone());
    }
    let req = MetadataRequest::default()
        .with_topics(Some(
            names
                .iter()
                .map(|n| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                })
                .collect(),
        ))
        .with_allow_auto_topic_creation(true);
    let mut last_problem = String::new();
    for attempt in 0..40 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(250));
        }
        let md: MetadataResponse = roundtrip(
            &mut s,
            ApiKey::Metadata,
            versions.metadata,
            2 + attempt,
            &req,
        )?;
        let brokers: BTreeMap<i32, String> = md
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        let leaders = |name: &str| -> Result<Option<BTreeMap<i32, i32>>> {
            let Some(t) = md
                .topics
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == name))
            else {
                return Ok(None);
            };
            if t.error_code != 0 {
                return Ok(None);
            }
            let mut parts: Vec<(i32, i32)> = t
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.leader_id.0))
                .collect();
            parts.sort_unstable();
            if let Some(n) = args.partitions {
                if parts.len() < n {
                    bail!(
                        "topic {name} has {} partitions, --partitions {n}",
                        parts.len()
                    );
                }
                parts.truncate(n);
            }
            if parts.is_empty() || parts.iter().any(|(_, l)| !brokers.contains_key(l)) {
                return Ok(None);
            }
            Ok(Some(parts.into_iter().collect()))
        };
        let (Some(produce_leaders), Some(fetch_leaders)) =
            (leaders(&args.topic)?, leaders(&fetch_topic)?)
        else {
            last_problem = "topic missing, in error or without known leaders".into();
            continue;
        };
        return Ok(Cluster {
            brokers,
            leaders: produce_leaders,
            fetch_leaders,
            versions,
        });
    }
    bail!("metadata for topics {names:?}: {last_problem}")
}

/// Producer connection i -> (leader node, its partitions rotated so connections start apart).
fn assign(leaders: &BTreeMap<i32, i32>, n: usize) -> Vec<(i32, Vec<i32>)> {
    let by_leader = by_leader(leaders);
    let leaders: Vec<_> = by_leader.keys().copied().collect();
    (0..n)
        .map(|i| {
            let node = leaders[i % leaders.len()];
            let mut parts = by_leader[&node].clone();
            let rot = (i / leaders.len()) % parts.len();
            parts.rotate_left(rot);
            (node, parts)
        })
        .collect()
}

/// Consumer connections: each leader's partitions split among the consumers assigned to it.
fn split(leaders: &BTreeMap<i32, i32>, n: usize) -> Vec<(i32, Vec<i32>)> {
    let by_leader = by_leader(leaders);
    let leaders: Vec<_> = by_leader.keys().copied().collect();
    let mut out = Vec::new();
    for i in 0..n {
        let node = leaders[i % leaders.len()];
        let peers = (0..n)
            .filter(|j| j % leaders.len() == i % leaders.len())
            .count();
        let me = i / leaders.len();
        let parts: Vec<i32> = by_leader[&node]
            .iter()
            .enumerate()
            .filter(|(k, _)| k % peers == me)
            .map(|(_, p)| *p)
            .collect();
        if !parts.is_empty() {
            out.push((node, parts));
        }
    }
    out
}

fn by_leader(leaders: &BTreeMap<i32, i32>) -> BTreeMap<i32, Vec<i32>> {
    let mut m: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (p, l) in leaders {
        m.entry(*l).or_default().push(*p);
    }
    m
}

struct Pending {
    corr: i32,
    intended: Instant,
    sent: Instant,
}

fn produce_conn(plan: &Plan, idx: usize, node: i32, parts: &[i32], ctr: &Counters) -> ConnResult {
    let mut res = ConnResult::new();
    let a = plan.args;
    let run = if a.pipelined && a.rate.is_none() && plan.acks() != 0 {
        produce_conn_pipelined
    } else {
        produce_conn_inner
    };
    match run(plan, idx, node, parts, ctr, &mut res) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("producer {idx} (node {node}): {e:#}");
            res.errors.io += 1;
            ctr.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    res
}

fn produce_conn_inner(
    plan: &Plan,
    idx: usize,
    node: i32,
    parts: &[i32],
    ctr: &Counters,
    res: &mut ConnResult,
) -> Result<()> {
    let args = plan.args;
    pin(plan.cpus, 2 * idx);
    let timeout = Duration::from_millis(args.request_timeout_ms);
    let addr = &plan.cluster.brokers[&node];
    let stream = connect(addr, timeout)?;
    let acks = plan.acks();
    let version = plan.cluster.versions.produce;
    let (mut frames, batch_bytes, records) = produce_frames(plan, parts)?;
    let schedule = args.rate.map(|r| Schedule::new(plan.start, r));
    let depth = args.in_flight.max(1);
    let (credit_tx, credit_rx) = sync_channel::<()>(depth);
    for _ in 0..depth {
        let _ = credit_tx.send(());
    }
    let (pending_tx, pending_rx) = channel::<Pending>();
    let mut wstream = stream.try_clone()?;
    let cpus = plan.cpus;

    std::thread::scope(|s| {
        // Writer: sends on schedule (open loop) or whenever the window has room (closed loop).
        let writer = s.spawn(move || -> (Errors, u64, u64, u64) {
            pin(cpus, 2 * idx + 1);
            let mut errs = Errors::default();
            let (mut reqs, mut recs, mut bytes) = (0u64, 0u64, 0u64);
            let mut k: u64 = 0;
            let mut now = Instant::now();
            if now < plan.start {
                std::thread::sleep(plan.start - now);
            }
            loop {
                let intended = match &schedule {
                    Some(s) => {
                        let t = s.intended(k);
                        if t >= plan.end {
                            break;
                        }
                        now = Instant::now();
                        if t > now {
                            std::thread::sleep(t - now);
                        }
                        t
                    }
                    None => Instant::now(),
                };
                if acks != 0 {
                    // Wait for room in the in-flight window.
                    let limit = if schedule.is_some() {
                        plan.end.max(Instant::now()) + timeout
                    } else {
                        plan.end
                    };
                    let wait = limit.saturating_duration_since(Instant::now());
                    match credit_rx.recv_timeout(wait) {
                        Ok(()) => {}
                        Err(RecvTimeoutError::Timeout) if schedule.is_none() => break,
                        Err(RecvTimeoutError::Timeout) => {
                            errs.timeouts += 1;
                            break;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                let intended = if schedule.is_some() {
                    intended
                } else {
                    Instant::now()
                };
                if schedule.is_none() && intended >= plan.end {
                    break;
                }
                let corr = (k & 0x7fff_ffff) as i32;
                let frame = &mut frames[(k as usize) % parts.len()];
                patch_correlation_id(frame, corr);
                let sent = Instant::now();
                if acks != 0
                    && pending_tx
                        .send(Pending {
                            corr,
                            intended,
                            sent,
                        })
                        .is_err()
                {
                    break;
                }
                if let Err(e) = wstream.write_all(frame) {
                    eprintln!("producer {idx}: write: {e}");
                    errs.io += 1;
                    break;
                }
                k += 1;
                if acks == 0 {
                    ctr.requests.fetch_add(1, Ordering::Relaxed);
                    ctr.records.fetch_add(records, Ordering::Relaxed);
                    ctr.bytes.fetch_add(batch_bytes, Ordering::Relaxed);
                    if plan.in_window(intended) {
                        reqs += 1;
                        recs += records;
                        bytes += batch_bytes;
                    }
                }
            }
            drop(pending_tx);
            (errs, reqs, recs, bytes)
        });

        // Reader (this thread): answers arrive in order; one Pending per request sent.
        let mut rec = LatencyRecorder::new(plan.window_start, plan.end);
        let mut reader = BufReader::with_capacity(64 * 1024, &stream);
        while let Ok(p) = pending_rx.recv() {
            let Some((received, corr, body)) =
                read_produce_response(&mut reader, version, idx, addr, timeout, &mut res.errors)
            else {
                break;
            };
            if corr != p.corr {
                res.errors.correlation += 1;
                break;
            }
            let errors = body
                .responses
                .iter()
                .flat_map(|t| t.partition_responses.iter())
                .filter(|pr| pr.error_code != 0)
                .count() as u64;
            ctr.requests.fetch_add(1, Ordering::Relaxed);
            if errors == 0 {
                ctr.records.fetch_add(records, Ordering::Relaxed);
                ctr.bytes.fetch_add(batch_bytes, Ordering::Relaxed);
            } else {
                ctr.errors.fetch_add(errors, Ordering::Relaxed);
            }
            if rec.record(p.intended, p.sent, received) {
                res.requests += 1;
                res.errors.protocol += errors;
                if errors == 0 {
                    res.records += records;
                    res.bytes += batch_bytes;
                }
            }
            let _ = credit_tx.send(());
        }
        // Unblock the writer if we stopped early.
        drop(credit_tx);
        drop(pending_rx);
        let _ = stream.shutdown(std::net::Shutdown::Both);
        if let Ok((errs, reqs, recs, bytes)) = writer.join() {
            res.errors.add(&errs);
            res.requests += reqs;
            res.records += recs;
            res.bytes += bytes;
        }
        res.corrected = rec.corrected;
        res.service = rec.service;
    });
    Ok(())
}

/// The pre-encoded Produce frames of a connection (one per partition), the record-batch bytes
/// and records each carries.
fn produce_frames(plan: &Plan, parts: &[i32]) -> Result<(Vec<BytesMut>, u64, u64)> {
    let args = plan.args;
    let acks = plan.acks();
    let version = plan.cluster.versions.produce;
    let spec = BatchSpec {
        records: args.records_per_batch.max(1),
        value_bytes: args.record_size,
        key_bytes: args.key_size,
        timestamp_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    };
    let batch = encode_batch(&spec, 0);
    let batch_bytes = batch.len() as u64;
    let records = spec.records as u64;
    let frames: Vec<BytesMut> = parts
        .iter()
        .map(|p| {
            let req = ProduceRequest::default()
                .with_acks(acks)
                .with_timeout_ms(args.request_timeout_ms.min(i32::MAX as u64) as i32)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(args.topic.clone())))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(*p)
                        .with_records(Some(batch.clone()))])]);
            encode_request(ApiKey::Produce, version, 0, CLIENT_ID, &req)
        })
        .collect::<Result<_>>()?;
    Ok((frames, batch_bytes, records))
}

/// `Write::write_all_vectored` (not stable): writes every slice, advancing past partial writes.
fn write_all_vectored(w: &mut impl Write, mut bufs: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `--pipelined`: one thread per connection, closed loop. Fill the window in one write, then read
/// the responses (blocking for the first, then every one already buffered), and again.
fn produce_conn_pipelined(
    plan: &Plan,
    idx: usize,
    node: i32,
    parts: &[i32],
    ctr: &Counters,
    res: &mut ConnResult,
) -> Result<()> {
    let args = plan.args;
    pin(plan.cpus, idx);
    let timeout = Duration::from_millis(args.request_timeout_ms);
    let addr = &plan.cluster.brokers[&node];
    let stream = connect(addr, timeout)?;
    let version = plan.cluster.versions.produce;
    let (base, batch_bytes, records) = produce_frames(plan, parts)?;
    let depth = args.in_flight.max(1);
    // One frame per slot k % (partitions × depth): the requests in flight are consecutive, so
    // their slots differ and each can keep its own correlation id until the write.
    let slots = parts.len() * depth;
    let mut frames: Vec<BytesMut> = (0..slots).map(|j| base[j % parts.len()].clone()).collect();
    let mut inflight: std::collections::VecDeque<(i32, Instant)> =
        std::collections::VecDeque::with_capacity(depth);
    let mut rec = LatencyRecorder::new(plan.window_start, plan.end);
    let mut reader = BufReader::with_capacity(64 * 1024, &stream);
    let mut writer = &stream;
    let (mut n_req, mut n_rec, mut n_bytes) = (0u64, 0u64, 0u64); // not yet in `ctr`
    let mut k: u64 = 0;
    let now = Instant::now();
    if now < plan.start {
        std::thread::sleep(plan.start - now);
    }
    let mut writing = true;
    loop {
        // Refill the window once every response already received has been read.
        if writing && reader.buffer().is_empty() {
            let now = Instant::now();
            if now >= plan.end {
                writing = false;
            } else if inflight.len() < depth {
                let first = k;
                while inflight.len() < depth {
                    let corr = (k & 0x7fff_ffff) as i32;
                    patch_correlation_id(&mut frames[(k % slots as u64) as usize], corr);
                    inflight.push_back((corr, now));
                    k += 1;
                }
                // One writev of the frames, no copy into a staging buffer.
                let mut iov: Vec<IoSlice<'_>> = (first..k)
                    .map(|j| IoSlice::new(&frames[(j % slots as u64) as usize]))
                    .collect();
                if let Err(e) = write_all_vectored(&mut writer, &mut iov) {
                    eprintln!("producer {idx}: write: {e}");
                    res.errors.io += 1;
                    break;
                }
            }
        }
        let Some(&(corr, sent)) = inflight.front() else {
            break;
        };
        let Some((received, rcorr, body)) =
            read_produce_response(&mut reader, version, idx, addr, timeout, &mut res.errors)
        else {
            break;
        };
        if rcorr != corr {
            res.errors.correlation += 1;
            break;
        }
        inflight.pop_front();
        let errors = body
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .filter(|pr| pr.error_code != 0)
            .count() as u64;
        n_req += 1;
        if errors == 0 {
            n_rec += records;
            n_bytes += batch_bytes;
        } else {
            ctr.errors.fetch_add(errors, Ordering::Relaxed);
        }
        // The shared progress counters are touched once per 64 responses (they are one cache
        // line for every connection).
        if n_req >= 64 {
            ctr.requests.fetch_add(n_req, Ordering::Relaxed);
            ctr.records.fetch_add(n_rec, Ordering::Relaxed);
            ctr.bytes.fetch_add(n_bytes, Ordering::Relaxed);
            (n_req, n_rec, n_bytes) = (0, 0, 0);
        }
        if rec.record(sent, sent, received) {
            res.requests += 1;
            res.errors.protocol += errors;
            if errors == 0 {
                res.records += records;
                res.bytes += batch_bytes;
            }
        }
    }
    ctr.requests.fetch_add(n_req, Ordering::Relaxed);
    ctr.records.fetch_add(n_rec, Ordering::Relaxed);
    ctr.bytes.fetch_add(n_bytes, Ordering::Relaxed);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    res.corrected = rec.corrected;
    res.service = rec.service;
    Ok(())
}

fn fetch_conn(plan: &Plan, idx: usize, node: i32, parts: &[i32], ctr: &Counters) -> ConnResult {
    let mut res = ConnResult::new();
    if let Err(e) = fetch_conn_inner(plan, idx, node, parts, ctr, &mut res) {
        eprintln!("consumer (node {node}): {e:#}");
        res.errors.io += 1;
        ctr.errors.fetch_add(1, Ordering::Relaxed);
    }
    res
}

fn fetch_conn_inner(
    plan: &Plan,
    idx: usize,
    node: i32,
    parts: &[i32],
    ctr: &Counters,
    res: &mut ConnResult,
) -> Result<()> {
    let args = plan.args;
    pin(plan.cpus, idx);
    let timeout = Duration::from_millis(args.request_timeout_ms)
        + Duration::from_millis(args.fetch_max_wait_ms.max(0) as u64);
    let addr = &plan.cluster.brokers[&node];
    let mut stream = connect(addr, timeout)?;
    let version = plan.cluster.versions.fetch;
    let topic = TopicName(StrBytes::from_string(
        args.fetch_topic
            .clone()
            .unwrap_or_else(|| args.topic.clone()),
    ));
    let mut offsets: HashMap<i32, i64> = parts.iter().map(|p| (*p, 0)).collect();
    let mut rec = LatencyRecorder::new(plan.window_start, plan.end);
    let now = Instant::now();
    if now < plan.start {
        std::thread::sleep(plan.start - now);
    }
    let mut corr = 0i32;
    let mut reader = BufReader::with_capacity(256 * 1024, stream.try_clone()?);
    while Instant::now() < plan.end {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(args.fetch_max_wait_ms)
            .with_min_bytes(args.fetch_min_bytes)
            .with_max_bytes(args.fetch_max_bytes)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic.clone())
                .with_partitions(
                    parts
                        .iter()
                        .map(|p| {
                            FetchPartition::default()
                                .with_partition(*p)
                                .with_fetch_offset(offsets[p])
                                .with_partition_max_bytes(args.fetch_partition_max_bytes)
                        })
                        .collect(),
                )]);
        corr = corr.wrapping_add(1) & 0x7fff_ffff;
        let frame = encode_request(ApiKey::Fetch, version, corr, CLIENT_ID, &req)?;
        let sent = Instant::now();
        stream.write_all(&frame)?;
        let resp = read_frame(&mut reader)?.context("connection closed")?;
        let received = Instant::now();
        let (c, body) = decode_response::<FetchResponse>(resp, version)?;
        if c != corr {
            res.errors.correlation += 1;
            bail!("correlation id {c}, expected {corr}");
        }
        let (mut recs, mut bytes, mut errors) = (0u64, 0u64, 0u64);
        if body.error_code != 0 {
            errors += 1;
        }
        for t in &body.responses {
            for p in &t.partitions {
                if p.error_code != 0 {
                    errors += 1;
                    if let Some(o) = offsets.get_mut(&p.partition_index) {
                        *o = (*o).max(p.log_start_offset);
                    }
                    continue;
                }
                let Some(data) = &p.records else { continue };
                let mut it = BatchIter::new(data);
                for h in it.by_ref() {
                    recs += h.record_count.max(0) as u64;
                    if let Some(o) = offsets.get_mut(&p.partition_index) {
                        *o = (*o).max(h.next_offset());
                    }
                }
                bytes += it.position() as u64;
            }
        }
        ctr.requests.fetch_add(1, Ordering::Relaxed);
        ctr.records.fetch_add(recs, Ordering::Relaxed);
        ctr.bytes.fetch_add(bytes, Ordering::Relaxed);
        ctr.errors.fetch_add(errors, Ordering::Relaxed);
        if rec.record(sent, sent, received) {
            res.requests += 1;
            res.records += recs;
            res.bytes += bytes;
            res.errors.protocol += errors;
        }
    }
    res.corrected = rec.corrected;
    res.service = rec.service;
    Ok(())
}

fn progress(args: &Args, start: Instant, running: &AtomicUsize, p: &Counters, f: &Counters) {
    let mut last = [0u64; 6];
    let mut tick = start;
    while running.load(Ordering::SeqCst) > 0 {
        tick += Duration::from_secs(1);
        while running.load(Ordering::SeqCst) > 0 && Instant::now() < tick {
            std::thread::sleep(Duration::from_millis(20));
        }
        if running.load(Ordering::SeqCst) == 0 {
            break;
        }
        let cur = [
            p.requests.load(Ordering::Relaxed),
            p.records.load(Ordering::Relaxed),
            p.bytes.load(Ordering::Relaxed),
            f.records.load(Ordering::Relaxed),
            f.bytes.load(Ordering::Relaxed),
            p.errors.load(Ordering::Relaxed) + f.errors.load(Ordering::Relaxed),
        ];
        let d: Vec<u64> = cur.iter().zip(last).map(|(c, l)| c - l).collect();
        last = cur;
        if !args.quiet {
            let secs = tick.saturating_duration_since(start).as_secs_f64();
            let phase = if secs <= args.warmup_s {
                " (warm-up)"
            } else {
                ""
            };
            eprintln!(
                "[{secs:>4.0}s{phase}] produce {:>8} req/s {:>10} rec/s {:>8.1} MB/s | fetch {:>10} rec/s {:>8.1} MB/s | errors {}",
                d[0], d[1], d[2] as f64 / 1e6, d[3], d[4] as f64 / 1e6, cur[5]
            );
        }
    }
}

fn print_table(args: &Args, mode: &str, produce: Option<&Stats>, fetch: Option<&Stats>) {
    println!();
    println!(
        "{mode}, {}s measured after {}s warm-up; record {} B, {} records/batch, key {} B{}",
        args.duration_s,
        args.warmup_s,
        args.record_size,
        args.records_per_batch,
        args.key_size,
        args.rate
            .map_or(String::new(), |r| format!(", {r} req/s per connection"))
    );
    println!(
        "{:<16} {:>5} {:>10} {:>11} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "",
        "conns",
        "req/s",
        "records/s",
        "MB/s",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
        "errors"
    );
    let row = |name: String, s: &Stats| {
        let l = &s.latency_us;
        let lat = |v: u64| {
            if l.count == 0 {
                "-".to_string()
            } else {
                v.to_string()
            }
        };
        println!(
            "{:<16} {:>5} {:>10.0} {:>11.0} {:>9.1} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}",
            name,
            s.connections,
            s.requests_per_s,
            s.records_per_s,
            s.mb_per_s,
            lat(l.p50),
            lat(l.p90),
            lat(l.p99),
            lat(l.p999),
            lat(l.max),
            s.errors_total
        );
    };
    if let Some(s) = produce {
        row(format!("produce acks={}", args.acks), s);
    }
    if let Some(s) = fetch {
        row("fetch".to_string(), s);
    }
}
