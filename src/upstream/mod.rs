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
//! (it closed with nothing in flight and no unread upstream bytes, not during a drain), its
//! upstream connection goes back to the pool of its broker and may serve the *next* client of
//! that broker on this shard, **only if it provably carries no identity** ([`reuse`]):
//! - a connection on which the client sent SaslHandshake or SaslAuthenticate is authenticated as
//!   that client's principal for the rest of its life; it is closed with its client, never pooled;
//! - a connection is pooled only after the broker answered a request other than ApiVersions and
//!   SASL on it with no SASL exchange, which a SASL listener never does; one that saw nothing else
//!   is closed too.
//!
//! The pool is keyed by credential and broker address ([`reuse::Credential`]), and
//! [`pool::Pool::put`] takes only a [`reuse::Poolable`] proof, which [`reuse::Usage`] alone makes:
//! no path can pool a connection past the rule. Closes of either kind are counted in `sluice_upstream_not_pooled_total{reason}`. Nothing else
//! hands an upstream connection from one client to another: sessions never reconnect upstream
//! (a lost broker ends the session), a drain closes every connection, and [`discovery`] pools
//! only its own connection, which carried one Metadata request and no credential. A broker-side
//! mute (quota throttle) can carry over to the next client for at most its throttle time. Pooled
//! connections are checked for liveness before reuse and closed after
//! `upstream.pool_idle_timeout_ms`.

pub mod connect;
pub mod discovery;
pub mod pool;
pub mod reuse;
pub mod topology;
