//! Harness for the integration tests against real Kafka: see the crate docs of `tests/integration.rs`.

pub mod admin;
pub mod cluster;
pub mod conn_guard;
pub mod java;
pub mod other_clients;
pub mod policy;
pub mod robustness;
pub mod sasl;
pub mod scenario;
pub mod shutdown;
pub mod sluice;
pub mod target;
pub mod topics;

use std::fs;
use std::io::{self, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// `n` random bytes as lowercase hex (from the kernel's CSPRNG: topic names, cluster ids).
pub fn rand_hex(n: usize) -> String {
    random_bytes(n).iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` random bytes from `/dev/urandom`.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf
}

/// A unique-per-process name with a random tail, e.g. for topics: `prefix-<pid>-<seq>-<hex>`.
pub fn unique_name(prefix: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        rand_hex(3)
    )
}

/// A fresh directory under the system temp dir (the caller removes it).
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name(prefix));
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// `n` distinct loopback ports that were free a moment ago: all are bound at once (so no two are
/// equal), read, and released. Another process may still take one before it is used, so callers
/// retry on "address in use".
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

/// Whether every port in `ports` can be bound on loopback right now.
pub fn ports_free(ports: impl IntoIterator<Item = u16>) -> bool {
    let mut held = Vec::new();
    for p in ports {
        match TcpListener::bind(("127.0.0.1", p)) {
            Ok(l) => held.push(l),
            Err(_) => return false,
        }
    }
    true
}

/// The last `lines` lines of a text file (or a note saying why there are none).
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// Sends `signal` (e.g. "TERM", "KILL") to `pid` with kill(1); the harness has no libc binding.
pub fn signal(pid: u32, signal: &str) -> io::Result<()> {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(std::process::Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("kill -{signal} {pid}: {status}")))
    }
}

/// Extracts the raw JSON value of `key` from a one-line JSON object printed by a scenario client:
/// a number, `true`/`false`, or a string without escapes. Enough for the fields the harness reads.
pub fn json_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let start = line.find(&pat)? + pat.len();
    let rest = &line[start..];
    if let Some(s) = rest.strip_prefix('"') {
        return s.find('"').map(|end| &s[..end]);
    }
    let end = rest.find([',', '}', ']']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}
