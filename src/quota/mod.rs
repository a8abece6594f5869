//! Quotas following the broker's model (KIP-13 byte-rate quotas, KIP-124 request quotas counted
//! as requests per second, KIP-219 throttle-then-mute): per-shard token buckets with debt ([`TokenBucket`]) and the split
//! of a global limit into per-shard shares from reported demand ([`shares`]). Pure logic with
//! injected time; the data path and the cross-shard exchange use it. Connection limits per source
//! (broker `max.connections.per.ip`, KIP-612 rate) are [`conns`] (count) and a
//! [`Kind::Connections`] rate in the same [`QuotaTable`].

pub mod bucket;
pub mod conns;
pub mod shares;
pub mod table;

pub use bucket::{Nanos, TokenBucket};
pub use table::{Kind, QuotaTable};
