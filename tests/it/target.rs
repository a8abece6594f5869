//! Where the client tests' scenario clients connect (`java.rs`, `other_clients.rs`): a fresh Sluice
//! (2 shards) in front of the shared cluster, or, with `SLUICE_IT_DIRECT=1`, the brokers themselves
//! (a check of the harness and of the scenarios; the connection guard must then see the clients' own
//! connections).

use std::collections::BTreeSet;

use super::cluster::KafkaCluster;
use super::conn_guard::Report;
use super::scenario::Outcome;
use super::sluice::Sluice;
use super::{json_field, unique_name};

/// Shards Sluice runs with in these tests (CI machines have 2 cores).
pub const SHARDS: u32 = 2;

/// Whether `SLUICE_IT_DIRECT=1`: the scenarios run against the brokers, without Sluice.
pub fn direct_mode() -> bool {
    std::env::var("SLUICE_IT_DIRECT").is_ok_and(|v| v == "1")
}

/// Where a scenario's client connects: Sluice, or (harness check) the brokers themselves.
pub struct Target {
    pub sluice: Option<Sluice>,
    pub bootstrap: String,
    /// The brokers' own ports, which a client must never learn (empty in direct mode).
    pub forbid_ports: String,
}

impl Target {
    pub fn new(cluster: &KafkaCluster) -> Target {
        if direct_mode() {
            Target {
                sluice: None,
                bootstrap: cluster.bootstrap_client(),
                forbid_ports: String::new(),
            }
        } else {
            let sluice = Sluice::start(cluster, SHARDS);
            let forbid = cluster
                .all_ports()
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(",");
            Target {
                bootstrap: sluice.bootstrap(),
                sluice: Some(sluice),
                forbid_ports: forbid,
            }
        }
    }

    /// The `--key value` arguments every scenario run against this target takes besides
    /// `--bootstrap`: a fresh topic named after `topic_prefix`, and (through Sluice) the ports the
    /// client must never be sent to.
    pub fn scenario_args(&self, topic_prefix: &str) -> Vec<(&'static str, String)> {
        let mut args = vec![("topic", unique_name(topic_prefix))];
        if !self.forbid_ports.is_empty() {
            args.push(("forbid-ports", self.forbid_ports.clone()));
        }
        args
    }

    /// Asserts the guard's verdict: through Sluice, only Sluice connected to the brokers (and it is
    /// still running); directly, exactly the clients did (and the guard saw them).
    pub fn check_guard(&mut self, report: &Report, clients: &[&Outcome]) {
        match self.sluice.as_mut() {
            Some(s) => {
                assert!(
                    s.is_running(),
                    "Sluice exited during the scenario:\n{}",
                    s.log_tail(60)
                );
                report.assert_only(s.pid());
            }
            None => {
                let pids: BTreeSet<u32> = clients.iter().map(|c| c.pid).collect();
                assert_eq!(
                    report.pids(),
                    pids,
                    "direct mode: the guard must see exactly the clients' connections: {report:?}"
                );
            }
        }
    }
}

/// The harness's side of the `leader-change` handshake, for a scenario client's `on_line`: when the
/// client first names partition 0's leader (`{"leader":N}`), stops that broker (SIGKILL if `crash`,
/// else SIGTERM), records it in `stopped`, and answers `go`.
pub fn stop_named_leader(
    cluster: &mut KafkaCluster,
    crash: bool,
    stopped: &mut Option<u32>,
    line: &str,
) -> Option<String> {
    if stopped.is_some() {
        return None;
    }
    let leader = json_field(line, "leader")?.parse::<u32>().ok()?;
    if crash {
        eprintln!("[it] killing broker {leader}, the leader of partition 0");
        cluster.kill_broker(leader);
    } else {
        eprintln!("[it] stopping broker {leader}, the leader of partition 0");
        cluster.stop_broker(leader);
    }
    *stopped = Some(leader);
    Some("go".to_string())
}
