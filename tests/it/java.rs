//! The Java client (kafka-clients 4.x, `tests/clients/java/Scenario.java`) through Sluice.
//!
//! Every test takes the shared 3-node cluster, starts Sluice (2 shards) in front of it, runs one
//! scenario against Sluice's bootstrap address while [`ConnGuard`] watches the brokers' client ports,
//! and asserts both the scenario's own checks and that only Sluice talked to the brokers.
//!
//! `SLUICE_IT_DIRECT=1` runs the same scenarios directly against the brokers instead (no Sluice): a
//! check of the harness and of the scenarios themselves; the guard must then see the client's own
//! connections. [`harness_guard_catches_direct_client`] does that always, for one scenario, so the guard
//! is known to be able to fail.

use std::time::Duration;

use super::cluster::shared;
use super::conn_guard::ConnGuard;
use super::scenario::JavaScenario;
use super::target::{stop_named_leader, Target};
use super::{json_field, unique_name};

/// Scenario `name` of the Java client against `target`, on a fresh topic named after `topic_prefix`.
fn scenario(target: &Target, name: &str, topic_prefix: &str) -> JavaScenario {
    target
        .scenario_args(topic_prefix)
        .into_iter()
        .fold(JavaScenario::new(name, &target.bootstrap), |s, (k, v)| {
            s.arg(k, v)
        })
}

/// Runs one scenario through a fresh Sluice on the shared cluster; returns its JSON result line.
fn run_scenario(name: &str, configure: impl FnOnce(JavaScenario) -> JavaScenario) -> String {
    let cluster = shared();
    let mut target = Target::new(&cluster);
    let guard = ConnGuard::start(&cluster.client_ports());
    let outcome = configure(scenario(&target, name, name)).run();
    let report = guard.finish();
    let line = outcome.assert_ok().to_string();
    target.check_guard(&report, &[&outcome]);
    line
}

/// The guard must catch a client that connects to the brokers directly (else it proves nothing),
/// and the harness and scenario client must work against plain Kafka.
#[test]
fn harness_guard_catches_direct_client() {
    let cluster = shared();
    let guard = ConnGuard::start(&cluster.client_ports());
    let outcome = JavaScenario::new("produce-consume", &cluster.bootstrap_client())
        .arg("topic", unique_name("direct"))
        .arg("records", 300)
        .run();
    let report = guard.finish();
    outcome.assert_ok();
    assert!(
        report.pids().contains(&outcome.pid),
        "the guard missed a client connecting to the brokers directly: {report:?}"
    );
    let verdict = report.check_only(std::process::id());
    assert!(
        verdict.is_err(),
        "the guard accepted a direct client: {verdict:?}"
    );
    eprintln!("[it] conn-guard caught the direct client as it should");
}

#[test]
fn java_produce_consume() {
    let line = run_scenario("produce-consume", |s| s.arg("records", 3000));
    assert_eq!(json_field(&line, "records"), Some("3000"));
}

#[test]
fn java_group_rebalance_classic() {
    run_scenario("group-rebalance", |s| s.arg("protocol", "classic"));
}

#[test]
fn java_group_rebalance_consumer() {
    run_scenario("group-rebalance", |s| s.arg("protocol", "consumer"));
}

#[test]
fn java_idempotent() {
    run_scenario("idempotent", |s| s.arg("records", 3000));
}

#[test]
fn java_transactional() {
    run_scenario("transactional", |s| s);
}

#[test]
fn java_admin() {
    let line = run_scenario("admin", |s| s.arg("brokers", 3));
    assert_eq!(json_field(&line, "brokers"), Some("3"));
}

/// Stops the broker leading partition 0 (SIGTERM: controlled shutdown) while a producer runs; the
/// producer must follow the new leader through Sluice and every acknowledged record must be
/// consumable. Then the broker comes back and a produce/consume round still works through the same
/// Sluice.
#[test]
fn java_leader_change() {
    leader_change(false);
}

/// As [`java_leader_change`], but the leader crashes (SIGKILL): Sluice's upstream connections to it
/// die mid-request and the cluster only notices when the broker's session times out.
#[test]
fn java_leader_crash() {
    leader_change(true);
}

fn leader_change(crash: bool) {
    let mut cluster = shared();
    let mut target = Target::new(&cluster);
    let guard = ConnGuard::start(&cluster.client_ports());
    let mut stopped = None;
    let outcome = scenario(
        &target,
        "leader-change",
        if crash {
            "leader-crash"
        } else {
            "leader-change"
        },
    )
    .timeout(Duration::from_secs(240))
    .run_interactive(|line| stop_named_leader(&mut cluster, crash, &mut stopped, line));
    let line = outcome.assert_ok().to_string();
    let stopped = stopped.expect("scenario never named the leader");
    assert_eq!(
        json_field(&line, "old_leader"),
        Some(stopped.to_string().as_str())
    );

    // The broker returns; Sluice must serve it again.
    cluster.start_broker(stopped);
    let again = scenario(&target, "produce-consume", "after-restart")
        .arg("records", 600)
        .run();
    let report = guard.finish();
    again.assert_ok();
    target.check_guard(&report, &[&outcome, &again]);
    if let Some(sluice) = &target.sluice {
        // Informational: whether the brokers sent KIP-951 node endpoints that Sluice rewrote.
        let log = std::fs::read_to_string(sluice.log_path()).unwrap_or_default();
        let n = log.matches("KIP-951 node endpoints rewritten").count();
        eprintln!("[it] KIP-951 node endpoint rewrites during the leader change: {n}");
    }
}

/// A broker that is down when Sluice starts is missing from the Metadata Sluice discovers at
/// start-up (Sluice's bootstrap also fails over past it), so its gateway port is not open. Once the
/// broker is back, the first response that lists it opens that port on every shard before the
/// client sees the response: a Java produce/consume run on a new topic, whose partition leaders
/// must include the late broker, then works through the same Sluice with no restart.
#[test]
fn java_broker_back_after_start_is_served_without_a_restart() {
    let mut cluster = shared();
    let late = *cluster.node_ids().last().expect("the cluster has nodes");
    cluster.stop_broker(late);
    let mut target = Target::new(&cluster);
    let port = target.sluice.as_ref().map(|s| s.broker_port(late));
    if let Some(port) = port {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        assert!(
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
            "the gateway port {port} of broker {late}, down when Sluice started, is already open"
        );
    }
    cluster.start_broker(late);
    let guard = ConnGuard::start(&cluster.client_ports());
    let outcome = scenario(&target, "produce-consume", "late-broker")
        .arg("records", 600)
        .arg("brokers", 3)
        .run();
    let report = guard.finish();
    let line = outcome.assert_ok().to_string();
    target.check_guard(&report, &[&outcome]);
    // `"leaders":[1, 2, 3]` (the scenario also checks they are all of describeCluster's brokers).
    let leaders: Vec<u32> = line
        .split_once("\"leaders\":[")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| {
            list.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        leaders.contains(&late),
        "broker {late} leads none of the new topic's partitions: {line}"
    );
    if let Some(port) = port {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        assert!(
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok(),
            "broker {late}'s gateway port {port} did not open"
        );
    }
}
