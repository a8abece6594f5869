//! Bad input through Sluice, in front of the real cluster: every malformed, truncated, oversized,
//! unknown or silent client closes only its own connection with one clear log line, while a
//! witness connection on the same shard keeps working and the process keeps running. Also an
//! upstream that closes mid-response (a fake broker: the only way to cut a response in half on
//! purpose).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::cluster::shared;
use super::free_ports;
use super::sluice::{Sluice, SluiceConfig};

const MAX_FRAME: usize = 1 << 20;
const FIRST_REQUEST_TIMEOUT_MS: u64 = 1500;

/// A request frame: header v1 (api key, version, correlation id, client id "it") + `body`.
fn request(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&api_key.to_be_bytes());
    p.extend_from_slice(&version.to_be_bytes());
    p.extend_from_slice(&correlation_id.to_be_bytes());
    p.extend_from_slice(&2i16.to_be_bytes());
    p.extend_from_slice(b"it");
    p.extend_from_slice(body);
    let mut f = (p.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(&p);
    f
}

pub(super) fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to sluice");
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    s
}

/// Reads one response frame; `None` when the connection was closed first.
pub(super) fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).ok()?;
    let mut p = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut p).ok()?;
    Some(p)
}

/// True when the peer closes the connection (EOF or reset) without sending a byte.
pub(super) fn closed_without_reply(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
    }
}

/// ApiVersions v0 round trip on `s`: the response echoes the correlation id, error code 0.
fn api_versions_ok(s: &mut TcpStream, corr: i32) {
    s.write_all(&request(18, 0, corr, &[])).expect("write");
    let p = read_frame(s).expect("ApiVersions response");
    assert_eq!(
        i32::from_be_bytes([p[0], p[1], p[2], p[3]]),
        corr,
        "correlation id"
    );
    assert_eq!(i16::from_be_bytes([p[4], p[5]]), 0, "error code");
}

/// Waits (bounded) until Sluice's log contains every one of `needles` on one line.
fn wait_log(sluice: &Sluice, needles: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(sluice.log_path()).unwrap_or_default();
        if text.lines().any(|l| needles.iter().all(|n| l.contains(n))) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {needles:?}; log tail:\n{}",
            sluice.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bad_client_input_closes_only_that_connection() {
    let cluster = shared();
    let extra = format!(
        "[limits]\nmax_frame_bytes = {MAX_FRAME}\nfirst_request_timeout_ms = {FIRST_REQUEST_TIMEOUT_MS}\n"
    );
    // One shard: every connection below shares the witness's shard.
    let mut sluice = Sluice::start_with(&cluster, 1, &extra);
    let addr = sluice.bootstrap();
    let mut witness = connect(&addr);
    api_versions_ok(&mut witness, 1);
    let mut corr = 1;
    let mut still_fine = |sluice: &mut Sluice| {
        corr += 1;
        api_versions_ok(&mut witness, corr);
        assert!(sluice.is_running(), "sluice died");
    };

    // Oversized frame: refused from its size prefix alone.
    let mut c = connect(&addr);
    c.write_all(&((MAX_FRAME as i32 + 1).to_be_bytes()))
        .expect("write");
    assert!(closed_without_reply(&mut c));
    wait_log(
        &sluice,
        &[
            "bad frame from client",
            "exceeds",
            "side=\"downstream\"",
            "conn_id",
        ],
    );
    still_fine(&mut sluice);

    // Negative size.
    let mut c = connect(&addr);
    c.write_all(&(-5i32).to_be_bytes()).expect("write");
    assert!(closed_without_reply(&mut c));
    wait_log(&sluice, &["bad frame from client", "negative"]);
    still_fine(&mut sluice);

    // A header too short to hold api key, version and correlation id.
    let mut c = connect(&addr);
    c.write_all(&[0, 0, 0, 3, 0, 18, 0]).expect("write");
    assert!(closed_without_reply(&mut c));
    wait_log(&sluice, &["bad request header from client"]);
    still_fine(&mut sluice);

    // Truncated: half a frame, then the client closes its side.
    let mut c = connect(&addr);
    let f = request(18, 0, 7, &[]);
    c.write_all(&f[..f.len() / 2]).expect("write");
    c.shutdown(Shutdown::Write).expect("shutdown");
    assert!(closed_without_reply(&mut c));
    wait_log(&sluice, &["client closed mid-frame"]);
    still_fine(&mut sluice);

    // A version of a decoded api key that Sluice never advertised (Metadata v99).
    let mut c = connect(&addr);
    c.write_all(&request(3, 99, 8, &[])).expect("write");
    assert!(closed_without_reply(&mut c));
    wait_log(&sluice, &["api key 3 version 99", "cannot decode"]);
    still_fine(&mut sluice);

    // ApiVersions at a version too new: answered as the broker would, v0 UNSUPPORTED_VERSION (35)
    // with the ApiVersions range; the connection stays usable for the retry.
    let mut c = connect(&addr);
    c.write_all(&request(18, 99, 9, &[])).expect("write");
    let p = read_frame(&mut c).expect("local ApiVersions answer");
    assert_eq!(i32::from_be_bytes([p[0], p[1], p[2], p[3]]), 9);
    assert_eq!(i16::from_be_bytes([p[4], p[5]]), 35, "UNSUPPORTED_VERSION");
    let n = i32::from_be_bytes([p[6], p[7], p[8], p[9]]);
    assert_eq!(n, 1, "one api key listed");
    assert_eq!(i16::from_be_bytes([p[10], p[11]]), 18, "ApiVersions itself");
    api_versions_ok(&mut c, 10);
    still_fine(&mut sluice);

    // An api key nobody knows passes through opaque; the broker closes on it, and Sluice closes
    // that client (and only it).
    let mut c = connect(&addr);
    c.write_all(&request(9999, 0, 11, &[])).expect("write");
    assert!(closed_without_reply(&mut c));
    wait_log(
        &sluice,
        &[
            "broker closed the connection with 1 request(s) in flight",
            "side=\"upstream\"",
        ],
    );
    still_fine(&mut sluice);

    // A client that connects and sends nothing is closed after limits.first_request_timeout_ms.
    let started = Instant::now();
    let mut c = connect(&addr);
    assert!(closed_without_reply(&mut c));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(FIRST_REQUEST_TIMEOUT_MS - 100),
        "closed after {waited:?}, before the timeout"
    );
    wait_log(&sluice, &["no complete request within"]);
    still_fine(&mut sluice);

    let text = std::fs::read_to_string(sluice.log_path()).unwrap_or_default();
    assert!(
        !text.contains("panicked"),
        "sluice panicked:\n{}",
        sluice.log_tail(40)
    );
    assert!(sluice.stop(), "sluice exits on SIGTERM");
}

#[test]
fn upstream_closing_mid_response_closes_only_that_client() {
    // A fake broker that answers every request with the first bytes of a response, then closes.
    let fake = TcpListener::bind("127.0.0.1:0").expect("bind fake broker");
    let fake_addr = fake.local_addr().expect("addr").to_string();
    let handle = std::thread::spawn(move || {
        fake.set_nonblocking(false).ok();
        for conn in fake.incoming().take(16) {
            let Ok(mut conn) = conn else { continue };
            conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
            let mut size = [0u8; 4];
            if conn.read_exact(&mut size).is_err() {
                continue;
            }
            let mut p = vec![0u8; i32::from_be_bytes(size) as usize];
            if conn.read_exact(&mut p).is_err() {
                continue;
            }
            // size 100, then only the correlation id: the rest never comes.
            let mut half = 100i32.to_be_bytes().to_vec();
            half.extend_from_slice(&p[4..8]);
            let _ = conn.write_all(&half);
        }
    });

    let ports = free_ports(2);
    let cfg = SluiceConfig {
        shards: 1,
        bootstrap_port: ports[0],
        broker_port_base: ports[1],
        upstream: vec![fake_addr],
        log_level: "info".into(),
        admin_port: None,
        extra: String::new(),
    };
    let mut sluice = Sluice::try_start(&cfg).unwrap_or_else(|(e, _)| panic!("{e}"));
    let mut c = connect(&sluice.bootstrap());
    c.write_all(&request(18, 0, 42, &[])).expect("write");
    assert!(
        closed_without_reply(&mut c),
        "the client must not see a partial frame"
    );
    wait_log(
        &sluice,
        &[
            "broker closed the connection with 1 request(s) in flight",
            "conn_id",
        ],
    );
    assert!(sluice.is_running());
    // A second client is served the same way: the first one's failure left nothing behind.
    let mut c2 = connect(&sluice.bootstrap());
    c2.write_all(&request(18, 0, 43, &[])).expect("write");
    assert!(closed_without_reply(&mut c2));
    assert!(sluice.stop(), "sluice exits on SIGTERM");
    drop(handle);
}

/// Shards bind with SO_REUSEPORT, so a second Sluice (or anything else binding with
/// SO_REUSEPORT) on the same bootstrap port would silently share it. Start-up probes the port
/// exclusively and stops, naming the field, before anything listens.
#[test]
fn a_port_held_by_another_reuseport_socket_stops_start_up() {
    let port = free_ports(1)[0];
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let holder =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    holder.set_reuse_port(true).expect("SO_REUSEPORT");
    holder.bind(&addr.into()).expect("bind");
    holder.listen(16).expect("listen");

    let dir = super::temp_dir("sluice-port-held");
    let cfg = SluiceConfig {
        shards: 1,
        bootstrap_port: port,
        broker_port_base: free_ports(1)[0],
        upstream: vec!["127.0.0.1:1".into()],
        log_level: "info".into(),
        admin_port: None,
        extra: String::new(),
    };
    let path = dir.join("sluice.toml");
    std::fs::write(&path, cfg.to_toml()).expect("write config");
    let mut child = std::process::Command::new(super::sluice::binary())
        .arg("--config")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sluice kept running on a port another socket holds");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("listener.bootstrap_port") && stderr.contains("another Sluice"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 11, defects 2 and 7: `limits.first_request_timeout_ms` is a deadline from accept that a
/// client trickling bytes does not restart, and `limits.client_idle_timeout_ms` fires once
/// nothing is in flight and nothing was read for that long (before the fix, the first never
/// fired for a trickling client, the second never after a request had been forwarded).
#[test]
fn slow_and_idle_clients_are_closed_on_time() {
    const TIMEOUT_MS: u64 = 1500;
    let cluster = shared();
    let extra = format!(
        "[limits]\nfirst_request_timeout_ms = {TIMEOUT_MS}\nclient_idle_timeout_ms = {TIMEOUT_MS}\n"
    );
    let mut sluice = Sluice::start_with(&cluster, 1, &extra);
    let addr = sluice.bootstrap();
    let timeout = Duration::from_millis(TIMEOUT_MS);
    // Generous against a loaded CI machine, far below "never".
    let late = timeout + Duration::from_secs(3);

    // A client trickling one byte every 100 ms of a frame that declares 1000 bytes.
    let started = Instant::now();
    let mut c = connect(&addr);
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut writer = c.try_clone().expect("clone");
    let trickle = std::thread::spawn(move || {
        let mut frame = 1000i32.to_be_bytes().to_vec();
        frame.extend_from_slice(&request(18, 0, 1, &[])[4..]);
        frame.resize(1004, 0);
        for b in frame {
            if writer.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    assert!(
        closed_without_reply(&mut c),
        "a trickling client was not closed within 10 s"
    );
    let waited = started.elapsed();
    assert!(
        waited >= timeout - Duration::from_millis(100) && waited < late,
        "a trickling client was closed after {waited:?} (first_request_timeout_ms = {TIMEOUT_MS})"
    );
    drop(c);
    let _ = trickle.join();
    wait_log(&sluice, &["no complete request within"]);

    // A client idle after one answered request.
    let mut c = connect(&addr);
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // Measured from before the request: the idle time starts after its answer is written.
    let asked = Instant::now();
    api_versions_ok(&mut c, 1);
    assert!(
        closed_without_reply(&mut c),
        "an idle client was not closed within 10 s"
    );
    let waited = asked.elapsed();
    assert!(
        waited >= timeout - Duration::from_millis(100) && waited < late,
        "an idle client was closed {waited:?} after its last request (client_idle_timeout_ms = {TIMEOUT_MS})"
    );
    wait_log(&sluice, &["idle for"]);

    // A client still sending is not idle: a frame trickled a byte every 250 ms, 3.5 s in all
    // (over twice the timeout) after an answered request, is read and answered.
    let mut c = connect(&addr);
    api_versions_ok(&mut c, 1);
    let frame = request(18, 0, 2, &[]);
    for b in &frame {
        std::thread::sleep(Duration::from_millis(250));
        c.write_all(std::slice::from_ref(b))
            .expect("a slow sender is still connected");
    }
    let p = read_frame(&mut c).expect("the slowly sent request is answered");
    assert_eq!(i32::from_be_bytes([p[0], p[1], p[2], p[3]]), 2);

    // A client that keeps asking, each request before the timeout, is never idle.
    let mut c = connect(&addr);
    for corr in 0..4 {
        api_versions_ok(&mut c, corr);
        std::thread::sleep(timeout / 2);
    }
    api_versions_ok(&mut c, 99);
    assert!(
        sluice.is_running(),
        "Sluice exited:\n{}",
        sluice.log_tail(40)
    );
}

/// Issue 11, defect 9: a flood of hostile connections is counted one by one in the metrics but
/// logged a few lines a second per reason, the next line saying how many were suppressed (before
/// the fix: one warn line each).
#[test]
fn a_flood_of_bad_frames_logs_a_handful() {
    const N: usize = 300;
    let cluster = shared();
    let mut sluice = Sluice::start_with(&cluster, 1, "");
    let addr = sluice.bootstrap();
    let started = Instant::now();
    for _ in 0..N {
        let mut c = connect(&addr);
        c.write_all(&(-5i32).to_be_bytes()).expect("write");
        assert!(closed_without_reply(&mut c));
    }
    let secs = started.elapsed().as_secs() + 1;
    let errors = sluice.metrics().sum(
        "sluice_connection_errors_total",
        &[("side", "downstream"), ("reason", "client_frame")],
    );
    assert_eq!(errors, N as f64, "every bad frame is counted");
    // One more after the window, to carry the suppressed count.
    std::thread::sleep(Duration::from_millis(1100));
    let mut c = connect(&addr);
    c.write_all(&(-5i32).to_be_bytes()).expect("write");
    assert!(closed_without_reply(&mut c));
    // Warn lines of the flood, each with the number suppressed before it: once the last one is
    // written, logged plus suppressed account for every bad frame.
    let count = || {
        let text = std::fs::read_to_string(sluice.log_path()).unwrap_or_default();
        let warned: Vec<String> = text
            .lines()
            .filter(|l| l.contains(" WARN ") && l.contains("bad frame from client"))
            .map(str::to_string)
            .collect();
        let suppressed: u64 = warned
            .iter()
            .filter_map(|l| l.split("suppressed=").nth(1))
            .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        (warned.len() as u64, suppressed)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let (lines, suppressed) = loop {
        let (lines, suppressed) = count();
        if lines + suppressed == N as u64 + 1 || Instant::now() > deadline {
            break (lines, suppressed);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        lines + suppressed,
        N as u64 + 1,
        "logged ({lines}) plus suppressed ({suppressed}) must account for every bad frame"
    );
    assert!(
        lines <= 5 * (secs + 2),
        "{N} bad frames in {secs} s wrote {lines} warn lines"
    );
    assert!(suppressed > 0, "nothing was suppressed");
    assert!(
        sluice.is_running(),
        "Sluice exited:\n{}",
        sluice.log_tail(40)
    );
}
