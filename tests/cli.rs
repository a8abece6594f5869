//! The `sluice` command line with a bad config: `sluice check-config` prints every error with its
//! dotted path and exits 2, and `sluice --config` refuses to start, naming the field and the
//! reason, before it listens on any port. No Kafka, no network beyond loopback.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Writes `text` to a fresh file; returns its path.
fn config_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let path = dir.join("sluice.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Three independent mistakes, each in its own section.
fn bad_config(bootstrap_port: u16) -> String {
    format!(
        r#"
[listener]
bind_address = "127.0.0.1"
advertised_host = "127.0.0.1"
bootstrap_port = {bootstrap_port}
broker_port_base = {base}

[upstream]
bootstrap_servers = ["127.0.0.1:9092", "no-port-here"]
reconnect_backoff_ms = 500
reconnect_backoff_max_ms = 100

[limits]
max_frame_bytes = 10
"#,
        base = bootstrap_port.wrapping_add(100)
    )
}

/// Each error line Sluice must print for [`bad_config`]: the dotted path, then the reason.
const BAD_FIELDS: &[&str] = &[
    "upstream.bootstrap_servers[1]: \"no-port-here\" is not host:port",
    "upstream.reconnect_backoff_max_ms: 100 is less than upstream.reconnect_backoff_ms (500)",
    "limits.max_frame_bytes: 10 is outside",
];

#[test]
fn check_config_prints_every_error_with_its_path_and_exits_2() {
    let path = config_file("check", &bad_config(free_port()));
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run sluice check-config");
    let what = describe("sluice check-config", &out);
    assert_eq!(out.status.code(), Some(2), "{what}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for field in BAD_FIELDS {
        assert!(stderr.contains(field), "{field:?} not printed\n{what}");
    }
    let _ = std::fs::remove_dir_all(path.parent().expect("temp dir"));
}

#[test]
fn a_bad_config_stops_start_up_before_anything_listens() {
    let port = free_port();
    let path = config_file("run", &bad_config(port));
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--config")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice");
    // Until it exits, nothing may accept on the bootstrap port.
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err(),
            "sluice listened on {addr} despite a bad config"
        );
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("sluice kept running with a bad config");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("wait for sluice");
    let what = describe("sluice --config", &out);
    assert_eq!(out.status.code(), Some(2), "{what}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid config (3 error(s))"), "{what}");
    for field in BAD_FIELDS {
        assert!(stderr.contains(field), "{field:?} not printed\n{what}");
    }
    let _ = std::fs::remove_dir_all(path.parent().expect("temp dir"));
}
