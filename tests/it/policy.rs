//! Produce safeguards against the real cluster, as real clients see them: each rule rejects what
//! it should with POLICY_VIOLATION (Java: `PolicyViolationException`, librdkafka:
//! `POLICY_VIOLATION`), the error message names the rule, and everything else passes. A log-only
//! rule lets the request through and counts it; acks=0, which has no response, closes the
//! connection as a broker would.

use super::cluster::shared;
use super::other_clients::run_python;
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
/// producer under its own limit, on the same shard, is never throttled. One shard: across shards
/// the split of the limit does not yet hold every run within 10% (README, Quotas).
#[test]
fn produce_quota_holds_a_fast_producer_to_its_limit() {
    const LIMIT: f64 = 512.0 * 1024.0;
    let cluster = shared();
    let sluice = Sluice::start_with(
        &cluster,
        quota_shards(),
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
        "[it] quota: fast producer at {:.3} of the limit ({} shards)",
        rate / LIMIT,
        quota_shards()
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
/// every record. One shard: across shards, lumpy Fetch charges (256 KiB per response) against
/// 100 ms demand reports do not yet track the limit this closely (README, Quotas).
#[test]
fn fetch_quota_holds_a_consumer_to_its_limit() {
    const LIMIT: f64 = 1024.0 * 1024.0;
    let cluster = shared();
    let sluice = Sluice::start_with(
        &cluster,
        quota_shards(),
        &format!(
            r#"
[[policy.quota]]
name = "per-consumer"
client_id = {{ prefix = "sluice-it-consume-rate-consumer-" }}
fetch_bytes_per_s = {}
"#,
            LIMIT as u64
        ),
    );
    let line = JavaScenario::new("consume-rate", &sluice.bootstrap())
        .arg("topic", unique_name("it-fquota"))
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
            &[("rule", "per-consumer"), ("kind", "fetch_bytes")]
        ) > 0.0
    );
    eprintln!(
        "[it] fetch quota: consumer at {:.3} of the limit ({} shards)",
        rate / LIMIT,
        quota_shards()
    );
}
