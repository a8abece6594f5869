//! Sluice end to end on one machine: `cargo run --release --example demo`.
//!
//! Starts a local 3-broker Apache Kafka cluster (KRaft, real broker jars from Maven Central, cached
//! under `~/.cache/sluice`), starts Sluice (2 shards, release build) in front of it, and sends real
//! traffic through it:
//!
//! 1. creates two topics (6 partitions, replication factor 3) through Sluice with Kafka's own
//!    `TopicCommand`, and describes one;
//! 2. after a warm-up, measures producer latency at a fixed rate and producer throughput
//!    (`ProducerPerformance`, acks=all), then consumer throughput (`ConsumerPerformance`), each
//!    directly against the brokers and through Sluice;
//! 3. runs the Java `produce-consume` scenario through Sluice, which verifies every record;
//! 4. checks, with a connection guard watching the brokers' client ports the whole time, that every
//!    connection of the Sluice path to a broker came from the Sluice process;
//! 5. stops Sluice with SIGTERM and the cluster.
//!
//! Needs Java 17+ and Maven on the PATH (and the network for the first run's Kafka download). It
//! reuses the integration-test harness in `tests/it/`. The Sluice binary is built first with
//! `cargo build --bin sluice` in the example's own profile (Cargo does not build binaries for
//! examples); set `SLUICE_BIN` to run a prebuilt one instead. `DEMO_RECORDS` (default 100000) sets the
//! records per unthrottled performance run.

#[path = "../tests/it/mod.rs"]
// The harness offers more than the demo uses; its #[test] functions are not compiled here.
#[allow(unused)]
mod it;

use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use it::cluster::KafkaCluster;
use it::conn_guard::{self, ConnGuard};
use it::scenario::{Install, JavaScenario};
use it::sluice::{self, Sluice};
use it::{json_field, tail, temp_dir, unique_name};

const SHARDS: u32 = 2;
const BROKERS: u32 = 3;
const PARTITIONS: u32 = 6;
const REPLICATION: u32 = 3;
const RECORD_SIZE: u64 = 1024;
const DEFAULT_RECORDS: u64 = 100_000;
const VERIFY_RECORDS: u64 = 10_000;
/// Records produced to each topic before anything is measured.
const WARMUP_RECORDS: u64 = 20_000;
/// The fixed-rate latency run.
const LATENCY_RATE: u64 = 1_000;
const LATENCY_RECORDS: u64 = 6_000;
/// Longest a performance tool may run before the demo gives up on it.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    let started = Instant::now();
    heading("Sluice binary");
    let built = ensure_sluice_binary().map(|bin| {
        println!("  {} ({:.1?})", bin.display(), started.elapsed());
        started.elapsed()
    });
    match built.and_then(|build| run().map(|()| build)) {
        Ok(build) => {
            println!(
                "\nDemo finished in {:.0?} ({:.0?} of it building or checking the sluice binary).",
                started.elapsed(),
                build
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nDemo FAILED after {:.0?}: {e}", started.elapsed());
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let records = match std::env::var("DEMO_RECORDS") {
        Ok(v) => v
            .parse::<u64>()
            .map_err(|e| format!("DEMO_RECORDS={v}: {e}"))?,
        Err(_) => DEFAULT_RECORDS,
    };

    heading("Apache Kafka");
    let t = Instant::now();
    let install = Install::get();
    println!(
        "  {} (jars in {})",
        install
            .home
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        install.libs.display()
    );
    let mut cluster = KafkaCluster::start(BROKERS);
    println!(
        "  {BROKERS}-broker KRaft cluster ready in {:.1?}",
        t.elapsed()
    );
    for id in cluster.node_ids() {
        println!(
            "    broker {id}: client listener 127.0.0.1:{}",
            cluster.client_port(id)
        );
    }

    heading("Sluice");
    let mut sluice = Sluice::start(&cluster, SHARDS);
    println!(
        "  {SHARDS} shards, pid {}, bootstrap {}",
        sluice.pid(),
        sluice.bootstrap()
    );
    for id in cluster.node_ids() {
        println!(
            "    broker {id} served at 127.0.0.1:{}  ->  127.0.0.1:{}",
            sluice.broker_port(id),
            cluster.client_port(id)
        );
    }
    // From here on every connection to a broker's client port must come from Sluice, except the
    // direct baseline's tools, which are exempted by pid.
    let guard = ConnGuard::start(&cluster.client_ports());
    let tools = Tools {
        install,
        dir: temp_dir("sluice-demo"),
        exempted: RefCell::new(Vec::new()),
    };
    let result = traffic(&tools, &cluster, &mut sluice, records, guard);
    let _ = fs::remove_dir_all(&tools.dir);
    let (rows, verified, guard_verdict) = match result {
        Ok(r) => r,
        Err(e) => {
            cluster.keep_dir();
            eprintln!("---- Sluice output tail ----\n{}", sluice.log_tail(40));
            return Err(e);
        }
    };

    heading("Sluice's own view (GET /metrics on the admin listener)");
    print_metrics(&sluice.metrics());

    heading("Shutdown");
    let t = Instant::now();
    let graceful = sluice.stop();
    let exit = sluice.exit_status();
    let status = exit.map_or_else(|| "unknown".to_string(), |s| s.to_string());
    println!(
        "  Sluice: SIGTERM -> {} in {:.1?} ({status})",
        if graceful {
            "exited"
        } else {
            "killed after timeout"
        },
        t.elapsed()
    );
    for line in sluice.log_tail(5).lines() {
        if line.contains("shutdown") || line.contains("stopped") || line.contains("drain") {
            println!("    log: {}", line.trim());
        }
    }
    drop(sluice);
    let t = Instant::now();
    drop(cluster);
    println!("  Kafka cluster stopped in {:.1?}", t.elapsed());

    heading("Summary");
    print_table(&rows, records);
    println!("\n  {verified}");
    println!("  {guard_verdict}");
    let exit_ok = graceful && exit.is_some_and(|s| s.success());
    println!(
        "  Sluice shutdown: {}",
        if exit_ok { "clean" } else { "NOT clean" }
    );
    if !exit_ok {
        return Err(format!("Sluice did not exit cleanly on SIGTERM ({status})"));
    }
    Ok(())
}

/// One row of the results table.
struct Row {
    path: &'static str,
    produce: ProduceStats,
    latency: ProduceStats,
    consume: ConsumeStats,
}

/// Topics, performance runs and the verified scenario. Returns the table rows, the scenario's
/// verdict and the connection guard's.
fn traffic(
    tools: &Tools,
    cluster: &KafkaCluster,
    sluice: &mut Sluice,
    records: u64,
    guard: ConnGuard,
) -> Result<(Vec<Row>, String, String), String> {
    let via = sluice.bootstrap();
    let direct = cluster.bootstrap_client();
    let topic_direct = unique_name("demo-direct");
    let topic_sluice = unique_name("demo-sluice");

    heading(&format!(
        "Topics ({PARTITIONS} partitions, replication factor {REPLICATION}), created through Sluice"
    ));
    for topic in [&topic_direct, &topic_sluice] {
        let out = tools.run(
            "create-topic",
            "org.apache.kafka.tools.TopicCommand",
            &[
                "--bootstrap-server",
                &via,
                "--create",
                "--topic",
                topic,
                "--partitions",
                &PARTITIONS.to_string(),
                "--replication-factor",
                &REPLICATION.to_string(),
                // The harness's brokers roll segments at 1 MiB (small tests); a performance run
                // would spend its time rolling them.
                "--config",
                "segment.bytes=134217728",
            ],
            false,
        )?;
        println!("  {}", out.stdout.trim());
    }
    let out = tools.run(
        "describe-topic",
        "org.apache.kafka.tools.TopicCommand",
        &[
            "--bootstrap-server",
            &via,
            "--describe",
            "--topic",
            &topic_sluice,
        ],
        false,
    )?;
    println!("  describe {topic_sluice} (through Sluice):");
    for line in out.stdout.lines().filter(|l| l.contains("Partition: ")) {
        println!("    {}", compact_describe(line));
    }

    // Fresh brokers (and JVMs) are slower at first: load both paths once before measuring.
    heading(&format!(
        "Warm-up: {WARMUP_RECORDS} records to each topic, unthrottled (not measured)"
    ));
    produce(
        tools,
        "direct",
        &direct,
        &topic_direct,
        WARMUP_RECORDS,
        None,
    )?;
    produce(
        tools,
        "via sluice",
        &via,
        &topic_sluice,
        WARMUP_RECORDS,
        None,
    )?;

    // Unthrottled, a producer's latency is mostly time queued in its own buffer; at a rate both
    // paths sustain it is the round trip of a produce request (acks=all: replicated to the ISR).
    heading(&format!(
        "Producer latency at a fixed {LATENCY_RATE} records/s ({LATENCY_RECORDS} records, acks=all)"
    ));
    let latency_direct = produce(
        tools,
        "direct",
        &direct,
        &topic_direct,
        LATENCY_RECORDS,
        Some(LATENCY_RATE),
    )?;
    let latency_sluice = produce(
        tools,
        "via sluice",
        &via,
        &topic_sluice,
        LATENCY_RECORDS,
        Some(LATENCY_RATE),
    )?;

    let mb = records * RECORD_SIZE / (1024 * 1024);
    heading(&format!(
        "Producer: {records} records x {RECORD_SIZE} B ({mb} MiB), acks=all, unthrottled"
    ));
    let produce_direct = produce(tools, "direct", &direct, &topic_direct, records, None)?;
    let produce_sluice = produce(tools, "via sluice", &via, &topic_sluice, records, None)?;

    heading(&format!("Consumer: reading the {records} records back"));
    let consume_direct = consume(tools, "direct", &direct, &topic_direct, records)?;
    let consume_sluice = consume(tools, "via sluice", &via, &topic_sluice, records)?;

    heading(&format!(
        "Verified round trip through Sluice (Java scenario produce-consume, {VERIFY_RECORDS} records)"
    ));
    let forbid = cluster
        .all_ports()
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let outcome = JavaScenario::new("produce-consume", &via)
        .arg("topic", unique_name("demo-verify"))
        .arg("records", VERIFY_RECORDS)
        .arg("partitions", PARTITIONS)
        .arg("rf", REPLICATION)
        .arg("forbid-ports", forbid)
        .timeout(Duration::from_secs(120))
        .run();
    if !outcome.ok() {
        let err: Vec<&str> = outcome.stderr.lines().collect();
        return Err(format!(
            "produce-consume scenario failed (exit {:?}):\n{}\n{}",
            outcome.code,
            outcome.stdout.join("\n"),
            err[err.len().saturating_sub(30)..].join("\n")
        ));
    }
    let line = outcome.result_line().unwrap_or_default();
    let verified = format!(
        "Verified: {} records produced through Sluice, each consumed back exactly once with the \
         value, partition and offset it was acknowledged at ({} partitions, leaders on brokers {}; {:.1?})",
        json_field(line, "records").unwrap_or("?"),
        json_field(line, "partitions").unwrap_or("?"),
        leaders(line),
        outcome.elapsed
    );
    println!("  {verified}");

    heading("Connection guard (broker client ports, whole Sluice phase)");
    if !sluice.is_running() {
        return Err(format!(
            "Sluice exited during the demo:\n{}",
            sluice.log_tail(40)
        ));
    }
    let report = guard.finish();
    let guard_verdict = match report.check_only(sluice.pid()) {
        Ok(summary) => format!("Connection guard: OK: {summary}"),
        Err(e) => return Err(format!("connection guard: {e}")),
    };
    println!("  {guard_verdict}");
    println!(
        "  (the direct baseline's tools, pids {:?}, were exempted)",
        tools.exempted()
    );

    let rows = vec![
        Row {
            path: "direct",
            produce: produce_direct,
            latency: latency_direct,
            consume: consume_direct,
        },
        Row {
            path: "via sluice",
            produce: produce_sluice,
            latency: latency_sluice,
            consume: consume_sluice,
        },
    ];
    Ok((rows, verified, guard_verdict))
}

/// "Topic: t Partition: 0 Leader: 2 Replicas: 2,3,1 Isr: 2,3,1 Elr: ..." -> a short line.
fn compact_describe(line: &str) -> String {
    let field = |name: &str| -> String {
        let key = format!("{name}: ");
        line.find(&key)
            .map(|i| {
                line[i + key.len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default()
    };
    format!(
        "partition {}: leader {}, replicas {}, isr {}",
        field("Partition"),
        field("Leader"),
        field("Replicas"),
        field("Isr")
    )
}

/// The `leaders` array of a scenario result line, e.g. `[1,2,3]`.
fn leaders(line: &str) -> String {
    line.find("\"leaders\":[")
        .and_then(|i| {
            let rest = &line[i + "\"leaders\":".len()..];
            rest.find(']').map(|end| rest[..=end].to_string())
        })
        .unwrap_or_else(|| "?".to_string())
}

fn heading(title: &str) {
    println!("\n== {title}");
}

/// Builds the `sluice` binary with the example's own profile (a no-op when it is up to date) unless
/// `SLUICE_BIN` names one, and returns its path.
fn ensure_sluice_binary() -> Result<PathBuf, String> {
    if std::env::var_os("SLUICE_BIN").is_none() {
        let profile = if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        println!("  cargo build --profile {profile} --bin sluice");
        let status = Command::new(&cargo)
            .args([
                "build",
                "--profile",
                profile,
                "--bin",
                "sluice",
                "--manifest-path",
            ])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run cargo ({}): {e}", Path::new(&cargo).display()))?;
        if !status.success() {
            return Err(format!("cargo build --bin sluice failed ({status})"));
        }
    }
    let bin = sluice::binary();
    if !bin.is_file() {
        return Err(format!(
            "no sluice binary at {} (set SLUICE_BIN to its path)",
            bin.display()
        ));
    }
    Ok(bin)
}

/// Runs Kafka's command-line tools (classes on the Kafka libs classpath) in their own JVMs.
struct Tools {
    install: &'static Install,
    dir: PathBuf,
    /// Pids of the direct-baseline runs, left out of the connection guard's report.
    exempted: RefCell<Vec<u32>>,
}

/// What a tool printed.
struct ToolOutput {
    stdout: String,
}

impl Tools {
    /// Runs `class` with `args`; `exempt` names the direct-baseline runs, whose connections to the
    /// brokers the connection guard leaves out. Fails with the tail of the tool's output if it exits
    /// non-zero or runs longer than [`TOOL_TIMEOUT`].
    fn run(
        &self,
        what: &str,
        class: &str,
        args: &[&str],
        exempt: bool,
    ) -> Result<ToolOutput, String> {
        let name = unique_name(what);
        let out_path = self.dir.join(format!("{name}.out"));
        let err_path = self.dir.join(format!("{name}.err"));
        let out = File::create(&out_path).map_err(|e| e.to_string())?;
        let err = File::create(&err_path).map_err(|e| e.to_string())?;
        let mut child = self
            .install
            .java()
            .args(["-Xms256m", "-Xmx768m"])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.install
                    .home
                    .join("config/log4j2-client.properties")
                    .display()
            ))
            .arg("-cp")
            .arg(self.install.libs_classpath())
            .arg(class)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run java {class}: {e}"))?;
        if exempt {
            conn_guard::exempt_pid(child.id());
            self.exempted.borrow_mut().push(child.id());
        }
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() < TOOL_TIMEOUT => {
                    thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{what} ({class}) did not finish in {TOOL_TIMEOUT:?}:\n{}\n{}",
                        tail(&out_path, 20),
                        tail(&err_path, 20)
                    ));
                }
                Err(e) => return Err(format!("wait for {class}: {e}")),
            }
        };
        let stdout = fs::read_to_string(&out_path).unwrap_or_default();
        if !status.success() {
            return Err(format!(
                "{what} ({class}) failed ({status}):\n{}\n{}",
                tail(&out_path, 20),
                tail(&err_path, 30)
            ));
        }
        Ok(ToolOutput { stdout })
    }

    fn exempted(&self) -> Vec<u32> {
        self.exempted.borrow().clone()
    }
}

/// ProducerPerformance's summary.
#[derive(Debug, Default, Clone, Copy)]
struct ProduceStats {
    records_per_sec: f64,
    mb_per_sec: f64,
    avg_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn produce(
    tools: &Tools,
    path: &str,
    bootstrap: &str,
    topic: &str,
    records: u64,
    rate: Option<u64>,
) -> Result<ProduceStats, String> {
    let t = Instant::now();
    let out = tools.run(
        "producer-perf",
        "org.apache.kafka.tools.ProducerPerformance",
        &[
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--num-records",
            &records.to_string(),
            "--record-size",
            &RECORD_SIZE.to_string(),
            "--throughput",
            &rate.map_or_else(|| "-1".to_string(), |r| r.to_string()),
            "--command-property",
            "acks=all",
            &format!("client.id=demo-{}", path.replace(' ', "-")),
        ],
        path == "direct",
    )?;
    // The summary is the last line that has percentiles:
    // "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, P50 ms 50th, ..."
    let line = out
        .stdout
        .lines()
        .rev()
        .find(|l| l.contains("records sent") && l.contains("99th"))
        .ok_or_else(|| format!("no ProducerPerformance summary in:\n{}", out.stdout))?;
    let stats = parse_produce(line).ok_or_else(|| format!("cannot parse: {line}"))?;
    println!(
        "  {path:<10} {:>9.0} records/s {:>7.1} MB/s  latency avg {:.0} ms, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms  ({:.1?})",
        stats.records_per_sec,
        stats.mb_per_sec,
        stats.avg_ms,
        stats.p50_ms,
        stats.p99_ms,
        stats.max_ms,
        t.elapsed()
    );
    Ok(stats)
}

fn parse_produce(line: &str) -> Option<ProduceStats> {
    let mut s = ProduceStats::default();
    let num = |part: &str| -> Option<f64> { part.split_whitespace().next()?.parse().ok() };
    for part in line.trim_end_matches('.').split(", ") {
        if part.ends_with("records/sec") || part.contains("records/sec (") {
            s.records_per_sec = num(part)?;
            let mb = part.split('(').nth(1)?;
            s.mb_per_sec = num(mb)?;
        } else if part.ends_with("ms avg latency") {
            s.avg_ms = num(part)?;
        } else if part.ends_with("ms max latency") {
            s.max_ms = num(part)?;
        } else if part.ends_with("ms 50th") {
            s.p50_ms = num(part)?;
        } else if part.ends_with("ms 99th") {
            s.p99_ms = num(part)?;
        }
    }
    (s.records_per_sec > 0.0).then_some(s)
}

/// ConsumerPerformance's summary (fetch phase: group join and rebalance time left out).
#[derive(Debug, Default, Clone, Copy)]
struct ConsumeStats {
    mb_per_sec: f64,
}

fn consume(
    tools: &Tools,
    path: &str,
    bootstrap: &str,
    topic: &str,
    records: u64,
) -> Result<ConsumeStats, String> {
    let t = Instant::now();
    let out = tools.run(
        "consumer-perf",
        "org.apache.kafka.tools.ConsumerPerformance",
        &[
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--num-records",
            &records.to_string(),
            "--group",
            &unique_name("demo-perf"),
            "--timeout",
            "30000",
        ],
        path == "direct",
    )?;
    // A CSV header line and one line of values.
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("start.time"))
        .ok_or_else(|| format!("no ConsumerPerformance summary in:\n{}", out.stdout))?;
    let names: Vec<&str> = lines[header].split(',').map(str::trim).collect();
    let values: Vec<&str> = lines
        .get(header + 1)
        .ok_or_else(|| format!("no ConsumerPerformance values in:\n{}", out.stdout))?
        .split(',')
        .map(str::trim)
        .collect();
    let get = |name: &str| -> Option<f64> {
        let i = names.iter().position(|n| *n == name)?;
        values.get(i)?.parse().ok()
    };
    let (Some(consumed), Some(mb_per_sec), Some(records_per_sec)) = (
        get("data.consumed.in.nMsg"),
        get("fetch.MB.sec"),
        get("fetch.nMsg.sec"),
    ) else {
        return Err(format!(
            "cannot parse ConsumerPerformance output:\n{}",
            out.stdout
        ));
    };
    if consumed < records as f64 {
        return Err(format!(
            "{path}: consumed {consumed} of {records} records:\n{}",
            out.stdout
        ));
    }
    println!(
        "  {path:<10} {records_per_sec:>9.0} records/s {mb_per_sec:>7.1} MB/s  ({consumed:.0} records, {:.1?})",
        t.elapsed()
    );
    Ok(ConsumeStats { mb_per_sec })
}

fn print_table(rows: &[Row], records: u64) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {BROKERS} brokers, topics of {PARTITIONS} partitions with RF {REPLICATION}, acks=all, {RECORD_SIZE} B records; Sluice {SHARDS} shards\n  \
         throughput: {records} records per run, unthrottled; latency: {LATENCY_RECORDS} records at {LATENCY_RATE}/s\n"
    );
    let _ = writeln!(
        out,
        "  {:<14} {:>14} {:>14} {:>14} {:>14} {:>13}",
        "", "produce MB/s", "produce p99", "produce p50", "produce p99", "consume MB/s"
    );
    let fixed = format!("(ms, {LATENCY_RATE}/s)");
    let _ = writeln!(
        out,
        "  {:<14} {:>14} {:>14} {:>14} {:>14} {:>13}",
        "path", "(unthrottled)", "(ms, unthr.)", fixed, fixed, ""
    );
    let rule = format!("  {}\n", "-".repeat(89));
    out.push_str(&rule);
    for r in rows {
        let _ = writeln!(
            out,
            "  {:<14} {:>14.1} {:>14.0} {:>14.0} {:>14.0} {:>13.1}",
            r.path,
            r.produce.mb_per_sec,
            r.produce.p99_ms,
            r.latency.p50_ms,
            r.latency.p99_ms,
            r.consume.mb_per_sec
        );
    }
    if let [d, s] = rows {
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}x", a / b)
            } else {
                "-".to_string()
            }
        };
        out.push_str(&rule);
        let _ = writeln!(
            out,
            "  {:<14} {:>14} {:>14} {:>14} {:>14} {:>13}",
            "sluice/direct",
            ratio(s.produce.mb_per_sec, d.produce.mb_per_sec),
            ratio(s.produce.p99_ms, d.produce.p99_ms),
            ratio(s.latency.p50_ms, d.latency.p50_ms),
            ratio(s.latency.p99_ms, d.latency.p99_ms),
            ratio(s.consume.mb_per_sec, d.consume.mb_per_sec)
        );
    }
    print!("{out}");
}

/// A few lines of what Sluice counted during the run: requests by api, bytes, connections per
/// shard, errors, and the mean time requests spent in Sluice versus at the broker.
fn print_metrics(m: &sluice::Metrics) {
    let mut by_api: Vec<(String, f64)> = Vec::new();
    for (labels, v) in m.samples("sluice_requests_total") {
        let name = labels
            .split(',')
            .find_map(|l| l.strip_prefix("api_name=\""))
            .map(|n| n.trim_end_matches('"').to_string())
            .unwrap_or_default();
        match by_api.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 += v,
            None => by_api.push((name, v)),
        }
    }
    by_api.sort_by(|a, b| b.1.total_cmp(&a.1));
    let list: Vec<String> = by_api.iter().map(|(n, v)| format!("{n} {v}")).collect();
    println!(
        "  requests: {} ({})",
        m.sum("sluice_requests_total", &[]),
        list.join(", ")
    );
    let mib =
        |side, dir| m.sum("sluice_bytes_total", &[("side", side), ("direction", dir)]) / 1048576.0;
    println!(
        "  bytes: clients -> Sluice {:.1} MiB, Sluice -> brokers {:.1} MiB, brokers -> Sluice {:.1} MiB, Sluice -> clients {:.1} MiB",
        mib("downstream", "in"),
        mib("upstream", "out"),
        mib("upstream", "in"),
        mib("downstream", "out")
    );
    let per_shard: Vec<String> = m
        .samples("sluice_connections_accepted_total")
        .into_iter()
        .map(|(l, v)| format!("{l} {v}"))
        .collect();
    println!("  connections accepted: {}", per_shard.join(", "));
    println!(
        "  connection errors: {}",
        m.sum("sluice_connection_errors_total", &[])
    );
    for api in ["Produce", "Fetch"] {
        let mean = |name: &str| {
            let sum = m.sum(&format!("{name}_sum"), &[("api_name", api)]);
            let n = m.sum(&format!("{name}_count"), &[("api_name", api)]);
            if n > 0.0 {
                sum / n * 1e6
            } else {
                0.0
            }
        };
        println!(
            "  {api}: mean {:.0} µs in Sluice, {:.0} µs upstream round trip",
            mean("sluice_request_gateway_latency_seconds"),
            mean("sluice_request_upstream_latency_seconds")
        );
    }
}
