//! Upstream brokers, seen from one shard: where each node id lives ([`topology`]), connecting with
//! timeout, failover and backoff ([`connect`]), the per-shard pool of idle connections ([`pool`]),
//! and discovery of the broker list at start-up ([`discovery`]).
//!
//! Data plane; everything here is per shard and `!Send`.
//!
//! ## When a pooled connection is reused
//! Each client connection gets its own upstream connection for as long as it lives: a broker handles
//! one request of a connection at a time, so sharing would make one client's long-poll Fetch or
//! acks=all Produce block another client (head-of-line blocking), and the order of a client's
//! requests depends on them travelling over one connection. When a client connection ends cleanly
//! (it closed with nothing in flight and no unread upstream bytes), its upstream connection goes
//! back to the pool of its broker and may serve the *next* client of that broker on this shard.
//! This is safe because Sluice does not authenticate upstream connections yet: they carry no
//! identity. A broker-side mute (quota throttle) can carry over to the next client for at most
//! its throttle time. Pooled connections are checked for liveness before reuse and closed after
//! `upstream.pool_idle_timeout_ms`.

pub mod connect;
pub mod discovery;
pub mod pool;
pub mod topology;
