//! Per-shard state: configuration, topology, upstream connector and pool, node listeners, the
//! shutdown latch and connection accounting. One `Rc<Shard>` per executor; `!Send`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};

use crate::config::Config;
use crate::protocol::rewrite::AddressMap;
use crate::proxy::listener::{self, Target};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeListener {
    Bound,
    Failed,
}

/// State owned by one shard.
pub struct Shard {
    /// Shard index, 0-based.
    pub id: usize,
    /// The configuration in force.
    pub config: Rc<Config>,
    /// Node id to upstream address, as learned by this shard.
    pub topology: RefCell<Topology>,
    /// Upstream connects with backoff.
    pub connector: Connector,
    /// Idle upstream connections.
    pub pool: Pool,
    /// Set when the shard starts draining (SIGTERM/SIGINT).
    pub shutdown: Latch,
    node_listeners: RefCell<BTreeMap<i32, NodeListener>>,
    active: Cell<usize>,
    accepted: Cell<u64>,
    session_ended: Notify,
    next_conn_id: Cell<u64>,
    bootstrap_turn: Cell<usize>,
    broadcast: RefCell<Option<Broadcast>>,
    me: Weak<Shard>,
}

impl Shard {
    /// New shard state.
    pub fn new(id: usize, config: Rc<Config>) -> Rc<Shard> {
        Rc::new_cyclic(|me| Shard {
            id,
            connector: Connector::new(
                config.connect_timeout,
                config.reconnect_backoff,
                config.reconnect_backoff_max,
            ),
            pool: Pool::new(config.pool_max_idle_per_broker, config.pool_idle_timeout),
            config,
            topology: RefCell::new(Topology::default()),
            shutdown: Latch::new(),
            node_listeners: RefCell::new(BTreeMap::new()),
            active: Cell::new(0),
            accepted: Cell::new(0),
            session_ended: Notify::default(),
            next_conn_id: Cell::new(0),
            bootstrap_turn: Cell::new(0),
            broadcast: RefCell::new(None),
            me: me.clone(),
        })
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
        let mut candidates = self.config.bootstrap_servers.clone();
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

    /// Counts a new session; the returned guard uncounts it when dropped.
    pub fn session_started(self: &Rc<Self>) -> SessionGuard {
        self.active.set(self.active.get() + 1);
        self.accepted.set(self.accepted.get() + 1);
        SessionGuard {
            shard: self.clone(),
        }
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
        if let Some(port) = self.config.broker_ports.port_for(u.node_id) {
            self.ensure_node_listener(u.node_id, port);
        }
    }

    /// Makes sure this shard listens on `port` for `node_id`. Returns false when it cannot.
    pub fn ensure_node_listener(&self, node_id: i32, port: u16) -> bool {
        if let Some(state) = self.node_listeners.borrow().get(&node_id) {
            return *state == NodeListener::Bound;
        }
        let Some(me) = self.me.upgrade() else {
            return false;
        };
        if self.shutdown.is_set() {
            return false;
        }
        let addr = SocketAddr::new(self.config.bind_address, port);
        let state = match listener::bind(addr) {
            Ok(l) => {
                tracing::info!(shard = self.id, node_id, listen = %addr, "listening for broker");
                glommio::spawn_local(listener::accept_loop(me, l, Target::Node(node_id))).detach();
                NodeListener::Bound
            }
            Err(e) => {
                tracing::error!(shard = self.id, node_id, listen = %addr, error = %e,
                    "cannot listen for broker; it is left out of responses");
                NodeListener::Failed
            }
        };
        self.node_listeners.borrow_mut().insert(node_id, state);
        state == NodeListener::Bound
    }

    /// An [`AddressMap`] for rewriting one response on this shard.
    pub fn address_map(self: &Rc<Self>) -> ShardAddressMap<'_> {
        ShardAddressMap {
            shard: self,
            learned: Vec::new(),
        }
    }
}

/// Uncounts a session when dropped.
pub struct SessionGuard {
    shard: Rc<Shard>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
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
        let Some(port) = self.shard.config.broker_ports.port_for(node_id) else {
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
        Some((self.shard.config.advertised_host.clone(), i32::from(port)))
    }
}
