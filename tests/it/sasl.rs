//! Identity through Sluice: SASL passthrough against the cluster's `SASL` listener (see
//! [`super::cluster`]), with the broker's authorizer and ACLs deciding.
//!
//! Kafka authenticates a connection, not a request, so an upstream connection on which one client
//! authenticated must never serve another client (issue 10: a pooled connection carried one
//! client's principal to the next). These tests run Sluice with one shard, so every client of a
//! broker meets the same upstream pool, and the pool is on (its default size).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, MetadataRequest, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::cluster::{shared, KafkaCluster};
use super::conn_guard::ConnGuard;
use super::other_clients::{assert_ok as assert_other_ok, Client, OtherScenario};
use super::scenario::JavaScenario;
use super::sluice::Sluice;
use super::{json_field, unique_name};

/// A user known to the broker's SASL listener.
pub struct User {
    pub name: &'static str,
    pub password: &'static str,
}

/// May use every topic starting with the prefix an ACL grants it (see [`grant_topic_prefix`]).
pub const ALICE: User = User {
    name: "alice",
    password: "alice-secret",
};
/// Authenticates, and is denied whatever is granted to [`ALICE`] only.
pub const BOB: User = User {
    name: "bob",
    password: "bob-secret",
};
/// Every user, each with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 credentials.
pub const USERS: [User; 2] = [ALICE, BOB];
const SCRAM_MECHANISMS: [&str; 2] = ["SCRAM-SHA-256", "SCRAM-SHA-512"];

/// The broker properties of the `SASL` listener and of the authorizer (appended to every node's
/// `server.properties`).
pub fn broker_properties() -> String {
    let plain_users: String = USERS
        .iter()
        .map(|u| format!(" user_{}=\"{}\"", u.name, u.password))
        .collect();
    let scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
    format!(
        "# SASL listener for the identity tests (tests/it/sasl.rs).
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required{plain_users};
listener.name.sasl.scram-sha-256.sasl.jaas.config={scram}
listener.name.sasl.scram-sha-512.sasl.jaas.config={scram}
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
# The PLAINTEXT listeners' principal (every other test, inter-broker, controllers).
super.users=User:ANONYMOUS
allow.everyone.if.no.acl.found=true
"
    )
}

/// `kafka-storage format` arguments that create every user's SCRAM credentials (KIP-554).
pub fn scram_format_args() -> Vec<String> {
    let mut args = Vec::new();
    for u in &USERS {
        for m in SCRAM_MECHANISMS {
            args.push("--add-scram".to_string());
            args.push(format!("{m}=[name={},password={}]", u.name, u.password));
        }
    }
    args
}

/// Allows `user` every operation on topics starting with `prefix` (a PREFIXED ALLOW ACL, made
/// directly on the brokers by a harness probe); every other user is denied them from then on.
fn grant_topic_prefix(cluster: &KafkaCluster, user: &User, prefix: &str) {
    JavaScenario::new("acl-grant", &cluster.bootstrap_client())
        .arg("topic", prefix)
        .arg("principal", format!("User:{}", user.name))
        .harness_probe()
        .run()
        .assert_ok();
}

/// Sluice with one shard in front of the cluster's SASL listeners.
fn sluice_sasl(cluster: &KafkaCluster) -> Sluice {
    let upstream = cluster
        .bootstrap_sasl()
        .split(',')
        .map(str::to_string)
        .collect();
    Sluice::start_upstream(cluster, upstream, 1, "")
}

/// Every port a client may reach a broker on (PLAINTEXT and SASL): what [`ConnGuard`] watches.
fn broker_client_ports(cluster: &KafkaCluster) -> Vec<u16> {
    let mut ports = cluster.client_ports();
    ports.extend(cluster.sasl_ports());
    ports
}

/// Ends `guard` and asserts that Sluice is still running and was the only process that
/// reached a broker.
fn assert_only_sluice_reached_brokers(guard: ConnGuard, sluice: &mut Sluice) {
    let report = guard.finish();
    assert!(
        sluice.is_running(),
        "Sluice exited:\n{}",
        sluice.log_tail(60)
    );
    report.assert_only(sluice.pid());
}

/// The ports a client through Sluice must never learn.
fn forbid_ports(cluster: &KafkaCluster) -> String {
    cluster
        .all_ports()
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Encodes one request frame (size prefix, header, body).
fn frame(api_key: ApiKey, version: i16, correlation_id: i32, body: &impl Encodable) -> BytesMut {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("sluice-it-no-credentials")));
    let mut payload = BytesMut::new();
    header
        .encode(&mut payload, api_key.request_header_version(version))
        .expect("encode header");
    body.encode(&mut payload, version).expect("encode body");
    let mut out = BytesMut::new();
    out.put_i32(payload.len() as i32);
    out.extend_from_slice(&payload);
    out
}

/// Reads one response frame; `None` when the connection closes (or resets) first.
fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).ok()?;
    let mut payload = vec![0u8; i32::from_be_bytes(size).max(0) as usize];
    s.read_exact(&mut payload).ok()?;
    Some(payload)
}

/// A fresh connection to `addr` on which an ApiVersions v3 request (correlation id
/// `correlation_id`) has been sent; its answer is not read yet.
fn ask_api_versions(addr: &str, correlation_id: i32) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    s.write_all(&frame(
        ApiKey::ApiVersions,
        3,
        correlation_id,
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sluice-it"))
            .with_client_software_version(StrBytes::from_static_str("1")),
    ))
    .expect("write ApiVersions");
    s
}

/// What kcat with no credentials does first: ApiVersions, then Metadata for every topic, on a
/// fresh connection to `addr`. Returns the size of the Metadata response, or `None` when the
/// connection was closed without one (what the broker's SASL listener does to an
/// unauthenticated Metadata request).
fn metadata_without_credentials(addr: &str) -> Option<usize> {
    let mut s = ask_api_versions(addr, 1);
    read_frame(&mut s).expect("ApiVersions is answered before authentication");
    s.write_all(&frame(
        ApiKey::Metadata,
        12,
        2,
        &MetadataRequest::default().with_topics(None),
    ))
    .ok()?;
    read_frame(&mut s).map(|p| p.len())
}

/// Issue 10. User A authenticates through Sluice (SCRAM-SHA-256), produces, consumes and closes
/// cleanly; then, on the same shard, a client without credentials gets no metadata, cannot
/// produce and cannot consume A's topic, and user B (PLAIN) authenticates and is denied A's topic
/// by the broker's ACL. Before the fix, the client without credentials inherited A's
/// authenticated upstream connection from the pool and was served as A.
#[test]
fn sasl_identity_never_crosses_pooled_connections() {
    let cluster = shared();
    let prefix = unique_name("alice-only");
    grant_topic_prefix(&cluster, &ALICE, &prefix);
    let topic = format!("{prefix}-t");
    let mut sluice = sluice_sasl(&cluster);
    let guard = ConnGuard::start(&broker_client_ports(&cluster));
    let forbid = forbid_ports(&cluster);

    // 1. A produces and consumes, and closes every connection cleanly.
    let alice = JavaScenario::new("produce-consume", &sluice.bootstrap())
        .arg("topic", &topic)
        .arg("records", 200)
        .arg("forbid-ports", &forbid)
        .arg("sasl-mechanism", "SCRAM-SHA-256")
        .arg("sasl-username", ALICE.name)
        .arg("sasl-password", ALICE.password)
        .run();
    alice.assert_ok();
    let closed = sluice
        .metrics()
        .sum("sluice_upstream_not_pooled_total", &[("reason", "sasl")]);
    assert!(
        closed >= 1.0,
        "A's authenticated upstream connections must be closed, not pooled (not_pooled sasl = {closed})"
    );

    // 2. No credentials: no metadata, on the bootstrap port and on every broker port.
    let mut addrs = vec![sluice.bootstrap()];
    addrs.extend(
        cluster
            .node_ids()
            .into_iter()
            .map(|id| format!("127.0.0.1:{}", sluice.broker_port(id))),
    );
    for round in 0..2 {
        for addr in &addrs {
            if let Some(n) = metadata_without_credentials(addr) {
                panic!(
                    "round {round}: a client without credentials got a {n}-byte Metadata response through {addr}"
                );
            }
        }
    }
    //    ... and a real client without credentials can neither produce nor consume A's topic.
    let anonymous = JavaScenario::new("access-denied", &sluice.bootstrap())
        .arg("topic", &topic)
        .arg("forbid-ports", &forbid)
        .arg("expect", "any")
        .run();
    let line = anonymous.assert_ok();
    assert_eq!(json_field(line, "consumed"), Some("0"));

    // 3. B authenticates (PLAIN) and the broker's ACL denies it A's topic.
    let bob = JavaScenario::new("access-denied", &sluice.bootstrap())
        .arg("topic", &topic)
        .arg("forbid-ports", &forbid)
        .arg("expect", "TopicAuthorizationException")
        .arg("sasl-mechanism", "PLAIN")
        .arg("sasl-username", BOB.name)
        .arg("sasl-password", BOB.password)
        .run();
    bob.assert_ok();

    assert_only_sluice_reached_brokers(guard, &mut sluice);
    let log = std::fs::read_to_string(sluice.log_path()).unwrap_or_default();
    assert!(
        !log.contains("panicked"),
        "Sluice panicked:\n{}",
        sluice.log_tail(60)
    );
}

/// Issue 10: the Java client, librdkafka and franz-go each produce and consume through one
/// Sluice shard with SASL PLAIN and SCRAM-SHA-512 passthrough, run after run (every run opens
/// and closes a bootstrap connection and one per broker); none inherits an authenticated
/// connection (which the broker would answer with ILLEGAL_SASL_STATE).
#[test]
fn sasl_passthrough_clients_connection_after_connection() {
    const RUNS: usize = 2;
    let cluster = shared();
    let mut sluice = sluice_sasl(&cluster);
    let guard = ConnGuard::start(&broker_client_ports(&cluster));
    let forbid = forbid_ports(&cluster);
    let mut runs = 0;
    for mechanism in ["PLAIN", "SCRAM-SHA-512"] {
        for run in 0..RUNS {
            for (i, user) in USERS.iter().enumerate() {
                let topic = unique_name(&format!("sasl-{}", user.name));
                // Alternate users, so a leaked connection would also show as the wrong principal.
                let sasl = [
                    ("sasl-mechanism", mechanism),
                    ("sasl-username", user.name),
                    ("sasl-password", user.password),
                ];
                let java = sasl.iter().fold(
                    JavaScenario::new("produce-consume", &sluice.bootstrap())
                        .arg("topic", &topic)
                        .arg("records", 100)
                        .arg("forbid-ports", &forbid),
                    |s, (k, v)| s.arg(k, v),
                );
                java.run().assert_ok();
                for client in [Client::Librdkafka, Client::Franz] {
                    let s = sasl.iter().fold(
                        OtherScenario::new(client, "produce-consume", &sluice.bootstrap())
                            .arg("topic", format!("{topic}-{}", client.name()))
                            .arg("records", 100)
                            .arg("rf", 3)
                            .arg("forbid-ports", &forbid),
                        |s, (k, v)| s.arg(k, v),
                    );
                    let line = assert_other_ok(&s.run());
                    assert_eq!(json_field(&line, "records"), Some("100"), "{line}");
                }
                runs += 3;
                eprintln!("[it] {mechanism} run {run} user {i}: Java, librdkafka, franz-go ok");
            }
        }
    }
    let m = sluice.metrics();
    let closed = m.sum("sluice_upstream_not_pooled_total", &[("reason", "sasl")]);
    assert!(
        closed >= runs as f64,
        "{runs} client runs, but only {closed} authenticated upstream connections closed"
    );
    assert_only_sluice_reached_brokers(guard, &mut sluice);
}

/// The rule keeps pooling where it is safe: on the PLAINTEXT listener a connection that served
/// Metadata goes back to the pool and serves the next client, while one that only answered
/// ApiVersions on a fresh connection is closed (`unverified`), and no connection is closed for
/// SASL.
#[test]
fn plaintext_connections_are_still_pooled() {
    let cluster = shared();
    let mut sluice = Sluice::start_with(&cluster, 1, "");
    let addr = sluice.bootstrap();
    let metric =
        |sluice: &Sluice, name: &str, labels: &[(&str, &str)]| sluice.metrics().sum(name, labels);
    let wait_for = |what: &str, ok: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !ok() {
            assert!(std::time::Instant::now() < deadline, "{what} within 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let reuses_before = metric(&sluice, "sluice_upstream_pool_reuses_total", &[]);
    for round in 0..3 {
        let n = metadata_without_credentials(&addr)
            .unwrap_or_else(|| panic!("round {round}: no Metadata on the PLAINTEXT listener"));
        assert!(n > 0);
        // The session has ended (and pooled its connection) before the next client comes.
        wait_for("the session ended", &|| {
            metric(&sluice, "sluice_connections_active", &[]) == 0.0
        });
    }
    wait_for("a pooled connection reused", &|| {
        metric(&sluice, "sluice_upstream_pool_reuses_total", &[]) >= reuses_before + 2.0
    });
    // Four clients at once that only ask ApiVersions: at most the pooled ones are reused, the
    // others get fresh connections, which prove nothing and are closed.
    let clients: Vec<TcpStream> = (0..4).map(|i| ask_api_versions(&addr, i)).collect();
    for mut s in clients {
        read_frame(&mut s).expect("ApiVersions answered");
    }
    wait_for(
        "an ApiVersions-only fresh connection closed as unverified",
        &|| {
            metric(
                &sluice,
                "sluice_upstream_not_pooled_total",
                &[("reason", "unverified")],
            ) >= 1.0
        },
    );
    assert_eq!(
        metric(
            &sluice,
            "sluice_upstream_not_pooled_total",
            &[("reason", "sasl")]
        ),
        0.0
    );
    assert!(
        sluice.is_running(),
        "Sluice exited:\n{}",
        sluice.log_tail(60)
    );
}
