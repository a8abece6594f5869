//! Operating Sluice against the real cluster: metrics that match what a real client sent, readiness
//! that follows the brokers, live reloads under traffic, a rejected reload, and a drain during
//! production. Every test scrapes or calls the admin listener over HTTP like an operator would.

use std::fs;
use std::time::{Duration, Instant};

use super::cluster::shared;
use super::scenario::JavaScenario;
use super::sluice::Sluice;
use super::{json_field, signal, unique_name};

/// Polls `f` every 100 ms until it returns true or `timeout` passes.
fn eventually(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn field_u64(line: &str, key: &str) -> u64 {
    json_field(line, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

#[test]
fn metrics_count_exactly_the_requests_a_java_client_sent() {
    let cluster = shared();
    let sluice = Sluice::start(&cluster, 2);
    let before = sluice.metrics();
    assert_eq!(before.sum("sluice_requests_total", &[]), 0.0);
    assert_eq!(before.sum("sluice_shards", &[]), 2.0);
    assert_eq!(before.sum("sluice_scrape_shards_answered", &[]), 2.0);

    let mut at_pause = None;
    let outcome = JavaScenario::new("metrics-probe", &sluice.bootstrap())
        .arg("topic", unique_name("it-metrics"))
        .arg("records", 600)
        .run_interactive(|line| {
            if json_field(line, "phase") != Some("counted") {
                return None;
            }
            // The client has sent its last request; give Sluice a moment to read it, then scrape.
            std::thread::sleep(Duration::from_millis(300));
            let conns = sluice.admin("GET", "/connections?limit=5", "", None);
            at_pause = Some((line.to_string(), sluice.metrics(), conns));
            Some("go".into())
        });
    outcome.assert_ok();
    let (line, m, (status, conns)) = at_pause.expect("the client paused for the scrape");
    // The consumer's connections are open: counted per shard and sampled with their upstream.
    assert_eq!(status, 200, "{conns}");
    assert!(!conns.contains("\"active\": 0,\n  \"shards\""), "{conns}");
    assert!(conns.contains("\"upstream\": \"127.0.0.1:"), "{conns}");
    assert!(conns.contains("\"target\": \"node "), "{conns}");
    let sent = field_u64(&line, "requests") as f64;
    let received = field_u64(&line, "responses") as f64;

    // Every request the client's own metrics counted, and nothing else.
    let counted = m.sum("sluice_requests_total", &[]);
    assert_eq!(
        counted, sent,
        "Sluice counted {counted} requests, the Java client sent {sent}"
    );
    // Responses: all answered but the consumer's prefetching Fetch requests still in flight.
    let answered = m.sum("sluice_responses_total", &[]);
    assert!(
        answered >= received && answered <= counted,
        "responses {answered}: client received {received}, sent {counted}"
    );
    for key in ["Produce", "Metadata", "ApiVersions", "Fetch"] {
        let req = m.sum("sluice_requests_total", &[("api_name", key)]);
        assert!(req > 0.0, "no {key} requests counted");
        // One latency observation per response, in both histograms.
        let resp = m.sum("sluice_responses_total", &[("api_name", key)]);
        let gw = m.sum(
            "sluice_request_gateway_latency_seconds_count",
            &[("api_name", key)],
        );
        let up = m.sum(
            "sluice_request_upstream_latency_seconds_count",
            &[("api_name", key)],
        );
        assert_eq!(gw, resp, "{key}: gateway latency count vs responses");
        assert_eq!(up, resp, "{key}: upstream latency count vs responses");
    }
    // Produce (acks=all): one response per request once the producer flushed.
    assert_eq!(
        m.sum("sluice_requests_total", &[("api_name", "Produce")]),
        m.sum("sluice_responses_total", &[("api_name", "Produce")])
    );
    // 600 records of ~40 bytes each went in from the client and out to a broker, at least.
    let down_in = m.sum(
        "sluice_bytes_total",
        &[("side", "downstream"), ("direction", "in")],
    );
    let up_out = m.sum(
        "sluice_bytes_total",
        &[("side", "upstream"), ("direction", "out")],
    );
    assert!(down_in > 600.0 * 40.0, "downstream bytes in: {down_in}");
    assert_eq!(
        down_in, up_out,
        "requests are forwarded byte for byte (no local answers for Java's ApiVersions)"
    );
    assert!(m.sum("sluice_connections_accepted_total", &[]) >= 3.0);
    assert!(m.sum("sluice_upstream_connects_total", &[]) >= 3.0);
    assert_eq!(m.sum("sluice_connection_errors_total", &[]), 0.0);
    assert_eq!(m.sum("sluice_ready", &[]), 1.0);
    // Bounded labels: only api key, version, name, shard, side, direction, node id, outcome.
    for l in m.0.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !l.contains("topic") && !l.contains("client_id"),
            "unbounded label: {l}"
        );
    }
}

#[test]
fn readyz_follows_broker_availability() {
    let mut cluster = shared();
    let sluice = Sluice::start(&cluster, 1);
    let ready = |s: &Sluice| s.admin("GET", "/readyz", "", None);
    let (status, body) = ready(&sluice);
    assert_eq!(status, 200, "{body}");
    assert_eq!(sluice.admin("GET", "/healthz", "", None).0, 200);

    let ids = cluster.node_ids();
    for id in &ids {
        cluster.kill_broker(*id);
    }
    eventually(Duration::from_secs(10), "/readyz to turn 503", || {
        ready(&sluice).0 == 503
    });
    let (_, body) = ready(&sluice);
    assert!(
        body.contains("no upstream broker accepts connections"),
        "{body}"
    );
    assert_eq!(
        sluice.admin("GET", "/healthz", "", None).0,
        200,
        "alive while not ready"
    );
    assert_eq!(sluice.metrics().sum("sluice_ready", &[]), 0.0);

    // Brokers come back. In this cluster every node is also a KRaft controller: a node opens its
    // client listener only once a quorum (two of three) is up, so two are started, without
    // waiting for them; Sluice turns ready as soon as the first accepts connections.
    cluster.spawn_broker(ids[0]);
    cluster.spawn_broker(ids[1]);
    eventually(Duration::from_secs(90), "/readyz to turn 200", || {
        ready(&sluice).0 == 200
    });
    let (_, body) = ready(&sluice);
    assert!(
        body.contains("\"upstream_reachable\": \"127.0.0.1:"),
        "{body}"
    );
    cluster.ensure_all_running();
}

/// Rewrites the config file: replaces `from` with `to` (each must be present once) and appends
/// `append`.
fn edit_config(sluice: &Sluice, edits: &[(&str, &str)], append: &str) {
    let path = sluice.config_path();
    let mut text = fs::read_to_string(path).expect("read config");
    for (from, to) in edits {
        assert_eq!(text.matches(from).count(), 1, "{from:?} in\n{text}");
        text = text.replace(from, to);
    }
    text.push_str(append);
    fs::write(path, text).expect("write config");
}

#[test]
fn reload_of_live_keys_under_traffic_drops_no_connection_and_loses_no_record() {
    let cluster = shared();
    let sluice = Sluice::start(&cluster, 2);
    let mut reload = None;
    let mut accepted_at_reload = 0.0;
    let outcome = JavaScenario::new("reload-steady", &sluice.bootstrap())
        .arg("topic", unique_name("it-reload"))
        .arg("after", 400)
        .run_interactive(|line| {
            if json_field(line, "phase") != Some("running") {
                return None;
            }
            accepted_at_reload = sluice
                .metrics()
                .sum("sluice_connections_accepted_total", &[]);
            // Live keys of several kinds: limits, upstream settings, the log filter, and the
            // bootstrap listener's port (the old listener closes; its connections stay).
            let new_port = super::free_ports(1)[0];
            edit_config(
                &sluice,
                &[
                    (
                        &format!("bootstrap_port = {}", sluice.bootstrap_port()),
                        &format!("bootstrap_port = {new_port}"),
                    ),
                    ("level = \"info\"", "level = \"info,sluice=debug\""),
                ],
                "\n[limits]\nmax_in_flight_per_connection = 64\nclient_idle_timeout_ms = 300000\n",
            );
            let r = sluice.admin("POST", "/reload", "", None);
            reload = Some((r, new_port));
            Some("go".into())
        });
    let line = outcome.assert_ok().to_string();
    let ((status, body), new_port) = reload.expect("reloaded while the clients ran");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"outcome\": \"applied\""), "{body}");
    for key in [
        "listener.bootstrap_port",
        "limits.max_in_flight_per_connection",
        "limits.client_idle_timeout_ms",
        "log.level",
    ] {
        assert!(body.contains(key), "{key} not reported in {body}");
    }
    // Neither client opened or lost a connection across the reload; every record arrived (the
    // scenario checked each acked record by key, partition and offset).
    assert_eq!(
        field_u64(&line, "connections_before"),
        field_u64(&line, "connections_after"),
        "{line}"
    );
    assert_eq!(
        field_u64(&line, "closes_before"),
        field_u64(&line, "closes_after"),
        "{line}"
    );
    let m = sluice.metrics();
    assert_eq!(
        m.sum("sluice_connections_accepted_total", &[]),
        accepted_at_reload,
        "no client reconnected after the reload"
    );
    assert_eq!(m.sum("sluice_connection_errors_total", &[]), 0.0);
    assert_eq!(
        m.sum("sluice_config_reloads_total", &[("outcome", "applied")]),
        1.0
    );
    // The new settings are in force and the bootstrap listener moved.
    let (_, cfg) = sluice.admin("GET", "/config", "", None);
    assert!(
        cfg.contains("\"max_in_flight_per_connection\": 64"),
        "{cfg}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", new_port)).is_ok(),
        "new bootstrap port {new_port} listens"
    );
    assert!(
        std::net::TcpStream::connect(sluice.bootstrap()).is_err(),
        "old bootstrap port {} closed",
        sluice.bootstrap_port()
    );
}

#[test]
fn invalid_reload_keeps_the_running_config_and_sighup_reloads() {
    let cluster = shared();
    let sluice = Sluice::start(&cluster, 1);
    let original = fs::read_to_string(sluice.config_path()).expect("config");

    // Two errors at once, both reported; nothing changes.
    edit_config(
        &sluice,
        &[],
        "\n[limits]\nmax_in_flight_per_connection = 0\nclient_idle_timeout_ms = 0\n",
    );
    let (status, body) = sluice.admin("POST", "/reload", "", None);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("\"outcome\": \"rejected\""), "{body}");
    assert!(
        body.contains("limits.max_in_flight_per_connection: must be at least 1"),
        "{body}"
    );
    assert!(
        body.contains("limits.client_idle_timeout_ms: must be greater than 0"),
        "{body}"
    );
    let (_, cfg) = sluice.admin("GET", "/config", "", None);
    assert!(
        cfg.contains("\"max_in_flight_per_connection\": 1024"),
        "{cfg}"
    );
    let outcome = JavaScenario::new("produce-consume", &sluice.bootstrap())
        .arg("topic", unique_name("it-rejected"))
        .arg("records", 200)
        .run();
    outcome.assert_ok();

    // A restart-only change is reported, not applied; a valid live change via SIGHUP is applied,
    // including a new admin token (live): afterwards the token is required.
    let token = "it-token-0123456789abcdef";
    fs::write(
        sluice.config_path(),
        original.replace("shards = 1", "shards = 3").replace(
            "[admin]\n",
            &format!("[admin]\nbearer_token = \"{token}\"\n"),
        ) + "\n[limits]\nmax_in_flight_per_connection = 77\n",
    )
    .expect("write config");
    signal(sluice.pid(), "HUP").expect("SIGHUP");
    eventually(Duration::from_secs(10), "SIGHUP reload to apply", || {
        sluice
            .admin("GET", "/config", "", Some(token))
            .1
            .contains("\"max_in_flight_per_connection\": 77")
    });
    let (status, _) = sluice.admin("GET", "/config", "", None);
    assert_eq!(status, 401, "the new token is required");
    let (_, cfg) = sluice.admin("GET", "/config", "", Some(token));
    assert!(
        cfg.contains("\"shards\": 1"),
        "restart-only key kept: {cfg}"
    );
    assert!(!cfg.contains(token), "token redacted: {cfg}");
    assert_eq!(
        sluice.admin("GET", "/readyz", "", None).0,
        200,
        "probes need no token"
    );
    // The log level changes at runtime; a bad directive is refused with the reason.
    let (status, body) = sluice.admin("PUT", "/log-level", "info,sluice=debug", Some(token));
    assert_eq!(status, 200, "{body}");
    let (_, body) = sluice.admin("GET", "/log-level", "", Some(token));
    assert!(body.contains("info,sluice=debug"), "{body}");
    let (status, body) = sluice.admin("PUT", "/log-level", "sluice=loud", Some(token));
    assert_eq!(status, 400, "{body}");
    let log = sluice.log_tail(200);
    assert!(log.contains("SIGHUP"), "{log}");
    assert!(
        log.contains("runtime.shards"),
        "restart-only change reported: {log}"
    );
    let (status, m) = sluice.admin("GET", "/metrics", "", Some(token));
    assert_eq!(status, 200);
    let m = super::sluice::Metrics(m);
    assert_eq!(
        m.sum("sluice_config_reloads_total", &[("outcome", "rejected")]),
        1.0
    );
    assert_eq!(
        m.sum("sluice_config_reloads_total", &[("outcome", "applied")]),
        1.0
    );
}

#[test]
fn sigterm_during_production_keeps_every_acked_record_and_exits_zero() {
    let cluster = shared();
    let mut sluice = Sluice::start(&cluster, 2);
    let mut signalled = None;
    let outcome = JavaScenario::new("produce-through-drain", &sluice.bootstrap())
        .arg("topic", unique_name("it-drain-produce"))
        .arg("direct-bootstrap", cluster.bootstrap_client())
        .run_interactive(|line| {
            if json_field(line, "phase") != Some("running") {
                return None;
            }
            signal(sluice.pid(), "TERM").expect("SIGTERM");
            signalled = Some(Instant::now());
            Some("go".into())
        });
    let line = outcome.assert_ok().to_string();
    let at = signalled.expect("SIGTERM sent while producing");
    let status = sluice
        .wait_exit(Duration::from_secs(15))
        .expect("sluice exits within the drain timeout");
    assert!(status.success(), "exit status {status}");
    assert!(
        at.elapsed() < Duration::from_secs(60),
        "the whole run stayed bounded"
    );
    assert!(field_u64(&line, "acked") >= 300, "{line}");
}
