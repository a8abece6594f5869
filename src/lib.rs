//! # Sluice: a shard-per-core Kafka gateway
//!
//! Kafka clients connect to Sluice exactly as to a broker; Sluice forwards their requests to a real
//! upstream Kafka cluster and rewrites every broker address in the responses so that clients only
//! ever learn gateway addresses.
//!
//! ## Shards
//! One glommio `LocalExecutor` per shard, each pinned to one CPU ([`runtime`]). Every shard binds every
//! listener with `SO_REUSEPORT`, so the kernel spreads accepted connections over the shards. A client
//! connection lives and dies on the shard that accepted it, together with its upstream connection
//! ([`upstream`]): nothing on the data path crosses shards, and per-shard state is `!Send` (`Rc`,
//! `Cell`, `RefCell`). Cross-shard traffic is control plane only (topology changes), sent over
//! glommio's channel mesh.
//!
//! ## Planes
//! - Data plane: [`protocol`] (sans-io framing, header peek, targeted response rewrites),
//!   [`proxy`] (listeners, per-connection sessions, in-flight tracking), [`upstream`] (per-shard
//!   broker pools, topology).
//! - Control plane: [`config`] (parse, then prove), [`runtime`] (executors, signals, cross-shard
//!   channels, graceful drain).
//!
//! ## Life of a frame
//! 1. A shard reads client bytes into a per-connection buffer; complete frames (int32 size + payload)
//!    are found in place, with the size checked against `limits.max_frame_bytes` before anything is
//!    allocated for them.
//! 2. The request header (api key, api version, correlation id, client id) is peeked without
//!    decoding the body. An entry (correlation id, api key, api version) joins the connection's
//!    in-flight queue, except for Produce with acks=0, which gets no response.
//! 3. The unchanged bytes of every complete frame of a read are written upstream in one write, over
//!    the connection's own upstream connection, so the broker sees the client's order.
//! 4. Responses come back in order; each is matched with the head of the in-flight queue. Only the
//!    api keys whose responses carry broker addresses (Metadata, FindCoordinator, DescribeCluster,
//!    ApiVersions, Produce v10+ and Fetch v16+ with KIP-951 node endpoints, ShareFetch,
//!    ShareAcknowledge) are looked at; the rest go back to the client as the same bytes.

pub mod admin;
pub mod config;
pub mod metrics;
pub mod policy;
pub mod protocol;
pub mod proxy;
pub mod quota;
pub mod runtime;
pub mod upstream;
