//! Sluice's integration tests: one test binary (as kafka-protocol-rs does), real Apache Kafka.
//!
//! `tests/it/cluster.rs` starts a KRaft cluster of real brokers (jars from Maven Central, installed and
//! cached by `tests/support/kafka-install.sh`), `tests/it/sluice.rs` runs the gateway binary in front of
//! it, `tests/it/conn_guard.rs` proves that clients only ever reached the brokers through Sluice, and
//! the client modules drive real Kafka clients through it.
//!
//! Run: `cargo test --test integration -- --test-threads=1` (tests share one cluster and take turns
//! on it either way; one thread keeps their output apart). Needs Java 17+ and Maven on the PATH.

// The harness offers more than every test uses (other client modules build on it).
#[allow(dead_code)]
mod it;
