//! The control plane over glommio's cross-shard channels.
//!
//! Every shard and one control executor join a full channel mesh. Shards send each other (and
//! the control executor) topology updates; the control executor asks every shard for a metrics
//! snapshot or a connection sample at scrape time, and broadcasts reloaded configs, which each
//! shard applies between frames ([`crate::proxy::shard::Shard::apply_config`]). Requests carry
//! an id; replies come back on the asking peer's channel with the same id.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_lite::future::or;
use glommio::channels::channel_mesh::{Receivers, Senders};
use glommio::channels::local_channel::{self, LocalSender};
use serde::Serialize;

use crate::config::reload::{self, Change, KeyClass};
use crate::config::{Config, ConfigError};
use crate::metrics::{ControlMetrics, Gathered, ShardSnapshot};
use crate::proxy::listener::Target;
use crate::proxy::shard::{Shard, TopologyUpdate};
use crate::quota;

/// Changes the log filter at runtime (a tracing `EnvFilter` directive); `Err` explains a bad one.
pub type SetLogLevel = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// State shared by the signal thread, the shards and the control executor.
#[derive(Debug, Default)]
pub struct ProcessState {
    /// Set by SIGTERM/SIGINT: drain.
    pub stop: AtomicBool,
    /// Bumped by SIGHUP: reload the config file.
    pub reload_requests: AtomicU64,
    /// Shards whose listeners are bound.
    pub listening_shards: AtomicUsize,
}

/// A message on the cross-shard channels.
#[derive(Debug)]
pub enum ControlMsg {
    /// A shard learned a broker (to every other peer).
    Topology(TopologyUpdate),
    /// Control asks a shard for its [`ShardSnapshot`].
    Scrape { id: u64 },
    /// Control asks a shard for its connection counts and up to `limit` connections.
    Connections { id: u64, limit: usize },
    /// Control puts a reloaded config in force.
    Apply { id: u64, config: Arc<Config> },
    /// A shard's answer to request `id`.
    Reply { id: u64, reply: Reply },
    /// A shard's quota demand, per key, tagged with the key's owner shard (to every peer; each
    /// owner keeps its own).
    QuotaReports {
        from: usize,
        reports: Vec<(usize, quota::table::Report)>,
    },
    /// An owner's new per-shard quota shares (to every peer).
    QuotaShares(Vec<quota::table::Shares>),
    /// A shard's per-source connection counts, per key, tagged with the key's owner shard (to
    /// every peer; each owner keeps its own).
    ConnReports {
        from: usize,
        reports: Vec<(usize, quota::conns::ConnReport)>,
    },
    /// An owner's new connection allowances, each for one shard (to every peer).
    ConnGrants(Vec<quota::conns::ConnGrant>),
}

/// A shard's answer.
#[derive(Debug)]
pub enum Reply {
    Snapshot(Box<ShardSnapshot>),
    Connections(Box<ShardConnections>),
    Applied { shard: usize, errors: Vec<String> },
}

/// One shard's connections, as GET /connections shows them.
#[derive(Debug, Clone, Serialize)]
pub struct ShardConnections {
    pub shard: usize,
    pub active: usize,
    pub accepted: u64,
    pub sample: Vec<ConnectionSample>,
}

/// One client connection.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionSample {
    pub conn_id: u64,
    pub peer: Option<String>,
    pub target: String,
    pub upstream: Option<String>,
    pub age_ms: u64,
}

fn target_label(t: Target) -> String {
    match t {
        Target::Bootstrap => "bootstrap".into(),
        Target::Node(n) => format!("node {n}"),
    }
}

/// Shard side: serves control requests and topology updates from every peer.
pub fn serve_shard(
    shard: &Rc<Shard>,
    senders: &Rc<Senders<ControlMsg>>,
    receivers: &mut Receivers<ControlMsg>,
) {
    for (peer, stream) in receivers.streams() {
        let (shard, senders) = (shard.clone(), senders.clone());
        glommio::spawn_local(async move {
            while let Some(msg) = stream.recv().await {
                let reply = match msg {
                    ControlMsg::Topology(u) => {
                        shard.apply_update(&u);
                        continue;
                    }
                    ControlMsg::Scrape { id } => (id, Reply::Snapshot(Box::new(shard.snapshot()))),
                    ControlMsg::Connections { id, limit } => {
                        let now = Instant::now();
                        let sample = shard
                            .connections_sample(limit)
                            .into_iter()
                            .map(|c| ConnectionSample {
                                conn_id: c.conn_id,
                                peer: c.peer.map(|p| p.to_string()),
                                target: target_label(c.target),
                                upstream: c.upstream,
                                age_ms: u64::try_from(
                                    now.saturating_duration_since(c.since).as_millis(),
                                )
                                .unwrap_or(u64::MAX),
                            })
                            .collect();
                        (
                            id,
                            Reply::Connections(Box::new(ShardConnections {
                                shard: shard.id,
                                active: shard.active_connections(),
                                accepted: shard.accepted_connections(),
                                sample,
                            })),
                        )
                    }
                    ControlMsg::Apply { id, config } => {
                        let errors = shard.apply_config(Rc::new((*config).clone()));
                        for e in &errors {
                            tracing::error!(shard = shard.id, error = %e, "reload: not applied");
                        }
                        (
                            id,
                            Reply::Applied {
                                shard: shard.id,
                                errors,
                            },
                        )
                    }
                    ControlMsg::QuotaReports { from, reports } => {
                        let now = shard.quotas.now();
                        for (owner, r) in reports {
                            if owner == shard.id {
                                shard.quotas.on_report(from, r, now);
                            }
                        }
                        continue;
                    }
                    ControlMsg::QuotaShares(list) => {
                        let now = shard.quotas.now();
                        for s in &list {
                            shard.quotas.on_shares(s, now);
                        }
                        continue;
                    }
                    ControlMsg::ConnReports { from, reports } => {
                        for (owner, r) in reports {
                            if owner == shard.id {
                                shard.conns.on_report(from, r);
                            }
                        }
                        continue;
                    }
                    ControlMsg::ConnGrants(list) => {
                        for g in &list {
                            shard.conns.on_grant(g);
                        }
                        continue;
                    }
                    ControlMsg::Reply { .. } => continue,
                };
                let (id, reply) = reply;
                let _ = senders.send_to(peer, ControlMsg::Reply { id, reply }).await;
            }
        })
        .detach();
    }
}

/// Shard side: every [`quota::table::INTERVAL`], reports this shard's quota demand and
/// per-source connection counts to the keys' owners and, as an owner, sends every shard its new
/// share or allowance. Idle when no quota is in use.
pub async fn quota_loop(shard: Rc<Shard>, senders: Rc<Senders<ControlMsg>>) {
    let me = senders.peer_id();
    loop {
        glommio::timer::sleep(quota::table::INTERVAL).await;
        if shard.shutdown.is_set() {
            return;
        }
        let now = shard.quotas.now();
        let mut remote = Vec::new();
        for (owner, r) in shard.quotas.reports(quota::table::INTERVAL, now) {
            if owner == shard.id {
                shard.quotas.on_report(shard.id, r, now);
            } else {
                remote.push((owner, r));
            }
        }
        let shares = shard.quotas.rebalance(now);
        for s in &shares {
            shard.quotas.on_shares(s, now);
        }
        let mut conn_remote = Vec::new();
        for (owner, r) in shard.conns.reports() {
            if owner == shard.id {
                shard.conns.on_report(shard.id, r);
            } else {
                conn_remote.push((owner, r));
            }
        }
        let grants = shard.conns.rebalance();
        for g in &grants {
            shard.conns.on_grant(g);
        }
        let grants: Vec<_> = grants.into_iter().filter(|g| g.shard != shard.id).collect();
        if !remote.is_empty() || !shares.is_empty() {
            tracing::trace!(shard = shard.id, reports = ?remote, shares = ?shares, "quota exchange");
        }
        if !conn_remote.is_empty() || !grants.is_empty() {
            tracing::trace!(shard = shard.id, reports = ?conn_remote, grants = ?grants,
                "connection quota exchange");
        }
        for peer in (0..senders.nr_consumers()).filter(|p| *p != me) {
            if !remote.is_empty() {
                let msg = ControlMsg::QuotaReports {
                    from: shard.id,
                    reports: remote.clone(),
                };
                let _ = senders.send_to(peer, msg).await;
            }
            if !shares.is_empty() {
                let _ = senders
                    .send_to(peer, ControlMsg::QuotaShares(shares.clone()))
                    .await;
            }
            if !conn_remote.is_empty() {
                let msg = ControlMsg::ConnReports {
                    from: shard.id,
                    reports: conn_remote.clone(),
                };
                let _ = senders.send_to(peer, msg).await;
            }
            if !grants.is_empty() {
                let _ = senders
                    .send_to(peer, ControlMsg::ConnGrants(grants.clone()))
                    .await;
            }
        }
    }
}

/// The outcome of a reload, as POST /reload answers it and the log records it.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// `applied` (live changes in force), `unchanged` (no live key changed), `rejected` (the new
    /// file is invalid or a new port cannot be bound: nothing changed), `failed` (a shard could
    /// not apply part of it; see `errors`).
    pub outcome: &'static str,
    /// Every changed key with its class; restart-only ones are not in force.
    pub changes: Vec<Change>,
    /// Restart-only keys that changed in the file and wait for a restart.
    pub restart_required: Vec<&'static str>,
    /// Every error, with the dotted key where there is one.
    pub errors: Vec<String>,
}

/// Readiness as GET /readyz reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub draining: bool,
    pub shards: usize,
    pub shards_listening: usize,
    /// An upstream broker that accepted a TCP connection, if any.
    pub upstream_reachable: Option<String>,
    /// Why not ready, when not.
    pub reason: Option<String>,
}

/// The control executor's state: the running config, the channels to every shard, reload and
/// readiness bookkeeping.
pub struct ControlPlane {
    senders: Senders<ControlMsg>,
    shard_peers: Vec<usize>,
    next_id: Cell<u64>,
    waiters: RefCell<HashMap<u64, LocalSender<Reply>>>,
    topology: RefCell<BTreeMap<i32, String>>,
    config: RefCell<Arc<Config>>,
    config_path: PathBuf,
    /// Shared with the signal thread and the shards.
    pub state: Arc<ProcessState>,
    set_log_level: SetLogLevel,
    log_level: RefCell<String>,
    metrics: RefCell<ControlMetrics>,
    readiness: RefCell<Option<(Instant, Readiness)>>,
    reloading: Cell<bool>,
}

/// How long a scrape or a reload waits for the shards.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a readiness probe result is reused.
const READINESS_TTL: Duration = Duration::from_secs(1);

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl ControlPlane {
    /// Joins the control side to the mesh: `senders`/`receivers` from the mesh join.
    pub fn start(
        senders: Senders<ControlMsg>,
        mut receivers: Receivers<ControlMsg>,
        config: Arc<Config>,
        config_path: PathBuf,
        state: Arc<ProcessState>,
        set_log_level: SetLogLevel,
    ) -> Rc<ControlPlane> {
        let me = senders.peer_id();
        let shard_peers = (0..senders.nr_consumers()).filter(|p| *p != me).collect();
        let metrics = ControlMetrics {
            shards: config.shards,
            last_reload_success_unix: unix_now(),
            ..Default::default()
        };
        let cp = Rc::new(ControlPlane {
            senders,
            shard_peers,
            next_id: Cell::new(0),
            waiters: RefCell::new(HashMap::new()),
            topology: RefCell::new(BTreeMap::new()),
            log_level: RefCell::new(config.log_level.clone()),
            config: RefCell::new(config),
            config_path,
            state,
            set_log_level,
            metrics: RefCell::new(metrics),
            readiness: RefCell::new(None),
            reloading: Cell::new(false),
        });
        for (_, stream) in receivers.streams() {
            let cp = cp.clone();
            glommio::spawn_local(async move {
                while let Some(msg) = stream.recv().await {
                    match msg {
                        ControlMsg::Topology(u) => {
                            cp.topology.borrow_mut().insert(u.node_id, u.addr);
                        }
                        ControlMsg::Reply { id, reply } => {
                            if let Some(w) = cp.waiters.borrow().get(&id) {
                                let _ = w.try_send(reply);
                            }
                        }
                        _ => {}
                    }
                }
            })
            .detach();
        }
        cp
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    /// Sends `make(id)` to every shard and collects the replies that arrive within the timeout.
    async fn ask_all(&self, make: impl Fn(u64) -> ControlMsg) -> Vec<Reply> {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        let (tx, rx) = local_channel::new_unbounded();
        self.waiters.borrow_mut().insert(id, tx);
        let mut asked = 0;
        for peer in &self.shard_peers {
            if self.senders.send_to(*peer, make(id)).await.is_ok() {
                asked += 1;
            }
        }
        let mut replies = Vec::with_capacity(asked);
        let deadline = Instant::now() + ASK_TIMEOUT;
        while replies.len() < asked {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = or(rx.recv(), async {
                glommio::timer::sleep(left).await;
                None
            })
            .await;
            match got {
                Some(r) => replies.push(r),
                None => break,
            }
        }
        self.waiters.borrow_mut().remove(&id);
        replies
    }

    /// Gathers every shard's snapshot plus control counters (GET /metrics).
    pub async fn gather(&self) -> Gathered {
        let replies = self.ask_all(|id| ControlMsg::Scrape { id }).await;
        let mut shards: Vec<ShardSnapshot> = replies
            .into_iter()
            .filter_map(|r| match r {
                Reply::Snapshot(s) => Some(*s),
                _ => None,
            })
            .collect();
        shards.sort_by_key(|s| s.shard);
        let ready = self.readiness().await;
        let mut control = self.metrics.borrow().clone();
        control.ready = ready.ready;
        control.draining = ready.draining;
        Gathered { shards, control }
    }

    /// Connection counts and a sample of up to `limit` connections per shard.
    pub async fn connections(&self, limit: usize) -> Vec<ShardConnections> {
        let mut out: Vec<ShardConnections> = self
            .ask_all(|id| ControlMsg::Connections { id, limit })
            .await
            .into_iter()
            .filter_map(|r| match r {
                Reply::Connections(c) => Some(*c),
                _ => None,
            })
            .collect();
        out.sort_by_key(|c| c.shard);
        out
    }

    /// The log filter in force.
    pub fn log_level(&self) -> String {
        self.log_level.borrow().clone()
    }

    /// Changes the log filter now (until a reload changes `log.level`).
    ///
    /// # Errors
    /// Why the directive is refused.
    pub fn set_log_level(&self, directive: &str) -> Result<(), String> {
        (self.set_log_level)(directive)?;
        tracing::info!(level = directive, "log level changed");
        *self.log_level.borrow_mut() = directive.to_string();
        Ok(())
    }

    /// Reads the config file again, validates it, and puts its live keys in force on every shard.
    /// `source` names the trigger in the log (`SIGHUP`, `admin`).
    pub async fn reload(&self, source: &str) -> ReloadReport {
        if self.reloading.replace(true) {
            return ReloadReport {
                outcome: "rejected",
                changes: Vec::new(),
                restart_required: Vec::new(),
                errors: vec!["a reload is already in progress".into()],
            };
        }
        let report = self.reload_inner().await;
        self.reloading.set(false);
        *self
            .metrics
            .borrow_mut()
            .reloads
            .entry(report.outcome)
            .or_insert(0) += 1;
        if matches!(report.outcome, "applied" | "unchanged") {
            self.metrics.borrow_mut().last_reload_success_unix = unix_now();
        }
        let keys: Vec<&str> = report.changes.iter().map(|c| c.key).collect();
        match report.outcome {
            "applied" | "unchanged" => {
                tracing::info!(source, outcome = report.outcome, changed = ?keys,
                restart_required = ?report.restart_required, "config reload")
            }
            _ => tracing::error!(source, outcome = report.outcome, changed = ?keys,
                errors = ?report.errors, "config reload: running config kept"),
        }
        report
    }

    async fn reload_inner(&self) -> ReloadReport {
        let running = self.config();
        let new = match Config::load(&self.config_path) {
            Ok(c) => c,
            Err(e) => {
                let errors = match e {
                    ConfigError::Invalid(list) => list.iter().map(ToString::to_string).collect(),
                    other => vec![other.to_string()],
                };
                return ReloadReport {
                    outcome: "rejected",
                    changes: Vec::new(),
                    restart_required: Vec::new(),
                    errors,
                };
            }
        };
        let changes = reload::diff(&running, &new);
        let restart_required: Vec<&'static str> = changes
            .iter()
            .filter(|c| c.class == KeyClass::RestartOnly)
            .map(|c| c.key)
            .collect();
        if restart_required.len() == changes.len() {
            return ReloadReport {
                outcome: "unchanged",
                changes,
                restart_required,
                errors: Vec::new(),
            };
        }
        let merged = reload::merge_live(&running, &new);
        let bind_errors = self.check_new_ports(&running, &merged);
        if !bind_errors.is_empty() {
            return ReloadReport {
                outcome: "rejected",
                changes,
                restart_required,
                errors: bind_errors,
            };
        }
        let merged = Arc::new(merged);
        let mut errors = Vec::new();
        if merged.log_level != running.log_level {
            match (self.set_log_level)(&merged.log_level) {
                Ok(()) => *self.log_level.borrow_mut() = merged.log_level.clone(),
                Err(e) => errors.push(format!("log.level: {e}")),
            }
        }
        let cfg = merged.clone();
        let replies = self
            .ask_all(|id| ControlMsg::Apply {
                id,
                config: cfg.clone(),
            })
            .await;
        let mut answered = 0;
        for r in replies {
            if let Reply::Applied { errors: e, .. } = r {
                answered += 1;
                errors.extend(e);
            }
        }
        if answered < self.shard_peers.len() {
            errors.push(format!(
                "{} of {} shards did not confirm the reload in {ASK_TIMEOUT:?}",
                self.shard_peers.len() - answered,
                self.shard_peers.len()
            ));
        }
        *self.config.borrow_mut() = merged;
        *self.readiness.borrow_mut() = None;
        ReloadReport {
            outcome: if errors.is_empty() {
                "applied"
            } else {
                "failed"
            },
            changes,
            restart_required,
            errors,
        }
    }

    /// Tries to bind every port the new config adds (with `SO_REUSEPORT`, as shards do), so a
    /// port held by another process rejects the reload before any shard changes.
    fn check_new_ports(&self, running: &Config, new: &Config) -> Vec<String> {
        let mut errors = Vec::new();
        let mut check = |key: String, port: u16| {
            let addr = SocketAddr::new(new.bind_address, port);
            if let Err(e) = test_bind(addr) {
                errors.push(format!("{key}: cannot listen on {addr}: {e}"));
            }
        };
        if new.bootstrap_port != running.bootstrap_port {
            check("listener.bootstrap_port".into(), new.bootstrap_port);
        }
        let mut nodes: Vec<i32> = self.topology.borrow().keys().copied().collect();
        if let crate::config::BrokerPorts::Map(m) = &new.broker_ports {
            nodes.extend(m.keys().copied());
        }
        nodes.sort_unstable();
        nodes.dedup();
        for id in nodes {
            if let Some(p) = new.broker_ports.port_for(id) {
                if running.broker_ports.port_for(id) != Some(p) {
                    check(format!("listener.broker_ports (node id {id})"), p);
                }
            }
        }
        errors
    }

    /// Readiness: every shard listening, not draining, and at least one upstream broker
    /// accepting TCP connections (probed at most once a second).
    pub async fn readiness(&self) -> Readiness {
        if let Some((at, r)) = self.readiness.borrow().as_ref() {
            // A drain that began since is never hidden by the cache.
            if at.elapsed() < READINESS_TTL && !(r.ready && self.state.stop.load(Ordering::SeqCst))
            {
                return r.clone();
            }
        }
        let config = self.config();
        let draining = self.state.stop.load(Ordering::SeqCst);
        let listening = self.state.listening_shards.load(Ordering::SeqCst);
        let upstream = self.probe_upstream(&config).await;
        let reason = if draining {
            Some("draining (SIGTERM/SIGINT)".to_string())
        } else if listening < config.shards {
            Some(format!("{listening} of {} shards listening", config.shards))
        } else if upstream.is_none() {
            Some("no upstream broker accepts connections".to_string())
        } else {
            None
        };
        let r = Readiness {
            ready: reason.is_none(),
            draining,
            shards: config.shards,
            shards_listening: listening,
            upstream_reachable: upstream,
            reason,
        };
        *self.readiness.borrow_mut() = Some((Instant::now(), r.clone()));
        r
    }

    async fn probe_upstream(&self, config: &Config) -> Option<String> {
        let mut addrs = config.bootstrap_servers.clone();
        for a in self.topology.borrow().values() {
            if !addrs.contains(a) {
                addrs.push(a.clone());
            }
        }
        let timeout = config.connect_timeout.min(Duration::from_secs(1));
        for a in addrs {
            let Ok(targets) = crate::upstream::connect::resolve(&a).await else {
                continue;
            };
            for sa in targets {
                if glommio::net::TcpStream::connect_timeout(sa, timeout)
                    .await
                    .is_ok()
                {
                    return Some(a);
                }
            }
        }
        None
    }

    /// Pending reload requests from SIGHUP, polled by the control executor.
    pub async fn watch_sighup(self: Rc<Self>) {
        let mut seen = self.state.reload_requests.load(Ordering::SeqCst);
        loop {
            glommio::timer::sleep(Duration::from_millis(100)).await;
            let now = self.state.reload_requests.load(Ordering::SeqCst);
            if now != seen {
                seen = now;
                self.reload("SIGHUP").await;
            }
        }
    }
}

/// Binds `addr` with `SO_REUSEPORT` and closes it at once.
/// Whether `addr` is free: binds it WITHOUT `SO_REUSEPORT`, so the probe fails while any socket
/// holds the port, including another Sluice's shards (whose `SO_REUSEPORT` binds would otherwise
/// share the port silently with ours) and this process's own listeners.
pub(super) fn test_bind(addr: SocketAddr) -> std::io::Result<()> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())
}
