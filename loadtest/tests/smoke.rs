//! Smoke tests: the mock broker and the load generator against each other, directly and through
//! the Sluice gateway (the root package's binary, built here with `cargo build -p sluice`).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the mock broker on ephemeral ports; returns it and its `host:port` addresses.
fn mock_broker(extra: &[&str]) -> (Proc, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice-mock-broker"))
        .args(["--ports", "0,0", "--partitions", "4"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn mock broker");
    let stdout = child.stdout.take().expect("stdout");
    let proc = Proc(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read mock broker stdout");
    let rest = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening line");
    let addrs = rest
        .split(", ")
        .map(|a| a.split(' ').next().expect("address").to_string())
        .collect();
    (proc, addrs)
}

/// Runs sluice-load with `args`, returns its JSON report.
fn load(bootstrap: &str, args: &[&str], label: &str) -> Value {
    load_with(bootstrap, args, label, "MB/s")
}

/// Runs sluice-load with `args`; its stdout must contain `expect`; returns its JSON report.
fn load_with(bootstrap: &str, args: &[&str], label: &str, expect: &str) -> Value {
    let dir = std::env::temp_dir().join(format!("sluice-load-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join(format!("{label}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_sluice-load"))
        .args([
            "--bootstrap",
            bootstrap,
            "--quiet",
            "--label",
            label,
            "--json",
        ])
        .arg(&json)
        .args(args)
        .output()
        .expect("run sluice-load");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{label}:{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "sluice-load failed: {}", out.status);
    assert!(
        stdout.contains(expect),
        "{expect:?} missing from the output"
    );
    let text = std::fs::read_to_string(&json).expect("json report");
    serde_json::from_str(&text).expect("well-formed JSON report")
}

fn check_common(r: &Value, label: &str) {
    assert_eq!(r["label"], label);
    assert!(r["meta"]["cores"].as_u64().expect("cores") >= 1);
    assert!(r["meta"].get("git_commit").is_some());
    assert!(r["meta"].get("kernel").is_some());
    assert!(r["meta"].get("cpu_model").is_some());
    assert!(r["params"]["duration_s"].as_f64().expect("duration") > 0.0);
    assert!(r["cluster"]["brokers"].as_object().expect("brokers").len() == 2);
}

fn check_stats(s: &Value) {
    assert!(s["records_per_s"].as_f64().expect("records/s") > 0.0, "{s}");
    assert!(s["mb_per_s"].as_f64().expect("MB/s") > 0.0, "{s}");
    assert!(s["requests"].as_u64().expect("requests") > 0, "{s}");
    assert_eq!(s["errors_total"], 0, "{s}");
    let lat = &s["latency_us"];
    assert!(lat["count"].as_u64().expect("count") > 0);
    assert!(lat["p50"].as_u64() <= lat["p99"].as_u64());
    assert!(lat["p99"].as_u64() <= lat["max"].as_u64());
}

fn produce_then_fetch(bootstrap: &str, tag: &str) {
    let label = format!("{tag}-produce");
    let r = load(
        bootstrap,
        &[
            "--producers",
            "2",
            "--acks",
            "1",
            "--duration-s",
            "2",
            "--record-size",
            "512",
        ],
        &label,
    );
    check_common(&r, &label);
    assert!(r["fetch"].is_null());
    check_stats(&r["produce"]);

    // Pipelined: one thread per connection, the window written in one writev; 3 partitions per
    // connection's frames against 16 window slots, so correlation ids must stay in order.
    let label = format!("{tag}-pipelined");
    let r = load(
        bootstrap,
        &[
            "--producers",
            "3",
            "--acks",
            "1",
            "--duration-s",
            "1",
            "--record-size",
            "100",
            "--records-per-batch",
            "1",
            "--in-flight",
            "16",
            "--pipelined",
        ],
        &label,
    );
    check_common(&r, &label);
    check_stats(&r["produce"]);
    assert_eq!(r["params"]["pipelined"], true);

    let label = format!("{tag}-fetch");
    let r = load(
        bootstrap,
        &[
            "--producers",
            "0",
            "--consumers",
            "2",
            "--duration-s",
            "1",
            "--fetch-max-wait-ms",
            "100",
        ],
        &label,
    );
    check_common(&r, &label);
    check_stats(&r["fetch"]);
}

#[test]
fn direct_to_mock_broker() {
    let (_mock, addrs) = mock_broker(&[]);
    produce_then_fetch(&addrs[0], "direct");
    // Open loop with acks=all and warm-up, and acks=0 (no responses) alongside a consumer.
    let r = load(
        &addrs[1],
        &[
            "--producers",
            "1",
            "--acks",
            "all",
            "--rate",
            "200",
            "--duration-s",
            "1",
            "--warmup-s",
            "0.5",
        ],
        "open-loop",
    );
    assert_eq!(r["mode"], "open-loop");
    check_stats(&r["produce"]);
    let n = r["produce"]["requests"].as_u64().expect("requests");
    assert!(
        (150..=210).contains(&n),
        "open loop sent {n} requests in 1 s at 200/s"
    );
    let r = load(
        &addrs[0],
        &[
            "--producers",
            "1",
            "--acks",
            "0",
            "--consumers",
            "1",
            "--duration-s",
            "1",
        ],
        "acks0",
    );
    assert!(r["produce"]["records_per_s"].as_f64().expect("records/s") > 0.0);
    assert_eq!(r["produce"]["errors_total"], 0);

    // Long polls on a topic nobody produces to wait out max_wait_ms while producers append to
    // another topic (the mock broker wakes only the waiters of the appended topic, and honours
    // max_wait_ms).
    let r = load(
        &addrs[0],
        &[
            "--producers",
            "2",
            "--rate",
            "200",
            "--consumers",
            "2",
            "--fetch-topic",
            "nobody-produces-here",
            "--fetch-max-wait-ms",
            "200",
            "--duration-s",
            "1",
        ],
        "long-poll",
    );
    check_stats(&r["produce"]);
    let f = &r["fetch"];
    assert_eq!(f["errors_total"], 0, "{f}");
    assert_eq!(f["records"], 0, "{f}");
    let p50 = f["latency_us"]["p50"].as_u64().expect("fetch p50");
    assert!(
        (190_000..400_000).contains(&p50),
        "long poll p50 {p50} µs, max_wait_ms 200"
    );
}

/// Idle mode: N connections held; checks the report and returns it.
fn idle(bootstrap: &str, n: usize, gateway_pid: u32, label: &str) -> Value {
    let n_s = n.to_string();
    let pid = gateway_pid.to_string();
    let r = load_with(
        bootstrap,
        &[
            "--idle-connections",
            &n_s,
            "--hold-s",
            "0.2",
            "--gateway-pid",
            &pid,
        ],
        label,
        "idle:",
    );
    assert_eq!(r["mode"], "idle");
    let i = &r["idle"];
    assert_eq!(i["connections"], n, "{i}");
    assert_eq!(i["opened"], n, "{i}");
    assert_eq!(i["alive_after_hold"], n, "{i}");
    assert_eq!(i["errors"], 0, "{i}");
    assert_eq!(i["gateway_pid"], gateway_pid, "{i}");
    assert!(i["rss_kib_before"].as_u64().expect("rss before") > 0, "{i}");
    assert!(i["rss_kib_held"].as_u64().expect("rss held") > 0, "{i}");
    assert!(i["rss_kib_per_connection"].as_f64().is_some(), "{i}");
    r
}

#[test]
fn idle_connections_to_mock_broker() {
    let (mock, addrs) = mock_broker(&[]);
    let r = idle(&addrs[0], 60, mock.0.id(), "idle-direct");
    // One thread (stack, buffers) per connection in the mock broker: its RSS must grow.
    let per_conn = r["idle"]["rss_kib_per_connection"]
        .as_f64()
        .expect("KiB/conn");
    assert!(
        per_conn > 0.0,
        "mock broker RSS did not grow: {per_conn} KiB/conn"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Builds the root package's `sluice` binary (a no-op when up to date) with this test's profile
/// and returns its path.
fn build_sluice() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/smoke-xxxx -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("profile dir")
        .to_path_buf();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "-p", "sluice", "--bin", "sluice"])
        .env(
            "CARGO_TARGET_DIR",
            profile_dir.parent().expect("target dir"),
        )
        .stdin(Stdio::null());
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build -p sluice");
    assert!(status.success(), "cargo build -p sluice failed: {status}");
    let bin = profile_dir.join("sluice");
    assert!(bin.is_file(), "no sluice binary at {}", bin.display());
    bin
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sluice did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn through_sluice() {
    let sluice = build_sluice();
    let (_mock, addrs) = mock_broker(&[]);
    // Node ids 1 and 2 are served on base+1 and base+2.
    let (bootstrap_port, base) = loop {
        let b = free_port();
        let base = free_port();
        if base < 65000
            && b != base + 1
            && b != base + 2
            && TcpListener::bind(("0.0.0.0", base + 1)).is_ok()
            && TcpListener::bind(("0.0.0.0", base + 2)).is_ok()
        {
            break (b, base);
        }
    };
    let dir = std::env::temp_dir().join(format!("sluice-load-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[runtime]\nshards = 1\n\n[listener]\nbind_address = \"127.0.0.1\"\n\
             advertised_host = \"127.0.0.1\"\nbootstrap_port = {bootstrap_port}\n\
             broker_port_base = {base}\n\n[upstream]\nbootstrap_servers = [\"{}\"]\n",
            addrs[0]
        ),
    )
    .expect("write config");
    let gw = Proc(
        Command::new(&sluice)
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("spawn sluice"),
    );
    wait_listening(bootstrap_port);
    let bootstrap = format!("127.0.0.1:{bootstrap_port}");
    produce_then_fetch(&bootstrap, "via-sluice");
    // The generator learned Sluice's per-broker ports, not the mock's; the gateway's CPU and RSS
    // are sampled over the window.
    let pid = gw.0.id().to_string();
    let r = load(
        &bootstrap,
        &[
            "--producers",
            "2",
            "--duration-s",
            "0.5",
            "--gateway-pid",
            &pid,
        ],
        "via-sluice-ports",
    );
    let g = &r["gateway"];
    assert_eq!(g["pid"], gw.0.id(), "{g}");
    assert!(g["cpu_s"].as_f64().expect("cpu_s") > 0.0, "{g}");
    assert!(g["core_s_per_gb"].as_f64().expect("core-s/GB") > 0.0, "{g}");
    assert!(g["rss_kib_end"].as_u64().expect("rss") > 0, "{g}");
    idle(&bootstrap, 40, gw.0.id(), "via-sluice-idle");
    let brokers = r["cluster"]["brokers"].as_object().expect("brokers");
    for (id, addr) in brokers {
        let n: u16 = id.parse().expect("node id");
        assert_eq!(
            addr.as_str(),
            Some(format!("127.0.0.1:{}", base + n).as_str())
        );
    }
}
