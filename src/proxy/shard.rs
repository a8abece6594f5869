//! Per-shard state: configuration in force, topology, upstream connector and pool, listeners,
//! the shutdown latch, connection accounting and metrics. One `Rc<Shard>` per executor; `!Send`.
//!
//! A reload ([`Shard::apply_config`]) swaps the config between frames: sessions read
//! [`Shard::config`] at each step, listeners whose port changed close (their connections stay)
//! and the new ports open.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::time::Instant;

use crate::config::Config;
use crate::metrics::log_budget::LogBudget;
use crate::metrics::{ShardMetrics, ShardSnapshot, UpstreamSnapshot};
use crate::protocol::rewrite::AddressMap;
use crate::proxy::admission::RefusalLog;
use crate::proxy::listener::{self, Target};
use crate::quota::conns::ConnTable;
use crate::quota::QuotaTable;
use crate::runtime::event::{Latch, Notify};
use crate::upstream::connect::Connector;
use crate::upstream::pool::Pool;
use crate::upstream::topology::{host_port, Topology};

/// A topology change, sent to the other shards over the cross-shard channels (control plane).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyUpdate {
    /// The broker's node id.
    pub node_id: i32,
    /// Its upstream `host:port`.
    pub addr: String,
}

/// Sends a topology update to every other shard.
pub type Broadcast = Box<dyn Fn(TopologyUpdate)>;

/// A listener this shard runs: its port and the latch that closes it.
struct ListenerState {
    port: u16,
    /// `None` when the bind failed (retried at the next reload).
    stop: Option<Rc<Latch>>,
}

impl ListenerState {
    fn close(&self) {
        if let Some(l) = &self.stop {
            l.set();
        }
    }
}

/// A client connection as /connections shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// Process-unique connection id.
    pub conn_id: u64,
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// `bootstrap` or `node N`.
    pub target: Target,
    /// When it was accepted.
    pub since: Instant,
    /// The upstream `host:port` once attached.
    pub upstream: Option<String>,
}

/// State owned by one shard.
pub struct Shard {
    /// Shard index, 0-based.
    pub id: usize,
    config: RefCell<Rc<Config>>,
    /// Node id to upstream address, as learned by this shard.
    pub topology: RefCell<Topology>,
    /// Upstream connects with backoff.
    pub connector: Connector,
    /// Idle upstream connections.
    pub pool: Pool,
    /// Set when the shard starts draining (SIGTERM/SIGINT).
    pub shutdown: Latch,
    /// Data-path counters.
    pub metrics: ShardMetrics,
    /// Quota buckets and, for owned keys, every shard's demand.
    pub quotas: QuotaTable,
    /// When a (rule, client id) refusal of a client id rule was last logged at warn (see
    /// [`Shard::warn_client_id_once`]).
    client_id_warned: RefCell<BTreeMap<(String, String), Instant>>,
    /// Connections open per source and quota rule, and, for owned keys, every shard's allowance.
    pub conns: ConnTable,
    /// Rate-limits the log of refused connections.
    pub refusals: RefusalLog,
    /// Rate-limits the log of sessions that ended on an error, per side and reason.
    pub log_budget: LogBudget,
    bootstrap_listener: RefCell<Option<ListenerState>>,
    node_listeners: RefCell<BTreeMap<i32, ListenerState>>,
    connections: RefCell<BTreeMap<u64, ConnInfo>>,
    active: Cell<usize>,
    accepted: Cell<u64>,
    session_ended: Notify,
    next_conn_id: Cell<u64>,
    bootstrap_turn: Cell<usize>,
    broadcast: RefCell<Option<Broadcast>>,
    me: Weak<Shard>,
}

/// How often one (rule, client id) violation of a client id rule is logged at warn per shard.
const CLIENT_ID_WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// Most (rule, client id) pairs remembered for [`Shard::warn_client_id_once`].
const CLIENT_ID_WARN_MAX: usize = 1024;

impl Shard {
    /// Whether a client id rule's violation by `client_id` should be logged at warn now: once a
    /// minute per shard, rule and client id. A refused client reconnects (librdkafka about 20
    /// times a second) and each connection violates again; the rest are logged at debug and every
    /// one is counted. At most [`CLIENT_ID_WARN_MAX`] pairs are remembered (older ones are
    /// forgotten first, then all).
    pub fn warn_client_id_once(&self, rule: &str, client_id: &str) -> bool {
        let now = Instant::now();
        let mut m = self.client_id_warned.borrow_mut();
        let key = (rule.to_string(), client_id.to_string());
        if m.get(&key)
            .is_some_and(|t| now.saturating_duration_since(*t) < CLIENT_ID_WARN_EVERY)
        {
            return false;
        }
        if m.len() >= CLIENT_ID_WARN_MAX {
            m.retain(|_, t| now.saturating_duration_since(*t) < CLIENT_ID_WARN_EVERY);
            if m.len() >= CLIENT_ID_WARN_MAX {
                m.clear();
            }
        }
        m.insert(key, now);
        true
    }

    /// New shard state.
    pub fn new(id: usize, config: Rc<Config>) -> Rc<Shard> {
        let shards = config.shards;
        Rc::new_cyclic(|me| Shard {
            id,
            connector: Connector::new(
                config.connect_timeout,
                config.reconnect_backoff,
                config.reconnect_backoff_max,
            ),
            pool: Pool::new(config.pool_max_idle_per_broker, config.pool_idle_timeout),
            config: RefCell::new(config),
            topology: RefCell::new(Topology::default()),
            shutdown: Latch::new(),
            metrics: ShardMetrics::default(),
            quotas: QuotaTable::new(id, shards),
            client_id_warned: RefCell::new(BTreeMap::new()),
            conns: ConnTable::new(id, shards),
            refusals: RefusalLog::default(),
            log_budget: LogBudget::default(),
            bootstrap_listener: RefCell::new(None),
            node_listeners: RefCell::new(BTreeMap::new()),
            connections: RefCell::new(BTreeMap::new()),
            active: Cell::new(0),
            accepted: Cell::new(0),
            session_ended: Notify::default(),
            next_conn_id: Cell::new(0),
            bootstrap_turn: Cell::new(0),
            broadcast: RefCell::new(None),
            me: me.clone(),
        })
    }

    /// The configuration in force (replaced by reloads; hold the `Rc` for one step, not a session).
    pub fn config(&self) -> Rc<Config> {
        self.config.borrow().clone()
    }

    /// Installs the function that forwards topology updates to the other shards.
    pub fn set_broadcast(&self, b: Broadcast) {
        *self.broadcast.borrow_mut() = Some(b);
    }

    /// A connection id unique within the process: shard index in the top 16 bits.
    pub fn next_conn_id(&self) -> u64 {
        let n = self.next_conn_id.get() + 1;
        self.next_conn_id.set(n);
        ((self.id as u64) << 48) | n
    }

    /// Upstream addresses that can serve a request for any broker: the bootstrap servers, then
    /// every broker this shard knows, starting at a different one each call (round robin) so
    /// bootstrap connections spread over the cluster. Failover walks the rest of the list.
    pub fn any_broker_candidates(&self) -> Vec<String> {
        let mut candidates = self.config().bootstrap_servers.clone();
        for (_, a) in self.topology.borrow().nodes() {
            if !candidates.iter().any(|c| c == a) {
                candidates.push(a.to_string());
            }
        }
        let turn = self.bootstrap_turn.get();
        self.bootstrap_turn.set(turn.wrapping_add(1));
        let n = candidates.len().max(1);
        candidates.rotate_left(turn % n);
        candidates
    }

    /// Client connections open on this shard.
    pub fn active_connections(&self) -> usize {
        self.active.get()
    }

    /// Client connections accepted by this shard since start.
    pub fn accepted_connections(&self) -> u64 {
        self.accepted.get()
    }

    /// Counts and registers a new session; the returned guard undoes both when dropped.
    pub fn session_started(
        self: &Rc<Self>,
        peer: Option<SocketAddr>,
        target: Target,
    ) -> SessionGuard {
        self.active.set(self.active.get() + 1);
        self.accepted.set(self.accepted.get() + 1);
        let conn_id = self.next_conn_id();
        self.connections.borrow_mut().insert(
            conn_id,
            ConnInfo {
                conn_id,
                peer,
                target,
                since: Instant::now(),
                upstream: None,
            },
        );
        SessionGuard {
            shard: self.clone(),
            conn_id,
        }
    }

    /// Records the upstream a session attached to.
    pub fn session_attached(&self, conn_id: u64, upstream: &str) {
        if let Some(c) = self.connections.borrow_mut().get_mut(&conn_id) {
            c.upstream = Some(upstream.to_string());
        }
    }

    /// Up to `limit` open connections, oldest first.
    pub fn connections_sample(&self, limit: usize) -> Vec<ConnInfo> {
        self.connections
            .borrow()
            .values()
            .take(limit)
            .cloned()
            .collect()
    }

    /// Waits until no session is open.
    pub async fn wait_idle(&self) {
        while self.active.get() > 0 {
            self.session_ended.notified().await;
        }
    }

    /// Records what a response taught about `node_id`; tells other shards when it is news.
    pub fn learn(&self, node_id: i32, addr: &str) {
        if self.topology.borrow_mut().learn(node_id, addr) {
            tracing::info!(
                shard = self.id,
                node_id,
                upstream = addr,
                "broker discovered"
            );
            if let Some(b) = self.broadcast.borrow().as_ref() {
                b(TopologyUpdate {
                    node_id,
                    addr: addr.to_string(),
                });
            }
        }
    }

    /// Applies an update from another shard: learn the address, open the node's listener.
    pub fn apply_update(&self, u: &TopologyUpdate) {
        self.topology.borrow_mut().learn(u.node_id, &u.addr);
        if let Some(port) = self.config().broker_ports.port_for(u.node_id) {
            self.ensure_node_listener(u.node_id, port);
        }
    }

    /// Binds `port` and starts its accept loop; the latch closes it.
    fn open_listener(&self, port: u16, target: Target) -> std::io::Result<Rc<Latch>> {
        let me = self
            .me
            .upgrade()
            .ok_or_else(|| std::io::Error::other("shard is gone"))?;
        let addr = SocketAddr::new(self.config().bind_address, port);
        let l = listener::bind(addr)?;
        let stop = Rc::new(Latch::new());
        glommio::spawn_local(listener::accept_loop(me, l, target, stop.clone())).detach();
        tracing::info!(shard = self.id, ?target, listen = %addr, "listening");
        Ok(stop)
    }

    /// Binds the bootstrap listener at the configured port.
    ///
    /// # Errors
    /// The bind error.
    pub fn bind_bootstrap(&self) -> std::io::Result<()> {
        let port = self.config().bootstrap_port;
        let stop = self.open_listener(port, Target::Bootstrap)?;
        if let Some(old) = self.bootstrap_listener.replace(Some(ListenerState {
            port,
            stop: Some(stop),
        })) {
            old.close();
        }
        Ok(())
    }

    /// Makes sure this shard listens on `port` for `node_id`. Returns false when it cannot.
    pub fn ensure_node_listener(&self, node_id: i32, port: u16) -> bool {
        if let Some(state) = self.node_listeners.borrow().get(&node_id) {
            if state.port == port {
                return state.stop.is_some();
            }
        }
        if self.shutdown.is_set() {
            return false;
        }
        let stop = match self.open_listener(port, Target::Node(node_id)) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::error!(shard = self.id, node_id, port, error = %e,
                    "cannot listen for broker; it is left out of responses until a reload");
                None
            }
        };
        let bound = stop.is_some();
        if let Some(old) = self
            .node_listeners
            .borrow_mut()
            .insert(node_id, ListenerState { port, stop })
        {
            old.close();
        }
        bound
    }

    /// Listeners bound now (bootstrap and node ports).
    pub fn listeners_bound(&self) -> usize {
        let boot = self
            .bootstrap_listener
            .borrow()
            .as_ref()
            .is_some_and(|l| l.stop.is_some());
        usize::from(boot)
            + self
                .node_listeners
                .borrow()
                .values()
                .filter(|l| l.stop.is_some())
                .count()
    }

    /// Puts a reloaded config in force (live keys only; see [`crate::config::reload`]): limits and
    /// upstream settings apply from the next frame or connect; listeners whose port changed
    /// close (their connections stay) and reopen on the new port; failed binds are retried.
    /// Returns what could not be applied.
    pub fn apply_config(&self, new: Rc<Config>) -> Vec<String> {
        let mut errors = Vec::new();
        self.connector.set_params(
            new.connect_timeout,
            new.reconnect_backoff,
            new.reconnect_backoff_max,
        );
        self.pool
            .set_limits(new.pool_max_idle_per_broker, new.pool_idle_timeout);
        *self.config.borrow_mut() = new.clone();
        if self.shutdown.is_set() {
            return errors;
        }

        let boot_port = self.bootstrap_listener.borrow().as_ref().map(|l| l.port);
        if boot_port != Some(new.bootstrap_port) {
            if let Err(e) = self.bind_bootstrap() {
                errors.push(format!(
                    "shard {}: listener.bootstrap_port: cannot listen on {}: {e}",
                    self.id,
                    new.bootstrap_bind()
                ));
            }
        }

        // Node listeners: every node this shard knows or has a listener for.
        let mut nodes: Vec<i32> = self.node_listeners.borrow().keys().copied().collect();
        nodes.extend(self.topology.borrow().nodes().map(|(id, _)| id));
        if let crate::config::BrokerPorts::Map(m) = &new.broker_ports {
            nodes.extend(m.keys().copied());
        }
        nodes.sort_unstable();
        nodes.dedup();
        for id in nodes {
            // A bind that failed before is tried again.
            self.node_listeners
                .borrow_mut()
                .retain(|n, l| *n != id || l.stop.is_some());
            match new.broker_ports.port_for(id) {
                Some(port) => {
                    if !self.ensure_node_listener(id, port) {
                        errors.push(format!(
                            "shard {}: cannot listen on port {port} for node id {id}",
                            self.id
                        ));
                    }
                }
                None => {
                    if let Some(old) = self.node_listeners.borrow_mut().remove(&id) {
                        tracing::info!(
                            shard = self.id,
                            node_id = id,
                            port = old.port,
                            "broker port removed by reload; listener closed"
                        );
                        old.close();
                    }
                }
            }
        }
        errors
    }

    /// Counters and gauges of this shard, for a scrape.
    pub fn snapshot(&self) -> ShardSnapshot {
        let topology = self.topology.borrow();
        let node_of = |addr: &str| topology.nodes().find(|(_, a)| *a == addr).map(|(id, _)| id);
        let mut upstream: BTreeMap<String, UpstreamSnapshot> = BTreeMap::new();
        for (addr, s) in self.connector.stats() {
            let e = upstream.entry(addr.clone()).or_default();
            e.connects = s.connects;
            e.connect_failures = s.failures;
        }
        for (addr, idle, reuses) in self.pool.stats() {
            let e = upstream.entry(addr).or_default();
            e.pool_idle = idle;
            e.pool_reuses = reuses;
        }
        let upstream = upstream
            .into_iter()
            .map(|(addr, mut u)| {
                u.node_id = node_of(&addr);
                u.addr = addr;
                u
            })
            .collect();
        ShardSnapshot {
            shard: self.id,
            active_connections: self.active.get() as u64,
            accepted_connections: self.accepted.get(),
            listeners: self.listeners_bound() as u64,
            metrics: self.metrics.snapshot(),
            upstream,
        }
    }

    /// Closes every listener (drain).
    pub fn close_listeners(&self) {
        if let Some(l) = self.bootstrap_listener.borrow().as_ref() {
            l.close();
        }
        for l in self.node_listeners.borrow().values() {
            l.close();
        }
    }

    /// An [`AddressMap`] for rewriting one response on this shard.
    pub fn address_map(self: &Rc<Self>) -> ShardAddressMap<'_> {
        ShardAddressMap {
            shard: self,
            learned: Vec::new(),
        }
    }
}

/// Uncounts and unregisters a session when dropped.
pub struct SessionGuard {
    shard: Rc<Shard>,
    /// The session's connection id.
    pub conn_id: u64,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.shard.connections.borrow_mut().remove(&self.conn_id);
        self.shard
            .active
            .set(self.shard.active.get().saturating_sub(1));
        self.shard.session_ended.notify();
    }
}

/// Maps upstream endpoints to this gateway's port-per-broker endpoints, opening node listeners
/// as needed; call [`ShardAddressMap::finish`] to record what was learned.
pub struct ShardAddressMap<'a> {
    shard: &'a Rc<Shard>,
    learned: Vec<(i32, String)>,
}

impl ShardAddressMap<'_> {
    /// Records the learned upstream addresses in the shard's topology (and tells other shards).
    pub fn finish(self) -> usize {
        let n = self.learned.len();
        for (id, addr) in &self.learned {
            self.shard.learn(*id, addr);
        }
        n
    }
}

impl AddressMap for ShardAddressMap<'_> {
    fn map_broker(
        &mut self,
        node_id: i32,
        upstream_host: &str,
        upstream_port: i32,
    ) -> Option<(String, i32)> {
        let config = self.shard.config();
        let Some(port) = config.broker_ports.port_for(node_id) else {
            tracing::warn!(
                shard = self.shard.id,
                node_id,
                "broker has no gateway port; left out of the response"
            );
            return None;
        };
        if !self.shard.ensure_node_listener(node_id, port) {
            return None;
        }
        self.learned
            .push((node_id, host_port(upstream_host, upstream_port)));
        Some((config.advertised_host.clone(), i32::from(port)))
    }
}
