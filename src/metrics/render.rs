//! Rendering gathered shard snapshots in the OpenMetrics text format (prometheus-client's
//! encoder), control plane. The metric set is documented in README.md ("Metrics").

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kafka_protocol::messages::ApiKey;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{
    Direction, HistogramSnapshot, ShardSnapshot, API_KEY_SLOTS, LATENCY_BUCKETS_US, VERSION_SLOTS,
};

/// Counters kept by the control executor (not per shard).
#[derive(Debug, Clone, Default)]
pub struct ControlMetrics {
    /// Shards configured.
    pub shards: usize,
    /// Config reloads by outcome (`applied`, `unchanged`, `rejected`, `failed`).
    pub reloads: BTreeMap<&'static str, u64>,
    /// Unix time of the last reload that applied, or of start-up.
    pub last_reload_success_unix: f64,
    /// Whether /readyz answers ready.
    pub ready: bool,
    /// Whether a drain (SIGTERM/SIGINT) is under way.
    pub draining: bool,
}

/// What one scrape gathered: every shard that answered, plus control-plane counters.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    pub shards: Vec<ShardSnapshot>,
    pub control: ControlMetrics,
}

fn api_name(slot: u16) -> String {
    if usize::from(slot) == API_KEY_SLOTS - 1 {
        return "other".into();
    }
    i16::try_from(slot)
        .ok()
        .and_then(|k| ApiKey::try_from(k).ok())
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|| "unknown".into())
}

fn slot_label(slot: u16, slots: usize) -> String {
    if usize::from(slot) == slots - 1 {
        "other".into()
    } else {
        slot.to_string()
    }
}

fn key_labels(slot: u16) -> Vec<(&'static str, String)> {
    vec![
        ("api_key", slot_label(slot, API_KEY_SLOTS)),
        ("api_name", api_name(slot)),
    ]
}

impl prometheus_client::collector::Collector for Gathered {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = &self.control;
        let shards = &self.shards;

        plain_gauge(
            &mut enc,
            "sluice_shards",
            "Shards configured.",
            c.shards as i64,
        )?;
        plain_gauge(
            &mut enc,
            "sluice_scrape_shards_answered",
            "Shards that answered this scrape within the timeout.",
            shards.len() as i64,
        )?;
        plain_gauge(
            &mut enc,
            "sluice_ready",
            "1 when /readyz answers ready.",
            i64::from(c.ready),
        )?;
        plain_gauge(
            &mut enc,
            "sluice_draining",
            "1 while a graceful drain (SIGTERM/SIGINT) is under way.",
            i64::from(c.draining),
        )?;

        // Requests and responses by api key and version, summed over shards.
        for (name, help, pick) in [
            (
                "sluice_requests",
                "Requests received from clients, by api key and version.",
                (|s: &ShardSnapshot| &s.metrics.requests) as fn(&ShardSnapshot) -> &Vec<_>,
            ),
            (
                "sluice_responses",
                "Responses written to clients, by api key and version.",
                |s: &ShardSnapshot| &s.metrics.responses,
            ),
        ] {
            let mut sum: BTreeMap<(u16, u16), u64> = BTreeMap::new();
            for s in shards {
                for (k, v, n) in pick(s) {
                    *sum.entry((*k, *v)).or_default() += n;
                }
            }
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for ((k, v), n) in sum {
                let mut labels = key_labels(k);
                labels.push(("api_version", slot_label(v, VERSION_SLOTS)));
                m.encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }

        for (name, help, pick) in [
            (
                "sluice_request_gateway_latency_seconds",
                "Time a request and its response spent in Sluice (both ways), by api key.",
                (|s: &ShardSnapshot| &s.metrics.gateway_latency) as fn(&ShardSnapshot) -> &Vec<_>,
            ),
            (
                "sluice_request_upstream_latency_seconds",
                "Upstream round trip: request written to the broker until its response was read.",
                |s: &ShardSnapshot| &s.metrics.upstream_latency,
            ),
        ] {
            let mut sum: BTreeMap<u16, HistogramSnapshot> = BTreeMap::new();
            for s in shards {
                for (k, h) in pick(s) {
                    let e = sum.entry(*k).or_insert_with(|| HistogramSnapshot {
                        buckets: vec![0; LATENCY_BUCKETS_US.len() + 1],
                        sum_us: 0,
                        count: 0,
                    });
                    for (a, b) in e.buckets.iter_mut().zip(&h.buckets) {
                        *a += b;
                    }
                    e.sum_us += h.sum_us;
                    e.count += h.count;
                }
            }
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for (k, h) in sum {
                let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS_US
                    .iter()
                    .map(|us| *us as f64 / 1e6)
                    .chain(std::iter::once(f64::MAX))
                    .zip(h.buckets.iter().copied())
                    .collect();
                m.encode_family(&key_labels(k))?
                    .encode_histogram::<NoLabelSet>(
                        h.sum_us as f64 / 1e6,
                        h.count,
                        &buckets,
                        None,
                    )?;
            }
        }

        {
            let mut sum: BTreeMap<u16, u64> = BTreeMap::new();
            for s in shards {
                for (k, ms) in &s.metrics.broker_throttle_ms {
                    *sum.entry(*k).or_default() += ms;
                }
            }
            let mut m = enc.encode_descriptor(
                "sluice_broker_throttle_seconds",
                "throttle_time_ms reported by brokers in Produce and Fetch responses (KIP-219), summed.",
                None,
                MetricType::Counter,
            )?;
            for (k, ms) in sum {
                m.encode_family(&key_labels(k))?
                    .encode_counter::<NoLabelSet, _, u64>(&(ms as f64 / 1e3), None)?;
            }
        }

        let mut m = enc.encode_descriptor(
            "sluice_bytes",
            "Bytes read and written, by shard, side (downstream = clients, upstream = brokers) and direction.",
            None,
            MetricType::Counter,
        )?;
        for s in shards {
            for (i, n) in s.metrics.bytes.iter().enumerate() {
                let (side, dir) = Direction::labels(i);
                let labels = [
                    ("shard", s.shard.to_string()),
                    ("side", side.to_string()),
                    ("direction", dir.to_string()),
                ];
                m.encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(n, None)?;
            }
        }

        let per_shard = |f: fn(&ShardSnapshot) -> u64| {
            shards
                .iter()
                .map(move |s| ([("shard", s.shard.to_string())], f(s) as i64))
        };
        gauge(
            &mut enc,
            "sluice_connections_active",
            "Client connections open, by shard.",
            per_shard(|s| s.active_connections),
        )?;
        counter(
            &mut enc,
            "sluice_connections_accepted",
            "Client connections accepted, by shard (SO_REUSEPORT spread).",
            per_shard(|s| s.accepted_connections),
        )?;
        counter_by_shard_and_reason(
            &mut enc,
            "sluice_connections_refused",
            "Client connections closed right after accept, by shard and reason (max_connections_per_shard: limits.max_connections_per_shard; max_connections_per_source, connection_rate: a [[policy.quota]] connection limit).",
            &crate::metrics::REFUSAL_REASONS,
            shards,
            |s| &s.metrics.refused,
        )?;
        counter_by_shard_and_reason(
            &mut enc,
            "sluice_upstream_not_pooled",
            "Upstream connections closed with their cleanly ended client instead of pooled, by shard and reason (sasl: a SASL exchange ran on it, it carries a principal; unverified: the broker answered nothing on it but ApiVersions).",
            &crate::metrics::NOT_POOLED_REASONS,
            shards,
            |s| &s.metrics.not_pooled,
        )?;
        gauge(
            &mut enc,
            "sluice_listeners",
            "Listeners bound (bootstrap and per-broker ports), by shard.",
            per_shard(|s| s.listeners),
        )?;

        let mut upstream: BTreeMap<String, [u64; 4]> = BTreeMap::new();
        for s in shards {
            for u in &s.upstream {
                let node = u
                    .node_id
                    .map_or_else(|| "unknown".to_string(), |n| n.to_string());
                let e = upstream.entry(node).or_default();
                e[0] += u.connects;
                e[1] += u.connect_failures;
                e[2] += u.pool_reuses;
                e[3] += u.pool_idle;
            }
        }
        for (i, (name, help, kind)) in [
            (
                "sluice_upstream_connects",
                "Upstream TCP connections made, by node id (unknown: a bootstrap address not yet matched to a node).",
                MetricType::Counter,
            ),
            (
                "sluice_upstream_connect_failures",
                "Upstream connects that failed (refused, timed out, unresolvable), by node id.",
                MetricType::Counter,
            ),
            (
                "sluice_upstream_pool_reuses",
                "Client connections served by a pooled upstream connection, by node id.",
                MetricType::Counter,
            ),
            (
                "sluice_upstream_pool_idle_connections",
                "Idle pooled upstream connections, by node id (all shards).",
                MetricType::Gauge,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let mut m = enc.encode_descriptor(name, help, None, kind)?;
            for (node, v) in &upstream {
                let labels = [("node_id", node.as_str())];
                let mut f = m.encode_family(&labels)?;
                if matches!(kind, MetricType::Gauge) {
                    f.encode_gauge(&(v[i] as i64))?;
                } else {
                    f.encode_counter::<NoLabelSet, _, u64>(&v[i], None)?;
                }
            }
        }

        counter_by_two(
            &mut enc,
            "sluice_connection_errors",
            "Client connections closed on an error, by side (downstream, upstream, gateway) and reason.",
            ("side", "reason"),
            shards
                .iter()
                .flat_map(|s| s.metrics.errors.iter().map(|(a, b, n)| (*a, *b, *n))),
        )?;
        counter_by_two(
            &mut enc,
            "sluice_policy_violations",
            "Requests that violated a policy rule, by rule name (from the config) and action (reject, log).",
            ("rule", "action"),
            shards.iter().flat_map(|s| {
                s.metrics
                    .policy_violations
                    .iter()
                    .map(|(r, a, n)| (r.as_str(), *a, *n))
            }),
        )?;
        counter_by_two(
            &mut enc,
            "sluice_throttle_seconds",
            "Delay Sluice's quotas imposed on clients (throttle_time_ms sent, connection muted), by rule and kind.",
            ("rule", "kind"),
            shards
                .iter()
                .flat_map(|s| s.metrics.throttle.iter().map(|(r, k, t)| (r.as_str(), *k, *t))),
        )?;

        let mut m = enc.encode_descriptor(
            "sluice_config_reloads",
            "Config reloads (SIGHUP, POST /reload) by outcome.",
            None,
            MetricType::Counter,
        )?;
        for outcome in ["applied", "unchanged", "rejected", "failed"] {
            let n = c.reloads.get(outcome).copied().unwrap_or(0);
            m.encode_family(&[("outcome", outcome)])?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        let mut m = enc.encode_descriptor(
            "sluice_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful reload (or of start-up).",
            None,
            MetricType::Gauge,
        )?;
        m.encode_gauge(&c.last_reload_success_unix)?;
        Ok(())
    }
}

/// A counter labelled by two label values, summing the samples of every shard per label pair.
fn counter_by_two<'a, V>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    (first, second): (&str, &str),
    samples: impl Iterator<Item = (&'a str, &'a str, V)>,
) -> Result<(), std::fmt::Error>
where
    V: Default + std::ops::AddAssign + prometheus_client::encoding::EncodeCounterValue,
{
    let mut sum: BTreeMap<(&str, &str), V> = BTreeMap::new();
    for (a, b, v) in samples {
        *sum.entry((a, b)).or_default() += v;
    }
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for ((a, b), v) in sum {
        m.encode_family(&[(first, a), (second, b)])?
            .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
    }
    Ok(())
}

fn plain_gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: i64,
) -> Result<(), std::fmt::Error> {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&v)
}

/// A counter labelled by shard and by a fixed `reason` vocabulary: `values(shard)[i]` is the
/// count of `reasons[i]`.
fn counter_by_shard_and_reason(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    reasons: &[&str],
    shards: &[ShardSnapshot],
    values: fn(&ShardSnapshot) -> &[u64],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for s in shards {
        for (reason, n) in reasons.iter().zip(values(s)) {
            let labels = [
                ("shard", s.shard.to_string()),
                ("reason", reason.to_string()),
            ];
            m.encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(n, None)?;
        }
    }
    Ok(())
}

fn gauge<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (L, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (l, v) in values {
        m.encode_family(&l)?.encode_gauge(&v)?;
    }
    Ok(())
}

fn counter<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (L, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (l, v) in values {
        m.encode_family(&l)?
            .encode_counter::<NoLabelSet, _, u64>(&v.unsigned_abs(), None)?;
    }
    Ok(())
}

/// Renders `g` in the OpenMetrics text format (content type
/// `application/openmetrics-text; version=1.0.0; charset=utf-8`).
pub fn render(g: Gathered) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(g));
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
        out.clear();
        let _ = writeln!(out, "# metrics encoding failed");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ShardMetrics, UpstreamSnapshot};
    use std::time::Duration;

    #[test]
    fn renders_summed_counters_and_histograms() {
        let a = ShardMetrics::default();
        a.request(0, 9);
        a.response(0, 9);
        a.latency(0, Duration::from_micros(40), Duration::from_micros(900));
        a.bytes(Direction::DownstreamIn, 10);
        let b = ShardMetrics::default();
        b.request(0, 9);
        b.error("upstream", "upstream_closed");
        let g = Gathered {
            shards: vec![
                ShardSnapshot {
                    shard: 0,
                    active_connections: 2,
                    accepted_connections: 3,
                    listeners: 4,
                    metrics: a.snapshot(),
                    upstream: vec![UpstreamSnapshot {
                        node_id: Some(1),
                        addr: "k:9092".into(),
                        connects: 5,
                        ..Default::default()
                    }],
                },
                ShardSnapshot {
                    shard: 1,
                    metrics: b.snapshot(),
                    ..Default::default()
                },
            ],
            control: ControlMetrics {
                shards: 2,
                ..Default::default()
            },
        };
        let text = render(g);
        assert!(
            text.contains(
                "sluice_requests_total{api_key=\"0\",api_name=\"Produce\",api_version=\"9\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains(
            "sluice_responses_total{api_key=\"0\",api_name=\"Produce\",api_version=\"9\"} 1"
        ));
        assert!(text.contains(
            "sluice_request_gateway_latency_seconds_bucket{le=\"0.00005\",api_key=\"0\",api_name=\"Produce\"} 1"
        ), "{text}");
        assert!(text.contains(
            "sluice_request_gateway_latency_seconds_bucket{le=\"0.000025\",api_key=\"0\",api_name=\"Produce\"} 0"
        ));
        assert!(text.contains(
            "sluice_request_upstream_latency_seconds_bucket{le=\"+Inf\",api_key=\"0\",api_name=\"Produce\"} 1"
        ));
        assert!(text.contains("sluice_connections_active{shard=\"0\"} 2"));
        assert!(text.contains("sluice_upstream_connects_total{node_id=\"1\"} 5"));
        assert!(text.contains(
            "sluice_connection_errors_total{side=\"upstream\",reason=\"upstream_closed\"} 1"
        ));
        assert!(text
            .contains("sluice_bytes_total{shard=\"0\",side=\"downstream\",direction=\"in\"} 10"));
        assert!(text.contains("sluice_shards 2"));
        assert!(text.ends_with("# EOF\n"));
    }
}
