//! Safeguards against the real cluster, as real clients see them: each rule rejects what it
//! should with the Kafka error the client understands (POLICY_VIOLATION: Java
//! `PolicyViolationException`, librdkafka `POLICY_VIOLATION`; read-only topics
//! TOPIC_AUTHORIZATION_FAILED; a refused client id: POLICY_VIOLATION in ApiVersions), the error
//! message names the rule where the client shows it, and everything else passes. A log-only rule
//! lets the request through and counts it; acks=0, which has no response, closes the connection
//! as a broker would. Quotas are here too.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::cluster::shared;
use super::other_clients::run_python;
use super::robustness::{closed_without_reply, connect, read_frame};
use super::scenario::JavaScenario;
use super::sluice::Sluice;
use super::{json_field, unique_name};

const POLICY: &str = r#"
[[policy.produce]]
name = "acks-all"
allowed_acks = [-1]

[[policy.produce]]
name = "no-gzip"
forbidden_compression = ["gzip"]

[[policy.produce]]
name = "small-batches"
max_batch_bytes = 4096

[[policy.produce]]
name = "idempotent"
require_idempotence = true

[[policy.produce]]
name = "snappy-watch"
action = "log"
forbidden_compression = ["snappy"]
"#;

fn java(sluice: &Sluice, props: &str, records: u32, expect: &str) -> String {
    let outcome = JavaScenario::new("produce-expect", &sluice.bootstrap())
        .arg("topic", unique_name("it-policy"))
        .arg("records", records)
        .arg("producer-props", props)
        .arg("expect", expect)
        .run();
    outcome.assert_ok().to_string()
}

#[test]
fn produce_safeguards_as_java_and_librdkafka_see_them() {
    let cluster = shared();
    let sluice = Sluice::start_with(&cluster, 2, POLICY);
    let violations = |rule: &str, action: &str| {
        sluice.metrics().sum(
            "sluice_policy_violations_total",
            &[("rule", rule), ("action", action)],
        )
    };

    // What every rule allows passes (Java defaults: acks=all, idempotent, no compression).
    java(&sluice, "", 20, "ok");
    assert_eq!(
        sluice.metrics().sum("sluice_policy_violations_total", &[]),
        0.0
    );

    // Each rule rejects, with the rule named in the error the client reports.
    let rejected_by = |props: &str, records: u32, rule: &str| {
        let line = java(&sluice, props, records, "PolicyViolationException");
        assert!(
            json_field(&line, "message").is_some_and(|m| m.contains(rule)),
            "{rule} not named: {line}"
        );
    };
    rejected_by("acks=1;enable.idempotence=false", 20, "acks-all");
    assert!(violations("acks-all", "reject") >= 1.0);
    rejected_by("compression.type=gzip", 20, "no-gzip");
    // 600 records within one linger window: batches of ~200 records, over 4096 bytes.
    rejected_by("linger.ms=500;batch.size=1000000", 600, "small-batches");
    rejected_by("enable.idempotence=false", 20, "idempotent");

    // Log-only: the records pass, the violation is counted.
    java(&sluice, "compression.type=snappy", 20, "ok");
    assert!(violations("snappy-watch", "log") >= 1.0);

    // librdkafka: the same rules, its own error names (its delivery reports carry the error
    // code's text, not the message: the counters say which rule fired).
    let topic = unique_name("it-policy-rdk");
    let rdk = |props: &str, expect: &str| {
        run_python(
            "produce-expect",
            &sluice.bootstrap(),
            &topic,
            &[
                "--records",
                "20",
                "--producer-props",
                props,
                "--expect",
                expect,
            ],
        )
    };
    rdk("enable.idempotence=true", "ok");
    let acks_before = violations("acks-all", "reject");
    rdk("acks=1;enable.idempotence=false", "POLICY_VIOLATION");
    assert!(violations("acks-all", "reject") > acks_before);
    let gzip_before = violations("no-gzip", "reject");
    rdk(
        "enable.idempotence=true;compression.type=gzip",
        "POLICY_VIOLATION",
    );
    assert!(violations("no-gzip", "reject") > gzip_before);

    // acks=0 has no response to carry an error: the connection is closed, as by a broker.
    let before = sluice.metrics().sum(
        "sluice_connection_errors_total",
        &[("reason", "policy_violation")],
    );
    java(&sluice, "acks=0;enable.idempotence=false", 20, "ok");
    let after = sluice.metrics().sum(
        "sluice_connection_errors_total",
        &[("reason", "policy_violation")],
    );
    assert!(
        after > before,
        "acks=0 violation closed the connection ({before} -> {after})"
    );
    let log = sluice.log_tail(400);
    assert!(log.contains("policy violation"), "{log}");
}

/// Shards for the byte-quota tests: 1, or `SLUICE_IT_QUOTA_SHARDS` (2 to measure how the split
/// of the limit over shards holds with a client's connections spread by SO_REUSEPORT; README,
/// Quotas, reports such runs).
fn quota_shards() -> u32 {
    std::env::var("SLUICE_IT_QUOTA_SHARDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Produce byte-rate quota, one limit per client id: a producer far over its quota is held to
/// within 10% of the limit (throttle_time_ms, muted connection) and loses no record; a slow
/// producer under its own limit, on the same shard, is never throttled. One shard (or
/// `SLUICE_IT_QUOTA_SHARDS`).
#[test]
fn produce_quota_holds_a_fast_producer_to_its_limit() {
    produce_quota_case(quota_shards());
}

/// The same on 2 shards, the producer's connections spread over both by SO_REUSEPORT: the
/// split of the limit over shards holds it within 10% too (0.960-0.987 in 7 runs; README,
/// Quotas). The consumer's counterpart is not in the suite: 0.912 at worst in 7 runs is too
/// close to the edge.
#[test]
fn produce_quota_holds_a_fast_producer_to_its_limit_across_two_shards() {
    produce_quota_case(2);
}

fn produce_quota_case(shards: u32) {
    const LIMIT: f64 = 512.0 * 1024.0;
    let cluster = shared();
    let sluice = Sluice::start_with(
        &cluster,
        shards,
        &format!(
            r#"
[[policy.quota]]
name = "per-producer"
client_id = {{ prefix = "sluice-it-produce-rate-" }}
key = "client_id"
produce_bytes_per_s = {}
"#,
            LIMIT as u64
        ),
    );
    let outcome = JavaScenario::new("produce-rate", &sluice.bootstrap())
        .arg("topic", unique_name("it-quota"))
        .arg("seconds", 10)
        .arg("warmup-s", 3)
        .arg("value-bytes", 4096)
        .run();
    let line = outcome.assert_ok().to_string();
    let num = |k: &str| -> f64 {
        json_field(&line, k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k} in {line}"))
    };
    let rate = num("fast_bytes_per_s");
    // Keys and values only: request framing adds ~1-2% on top, which the quota also counts.
    assert!(
        (0.9 * LIMIT..=1.1 * LIMIT).contains(&rate),
        "fast producer at {rate:.0} B/s, limit {LIMIT} ({:.3} of it): {line}",
        rate / LIMIT
    );
    assert!(
        num("fast_throttle_max_ms") > 0.0,
        "the fast producer saw throttle_time_ms: {line}"
    );
    assert_eq!(
        num("slow_throttle_max_ms"),
        0.0,
        "the slow producer was never throttled: {line}"
    );
    let m = sluice.metrics();
    assert!(
        m.sum(
            "sluice_throttle_seconds_total",
            &[("rule", "per-producer"), ("kind", "produce_bytes")]
        ) > 0.0
    );
    eprintln!(
        "[it] quota: fast producer at {:.3} of the limit ({shards} shards)",
        rate / LIMIT
    );
}

/// Per-topic produce quota: one limit per topic, whoever writes to it. A producer far over the
/// limit of its topic is held within 10% of it and loses no record; a slow producer on another
/// topic, outside the rule, on the same shard, is never throttled. Produce is offered up to v12
/// to clients in scope (v13 names topics by id).
#[test]
fn topic_quota_holds_one_topic_and_leaves_another_alone() {
    const LIMIT: f64 = 512.0 * 1024.0;
    let cluster = shared();
    let sluice = Sluice::start_with(
        &cluster,
        1,
        &format!(
            r#"
[[policy.quota]]
name = "per-topic"
key = "topic"
topics = [{{ prefix = "it-tquota-fast-" }}]
produce_bytes_per_s = {}
"#,
            LIMIT as u64
        ),
    );
    let outcome = JavaScenario::new("produce-rate", &sluice.bootstrap())
        .arg("topic", unique_name("it-tquota-fast"))
        .arg("slow-topic", unique_name("it-tquota-slow"))
        .arg("seconds", 10)
        .arg("warmup-s", 3)
        .arg("value-bytes", 4096)
        .run();
    let line = outcome.assert_ok().to_string();
    let num = |k: &str| -> f64 {
        json_field(&line, k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k} in {line}"))
    };
    let rate = num("fast_bytes_per_s");
    assert!(
        (0.9 * LIMIT..=1.1 * LIMIT).contains(&rate),
        "fast topic at {rate:.0} B/s, limit {LIMIT} ({:.3} of it): {line}",
        rate / LIMIT
    );
    assert!(num("fast_throttle_max_ms") > 0.0, "{line}");
    assert_eq!(
        num("slow_throttle_max_ms"),
        0.0,
        "the other topic was throttled: {line}"
    );
    let m = sluice.metrics();
    assert!(
        m.sum(
            "sluice_throttle_seconds_total",
            &[("rule", "per-topic"), ("kind", "produce_bytes")]
        ) > 0.0
    );
    assert_eq!(
        m.sum(
            "sluice_requests_total",
            &[("api_key", "0"), ("api_version", "13")]
        ),
        0.0,
        "Produce v13 was offered to a client under a per-topic quota"
    );
    eprintln!(
        "[it] topic quota: fast topic at {:.3} of the limit",
        rate / LIMIT
    );
}

/// Api keys forbidden to some clients: the Java admin client is told DeleteTopics is not
/// supported (it is left out of ApiVersions) and fails with `UnsupportedVersionException`;
/// librdkafka likewise; a client outside the rule's scope deletes topics as usual.
#[test]
fn forbidden_api_keys_as_java_and_librdkafka_see_them() {
    let cluster = shared();
    let sluice = Sluice::start_with(
        &cluster,
        2,
        r#"
[[policy.api_keys]]
name = "no-deletes"
client_id = { regex = "^(sluice-it-delete-topic-expect-admin-|librdkafka)" }
forbidden = ["DeleteTopics"]
"#,
    );
    // `prefix`: the client id prefix (the rule matches Sluice's test clients, not "other-").
    let java = |expect: &str, prefix: &str| {
        JavaScenario::new("delete-topic-expect", &sluice.bootstrap())
            .arg("topic", unique_name("it-delete"))
            .arg("expect", expect)
            .arg("client-id-prefix", prefix)
            .run()
            .assert_ok()
            .to_string()
    };
    java("UnsupportedVersionException", "sluice-it-");
    let m = sluice.metrics();
    assert_eq!(
        m.sum("sluice_requests_total", &[("api_name", "DeleteTopics")]),
        0.0,
        "the Java client never sent the hidden api key"
    );
    let line = run_python(
        "delete-topic-expect",
        &sluice.bootstrap(),
        &unique_name("it-nodelete-rdk"),
        &["--expect", "_UNSUPPORTED_FEATURE"],
    );
    assert!(line.contains("_UNSUPPORTED_FEATURE"), "{line}");
    java("ok", "other-");
}

/// Create-topic safeguards: partitions, replication factor, topic name and configs, as the Java
/// admin client (`PolicyViolationException` with the rule in its message) and librdkafka
/// (`POLICY_VIOLATION`) see them; a topic within every rule is created.
#[test]
fn create_topic_safeguards_as_java_and_librdkafka_see_them() {
    let cluster = shared();
    let sluice = Sluice::start_with(
        &cluster,
        1,
        r#"
[[policy.create_topics]]
name = "topic-shape"
partitions = { min = 1, max = 6 }
replication_factor = { min = 3, max = 3 }
topic_name = { prefix = "it-" }
forbidden_configs = ["unclean.leader.election.enable"]
config_ranges = { "retention.ms" = { min = 3600000, max = 604800000 } }
config_values = { "cleanup.policy" = ["delete"] }
"#,
    );
    let java = |name: &str, partitions: u32, rf: u32, configs: &str, expect: &str| {
        let line = JavaScenario::new("create-topic-expect", &sluice.bootstrap())
            .arg("topic", unique_name(name))
            .arg("partitions", partitions)
            .arg("rf", rf)
            .arg("configs", configs)
            .arg("expect", expect)
            .run()
            .assert_ok()
            .to_string();
        line
    };
    java(
        "it-ok",
        3,
        3,
        "retention.ms=86400000;cleanup.policy=delete",
        "ok",
    );
    let bad = "PolicyViolationException";
    assert!(java("it-wide", 12, 3, "", bad).contains("12 partitions is outside 1..=6"));
    assert!(java("it-rf", 3, 1, "", bad).contains("replication factor 1"));
    assert!(java("other", 3, 3, "", bad).contains("topic name"));
    assert!(java(
        "it-unclean",
        3,
        3,
        "unclean.leader.election.enable=true",
        bad
    )
    .contains("unclean.leader.election.enable may not be set"));
    assert!(java("it-short", 3, 3, "retention.ms=1000", bad).contains("retention.ms=1000"));
    assert!(java("it-compact", 3, 3, "cleanup.policy=compact", bad).contains("cleanup.policy"));

    let rdk = |name: &str, extra: &[&str], expect: &str| {
        let mut args = vec!["--expect", expect];
        args.extend_from_slice(extra);
        run_python(
            "create-topic-expect",
            &sluice.bootstrap(),
            &unique_name(name),
            &args,
        )
    };
    rdk("it-rdk-ok", &["--partitions", "3"], "ok");
    rdk("it-rdk-wide", &["--partitions", "12"], "POLICY_VIOLATION");
    rdk(
        "it-rdk-compact",
        &["--partitions", "3", "--configs", "cleanup.policy=compact"],
        "POLICY_VIOLATION",
    );
    let m = sluice.metrics();
    assert!(
        m.sum(
            "sluice_policy_violations_total",
            &[("rule", "topic-shape"), ("action", "reject")]
        ) >= 8.0
    );
}

/// Fetch byte-rate quota: a consumer reading a backlog far larger than its quota is held to
/// within 10% of the limit (throttle_time_ms in Fetch responses, muted connection) and gets
/// every record. One shard (or `SLUICE_IT_QUOTA_SHARDS`): on 2 shards it held in 7 of 7 runs,
/// 0.912 at worst, too close to the edge to assert in the suite (README, Quotas).
#[test]
fn fetch_quota_holds_a_consumer_to_its_limit() {
    fetch_quota_case(
        "per-consumer",
        r#"client_id = { prefix = "sluice-it-consume-rate-consumer-" }"#,
        "it-fquota",
    );
}

/// The same limit kept per topic (`key = "topic"`, the topic's record bytes in each Fetch
/// response counted, under the name clients see); Fetch is offered up to v12 to clients in scope.
#[test]
fn fetch_quota_per_topic_holds_a_consumer_to_its_limit() {
    fetch_quota_case(
        "per-topic-fetch",
        "key = \"topic\"\ntopics = [{ prefix = \"it-tfquota-\" }]",
        "it-tfquota",
    );
}

/// A consumer reading 2000 records of 4 KiB under a 1 MiB/s fetch quota `rule` (its TOML lines
/// besides name and limit) on a fresh topic named after `topic_prefix`.
fn fetch_quota_case(rule: &str, rule_lines: &str, topic_prefix: &str) {
    const LIMIT: f64 = 1024.0 * 1024.0;
    let cluster = shared();
    let sluice = Sluice::start_with(
        &cluster,
        quota_shards(),
        &format!(
            "\n[[policy.quota]]\nname = \"{rule}\"\n{rule_lines}\nfetch_bytes_per_s = {}\n",
            LIMIT as u64
        ),
    );
    let line = JavaScenario::new("consume-rate", &sluice.bootstrap())
        .arg("topic", unique_name(topic_prefix))
        .arg("records", 2000)
        .arg("value-bytes", 4096)
        .arg("warmup-s", 2)
        .run()
        .assert_ok()
        .to_string();
    let num = |k: &str| -> f64 {
        json_field(&line, k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k} in {line}"))
    };
    let rate = num("bytes_per_s");
    // Record keys and values only; Fetch framing and batch headers add a little on top.
    assert!(
        (0.9 * LIMIT..=1.1 * LIMIT).contains(&rate),
        "consumer at {rate:.0} B/s, limit {LIMIT} ({:.3} of it): {line}",
        rate / LIMIT
    );
    assert!(num("fetch_throttle_max_ms") > 0.0, "{line}");
    assert!(
        sluice.metrics().sum(
            "sluice_throttle_seconds_total",
            &[("rule", rule), ("kind", "fetch_bytes")]
        ) > 0.0
    );
    eprintln!(
        "[it] fetch quota {rule}: consumer at {:.3} of the limit ({} shards)",
        rate / LIMIT,
        quota_shards()
    );
}

// ------------------------------------------------------------------------------------------------
// Request-rate and connection quotas, driven by raw Kafka frames where a count must be exact.

/// A request frame with header v1 (api key, version, correlation id, `client_id`) and `body`.
fn raw_request(api_key: i16, version: i16, corr: i32, client_id: &str, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&api_key.to_be_bytes());
    p.extend_from_slice(&version.to_be_bytes());
    p.extend_from_slice(&corr.to_be_bytes());
    p.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    p.extend_from_slice(client_id.as_bytes());
    p.extend_from_slice(body);
    let mut f = (p.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(&p);
    f
}

/// Metadata v4 for no topic (topics: empty array, allow_auto_topic_creation: false): the
/// cheapest request a client repeats, answered with `throttle_time_ms` first in its body.
fn metadata_request(corr: i32, client_id: &str) -> Vec<u8> {
    raw_request(3, 4, corr, client_id, &[0, 0, 0, 0, 0])
}

/// Reads one response frame; `None` when the connection was closed first.
fn read_response(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).ok()?;
    let mut p = vec![0u8; usize::try_from(i32::from_be_bytes(size)).ok()?];
    s.read_exact(&mut p).ok()?;
    Some(p)
}

/// `throttle_time_ms` of a Metadata v4 response (after the correlation id).
fn metadata_throttle_ms(p: &[u8]) -> i32 {
    i32::from_be_bytes([p[4], p[5], p[6], p[7]])
}

/// What a closed-loop Metadata client saw.
#[derive(Debug, Default)]
struct LoopStats {
    /// Responses received between the warm-up and the end.
    window_responses: u64,
    window_s: f64,
    max_throttle_ms: i32,
    worst_latency: Duration,
}

/// Sends Metadata requests as `client_id` for `secs`, `in_flight` at a time (a new one as each
/// response arrives), or one every `pace` when given; counts the responses after `warmup`.
/// It does not wait out throttle_time_ms itself: Sluice mutes the connection.
fn metadata_loop(
    addr: &str,
    client_id: &str,
    secs: f64,
    warmup: f64,
    in_flight: usize,
    pace: Option<Duration>,
) -> LoopStats {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    s.set_nodelay(true).expect("nodelay");
    let start = Instant::now();
    let window_start = start + Duration::from_secs_f64(warmup);
    let end = start + Duration::from_secs_f64(secs);
    let mut stats = LoopStats {
        window_s: secs - warmup,
        ..Default::default()
    };
    let mut corr = 0;
    let mut sent_at = std::collections::VecDeque::new();
    for _ in 0..in_flight {
        corr += 1;
        s.write_all(&metadata_request(corr, client_id))
            .expect("write");
        sent_at.push_back(Instant::now());
    }
    while let Some(at) = sent_at.pop_front() {
        let p = read_response(&mut s).expect("Metadata response");
        let now = Instant::now();
        stats.worst_latency = stats.worst_latency.max(now - at);
        stats.max_throttle_ms = stats.max_throttle_ms.max(metadata_throttle_ms(&p));
        if now >= window_start && now < end {
            stats.window_responses += 1;
        }
        if now < end {
            if let Some(p) = pace {
                std::thread::sleep(p);
            }
            corr += 1;
            s.write_all(&metadata_request(corr, client_id))
                .expect("write");
            sent_at.push_back(Instant::now());
        }
    }
    stats
}

/// Request-rate quota (KIP-124, counted: README, Quotas): a client looping on Metadata with 8
/// requests in flight is held to within 10% of 200 requests/s, every response carries the delay
/// in throttle_time_ms and none is lost; a slow client (20 requests/s, its own client id, the
/// same shard) is never throttled. Then a Java producer over a request quota is throttled and
/// loses no record, while the slow producer beside it is not throttled.
#[test]
fn request_quota_holds_a_request_loop_to_its_limit() {
    const LIMIT: f64 = 200.0;
    let cluster = shared();
    let sluice = Sluice::start_with(
        &cluster,
        1,
        &format!(
            r#"
[[policy.quota]]
name = "metadata-loop"
client_id = {{ prefix = "rr-" }}
requests_per_s = {}

[[policy.quota]]
name = "java-requests"
client_id = {{ prefix = "sluice-it-produce-rate-" }}
requests_per_s = 50
"#,
            LIMIT as u64
        ),
    );
    let addr = format!("127.0.0.1:{}", sluice.bootstrap_port());
    let slow = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            metadata_loop(
                &addr,
                "rr-slow",
                7.0,
                1.0,
                1,
                Some(Duration::from_millis(50)),
            )
        })
    };
    let fast = metadata_loop(&addr, "rr-fast", 7.0, 1.0, 8, None);
    let slow = slow.join().expect("slow client");
    let rate = fast.window_responses as f64 / fast.window_s;
    eprintln!(
        "[it] request quota: fast client at {rate:.1}/s ({:.3} of the limit), max throttle {} ms; slow client {:?}",
        rate / LIMIT,
        fast.max_throttle_ms,
        slow
    );
    assert!(
        (0.9 * LIMIT..=1.1 * LIMIT).contains(&rate),
        "fast client at {rate:.1} requests/s, limit {LIMIT}: {fast:?}"
    );
    assert!(fast.max_throttle_ms > 0, "{fast:?}");
    assert_eq!(slow.max_throttle_ms, 0, "slow client throttled: {slow:?}");
    assert!(
        slow.window_responses > 0 && slow.worst_latency < Duration::from_secs(1),
        "slow client slowed down: {slow:?}"
    );
    let m = sluice.metrics();
    assert!(
        m.sum(
            "sluice_throttle_seconds_total",
            &[("rule", "metadata-loop"), ("kind", "requests")]
        ) > 0.0
    );

    // A Java producer over 50 requests/s: throttled, every record acked exactly once; the slow
    // producer (20 records/s, its own client id) is not throttled.
    let line = JavaScenario::new("produce-rate", &sluice.bootstrap())
        .arg("topic", unique_name("it-rquota"))
        .arg("seconds", 6)
        .arg("warmup-s", 2)
        .arg("value-bytes", 512)
        .run()
        .assert_ok()
        .to_string();
    let num = |k: &str| -> f64 {
        json_field(&line, k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k} in {line}"))
    };
    assert!(num("fast_throttle_max_ms") > 0.0, "{line}");
    assert_eq!(num("slow_throttle_max_ms"), 0.0, "{line}");
    assert!(
        sluice.metrics().sum(
            "sluice_throttle_seconds_total",
            &[("rule", "java-requests"), ("kind", "requests")]
        ) > 0.0
    );
}

/// A connection that completes an ApiVersions round trip: `None` when Sluice closed it first.
fn admitted(addr: &str) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(&raw_request(18, 0, 1, "conn-quota", &[]))
        .ok()?;
    let p = read_response(&mut s)?;
    (i32::from_be_bytes([p[0], p[1], p[2], p[3]]) == 1).then_some(s)
}

/// Tries to connect until admitted, for up to `within`; returns the connection and how many
/// attempts were refused first.
fn admitted_within(addr: &str, within: Duration) -> Option<(TcpStream, u32)> {
    let deadline = Instant::now() + within;
    let mut refused = 0;
    while Instant::now() < deadline {
        if let Some(s) = admitted(addr) {
            return Some((s, refused));
        }
        refused += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Connection count per source over 2 shards (broker `max.connections.per.ip`): 4 connections
/// from 127.0.0.1 are admitted (a connection that lands on a shard whose allowance is used up is
/// refused until the owner moves the allowance there: the client retries), a 5th is refused every
/// time while the 4 keep working, and closing one frees a place for a new one.
#[test]
fn connections_over_the_per_source_limit_are_refused_across_shards() {
    const MAX: usize = 4;
    let cluster = shared();
    let sluice = Sluice::start_with(
        &cluster,
        2,
        &format!(
            r#"
[[policy.quota]]
name = "per-ip"
source = ["127.0.0.1/32"]
key = "source"
max_connections = {MAX}
"#
        ),
    );
    let addr = format!("127.0.0.1:{}", sluice.bootstrap_port());
    let mut open = Vec::new();
    let mut refused_under = 0;
    for i in 0..MAX {
        let (s, refused) = admitted_within(&addr, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("connection {i} under the limit never admitted"));
        refused_under += refused;
        open.push(s);
        // Let the owner spread the headroom (one to three 100 ms intervals).
        std::thread::sleep(Duration::from_millis(400));
    }
    for i in 0..10 {
        assert!(
            admitted(&addr).is_none(),
            "attempt {i} over the limit admitted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for (i, s) in open.iter_mut().enumerate() {
        s.write_all(&raw_request(18, 0, 7, "conn-quota", &[]))
            .expect("write");
        let p = read_response(s).unwrap_or_else(|| panic!("open connection {i} was closed"));
        assert_eq!(i32::from_be_bytes([p[0], p[1], p[2], p[3]]), 7);
    }
    let m = sluice.metrics();
    let over = m.sum(
        "sluice_connections_refused_total",
        &[("reason", "max_connections_per_source")],
    );
    assert!(over >= 10.0, "refusals counted: {over}");
    assert!(
        sluice.log_tail(300).contains("connection refused"),
        "refusal logged"
    );

    // A closed connection frees its place (on whichever shard the next one lands).
    drop(open.pop());
    let (s, refused) = admitted_within(&addr, Duration::from_secs(5))
        .expect("a place freed by a close was never given back");
    open.push(s);
    std::thread::sleep(Duration::from_millis(400));
    assert!(admitted(&addr).is_none(), "over the limit after the reuse");
    eprintln!(
        "[it] connection quota: {MAX} admitted ({refused_under} refusals under the limit while the allowance moved), reuse after a close needed {refused} retries"
    );
}

/// Connection creation rate per source (KIP-612) over 2 shards: 40 connections attempted as fast
/// as possible against 5 per second: at most the one-second burst (plus one per shard) and the
/// rate are admitted, the rest refused; a second later new connections are admitted again.
#[test]
fn connection_rate_per_source_refuses_the_excess() {
    const RATE: f64 = 5.0;
    let cluster = shared();
    let sluice = Sluice::start_with(
        &cluster,
        2,
        &format!(
            r#"
[[policy.quota]]
name = "conn-rate"
key = "source"
connections_per_s = {}
"#,
            RATE as u64
        ),
    );
    let addr = format!("127.0.0.1:{}", sluice.bootstrap_port());
    // The harness's readiness probes spent some of the burst: start from a quiet second.
    std::thread::sleep(Duration::from_millis(1500));
    let start = Instant::now();
    let mut ok = 0;
    let mut refused = 0;
    for _ in 0..40 {
        match admitted(&addr) {
            Some(_) => ok += 1,
            None => refused += 1,
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    eprintln!(
        "[it] connection rate: {ok} admitted, {refused} refused in {elapsed:.2} s (limit {RATE}/s, 1 s burst)"
    );
    // Each shard's bucket holds one second of its share, and at least one connection: over
    // both shards at most the rate for a second, plus one per shard, plus what refills.
    assert!(
        ok as f64 <= RATE * (1.0 + elapsed) + 2.0,
        "{ok} admitted in {elapsed:.2} s"
    );
    assert!(ok >= 1, "none admitted");
    assert!(refused >= 1, "none refused");
    let m = sluice.metrics();
    assert!(
        m.sum(
            "sluice_connections_refused_total",
            &[("reason", "connection_rate")]
        ) >= f64::from(refused)
    );
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        admitted_within(&addr, Duration::from_secs(2)).is_some(),
        "no connection admitted a second later"
    );
}

/// Client id safeguards: a client id outside the pattern (or none at all) is refused before any
/// request reaches a broker. Sluice answers ApiVersions with POLICY_VIOLATION and closes the
/// connection on anything else: the Java client logs "Received error POLICY_VIOLATION ... when
/// making an ApiVersionsRequest ... Disconnecting." and its call times out; librdkafka reports
/// the refused connections through its error callback. A compliant client id works, and a
/// log-only rule lets its client through and counts it.
#[test]
fn client_id_safeguards_as_java_and_librdkafka_see_them() {
    let cluster = shared();
    let sluice = Sluice::start_with(
        &cluster,
        2,
        r#"
[[policy.client_ids]]
name = "named-clients"
required = true

# Scoped to non-empty client ids: an empty one is named-clients' business.
[[policy.client_ids]]
name = "team-prefix"
client_id = { regex = "." }
pattern = { regex = "^(sluice-it-|librdkafka-ok-)" }

[[policy.client_ids]]
name = "admin-watch"
action = "log"
client_id = { prefix = "sluice-it-" }
pattern = { regex = "-producer-" }
"#,
    );
    let violations = |rule: &str, action: &str| {
        sluice.metrics().sum(
            "sluice_policy_violations_total",
            &[("rule", rule), ("action", action)],
        )
    };
    let java = |prefix: &str, expect: &str| {
        JavaScenario::new("client-id-expect", &sluice.bootstrap())
            .arg("client-id-prefix", prefix)
            .arg("expect", expect)
            .run()
    };

    // A compliant client id passes; the log-only rule counts it.
    let ok = java("sluice-it-", "ok");
    ok.assert_ok();
    assert!(violations("admin-watch", "log") >= 1.0);
    assert_eq!(violations("team-prefix", "reject"), 0.0);
    assert_eq!(violations("named-clients", "reject"), 0.0);

    // A client id outside the pattern: the Java client is told POLICY_VIOLATION in its
    // ApiVersions response, disconnects, and its call times out.
    let described = sluice
        .metrics()
        .sum("sluice_requests_total", &[("api_name", "DescribeCluster")]);
    assert!(
        described >= 1.0,
        "the compliant client described the cluster"
    );
    let refused = java("other-", "TimeoutException");
    refused.assert_ok();
    assert!(
        refused
            .stderr
            .contains("Received error POLICY_VIOLATION from node")
            && refused.stderr.contains("when making an ApiVersionsRequest"),
        "the Java client did not log the refusal:\n{}",
        refused.stderr
    );
    assert!(violations("team-prefix", "reject") >= 1.0);
    let log = sluice.log_tail(400);
    assert!(
        log.contains("team-prefix") && log.contains("does not match the required pattern"),
        "{log}"
    );
    assert_eq!(
        sluice
            .metrics()
            .sum("sluice_requests_total", &[("api_name", "DescribeCluster")]),
        described,
        "no request of the refused client went further than ApiVersions"
    );

    // librdkafka: compliant, and outside the pattern.
    let rdk = |client_id: &str, expect: &str| {
        run_python(
            "client-id-expect",
            &sluice.bootstrap(),
            "unused",
            &["--client-id", client_id, "--expect", expect],
        )
    };
    rdk("librdkafka-ok-1", "ok");
    let before = violations("team-prefix", "reject");
    let line = rdk("console-rdk", RDK_REFUSED);
    eprintln!("[it] librdkafka refused by client id: {line}");
    assert!(violations("team-prefix", "reject") > before);
    assert!(
        line.contains("ApiVersionRequest failed: Broker: Policy violation"),
        "librdkafka did not report the refusal: {line}"
    );

    // Neither client sends an empty client id (Java substitutes "adminclient-N", librdkafka
    // "rdkafka"), so `required` is shown on the wire: a null client id gets POLICY_VIOLATION in
    // its ApiVersions response, and its next request closes the connection unanswered.
    let mut s = connect(&sluice.bootstrap());
    s.write_all(&null_client_id_request(18, 0, 1))
        .expect("write");
    let p = read_frame(&mut s).expect("ApiVersions answer");
    assert_eq!(i32::from_be_bytes([p[0], p[1], p[2], p[3]]), 1);
    assert_eq!(i16::from_be_bytes([p[4], p[5]]), 44, "POLICY_VIOLATION");
    s.write_all(&null_client_id_request(3, 1, 2))
        .expect("write");
    assert!(closed_without_reply(&mut s), "Metadata was not refused");
    assert!(violations("named-clients", "reject") >= 1.0);
}

/// What librdkafka's call reports when Sluice refuses its client id: its connections fail
/// (the error callback and log say "ApiVersionRequest failed: Broker: Policy violation").
const RDK_REFUSED: &str = "_TRANSPORT";

/// A request frame with header v1 and a null client id: ApiVersions (empty body) or Metadata v1
/// (null topic list: all topics).
fn null_client_id_request(api_key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&api_key.to_be_bytes());
    p.extend_from_slice(&version.to_be_bytes());
    p.extend_from_slice(&correlation_id.to_be_bytes());
    p.extend_from_slice(&(-1i16).to_be_bytes());
    if api_key == 3 {
        p.extend_from_slice(&(-1i32).to_be_bytes()); // topics: null (all)
    }
    let mut f = (p.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(&p);
    f
}

/// Read-only topics: Produce to a read-only topic fails with TOPIC_AUTHORIZATION_FAILED (Java:
/// `TopicAuthorizationException`; librdkafka: `TOPIC_AUTHORIZATION_FAILED`), as do
/// DeleteRecords and DeleteTopics; other topics are written as usual, and a log-only rule lets
/// the records through and counts them. Clients in scope are offered Produce up to v12 and
/// DeleteTopics up to v5 (later versions may carry topic ids only). The rules reload live.
#[test]
fn read_only_topics_as_java_and_librdkafka_see_them() {
    let cluster = shared();
    let sluice = Sluice::start_with(
        &cluster,
        2,
        r#"
[[policy.read_only_topics]]
name = "audit-read-only"
topics = [{ prefix = "it-audit-" }, { exact = "never-written" }]

[[policy.read_only_topics]]
name = "ledger-watch"
action = "log"
topics = [{ regex = "^it-ledger-" }]
"#,
    );
    let violations = |rule: &str, action: &str| {
        sluice.metrics().sum(
            "sluice_policy_violations_total",
            &[("rule", rule), ("action", action)],
        )
    };
    let java_produce = |topic: &str, expect: &str, message: &str| {
        JavaScenario::new("produce-expect", &sluice.bootstrap())
            .arg("topic", topic)
            .arg("records", 20)
            .arg("expect", expect)
            .arg("message-contains", message)
            .run()
            .assert_ok()
            .to_string()
    };
    java_produce(&unique_name("it-orders"), "ok", "");
    assert_eq!(violations("audit-read-only", "reject"), 0.0);
    let audit = unique_name("it-audit");
    let line = java_produce(&audit, "TopicAuthorizationException", &audit);
    eprintln!("[it] Java producer on a read-only topic: {line}");
    assert!(violations("audit-read-only", "reject") >= 1.0);
    let m = sluice.metrics();
    assert_eq!(
        m.sum(
            "sluice_requests_total",
            &[("api_name", "Produce"), ("api_version", "13")]
        ),
        0.0,
        "Produce v13 was not offered to a client under a read-only rule"
    );
    assert!(m.sum("sluice_requests_total", &[("api_name", "Produce")]) > 0.0);

    // Log-only: written, counted.
    java_produce(&unique_name("it-ledger"), "ok", "");
    assert!(violations("ledger-watch", "log") >= 1.0);

    // DeleteRecords on a read-only topic, and on another.
    let delete = |topic: &str, expect: &str| {
        JavaScenario::new("delete-records-expect", &sluice.bootstrap())
            .arg("topic", topic)
            .arg("expect", expect)
            .run()
            .assert_ok()
            .to_string()
    };
    delete(&unique_name("it-audit"), "TopicAuthorizationException");
    delete(&unique_name("it-orders"), "ok");

    // DeleteTopics likewise (offered up to v5, which names every topic).
    let delete_topic = |topic: &str, expect: &str| {
        JavaScenario::new("delete-topic-expect", &sluice.bootstrap())
            .arg("topic", topic)
            .arg("expect", expect)
            .run()
            .assert_ok()
            .to_string()
    };
    delete_topic(&unique_name("it-audit"), "TopicAuthorizationException");
    delete_topic(&unique_name("it-orders"), "ok");
    assert_eq!(
        sluice.metrics().sum(
            "sluice_requests_total",
            &[("api_name", "DeleteTopics"), ("api_version", "6")]
        ),
        0.0,
        "DeleteTopics v6 was not offered to a client under a read-only rule"
    );

    // librdkafka.
    let rdk = |scenario: &str, topic: &str, extra: &[&str]| {
        run_python(scenario, &sluice.bootstrap(), topic, extra)
    };
    rdk(
        "produce-expect",
        &unique_name("it-orders-rdk"),
        &["--records", "20", "--expect", "ok"],
    );
    let before = violations("audit-read-only", "reject");
    rdk(
        "produce-expect",
        &unique_name("it-audit-rdk"),
        &["--records", "20", "--expect", "TOPIC_AUTHORIZATION_FAILED"],
    );
    assert!(violations("audit-read-only", "reject") > before);
    rdk(
        "delete-records-expect",
        &unique_name("it-audit-rdk"),
        &["--expect", "TOPIC_AUTHORIZATION_FAILED"],
    );
    rdk(
        "delete-records-expect",
        &unique_name("it-orders-rdk"),
        &["--expect", "ok"],
    );
    rdk(
        "delete-topic-expect",
        &unique_name("it-audit-rdk"),
        &["--expect", "TOPIC_AUTHORIZATION_FAILED"],
    );

    // One Produce request for a read-only topic and another (clients batch per broker, so this
    // happens when both have a leader on one broker): answered whole, nothing written; the
    // other topic gets POLICY_VIOLATION saying why. Sent raw, as no client can be made to do it
    // on purpose.
    let resp = raw_produce(&sluice.bootstrap(), &["it-audit-x", "it-orders-x"]);
    let codes: Vec<(String, i16, String)> = resp
        .responses
        .iter()
        .map(|t| {
            let p = &t.partition_responses[0];
            (
                t.name.0.to_string(),
                p.error_code,
                p.error_message.as_deref().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(codes[0].0, "it-audit-x");
    assert_eq!(codes[0].1, 29, "{codes:?}");
    assert!(codes[0].2.contains("audit-read-only"), "{codes:?}");
    assert_eq!(codes[1].1, 44, "{codes:?}");
    assert!(
        codes[1]
            .2
            .contains("not written: topic it-audit-x of the same request is read-only"),
        "{codes:?}"
    );

    // Live reload: an invalid rule is refused with its dotted path and changes nothing; a valid
    // one applies to the next connections.
    let append = |text: &str| {
        let path = sluice.config_path();
        let mut cfg = std::fs::read_to_string(path).expect("read config");
        cfg.push_str(text);
        std::fs::write(path, cfg).expect("write config");
    };
    let original = std::fs::read_to_string(sluice.config_path()).expect("read config");
    append("\n[[policy.read_only_topics]]\nname = \"frozen\"\n");
    let (status, body) = sluice.admin("POST", "/reload", "", None);
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("policy.read_only_topics[2].topics: is required"),
        "{body}"
    );
    std::fs::write(sluice.config_path(), &original).expect("write config");
    let orders = unique_name("it-orders");
    java_produce(&orders, "ok", "");
    append("\n[[policy.read_only_topics]]\nname = \"frozen\"\ntopics = [{ prefix = \"it-orders-\" }]\n");
    let (status, body) = sluice.admin("POST", "/reload", "", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("policy.read_only_topics"), "{body}");
    java_produce(&orders, "TopicAuthorizationException", &orders);
    assert!(violations("frozen", "reject") >= 1.0);
}

/// Sends one Produce v9 request (acks=all, an empty record set per topic) for `topics` to
/// `addr` and returns the response.
fn raw_produce(addr: &str, topics: &[&str]) -> kafka_protocol::messages::ProduceResponse {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{
        ApiKey, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
    };
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    const V: i16 = 9;
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(
            topics
                .iter()
                .map(|t| {
                    TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partition_data(vec![PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(bytes::Bytes::new()))])
                })
                .collect(),
        );
    let mut body = bytes::BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(V)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("sluice-it-raw")))
        .encode(&mut body, ApiKey::Produce.request_header_version(V))
        .expect("header");
    req.encode(&mut body, V).expect("request");
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    let mut s = connect(addr);
    s.write_all(&frame).expect("write");
    let mut p = bytes::Bytes::from(read_frame(&mut s).expect("Produce response"));
    let h = ResponseHeader::decode(&mut p, ApiKey::Produce.response_header_version(V))
        .expect("response header");
    assert_eq!(h.correlation_id, 7);
    ProduceResponse::decode(&mut p, V).expect("Produce response")
}

/// Topic-config safeguards: IncrementalAlterConfigs, AlterConfigs and the configs of CreateTopics
/// are checked against allowed ranges and values; a violation fails with POLICY_VIOLATION (Java:
/// `PolicyViolationException` naming the rule; librdkafka: `POLICY_VIOLATION`), and an allowed
/// change is applied (read back with DescribeConfigs).
#[test]
fn topic_config_safeguards_as_java_and_librdkafka_see_them() {
    let cluster = shared();
    let sluice = Sluice::start_with(
        &cluster,
        1,
        r#"
[[policy.topic_configs]]
name = "retention-bounds"
topic_name = { prefix = "it-" }
forbidden_configs = ["unclean.leader.election.enable"]
config_ranges = { "retention.ms" = { min = 3600000, max = 604800000 } }
config_values = { "cleanup.policy" = ["delete"] }
"#,
    );
    let violations = || {
        sluice.metrics().sum(
            "sluice_policy_violations_total",
            &[("rule", "retention-bounds"), ("action", "reject")],
        )
    };
    let java = |configs: &str, expect: &str| {
        JavaScenario::new("alter-config-expect", &sluice.bootstrap())
            .arg("topic", unique_name("it-cfg"))
            .arg("configs", configs)
            .arg("expect", expect)
            .run()
            .assert_ok()
            .to_string()
    };
    java("retention.ms=86400000;cleanup.policy=delete", "ok");
    assert_eq!(violations(), 0.0);
    let bad = "PolicyViolationException";
    let line = java("retention.ms=1000", bad);
    assert!(
        line.contains("retention-bounds") && line.contains("retention.ms=1000"),
        "{line}"
    );
    assert!(java("cleanup.policy=compact", bad).contains("cleanup.policy=compact"));
    assert!(java("unclean.leader.election.enable=true", bad).contains("may not be set"));
    assert!(violations() >= 3.0);
    // KIP-339 APPEND to a list config is checked like a set.
    let line = JavaScenario::new("alter-config-expect", &sluice.bootstrap())
        .arg("topic", unique_name("it-cfg"))
        .arg("op", "APPEND")
        .arg("configs", "cleanup.policy=compact")
        .arg("expect", bad)
        .run()
        .assert_ok()
        .to_string();
    assert!(line.contains("cleanup.policy=compact"), "{line}");
    // One request for a violating and a compliant topic is answered whole: the compliant one
    // is not applied either, and says why.
    let line = JavaScenario::new("alter-config-expect", &sluice.bootstrap())
        .arg("topic", unique_name("it-cfg"))
        .arg("configs", "retention.ms=1000")
        .arg("expect", bad)
        .arg("also-topic", unique_name("it-cfg-fine"))
        .arg("also-configs", "retention.ms=7200000")
        .arg("also-expect", bad)
        .arg(
            "also-message",
            "not applied: another resource of the request violates Sluice policy retention-bounds",
        )
        .run()
        .assert_ok()
        .to_string();
    eprintln!("[it] two resources, one violating: {line}");
    // Topics outside topic_name are not checked.
    JavaScenario::new("alter-config-expect", &sluice.bootstrap())
        .arg("topic", unique_name("other-cfg"))
        .arg("configs", "retention.ms=1000")
        .run()
        .assert_ok();

    // The same checks on the configs a topic is created with.
    let create = |configs: &str, expect: &str| {
        JavaScenario::new("create-topic-expect", &sluice.bootstrap())
            .arg("topic", unique_name("it-cfg-new"))
            .arg("configs", configs)
            .arg("expect", expect)
            .run()
            .assert_ok()
            .to_string()
    };
    assert!(create("retention.ms=1000", bad).contains("retention-bounds"));
    create("retention.ms=7200000", "ok");

    // librdkafka: IncrementalAlterConfigs and the legacy AlterConfigs.
    let rdk = |extra: &[&str]| {
        run_python(
            "alter-config-expect",
            &sluice.bootstrap(),
            &unique_name("it-cfg-rdk"),
            extra,
        )
    };
    rdk(&["--configs", "retention.ms=7200000", "--expect", "ok"]);
    let before = violations();
    rdk(&[
        "--configs",
        "retention.ms=1000",
        "--expect",
        "POLICY_VIOLATION",
    ]);
    assert!(violations() > before);
    rdk(&[
        "--legacy",
        "--configs",
        "cleanup.policy=compact",
        "--expect",
        "POLICY_VIOLATION",
    ]);
    rdk(&[
        "--legacy",
        "--configs",
        "retention.ms=7200000",
        "--expect",
        "ok",
    ]);
}
