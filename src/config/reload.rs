//! Reload classes and config diffs (control plane).
//!
//! Every key is either **live** (a reload applies it to every shard, between frames, without
//! dropping a connection) or **restart-only** (a reload reports the change and keeps the running
//! value until the next start). [`KEYS`] is the one table of both; [`effective`] shows a config
//! under the same dotted names, with secrets redacted.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{BrokerPorts, Config, LogFormat};

/// Whether a reload can apply a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyClass {
    /// Applied by a reload, to new frames and connections, without dropping any.
    Live,
    /// Read at start-up only; a reload reports the change and keeps the running value.
    RestartOnly,
}

use KeyClass::{Live, RestartOnly};

/// Every config key, by dotted path, with its reload class.
pub const KEYS: &[(&str, KeyClass)] = &[
    ("runtime.shards", RestartOnly),
    ("runtime.cpus", RestartOnly),
    ("runtime.spin_before_park_us", RestartOnly),
    ("listener.bind_address", RestartOnly),
    ("listener.advertised_host", Live),
    ("listener.bootstrap_port", Live),
    ("listener.broker_port_base", Live),
    ("listener.broker_ports", Live),
    ("upstream.bootstrap_servers", Live),
    ("upstream.connect_timeout_ms", Live),
    ("upstream.reconnect_backoff_ms", Live),
    ("upstream.reconnect_backoff_max_ms", Live),
    ("upstream.pool_max_idle_per_broker", Live),
    ("upstream.pool_idle_timeout_ms", Live),
    ("limits.max_frame_bytes", Live),
    ("limits.max_in_flight_per_connection", Live),
    ("limits.max_connections_per_shard", Live),
    ("limits.first_request_timeout_ms", Live),
    ("limits.client_idle_timeout_ms", Live),
    ("shutdown.drain_timeout_ms", Live),
    ("log.level", Live),
    ("log.format", RestartOnly),
    ("admin.listen", RestartOnly),
    ("admin.bearer_token", Live),
    ("admin.bearer_token_file", Live),
    ("policy.produce", Live),
    ("policy.quota", Live),
    ("policy.api_keys", Live),
    ("policy.create_topics", Live),
    ("policy.topics", Live),
    ("policy.client_ids", Live),
    ("policy.read_only_topics", Live),
    ("policy.topic_configs", Live),
];

/// The class of `key` (a dotted path from [`KEYS`]); unknown keys are restart-only.
pub fn class_of(key: &str) -> KeyClass {
    KEYS.iter()
        .find(|(k, _)| *k == key)
        .map_or(RestartOnly, |(_, c)| *c)
}

const REDACTED: &str = "<redacted>";

fn ms(d: std::time::Duration) -> Value {
    json!(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The config in force under its dotted key names (every key of [`KEYS`]), secrets redacted.
pub fn effective(c: &Config) -> BTreeMap<&'static str, Value> {
    let (base, map) = match &c.broker_ports {
        BrokerPorts::Offset { base } => (json!(base), Value::Null),
        BrokerPorts::Map(m) => (
            Value::Null,
            Value::Object(m.iter().map(|(k, v)| (k.to_string(), json!(v))).collect()),
        ),
    };
    let admin = c.admin.as_ref();
    BTreeMap::from([
        ("runtime.shards", json!(c.shards)),
        ("runtime.cpus", json!(c.cpus)),
        (
            "runtime.spin_before_park_us",
            json!(u64::try_from(c.spin_before_park.as_micros()).unwrap_or(u64::MAX)),
        ),
        ("listener.bind_address", json!(c.bind_address.to_string())),
        ("listener.advertised_host", json!(c.advertised_host)),
        ("listener.bootstrap_port", json!(c.bootstrap_port)),
        ("listener.broker_port_base", base),
        ("listener.broker_ports", map),
        ("upstream.bootstrap_servers", json!(c.bootstrap_servers)),
        ("upstream.connect_timeout_ms", ms(c.connect_timeout)),
        ("upstream.reconnect_backoff_ms", ms(c.reconnect_backoff)),
        (
            "upstream.reconnect_backoff_max_ms",
            ms(c.reconnect_backoff_max),
        ),
        (
            "upstream.pool_max_idle_per_broker",
            json!(c.pool_max_idle_per_broker),
        ),
        ("upstream.pool_idle_timeout_ms", ms(c.pool_idle_timeout)),
        ("limits.max_frame_bytes", json!(c.max_frame_bytes)),
        (
            "limits.max_in_flight_per_connection",
            json!(c.max_in_flight_per_connection),
        ),
        (
            "limits.max_connections_per_shard",
            json!(c.max_connections_per_shard),
        ),
        (
            "limits.first_request_timeout_ms",
            ms(c.first_request_timeout),
        ),
        ("limits.client_idle_timeout_ms", ms(c.client_idle_timeout)),
        ("shutdown.drain_timeout_ms", ms(c.drain_timeout)),
        ("log.level", json!(c.log_level)),
        (
            "log.format",
            json!(match c.log_format {
                LogFormat::Human => "human",
                LogFormat::Json => "json",
            }),
        ),
        (
            "admin.listen",
            admin.map_or(Value::Null, |a| json!(a.listen.to_string())),
        ),
        (
            "admin.bearer_token",
            match admin.and_then(|a| a.bearer_token.as_ref()) {
                Some(_) => json!(REDACTED),
                None => Value::Null,
            },
        ),
        (
            "admin.bearer_token_file",
            admin.map_or(Value::Null, |a| json!(a.bearer_token_file)),
        ),
        (
            "policy.produce",
            serde_json::to_value(&c.policy_source.produce).unwrap_or(Value::Null),
        ),
        (
            "policy.quota",
            serde_json::to_value(&c.policy_source.quota).unwrap_or(Value::Null),
        ),
        (
            "policy.api_keys",
            serde_json::to_value(&c.policy_source.api_keys).unwrap_or(Value::Null),
        ),
        (
            "policy.create_topics",
            serde_json::to_value(&c.policy_source.create_topics).unwrap_or(Value::Null),
        ),
        (
            "policy.topics",
            serde_json::to_value(&c.policy_source.topics).unwrap_or(Value::Null),
        ),
        (
            "policy.client_ids",
            serde_json::to_value(&c.policy_source.client_ids).unwrap_or(Value::Null),
        ),
        (
            "policy.read_only_topics",
            serde_json::to_value(&c.policy_source.read_only_topics).unwrap_or(Value::Null),
        ),
        (
            "policy.topic_configs",
            serde_json::to_value(&c.policy_source.topic_configs).unwrap_or(Value::Null),
        ),
    ])
}

/// [`effective`] as nested JSON objects (`{"limits": {"max_frame_bytes": ...}, ...}`).
pub fn effective_json(c: &Config) -> Value {
    let mut root = serde_json::Map::new();
    for (key, v) in effective(c) {
        let (section, name) = key.split_once('.').unwrap_or(("", key));
        let entry = root
            .entry(section.to_string())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(m) = entry {
            m.insert(name.to_string(), v);
        }
    }
    Value::Object(root)
}

/// One changed key between the running config and a new one.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Change {
    /// Dotted key.
    pub key: &'static str,
    /// Its reload class.
    pub class: KeyClass,
    /// Running value (redacted for secrets).
    pub from: Value,
    /// New value (redacted for secrets).
    pub to: Value,
}

/// Every key whose value differs between `old` and `new`, in [`KEYS`] order.
pub fn diff(old: &Config, new: &Config) -> Vec<Change> {
    let (a, b) = (effective(old), effective(new));
    let token = |c: &Config| c.admin.as_ref().and_then(|a| a.bearer_token.clone());
    KEYS.iter()
        .filter_map(|(key, class)| {
            let (from, to) = (a.get(key)?, b.get(key)?);
            let changed = if *key == "admin.bearer_token" {
                token(old) != token(new)
            } else {
                from != to
            };
            changed.then(|| Change {
                key,
                class: *class,
                from: from.clone(),
                to: to.clone(),
            })
        })
        .collect()
}

/// The config a reload puts in force: `new`'s live keys, `running`'s restart-only keys.
pub fn merge_live(running: &Config, new: &Config) -> Config {
    let mut out = new.clone();
    out.shards = running.shards;
    out.cpus = running.cpus.clone();
    out.spin_before_park = running.spin_before_park;
    out.bind_address = running.bind_address;
    out.log_format = running.log_format;
    out.admin = match (&running.admin, &new.admin) {
        (Some(r), Some(n)) => Some(super::AdminConfig {
            listen: r.listen,
            bearer_token: n.bearer_token.clone(),
            bearer_token_file: n.bearer_token_file.clone(),
        }),
        // Adding or removing the admin listener is a restart-only change of admin.listen.
        (r, _) => r.clone(),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Config {
        let text = format!(
            "[runtime]\nshards = 1\ncpus = [0]\n[listener]\nadvertised_host = \"gw\"\nbootstrap_port = 9092\nbroker_port_base = 9100\n[upstream]\nbootstrap_servers = [\"k:9092\"]\n{extra}"
        );
        let raw = toml::from_str(&text).expect("toml");
        Config::from_raw(raw, vec![0, 1]).expect("valid")
    }

    #[test]
    fn every_effective_key_is_classed_and_every_class_is_shown() {
        let c = parse("[admin]\nbearer_token = \"0123456789abcdef\"\n");
        let e = effective(&c);
        assert_eq!(e.len(), KEYS.len());
        for k in e.keys() {
            assert!(KEYS.iter().any(|(key, _)| key == k), "{k} has no class");
        }
        assert_eq!(e["admin.bearer_token"], json!(REDACTED));
        assert!(!effective_json(&c).to_string().contains("0123456789abcdef"));
    }

    #[test]
    fn diff_lists_changes_with_their_class() {
        let a = parse("[limits]\nmax_in_flight_per_connection = 10\n");
        let b = parse("[limits]\nmax_in_flight_per_connection = 20\n[log]\nformat = \"json\"\n");
        let d = diff(&a, &b);
        let keys: Vec<_> = d.iter().map(|c| (c.key, c.class)).collect();
        assert_eq!(
            keys,
            vec![
                ("limits.max_in_flight_per_connection", Live),
                ("log.format", RestartOnly)
            ]
        );
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn token_change_is_seen_but_not_shown() {
        let a = parse("[admin]\nbearer_token = \"0123456789abcdef\"\n");
        let b = parse("[admin]\nbearer_token = \"fedcba9876543210\"\n");
        let d = diff(&a, &b);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].key, "admin.bearer_token");
        assert_eq!(d[0].to, json!(REDACTED));
    }

    #[test]
    fn merge_keeps_restart_only_values() {
        let a = parse("[limits]\nmax_in_flight_per_connection = 10\n");
        let b = parse(
            "[limits]\nmax_in_flight_per_connection = 20\n[log]\nformat = \"json\"\n[admin]\nlisten = \"127.0.0.1:1\"\n",
        );
        let m = merge_live(&a, &b);
        assert_eq!(m.max_in_flight_per_connection, 20);
        assert_eq!(m.log_format, LogFormat::Human);
        assert!(m.admin.is_none());
        let rest: Vec<_> = diff(&a, &m).into_iter().map(|c| c.key).collect();
        assert_eq!(rest, vec!["limits.max_in_flight_per_connection"]);
    }
}
