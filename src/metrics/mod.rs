//! Metrics: plain per-shard counters and fixed-bucket histograms on the data path, gathered into
//! a [`ShardSnapshot`] over the cross-shard channels at scrape time and rendered in the
//! Prometheus/OpenMetrics text format by [`render`] (control plane).
//!
//! Recording is a `Cell` increment on the shard that owns the connection: no atomics, no locks,
//! no allocation. Label sets are bounded: api key (0..=126, larger keys share the slot `other`),
//! api version (0..=30, larger share `other`), shard index, node id, side and a fixed reason
//! vocabulary. No per-topic or per-client label.

pub mod log_budget;
mod render;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

pub use render::{render, ControlMetrics, Gathered};

/// Api keys with a slot of their own; larger keys are counted in the last slot.
pub const API_KEY_SLOTS: usize = 128;
/// Api versions with a slot of their own; larger versions are counted in the last slot.
pub const VERSION_SLOTS: usize = 32;
/// Upper bounds of the latency histogram buckets, in microseconds (the last bucket is +Inf).
pub const LATENCY_BUCKETS_US: [u64; 19] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// The slot of an api key: its value for 0..=126, the last slot otherwise (incl. negative).
pub fn api_key_slot(api_key: i16) -> usize {
    usize::try_from(api_key)
        .ok()
        .filter(|k| *k < API_KEY_SLOTS - 1)
        .unwrap_or(API_KEY_SLOTS - 1)
}

fn version_slot(api_version: i16) -> usize {
    usize::try_from(api_version)
        .ok()
        .filter(|v| *v < VERSION_SLOTS - 1)
        .unwrap_or(VERSION_SLOTS - 1)
}

/// Why a client connection was closed right after accept (the `reason` label of
/// `sluice_connections_refused_total`), indexed by [`Refusal`].
pub const REFUSAL_REASONS: [&str; 3] = [
    "max_connections_per_shard",
    "max_connections_per_source",
    "connection_rate",
];

/// Why a client connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `limits.max_connections_per_shard` reached on the shard that accepted it.
    ShardLimit = 0,
    /// A quota rule's `max_connections` reached for its source address (all shards).
    SourceLimit = 1,
    /// A quota rule's `connections_per_s` exceeded for its source address (all shards).
    ConnectionRate = 2,
}

impl Refusal {
    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        REFUSAL_REASONS[self as usize]
    }
}

/// Why a cleanly ended session's upstream connection was closed instead of pooled (the `reason`
/// label of `sluice_upstream_not_pooled`), indexed by [`NotPooled`].
pub const NOT_POOLED_REASONS: [&str; 2] = ["sasl", "unverified"];

/// Why an upstream connection may not serve another client (see `crate::upstream::reuse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotPooled {
    /// A SASL exchange took place on it: it carries its client's principal.
    Sasl = 0,
    /// The broker answered nothing on it that proves it unauthenticated (only ApiVersions, or
    /// nothing at all).
    Unverified = 1,
}

impl NotPooled {
    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        NOT_POOLED_REASONS[self as usize]
    }
}

/// Byte counters by direction, as seen from the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Read from clients.
    DownstreamIn = 0,
    /// Written to clients.
    DownstreamOut = 1,
    /// Read from brokers.
    UpstreamIn = 2,
    /// Written to brokers.
    UpstreamOut = 3,
}

impl Direction {
    /// `(side, direction)` labels.
    pub fn labels(i: usize) -> (&'static str, &'static str) {
        match i {
            0 => ("downstream", "in"),
            1 => ("downstream", "out"),
            2 => ("upstream", "in"),
            _ => ("upstream", "out"),
        }
    }
}

/// A latency histogram with the fixed [`LATENCY_BUCKETS_US`] buckets.
#[derive(Debug)]
pub struct Histogram {
    buckets: [Cell<u64>; LATENCY_BUCKETS_US.len() + 1],
    sum_us: Cell<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| Cell::new(0)),
            sum_us: Cell::new(0),
        }
    }
}

impl Histogram {
    /// Records one observation.
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BUCKETS_US.partition_point(|b| *b < us);
        self.buckets[i].set(self.buckets[i].get() + 1);
        self.sum_us.set(self.sum_us.get().saturating_add(us));
    }

    fn snapshot(&self) -> Option<HistogramSnapshot> {
        let buckets: Vec<u64> = self.buckets.iter().map(Cell::get).collect();
        let count: u64 = buckets.iter().sum();
        (count > 0).then(|| HistogramSnapshot {
            buckets,
            sum_us: self.sum_us.get(),
            count,
        })
    }
}

/// A copy of a [`Histogram`]: per-bucket (not cumulative) counts, in [`LATENCY_BUCKETS_US`] order
/// with +Inf last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    pub buckets: Vec<u64>,
    pub sum_us: u64,
    pub count: u64,
}

/// Counters of one shard. Owned by the shard (`!Sync`); read only through [`ShardMetrics::snapshot`].
#[derive(Debug)]
pub struct ShardMetrics {
    requests: Box<[Cell<u64>]>,
    responses: Box<[Cell<u64>]>,
    gateway_latency: Box<[Histogram]>,
    upstream_latency: Box<[Histogram]>,
    broker_throttle_ms: Box<[Cell<u64>]>,
    bytes: [Cell<u64>; 4],
    refused: [Cell<u64>; REFUSAL_REASONS.len()],
    not_pooled: [Cell<u64>; NOT_POOLED_REASONS.len()],
    errors: RefCell<BTreeMap<(&'static str, &'static str), u64>>,
    policy: RefCell<BTreeMap<(String, &'static str), u64>>,
    throttle: RefCell<BTreeMap<(String, &'static str), Duration>>,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        let cells = |n: usize| (0..n).map(|_| Cell::new(0)).collect::<Box<[_]>>();
        let hists = || (0..API_KEY_SLOTS).map(|_| Histogram::default()).collect();
        Self {
            requests: cells(API_KEY_SLOTS * VERSION_SLOTS),
            responses: cells(API_KEY_SLOTS * VERSION_SLOTS),
            gateway_latency: hists(),
            upstream_latency: hists(),
            broker_throttle_ms: cells(API_KEY_SLOTS),
            bytes: std::array::from_fn(|_| Cell::new(0)),
            refused: std::array::from_fn(|_| Cell::new(0)),
            not_pooled: std::array::from_fn(|_| Cell::new(0)),
            errors: RefCell::new(BTreeMap::new()),
            policy: RefCell::new(BTreeMap::new()),
            throttle: RefCell::new(BTreeMap::new()),
        }
    }
}

/// Adds `v` to the entry of (`rule`, `label`); the rule name is copied only for a new entry.
fn add_by_rule<V: std::ops::AddAssign>(
    m: &mut BTreeMap<(String, &'static str), V>,
    rule: &str,
    label: &'static str,
    v: V,
) {
    match m.iter_mut().find(|((r, l), _)| r == rule && *l == label) {
        Some((_, total)) => *total += v,
        None => {
            m.insert((rule.to_string(), label), v);
        }
    }
}

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get().wrapping_add(n));
}

impl ShardMetrics {
    /// One request received from a client (forwarded or answered by Sluice).
    pub fn request(&self, api_key: i16, api_version: i16) {
        bump(
            &self.requests[api_key_slot(api_key) * VERSION_SLOTS + version_slot(api_version)],
            1,
        );
    }

    /// One response written to a client.
    pub fn response(&self, api_key: i16, api_version: i16) {
        bump(
            &self.responses[api_key_slot(api_key) * VERSION_SLOTS + version_slot(api_version)],
            1,
        );
    }

    /// Latency of one request: time spent in the gateway (both ways) and the upstream round trip.
    pub fn latency(&self, api_key: i16, gateway: Duration, upstream: Duration) {
        let k = api_key_slot(api_key);
        self.gateway_latency[k].record(gateway);
        self.upstream_latency[k].record(upstream);
    }

    /// Latency of a request Sluice answered itself (no upstream round trip).
    pub fn local_latency(&self, api_key: i16, gateway: Duration) {
        self.gateway_latency[api_key_slot(api_key)].record(gateway);
    }

    /// `throttle_time_ms` a broker reported in a response.
    pub fn broker_throttle(&self, api_key: i16, ms: i32) {
        if ms > 0 {
            bump(
                &self.broker_throttle_ms[api_key_slot(api_key)],
                u64::from(ms.unsigned_abs()),
            );
        }
    }

    /// Bytes moved in one direction.
    pub fn bytes(&self, d: Direction, n: usize) {
        bump(&self.bytes[d as usize], n as u64);
    }

    /// A connection closed right after accept, and why.
    pub fn refused(&self, why: Refusal) {
        bump(&self.refused[why as usize], 1);
    }

    /// An upstream connection closed with its cleanly ended client instead of pooled, and why.
    pub fn not_pooled(&self, why: NotPooled) {
        bump(&self.not_pooled[why as usize], 1);
    }

    /// A session that ended with an error, by side and reason (both from fixed vocabularies).
    pub fn error(&self, side: &'static str, reason: &'static str) {
        *self.errors.borrow_mut().entry((side, reason)).or_insert(0) += 1;
    }

    /// A request that violated policy rule `rule` (names come from the config: a bounded set),
    /// handled with `action` (`reject` or `log`).
    pub fn policy_violation(&self, rule: &str, action: &'static str) {
        add_by_rule(&mut self.policy.borrow_mut(), rule, action, 1);
    }

    /// A quota delay imposed by rule `rule` (config names: a bounded set) on `kind`.
    pub fn throttle(&self, rule: &str, kind: &'static str, d: Duration) {
        add_by_rule(&mut self.throttle.borrow_mut(), rule, kind, d);
    }

    /// Copies the non-zero counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let by_key_version = |cells: &[Cell<u64>]| {
            cells
                .iter()
                .enumerate()
                .filter(|(_, c)| c.get() > 0)
                .map(|(i, c)| {
                    (
                        (i / VERSION_SLOTS) as u16,
                        (i % VERSION_SLOTS) as u16,
                        c.get(),
                    )
                })
                .collect()
        };
        let hists = |h: &[Histogram]| {
            h.iter()
                .enumerate()
                .filter_map(|(k, h)| h.snapshot().map(|s| (k as u16, s)))
                .collect()
        };
        MetricsSnapshot {
            requests: by_key_version(&self.requests),
            responses: by_key_version(&self.responses),
            gateway_latency: hists(&self.gateway_latency),
            upstream_latency: hists(&self.upstream_latency),
            broker_throttle_ms: self
                .broker_throttle_ms
                .iter()
                .enumerate()
                .filter(|(_, c)| c.get() > 0)
                .map(|(k, c)| (k as u16, c.get()))
                .collect(),
            bytes: std::array::from_fn(|i| self.bytes[i].get()),
            refused: std::array::from_fn(|i| self.refused[i].get()),
            not_pooled: std::array::from_fn(|i| self.not_pooled[i].get()),
            errors: self
                .errors
                .borrow()
                .iter()
                .map(|((s, r), n)| (*s, *r, *n))
                .collect(),
            policy_violations: self
                .policy
                .borrow()
                .iter()
                .map(|((r, a), n)| (r.clone(), *a, *n))
                .collect(),
            throttle: self
                .throttle
                .borrow()
                .iter()
                .map(|((r, k), d)| (r.clone(), *k, d.as_secs_f64()))
                .collect(),
        }
    }
}

/// The data-path counters of one shard at one instant (`Send`, for the cross-shard channels).
/// Api key and version are slots (see [`API_KEY_SLOTS`], [`VERSION_SLOTS`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    pub requests: Vec<(u16, u16, u64)>,
    pub responses: Vec<(u16, u16, u64)>,
    pub gateway_latency: Vec<(u16, HistogramSnapshot)>,
    pub upstream_latency: Vec<(u16, HistogramSnapshot)>,
    pub broker_throttle_ms: Vec<(u16, u64)>,
    pub bytes: [u64; 4],
    /// Connections refused at accept, indexed as [`REFUSAL_REASONS`].
    pub refused: [u64; REFUSAL_REASONS.len()],
    /// Upstream connections closed instead of pooled, indexed as [`NOT_POOLED_REASONS`].
    pub not_pooled: [u64; NOT_POOLED_REASONS.len()],
    pub errors: Vec<(&'static str, &'static str, u64)>,
    /// (rule, action, count)
    pub policy_violations: Vec<(String, &'static str, u64)>,
    /// (rule, kind, seconds of delay imposed)
    pub throttle: Vec<(String, &'static str, f64)>,
}

/// Upstream connection counters of one shard for one broker address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamSnapshot {
    /// Node id, when the address belongs to a known broker.
    pub node_id: Option<i32>,
    /// Upstream `host:port`.
    pub addr: String,
    pub connects: u64,
    pub connect_failures: u64,
    pub pool_reuses: u64,
    pub pool_idle: u64,
}

/// Everything one shard reports at a scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardSnapshot {
    pub shard: usize,
    pub active_connections: u64,
    pub accepted_connections: u64,
    pub listeners: u64,
    pub metrics: MetricsSnapshot,
    pub upstream: Vec<UpstreamSnapshot>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded() {
        assert_eq!(api_key_slot(0), 0);
        assert_eq!(api_key_slot(126), 126);
        assert_eq!(api_key_slot(127), 127);
        assert_eq!(api_key_slot(i16::MAX), 127);
        assert_eq!(api_key_slot(-1), 127);
        assert_eq!(version_slot(30), 30);
        assert_eq!(version_slot(31), 31);
        assert_eq!(version_slot(400), 31);
    }

    #[test]
    fn histogram_buckets_by_upper_bound() {
        let h = Histogram::default();
        h.record(Duration::from_micros(10)); // le 10
        h.record(Duration::from_micros(11)); // le 25
        h.record(Duration::from_secs(60)); // +Inf
        let s = h.snapshot().expect("non-empty");
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets[0], 1);
        assert_eq!(s.buckets[1], 1);
        assert_eq!(s.buckets[LATENCY_BUCKETS_US.len()], 1);
        assert_eq!(s.sum_us, 10 + 11 + 60_000_000);
        assert!(Histogram::default().snapshot().is_none());
    }

    #[test]
    fn snapshot_keeps_only_nonzero() {
        let m = ShardMetrics::default();
        m.request(0, 9);
        m.request(0, 9);
        m.request(300, 2);
        m.response(18, 3);
        m.bytes(Direction::UpstreamOut, 100);
        m.error("downstream", "client_frame");
        m.error("downstream", "client_frame");
        let s = m.snapshot();
        assert_eq!(s.requests, vec![(0, 9, 2), (127, 2, 1)]);
        assert_eq!(s.responses, vec![(18, 3, 1)]);
        assert_eq!(s.bytes, [0, 0, 0, 100]);
        assert_eq!(s.errors, vec![("downstream", "client_frame", 2)]);
    }
}
