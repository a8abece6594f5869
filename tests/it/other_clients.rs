//! Non-Java real clients through Sluice: librdkafka (Python `confluent-kafka`,
//! `tests/clients/python/scenario.py`) and franz-go (`tests/clients/go`, built to `franz-scenario`).
//!
//! Both programs take the same command line as the Java scenario client (`<scenario> --bootstrap
//! HOST:PORT --topic T [--records N] [--forbid-ports p1,p2] [--protocol classic|consumer] [--rf N]
//! [--brokers N] [--timeout-ms MS]`) and print one `{"scenario":…,"ok":…}` JSON line; `leader-change`
//! first prints `{"leader":N}` and waits for `go` on stdin, as the Java client does. They are
//! installed (cached under `${SLUICE_CACHE:-$HOME/.cache/sluice}`) by
//! `tests/support/clients-install.sh`, run once per test process.
//!
//! To wire in: `pub mod other_clients;` in `tests/it/mod.rs`. The tests at the bottom follow
//! `java.rs`: a fresh Sluice (or, with `SLUICE_IT_DIRECT=1`, the brokers themselves) in front of the
//! shared cluster, [`ConnGuard`] watching the brokers' client ports.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::cluster::shared;
use super::conn_guard::{ConnGuard, Report};
use super::json_field;
use super::scenario::{run_client, Outcome};
use super::target::{stop_named_leader, Target};

/// Which client program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// librdkafka through Python confluent-kafka.
    Librdkafka,
    /// franz-go.
    Franz,
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::Librdkafka => "librdkafka",
            Client::Franz => "franz-go",
        }
    }

    /// The command that runs this client (the process that itself opens the Kafka connections, so
    /// its pid is what [`ConnGuard`] reports).
    pub fn command(self) -> Command {
        let install = Installed::get();
        match self {
            Client::Librdkafka => {
                let mut cmd = Command::new(&install.python);
                // -u: unbuffered, so a killed run still shows what it printed.
                cmd.arg("-u").arg(&install.python_scenario);
                cmd
            }
            Client::Franz => Command::new(&install.franz),
        }
    }
}

/// What `tests/support/clients-install.sh` installed.
#[derive(Debug)]
pub struct Installed {
    /// `<cache>/venv/bin/python`, with confluent-kafka.
    pub python: PathBuf,
    /// `tests/clients/python/scenario.py` in this checkout.
    pub python_scenario: PathBuf,
    /// `<cache>/bin/franz-scenario`.
    pub franz: PathBuf,
}

impl Installed {
    /// Runs the installer once per process (idempotent, fast when already done) and returns the
    /// installed paths. Panics with the installer's output if it fails.
    pub fn get() -> &'static Installed {
        static INSTALLED: OnceLock<Result<Installed, String>> = OnceLock::new();
        INSTALLED
            .get_or_init(|| {
                let script = concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/support/clients-install.sh"
                );
                let out = Command::new("bash")
                    .arg(script)
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| format!("cannot run {script}: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "{script} failed ({}):\n{}{}",
                        out.status,
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                let cache = std::env::var_os("SLUICE_CACHE")
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sluice"))
                    })
                    .ok_or("neither SLUICE_CACHE nor HOME is set")?;
                let installed = Installed {
                    python: cache.join("venv/bin/python"),
                    python_scenario: PathBuf::from(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/tests/clients/python/scenario.py"
                    )),
                    franz: cache.join("bin/franz-scenario"),
                };
                for p in [&installed.python, &installed.franz] {
                    if !p.exists() {
                        return Err(format!("{script} succeeded but {} is missing", p.display()));
                    }
                }
                Ok(installed)
            })
            .as_ref()
            .unwrap_or_else(|e| panic!("client install failed: {e}"))
    }
}

/// One run of a scenario with the librdkafka or franz-go client.
#[derive(Debug, Clone)]
pub struct OtherScenario {
    client: Client,
    name: String,
    args: Vec<String>,
    timeout: Duration,
}

impl OtherScenario {
    /// `name` is the scenario (`produce-consume`, `group-rebalance`, `admin`, `idempotent`,
    /// `transactional`, `leader-change`); `bootstrap` what the client connects to.
    pub fn new(client: Client, name: &str, bootstrap: &str) -> Self {
        OtherScenario {
            client,
            name: name.to_string(),
            args: vec!["--bootstrap".to_string(), bootstrap.to_string()],
            timeout: Duration::from_secs(60),
        }
    }

    /// Adds `--key value`.
    pub fn arg(mut self, key: &str, value: impl ToString) -> Self {
        self.args.push(format!("--{key}"));
        self.args.push(value.to_string());
        self
    }

    /// Adds raw arguments (e.g. `["--records", "500"]`).
    pub fn raw_args(mut self, extra: &[&str]) -> Self {
        self.args.extend(extra.iter().map(|s| s.to_string()));
        self
    }

    /// The scenario's own deadline (passed as `--timeout-ms`); the harness kills it 30 s later.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Runs to completion (or until killed 30 s past the scenario's deadline).
    pub fn run(&self) -> Outcome {
        self.run_interactive(|_| None)
    }

    /// Runs to completion (or until killed 30 s past the scenario's deadline); `on_line` sees every
    /// stdout line as it comes and may answer with a line for the client's stdin (the
    /// `leader-change` handshake), as [`super::scenario::JavaScenario::run_interactive`] does.
    pub fn run_interactive(&self, on_line: impl FnMut(&str) -> Option<String>) -> Outcome {
        let mut cmd = self.client.command();
        cmd.arg(&self.name)
            .args(&self.args)
            .arg("--timeout-ms")
            .arg(self.timeout.as_millis().to_string());
        run_client(
            cmd,
            &format!("{} scenario {}", self.client.name(), self.name),
            format!("{} {}", self.client.name(), self.name),
            self.timeout,
            false,
            on_line,
        )
    }
}

/// Panics with the client's stdout and stderr tail unless the scenario succeeded; returns its JSON
/// result line. (Like [`Outcome::assert_ok`], with the client named in the message.)
pub fn assert_ok(outcome: &Outcome) -> String {
    if !outcome.ok() {
        let err: Vec<&str> = outcome.stderr.lines().collect();
        panic!(
            "scenario {} failed (exit {:?}, {:.1?}):\nstdout:\n{}\nstderr (tail):\n{}",
            outcome.scenario,
            outcome.code,
            outcome.elapsed,
            outcome.stdout.join("\n"),
            err[err.len().saturating_sub(60)..].join("\n")
        );
    }
    let line = outcome
        .result_line()
        .expect("ok implies a result line")
        .to_string();
    eprintln!("[it] {}: {line}", outcome.scenario);
    line
}

/// Runs `scenario` with the librdkafka client; returns the JSON result line, panics (with the
/// client's output) on failure. `extra`: more raw arguments, e.g. `&["--protocol", "consumer"]`.
pub fn run_python(scenario: &str, bootstrap: &str, topic: &str, extra: &[&str]) -> String {
    assert_ok(
        &OtherScenario::new(Client::Librdkafka, scenario, bootstrap)
            .arg("topic", topic)
            .raw_args(extra)
            .run(),
    )
}

/// Runs `scenario` with the franz-go client; as [`run_python`].
pub fn run_franz(scenario: &str, bootstrap: &str, topic: &str, extra: &[&str]) -> String {
    assert_ok(
        &OtherScenario::new(Client::Franz, scenario, bootstrap)
            .arg("topic", topic)
            .raw_args(extra)
            .run(),
    )
}

// ------------------------------------------------------------------------------------------------
// Tests: as in java.rs, through a fresh Sluice (2 shards), or directly with SLUICE_IT_DIRECT=1.

/// Scenario `name` of `client` against `target`, on a fresh topic named after the client and
/// `topic_prefix`.
fn scenario(target: &Target, client: Client, name: &str, topic_prefix: &str) -> OtherScenario {
    target
        .scenario_args(&format!("{}-{topic_prefix}", client.name()))
        .into_iter()
        .fold(
            OtherScenario::new(client, name, &target.bootstrap),
            |s, (k, v)| s.arg(k, v),
        )
}

/// Runs one scenario of `client` against the shared cluster (through Sluice unless in direct mode),
/// asserts its checks and the connection guard's verdict; returns the JSON result line.
fn run_through_sluice(
    client: Client,
    name: &str,
    configure: impl FnOnce(OtherScenario) -> OtherScenario,
) -> String {
    let cluster = shared();
    let mut target = Target::new(&cluster);
    let guard = ConnGuard::start(&cluster.client_ports());
    let outcome = configure(scenario(&target, client, name, name)).run();
    let report: Report = guard.finish();
    let line = assert_ok(&outcome);
    target.check_guard(&report, &[&outcome]);
    line
}

/// Stops the broker leading partition 0 (SIGTERM: controlled shutdown) while `client`'s idempotent
/// producer (acks=all, unlimited retries) runs, as `java.rs`'s `java_leader_change` does: the client
/// must follow the new leader through Sluice, every acknowledged record must be consumable, and
/// the log must hold no duplicates. Then the broker comes back and a produce/consume round still
/// works through the same Sluice.
fn leader_change(client: Client, crash: bool) {
    let mut cluster = shared();
    let mut target = Target::new(&cluster);
    let guard = ConnGuard::start(&cluster.client_ports());
    let mut stopped = None;
    let outcome = scenario(&target, client, "leader-change", "leader-change")
        .timeout(Duration::from_secs(240))
        .run_interactive(|line| stop_named_leader(&mut cluster, crash, &mut stopped, line));
    let line = assert_ok(&outcome);
    let stopped = stopped.expect("scenario never named the leader");
    assert_eq!(
        json_field(&line, "old_leader"),
        Some(stopped.to_string().as_str())
    );

    // The broker returns; Sluice must serve it again.
    cluster.start_broker(stopped);
    let again = scenario(&target, client, "produce-consume", "after-restart")
        .arg("records", 600)
        .run();
    let report = guard.finish();
    assert_ok(&again);
    target.check_guard(&report, &[&outcome, &again]);
}

#[test]
fn librdkafka_produce_consume() {
    let line = run_through_sluice(Client::Librdkafka, "produce-consume", |s| {
        s.arg("records", 3000)
    });
    assert_eq!(json_field(&line, "records"), Some("3000"));
}

#[test]
fn librdkafka_group_rebalance_classic() {
    run_through_sluice(Client::Librdkafka, "group-rebalance", |s| {
        s.arg("protocol", "classic")
    });
}

#[test]
fn librdkafka_group_rebalance_consumer() {
    let line = run_through_sluice(Client::Librdkafka, "group-rebalance", |s| {
        s.arg("protocol", "consumer")
    });
    assert_eq!(json_field(&line, "protocol"), Some("consumer"));
}

#[test]
fn librdkafka_idempotent() {
    run_through_sluice(Client::Librdkafka, "idempotent", |s| s.arg("records", 3000));
}

#[test]
fn librdkafka_transactional() {
    run_through_sluice(Client::Librdkafka, "transactional", |s| s);
}

#[test]
fn librdkafka_admin() {
    let line = run_through_sluice(Client::Librdkafka, "admin", |s| s.arg("brokers", 3));
    assert_eq!(json_field(&line, "brokers"), Some("3"));
}

#[test]
fn franz_produce_consume() {
    let line = run_through_sluice(Client::Franz, "produce-consume", |s| s.arg("records", 3000));
    assert_eq!(json_field(&line, "records"), Some("3000"));
}

#[test]
fn franz_group_rebalance_classic() {
    run_through_sluice(Client::Franz, "group-rebalance", |s| {
        s.arg("protocol", "classic")
    });
}

#[test]
fn franz_group_rebalance_consumer() {
    let line = run_through_sluice(Client::Franz, "group-rebalance", |s| {
        s.arg("protocol", "consumer")
    });
    assert_eq!(json_field(&line, "protocol"), Some("consumer"));
}

#[test]
fn franz_idempotent() {
    run_through_sluice(Client::Franz, "idempotent", |s| s.arg("records", 3000));
}

#[test]
fn franz_transactional() {
    run_through_sluice(Client::Franz, "transactional", |s| s);
}

#[test]
fn franz_admin() {
    let line = run_through_sluice(Client::Franz, "admin", |s| s.arg("brokers", 3));
    assert_eq!(json_field(&line, "brokers"), Some("3"));
}

#[test]
fn librdkafka_leader_change() {
    leader_change(Client::Librdkafka, false);
}

#[test]
fn librdkafka_leader_crash() {
    leader_change(Client::Librdkafka, true);
}

#[test]
fn franz_leader_change() {
    leader_change(Client::Franz, false);
}

#[test]
fn franz_leader_crash() {
    leader_change(Client::Franz, true);
}
