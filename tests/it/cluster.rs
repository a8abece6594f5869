//! A real Apache Kafka cluster in KRaft combined mode (every node is broker and controller), on
//! loopback ports chosen at run time, for the integration tests.
//!
//! Each node has three listeners:
//! - `CLIENT`: what Sluice connects to (advertised as `127.0.0.1:port`). Test clients must never
//!   connect here themselves; [`super::conn_guard`] checks that.
//! - `INTERNAL`: inter-broker replication.
//! - `CONTROLLER`: the KRaft quorum.
//! - `SASL`: SASL_PLAINTEXT with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, for the identity tests
//!   (users of [`super::sasl::USERS`]: PLAIN users in the listener's JAAS config, SCRAM
//!   credentials added when the storage is formatted). It is the only listener the broker's
//!   authorizer (StandardAuthorizer) restricts: the other listeners' principal, `User:ANONYMOUS`,
//!   is a super user, and a resource with no ACL is open to every authenticated user.
//!
//! Readiness is observed, never slept for: every node's log must say the server started and an
//! AdminClient (the Java scenario client's `describe-cluster`, run directly against the brokers as a
//! harness probe) must see all brokers. Brokers are child processes; `Drop` kills them and removes the
//! cluster directory, unless the thread is panicking (then the logs stay, and their tails are printed).
//! A watcher process kills the brokers should the test process die without unwinding.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use super::scenario::{Install, JavaScenario};
use super::{free_ports, random_bytes, signal, tail, temp_dir};

/// How long a cluster (or a restarted node) may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a node may take for a controlled shutdown before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts to start a cluster when a chosen port was taken meanwhile.
const START_ATTEMPTS: usize = 3;

#[derive(Debug)]
struct Node {
    id: u32,
    client_port: u16,
    sasl_port: u16,
    internal_port: u16,
    controller_port: u16,
    dir: PathBuf,
    props: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn pid_file(&self) -> PathBuf {
        self.dir.join("broker.pid")
    }
}

/// A running KRaft cluster. See the module docs.
#[derive(Debug)]
pub struct KafkaCluster {
    dir: PathBuf,
    cluster_id: String,
    nodes: Vec<Node>,
    watcher: Option<Child>,
    keep: bool,
}

impl KafkaCluster {
    /// Starts `n` nodes (ids `1..=n`) and waits until all are ready. Panics with the reason and the
    /// tail of the broker logs if they do not become ready within two minutes.
    pub fn start(n: u32) -> KafkaCluster {
        Self::try_start(n).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`KafkaCluster::start`], returning the failure instead of panicking.
    pub fn try_start(n: u32) -> Result<KafkaCluster, String> {
        assert!(n >= 1, "a cluster needs at least one node");
        let mut last = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let mut cluster = Self::prepare(n)?;
            match cluster.launch() {
                Ok(()) => return Ok(cluster),
                Err(e) => {
                    let port_taken = cluster
                        .nodes
                        .iter()
                        .any(|nd| tail(&nd.log, 400).contains("Address already in use"));
                    if port_taken && attempt < START_ATTEMPTS {
                        eprintln!("[it] cluster start: a port was taken, retrying with new ports");
                        last = e;
                        continue; // Drop removes this attempt's processes and directory.
                    }
                    cluster.keep = true;
                    return Err(e);
                }
            }
        }
        Err(last)
    }

    /// Chooses ports, writes every node's `server.properties` and formats its storage.
    fn prepare(n: u32) -> Result<KafkaCluster, String> {
        let install = Install::get();
        let dir = temp_dir("sluice-kafka");
        let ports = free_ports(4 * n as usize);
        let cluster_id = kafka_uuid();
        let mut nodes = Vec::new();
        for id in 1..=n {
            let i = (id - 1) as usize;
            let node_dir = dir.join(format!("node-{id}"));
            fs::create_dir_all(node_dir.join("data")).map_err(|e| e.to_string())?;
            nodes.push(Node {
                id,
                client_port: ports[4 * i],
                internal_port: ports[4 * i + 1],
                controller_port: ports[4 * i + 2],
                sasl_port: ports[4 * i + 3],
                props: node_dir.join("server.properties"),
                log: node_dir.join("server.log"),
                dir: node_dir,
                child: None,
            });
        }
        let voters = nodes
            .iter()
            .map(|nd| format!("{}@127.0.0.1:{}", nd.id, nd.controller_port))
            .collect::<Vec<_>>()
            .join(",");
        let rf = n.min(3);
        let min_isr = if rf >= 3 { 2 } else { 1 };
        for nd in &nodes {
            let props = server_properties(nd, &voters, rf, min_isr);
            fs::write(&nd.props, props)
                .map_err(|e| format!("write {}: {e}", nd.props.display()))?;
        }
        let mut cluster = KafkaCluster {
            dir,
            cluster_id,
            nodes,
            watcher: None,
            keep: false,
        };
        // Format all nodes at once (a JVM start each).
        let mut formats = Vec::new();
        for nd in &cluster.nodes {
            let out = File::create(nd.dir.join("format.log")).map_err(|e| e.to_string())?;
            let err = out.try_clone().map_err(|e| e.to_string())?;
            let child = install
                .java()
                .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
                .arg(format!(
                    "-Dlog4j2.configurationFile={}",
                    install
                        .home
                        .join("config/log4j2-client.properties")
                        .display()
                ))
                .arg("-cp")
                .arg(install.libs_classpath())
                .args([
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    &cluster.cluster_id,
                    "-c",
                ])
                .arg(&nd.props)
                .args(super::sasl::scram_format_args())
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|e| format!("cannot run java: {e}"))?;
            formats.push((nd.id, nd.dir.join("format.log"), child));
        }
        let mut failed = String::new();
        for (id, log, mut child) in formats {
            let status = child.wait().map_err(|e| e.to_string())?;
            if !status.success() {
                let _ = write!(failed, "\nnode {id} ({status}):\n{}", tail(&log, 30));
            }
        }
        if !failed.is_empty() {
            cluster.keep = true;
            return Err(format!("formatting Kafka storage failed:{failed}"));
        }
        cluster.spawn_watcher()?;
        Ok(cluster)
    }

    /// Starts every node and waits for the cluster.
    fn launch(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let mut offsets = Vec::new();
        for i in 0..self.nodes.len() {
            offsets.push(self.spawn_node(i)?);
        }
        let ids: Vec<u32> = self.nodes.iter().map(|n| n.id).collect();
        self.wait_ready(&ids, &offsets)?;
        eprintln!(
            "[it] Kafka cluster of {} nodes ready in {:.1?} (client listeners {}; dir {})",
            self.nodes.len(),
            started.elapsed(),
            self.bootstrap_client(),
            self.dir.display()
        );
        Ok(())
    }

    /// Spawns node `i`'s broker process; returns the length of its log before the start, so that
    /// readiness looks only at what this start wrote.
    fn spawn_node(&mut self, i: usize) -> Result<u64, String> {
        let install = Install::get();
        let nd = &mut self.nodes[i];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&nd.log)
            .map_err(|e| format!("open {}: {e}", nd.log.display()))?;
        let offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = install
            .java()
            .args([
                "-Xmx512m",
                "-Xms128m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Djava.awt.headless=true",
            ])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                install
                    .home
                    .join("config/log4j2-broker.properties")
                    .display()
            ))
            .arg(format!("-Dkafka.logs.dir={}", nd.dir.display()))
            .arg("-cp")
            .arg(install.libs_classpath())
            .arg("kafka.Kafka")
            .arg(&nd.props)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start broker {}: {e}", nd.id))?;
        fs::write(nd.pid_file(), child.id().to_string()).map_err(|e| e.to_string())?;
        nd.child = Some(child);
        Ok(offset)
    }

    /// A shell that outlives nothing: once the test process is gone it kills the brokers listed in
    /// the pid files and removes the directory (unless a `keep` marker is there).
    fn spawn_watcher(&mut self) -> Result<(), String> {
        let script = format!(
            "while kill -0 {test} 2>/dev/null; do sleep 1; done; \
             for f in {dir}/node-*/broker.pid; do [ -f \"$f\" ] && kill -9 $(cat \"$f\") 2>/dev/null; done; \
             [ -e {dir}/keep ] || rm -rf {dir}",
            test = std::process::id(),
            dir = shell_quote(&self.dir),
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start watcher: {e}"))?;
        self.watcher = Some(child);
        Ok(())
    }

    /// Waits until nodes `ids` logged their start (after `offsets`) and an AdminClient sees every
    /// node of the cluster; fails early if a broker exits.
    fn wait_ready(&mut self, ids: &[u32], offsets: &[u64]) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        // 1. Every (re)started node says it started.
        loop {
            self.check_alive()?;
            let pending: Vec<u32> = ids
                .iter()
                .zip(offsets)
                .filter(|(id, off)| {
                    !log_contains_after(&self.node(**id).log, **off, "Kafka Server started")
                })
                .map(|(id, _)| *id)
                .collect();
            if pending.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                return Err(self.failure(&format!(
                    "nodes {pending:?} did not start in {READY_TIMEOUT:?}"
                )));
            }
            thread::sleep(Duration::from_millis(100));
        }
        // 2. The cluster, as a client sees it, has every broker.
        let remaining = deadline.saturating_duration_since(Instant::now());
        let probe = JavaScenario::new("describe-cluster", &self.bootstrap_client())
            .arg("wait-brokers", self.nodes.len())
            .timeout(remaining.max(Duration::from_secs(10)))
            .harness_probe();
        let outcome = thread::scope(|s| {
            let h = s.spawn(|| probe.run());
            while !h.is_finished() {
                self.check_alive_ref()?;
                thread::sleep(Duration::from_millis(100));
            }
            h.join().map_err(|_| "readiness probe panicked".to_string())
        });
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => return Err(self.failure(&e)),
        };
        if !outcome.ok() {
            return Err(self.failure(&format!(
                "describe-cluster probe failed: {}\n{}",
                outcome.stdout.join("\n"),
                outcome.stderr
            )));
        }
        Ok(())
    }

    fn check_alive(&mut self) -> Result<(), String> {
        let mut dead = String::new();
        for nd in &mut self.nodes {
            if let Some(child) = nd.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let _ = write!(dead, "broker {} exited ({status}); ", nd.id);
                    nd.child = None;
                    let _ = fs::remove_file(nd.pid_file());
                }
            }
        }
        if dead.is_empty() {
            Ok(())
        } else {
            Err(self.failure(&dead))
        }
    }

    /// Liveness check without `&mut`: a node counts as dead when its pid is gone from /proc or a
    /// zombie (the owner reaps it later).
    fn check_alive_ref(&self) -> Result<(), String> {
        for nd in &self.nodes {
            if let Some(child) = &nd.child {
                let stat =
                    fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap_or_default();
                let state = stat
                    .rsplit(')')
                    .next()
                    .and_then(|s| s.split_whitespace().next());
                if state.is_none() || state == Some("Z") {
                    return Err(self.failure(&format!("broker {} exited", nd.id)));
                }
            }
        }
        Ok(())
    }

    /// An error message with the tail of every node's log.
    fn failure(&self, what: &str) -> String {
        let mut s = format!("Kafka cluster ({}): {what}\n", self.dir.display());
        for nd in &self.nodes {
            let _ = write!(
                s,
                "---- node {} log tail ({}) ----\n{}\n",
                nd.id,
                nd.log.display(),
                tail(&nd.log, 40)
            );
        }
        s
    }

    fn node(&self, id: u32) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn index(&self, id: u32) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// The CLIENT listeners, comma-separated (`127.0.0.1:p1,127.0.0.1:p2,…`): what Sluice's
    /// `upstream.bootstrap_servers` lists. Test clients must not use it (except harness probes).
    pub fn bootstrap_client(&self) -> String {
        self.client_addrs().join(",")
    }

    /// The CLIENT listeners, one `127.0.0.1:port` each, in node id order.
    pub fn client_addrs(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.client_port))
            .collect()
    }

    /// The CLIENT listener ports, in node id order.
    pub fn client_ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.client_port).collect()
    }

    /// The SASL listeners, comma-separated: Sluice's `upstream.bootstrap_servers` in the
    /// identity tests.
    pub fn bootstrap_sasl(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.sasl_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The SASL listener ports, in node id order.
    pub fn sasl_ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.sasl_port).collect()
    }

    /// Every listener port of every node (client, SASL, internal, controller).
    pub fn all_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .flat_map(|n| {
                [
                    n.client_port,
                    n.sasl_port,
                    n.internal_port,
                    n.controller_port,
                ]
            })
            .collect()
    }

    /// The CLIENT port of node `id`.
    pub fn client_port(&self, id: u32) -> u16 {
        self.node(id).client_port
    }

    /// Node ids, ascending.
    pub fn node_ids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Whether node `id`'s broker process is running (as far as the harness started it).
    pub fn is_running(&self, id: u32) -> bool {
        self.node(id).child.is_some()
    }

    /// The log file of node `id` (broker stdout and stderr, log4j output).
    pub fn log_path(&self, id: u32) -> PathBuf {
        self.node(id).log.clone()
    }

    /// Every node's log file.
    pub fn log_paths(&self) -> Vec<PathBuf> {
        self.nodes.iter().map(|n| n.log.clone()).collect()
    }

    /// The cluster's directory (configs, data, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Stops node `id` with SIGTERM (a controlled shutdown: leadership moves away first) and waits
    /// for it to exit; kills it if that takes longer than a minute.
    pub fn stop_broker(&mut self, id: u32) {
        self.stop(id, "TERM");
    }

    /// Kills node `id` with SIGKILL (a crash: no controlled shutdown).
    pub fn kill_broker(&mut self, id: u32) {
        self.stop(id, "KILL");
    }

    fn stop(&mut self, id: u32, sig: &str) {
        let i = self.index(id);
        let nd = &mut self.nodes[i];
        let Some(mut child) = nd.child.take() else {
            return;
        };
        let started = Instant::now();
        let _ = signal(child.id(), sig);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if started.elapsed() < STOP_TIMEOUT => {
                    thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    eprintln!("[it] broker {id} did not stop in {STOP_TIMEOUT:?}: killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        let _ = fs::remove_file(nd.pid_file());
        eprintln!(
            "[it] broker {id} stopped (SIG{sig}) in {:.1?}",
            started.elapsed()
        );
    }

    /// Starts node `id` again (same ports, same data) and waits until the cluster has all brokers.
    pub fn start_broker(&mut self, id: u32) {
        if let Err(e) = self.try_start_broker(id) {
            self.keep = true;
            panic!("{e}");
        }
    }

    fn try_start_broker(&mut self, id: u32) -> Result<(), String> {
        let i = self.index(id);
        if self.nodes[i].child.is_some() {
            return Ok(());
        }
        let started = Instant::now();
        let offset = self.spawn_node(i)?;
        self.wait_ready(&[id], &[offset])?;
        eprintln!("[it] broker {id} restarted in {:.1?}", started.elapsed());
        Ok(())
    }

    /// Starts every node that is not running (after a test stopped some), all at once: with every
    /// node down, none can finish starting alone (the KRaft quorum needs a majority).
    pub fn ensure_all_running(&mut self) {
        let missing: Vec<u32> = self
            .node_ids()
            .into_iter()
            .filter(|id| !self.is_running(*id))
            .collect();
        if missing.is_empty() {
            return;
        }
        let started = Instant::now();
        let mut offsets = Vec::new();
        for id in &missing {
            let i = self.index(*id);
            match self.spawn_node(i) {
                Ok(off) => offsets.push(off),
                Err(e) => {
                    self.keep = true;
                    panic!("{e}");
                }
            }
        }
        if let Err(e) = self.wait_ready(&missing, &offsets) {
            self.keep = true;
            panic!("{e}");
        }
        eprintln!(
            "[it] brokers {missing:?} restarted in {:.1?}",
            started.elapsed()
        );
    }

    /// Starts node `id` again without waiting for it to join the cluster (it may not be able to
    /// alone); [`KafkaCluster::ensure_all_running`] or [`KafkaCluster::start_broker`] waits later.
    pub fn spawn_broker(&mut self, id: u32) {
        let i = self.index(id);
        if self.nodes[i].child.is_some() {
            return;
        }
        if let Err(e) = self.spawn_node(i) {
            self.keep = true;
            panic!("{e}");
        }
        eprintln!("[it] broker {id} spawned");
    }

    /// Keeps the directory (logs, data) after the cluster is dropped.
    pub fn keep_dir(&mut self) {
        self.keep = true;
    }

    /// Prints the tail of every node's log to stderr.
    pub fn dump_logs(&self, lines: usize) {
        for nd in &self.nodes {
            eprintln!(
                "---- Kafka node {} log tail ({}) ----\n{}",
                nd.id,
                nd.log.display(),
                tail(&nd.log, lines)
            );
        }
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        if thread::panicking() {
            self.keep = true;
            self.dump_logs(40);
        }
        for nd in &mut self.nodes {
            if let Some(mut child) = nd.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = fs::remove_file(nd.pid_file());
        }
        if let Some(mut w) = self.watcher.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if self.keep {
            let _ = File::create(self.dir.join("keep"));
            eprintln!("[it] kept Kafka cluster directory {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The cluster shared by the tests of this binary: 3 nodes, started on first use. Tests take turns
/// (the guard holds a lock); a test that stopped a broker need not restart it, the next user does.
/// If a test panics while holding it, the broker log tails are printed and the directory is kept.
/// The brokers die with the test process (see the watcher).
pub fn shared() -> SharedCluster {
    static SHARED: OnceLock<Result<Mutex<KafkaCluster>, String>> = OnceLock::new();
    let cell = SHARED.get_or_init(|| KafkaCluster::try_start(3).map(Mutex::new));
    let mutex = match cell {
        Ok(m) => m,
        Err(e) => panic!("shared Kafka cluster failed to start:\n{e}"),
    };
    let mut guard = mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    guard.ensure_all_running();
    SharedCluster { guard }
}

/// Exclusive use of the shared cluster; see [`shared`].
pub struct SharedCluster {
    guard: MutexGuard<'static, KafkaCluster>,
}

impl std::ops::Deref for SharedCluster {
    type Target = KafkaCluster;
    fn deref(&self) -> &KafkaCluster {
        &self.guard
    }
}

impl std::ops::DerefMut for SharedCluster {
    fn deref_mut(&mut self) -> &mut KafkaCluster {
        &mut self.guard
    }
}

impl Drop for SharedCluster {
    fn drop(&mut self) {
        if thread::panicking() {
            self.guard.keep = true;
            let _ = File::create(self.guard.dir.join("keep"));
            self.guard.dump_logs(40);
            eprintln!("[it] Kafka logs kept in {}", self.guard.dir.display());
        }
    }
}

/// `server.properties` for one combined broker+controller node.
fn server_properties(nd: &Node, voters: &str, rf: u32, min_isr: u32) -> String {
    format!(
        "# Generated by Sluice's integration test harness (tests/it/cluster.rs).
process.roles=broker,controller
node.id={id}
controller.quorum.voters={voters}
controller.listener.names=CONTROLLER
listeners=CLIENT://127.0.0.1:{client},SASL://127.0.0.1:{sasl},INTERNAL://127.0.0.1:{internal},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=CLIENT://127.0.0.1:{client},SASL://127.0.0.1:{sasl},INTERNAL://127.0.0.1:{internal}
listener.security.protocol.map=CLIENT:PLAINTEXT,SASL:SASL_PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=INTERNAL
{sasl_props}log.dirs={data}
# Internal topics: replicated over the cluster, few partitions (fast to create).
offsets.topic.replication.factor={rf}
offsets.topic.num.partitions=6
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={min_isr}
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={min_isr}
default.replication.factor={rf}
num.partitions=1
auto.create.topics.enable=true
# Groups: no join delay, quick KIP-848 heartbeats (the consumer protocol is on by default in 4.x).
group.initial.rebalance.delay.ms=0
group.consumer.min.heartbeat.interval.ms=500
group.consumer.heartbeat.interval.ms=1000
group.consumer.min.session.timeout.ms=6000
group.consumer.session.timeout.ms=15000
group.share.min.heartbeat.interval.ms=500
group.share.heartbeat.interval.ms=1000
# Small and frugal: 2-core machines run three of these plus the tests.
log.segment.bytes=1048576
log.retention.check.interval.ms=300000
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
controlled.shutdown.enable=true
# A crashed broker is fenced after 6 s (default 9 s).
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000
",
        id = nd.id,
        client = nd.client_port,
        sasl = nd.sasl_port,
        sasl_props = super::sasl::broker_properties(),
        internal = nd.internal_port,
        controller = nd.controller_port,
        data = nd.dir.join("data").display(),
    )
}

/// A random Kafka `Uuid` in its string form (base64url of 16 bytes, no padding), as
/// `kafka-storage.sh random-uuid` prints; made here to save a JVM start.
fn kafka_uuid() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = random_bytes(16);
    // Kafka reserves the all-zero id and ids whose string starts with '-'.
    bytes[0] &= 0x7f;
    bytes[0] |= 0x04;
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for k in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
        }
    }
    out
}

fn log_contains_after(path: &Path, offset: u64, needle: &str) -> bool {
    match fs::read(path) {
        Ok(bytes) => {
            let start = (offset as usize).min(bytes.len());
            String::from_utf8_lossy(&bytes[start..]).contains(needle)
        }
        Err(_) => false,
    }
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}
