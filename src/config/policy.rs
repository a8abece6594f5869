//! `[policy]`: the file's form of [`crate::policy`] rules, and their validation and compilation
//! (regexes, networks) with dotted-path errors.

use serde::{Deserialize, Serialize};

use super::FieldError;
use crate::policy::{
    Action, ApiKeyRule, ClientIdRule, ConfigChecks, CreateTopicRule, NameMatch, Network, Policy,
    ProduceRule, QuotaKeyBy, QuotaRule, ReadOnlyRule, Scope, TopicConfigRule,
};
use crate::protocol::produce::Codec;

/// `[policy]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// `[[policy.produce]]`: produce safeguards.
    #[serde(default)]
    pub produce: Vec<RawProduceRule>,
    /// `[[policy.quota]]`: byte-rate quotas.
    #[serde(default)]
    pub quota: Vec<RawQuotaRule>,
    /// `[[policy.api_keys]]`: api keys forbidden to some clients.
    #[serde(default)]
    pub api_keys: Vec<RawApiKeyRule>,
    /// `[[policy.create_topics]]`: create-topic safeguards.
    #[serde(default)]
    pub create_topics: Vec<RawCreateTopicRule>,
    /// `[policy.topics]`: hidden topics and topic aliases.
    #[serde(default)]
    pub topics: super::topics::RawTopics,
    /// `[[policy.client_ids]]`: client id safeguards.
    #[serde(default)]
    pub client_ids: Vec<RawClientIdRule>,
    /// `[[policy.read_only_topics]]`: topics some clients may not write.
    #[serde(default)]
    pub read_only_topics: Vec<RawReadOnlyRule>,
    /// `[[policy.topic_configs]]`: topic-config safeguards (AlterConfigs,
    /// IncrementalAlterConfigs, CreateTopics).
    #[serde(default)]
    pub topic_configs: Vec<RawTopicConfigRule>,
}

/// `[[policy.client_ids]]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawClientIdRule {
    /// Unique rule name. Required.
    pub name: Option<String>,
    /// `reject` (default) or `log`.
    pub action: Option<Action>,
    /// Scope: client ids the rule applies to (default: all).
    pub client_id: Option<RawNameMatch>,
    /// Scope: source networks; default: all.
    pub source: Option<Vec<String>>,
    /// A null or empty client id is a violation.
    pub required: Option<bool>,
    /// The client id must match.
    pub pattern: Option<RawNameMatch>,
}

/// `[[policy.read_only_topics]]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawReadOnlyRule {
    /// Unique rule name. Required.
    pub name: Option<String>,
    /// `reject` (default) or `log`.
    pub action: Option<Action>,
    /// Scope: client ids the rule applies to (default: all).
    pub client_id: Option<RawNameMatch>,
    /// Scope: source networks; default: all.
    pub source: Option<Vec<String>>,
    /// The read-only topics: `[{ exact = "audit" }, { prefix = "ledger." }]`. Required.
    pub topics: Option<Vec<RawNameMatch>>,
}

/// `[[policy.topic_configs]]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawTopicConfigRule {
    /// Unique rule name. Required.
    pub name: Option<String>,
    /// `reject` (default) or `log`.
    pub action: Option<Action>,
    /// Scope: client ids the rule applies to (default: all).
    pub client_id: Option<RawNameMatch>,
    /// Scope: source networks; default: all.
    pub source: Option<Vec<String>>,
    /// Only topics matching this are checked (default: all).
    pub topic_name: Option<RawNameMatch>,
    /// Configs that may not be set.
    pub forbidden_configs: Option<Vec<String>>,
    /// The only configs that may be set.
    pub allowed_configs: Option<Vec<String>>,
    /// Numeric configs and their range: `{ "retention.ms" = { min = 3600000 } }`.
    pub config_ranges: Option<std::collections::BTreeMap<String, RawRange>>,
    /// Configs and their allowed values: `{ "cleanup.policy" = ["delete"] }`.
    pub config_values: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

/// Compiles the config checks of a rule; errors under `at`.
fn config_checks(
    forbidden: &Option<Vec<String>>,
    allowed: &Option<Vec<String>>,
    ranges: &Option<std::collections::BTreeMap<String, RawRange>>,
    values: &Option<std::collections::BTreeMap<String, Vec<String>>>,
    at: &str,
    errs: &mut Vec<FieldError>,
) -> ConfigChecks {
    for (k, r) in ranges.iter().flatten() {
        if let (Some(lo), Some(hi)) = (r.min, r.max) {
            if lo > hi {
                errs.push(FieldError {
                    path: format!("{at}.config_ranges.{k}"),
                    reason: format!("min {lo} is above max {hi}"),
                });
            }
        }
    }
    for (k, v) in values.iter().flatten() {
        if v.is_empty() {
            errs.push(FieldError {
                path: format!("{at}.config_values.{k}"),
                reason: "must list at least one value".into(),
            });
        }
    }
    ConfigChecks {
        forbidden: forbidden.clone().unwrap_or_default(),
        allowed: allowed.clone(),
        ranges: ranges
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.min, v.max))
            .collect(),
        values: values
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// `{ min = .., max = .. }`, both optional.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawRange {
    pub min: Option<i64>,
    pub max: Option<i64>,
}

/// `[[policy.create_topics]]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawCreateTopicRule {
    pub name: Option<String>,
    pub action: Option<Action>,
    pub client_id: Option<RawNameMatch>,
    pub source: Option<Vec<String>>,
    /// Allowed partition counts.
    pub partitions: Option<RawRange>,
    /// Allowed replication factors.
    pub replication_factor: Option<RawRange>,
    /// Topic names must match.
    pub topic_name: Option<RawNameMatch>,
    /// Configs that may not be set.
    pub forbidden_configs: Option<Vec<String>>,
    /// The only configs that may be set.
    pub allowed_configs: Option<Vec<String>>,
    /// Numeric configs and their range: `{ "retention.ms" = { min = 3600000 } }`.
    pub config_ranges: Option<std::collections::BTreeMap<String, RawRange>>,
    /// Configs and their allowed values: `{ "cleanup.policy" = ["delete"] }`.
    pub config_values: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

pub(super) fn name_match(
    m: &Option<RawNameMatch>,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Option<NameMatch> {
    match m {
        None => None,
        Some(RawNameMatch::Exact(s)) => Some(NameMatch::Exact(s.clone())),
        Some(RawNameMatch::Prefix(s)) => Some(NameMatch::Prefix(s.clone())),
        Some(RawNameMatch::Regex(s)) => match regex::Regex::new(s) {
            Ok(re) => Some(NameMatch::Regex(re)),
            Err(e) => {
                errs.push(FieldError {
                    path: format!("{path}.regex"),
                    reason: format!("invalid regex: {e}"),
                });
                None
            }
        },
    }
}

fn range<T: TryFrom<i64> + Copy>(
    r: &Option<RawRange>,
    path: &str,
    default: (T, T),
    errs: &mut Vec<FieldError>,
) -> Option<(T, T)> {
    let r = (*r)?;
    let conv = |v: Option<i64>, d: T, errs: &mut Vec<FieldError>| match v {
        None => d,
        Some(v) => T::try_from(v).unwrap_or_else(|_| {
            errs.push(FieldError {
                path: path.to_string(),
                reason: format!("{v} is out of range"),
            });
            d
        }),
    };
    if let (Some(lo), Some(hi)) = (r.min, r.max) {
        if lo > hi {
            errs.push(FieldError {
                path: path.to_string(),
                reason: format!("min {lo} is above max {hi}"),
            });
        }
    }
    Some((conv(r.min, default.0, errs), conv(r.max, default.1, errs)))
}

/// `[[policy.api_keys]]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawApiKeyRule {
    /// Unique rule name. Required.
    pub name: Option<String>,
    /// `reject` (default) or `log`.
    pub action: Option<Action>,
    /// Scope: client ids the rule applies to (default: all).
    pub client_id: Option<RawNameMatch>,
    /// Scope: source networks; default: all.
    pub source: Option<Vec<String>>,
    /// Forbidden api keys by their Kafka names (`DeleteTopics`, `AlterConfigs`, ...).
    pub forbidden: Option<Vec<String>>,
}

/// The api key named `name` (`DeleteTopics`), as kafka-protocol names them.
fn api_key_by_name(name: &str) -> Option<i16> {
    (0..=i16::from(u8::MAX)).find(|k| {
        kafka_protocol::messages::ApiKey::try_from(*k).is_ok_and(|a| format!("{a:?}") == name)
    })
}

/// `[[policy.quota]]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawQuotaRule {
    /// Unique rule name. Required.
    pub name: Option<String>,
    /// Scope: client ids the rule applies to (default: all).
    pub client_id: Option<RawNameMatch>,
    /// Scope: source networks; default: all.
    pub source: Option<Vec<String>>,
    /// `client_id` (default) or `source`: each distinct value gets its own limit.
    pub key: Option<QuotaKeyBy>,
    /// Produce request bytes per second per key, over all shards.
    pub produce_bytes_per_s: Option<u64>,
    /// Fetch response bytes per second per key, over all shards.
    pub fetch_bytes_per_s: Option<u64>,
    /// Requests per second per key, over all shards (KIP-124, counted rather than timed).
    pub requests_per_s: Option<u64>,
    /// Most connections open at once per source address, over all shards (broker
    /// `max.connections.per.ip`). Needs `key = "source"` and no `client_id` scope.
    pub max_connections: Option<u64>,
    /// Most new connections per second per source address, over all shards (KIP-612). Needs
    /// `key = "source"` and no `client_id` scope.
    pub connections_per_s: Option<u64>,
    /// With `key = "topic"`: the topics limited, `[{ prefix = "orders." }]` (default: all).
    pub topics: Option<Vec<RawNameMatch>>,
}

/// `{ exact = "..." }`, `{ prefix = "..." }` or `{ regex = "..." }`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawNameMatch {
    Exact(String),
    Prefix(String),
    Regex(String),
}

/// `[[policy.produce]]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawProduceRule {
    /// Unique rule name. Required.
    pub name: Option<String>,
    /// `reject` (default) or `log`.
    pub action: Option<Action>,
    /// Scope: client ids the rule applies to (default: all).
    pub client_id: Option<RawNameMatch>,
    /// Scope: source networks (`10.0.0.0/8`, `::1`); default: all.
    pub source: Option<Vec<String>>,
    /// Allowed `acks` values among -1 (all), 0, 1.
    pub allowed_acks: Option<Vec<i16>>,
    /// Largest record batch, bytes.
    pub max_batch_bytes: Option<usize>,
    /// Codecs allowed: `none`, `gzip`, `snappy`, `lz4`, `zstd`.
    pub allowed_compression: Option<Vec<String>>,
    /// Codecs forbidden.
    pub forbidden_compression: Option<Vec<String>>,
    /// Require an idempotent (or transactional) producer.
    pub require_idempotence: Option<bool>,
}

fn codecs(list: &[String], path: &str, errs: &mut Vec<FieldError>) -> Vec<Codec> {
    list.iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let c = Codec::from_name(s);
            if c.is_none() {
                errs.push(FieldError {
                    path: format!("{path}[{i}]"),
                    reason: format!("{s:?} is not one of none, gzip, snappy, lz4, zstd"),
                });
            }
            c
        })
        .collect()
}

/// Compiles a rule's scope; errors under `at`.
fn scope(
    client_id: &Option<RawNameMatch>,
    source: &Option<Vec<String>>,
    at: &str,
    errs: &mut Vec<FieldError>,
) -> Scope {
    let client_id = name_match(client_id, &format!("{at}.client_id"), errs);
    let mut sources = Vec::new();
    for (j, s) in source.iter().flatten().enumerate() {
        match Network::parse(s) {
            Ok(n) => sources.push(n),
            Err(reason) => errs.push(FieldError {
                path: format!("{at}.source[{j}]"),
                reason,
            }),
        }
    }
    Scope { client_id, sources }
}

/// Checks a rule name: present, well-formed, unique within `names`.
fn rule_name(
    name: &Option<String>,
    at: &str,
    names: &mut std::collections::BTreeSet<String>,
    errs: &mut Vec<FieldError>,
) -> String {
    let mut err = |reason: String| {
        errs.push(FieldError {
            path: format!("{at}.name"),
            reason,
        })
    };
    match name {
        None => {
            err("is required".into());
            String::new()
        }
        Some(n)
            if n.is_empty()
                || n.len() > 64
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
        {
            err(format!(
                "{n:?} must be 1-64 characters of A-Z a-z 0-9 - _ ."
            ));
            n.clone()
        }
        Some(n) => {
            if !names.insert(n.clone()) {
                err(format!("{n:?} is used by another rule"));
            }
            n.clone()
        }
    }
}

/// Validates and compiles `raw`; every error goes to `errs` with its dotted path.
pub fn compile(raw: &RawPolicy, errs: &mut Vec<FieldError>) -> Policy {
    let mut create_topics = Vec::new();
    let mut create_names = std::collections::BTreeSet::new();
    for (i, r) in raw.create_topics.iter().enumerate() {
        let at = format!("policy.create_topics[{i}]");
        let name = rule_name(&r.name, &at, &mut create_names, errs);
        let scope = scope(&r.client_id, &r.source, &at, errs);
        let rule = CreateTopicRule {
            name,
            action: r.action.unwrap_or(Action::Reject),
            scope,
            partitions: range(
                &r.partitions,
                &format!("{at}.partitions"),
                (1, i32::MAX),
                errs,
            ),
            replication_factor: range(
                &r.replication_factor,
                &format!("{at}.replication_factor"),
                (1, i16::MAX),
                errs,
            ),
            topic_name: name_match(&r.topic_name, &format!("{at}.topic_name"), errs),
            configs: config_checks(
                &r.forbidden_configs,
                &r.allowed_configs,
                &r.config_ranges,
                &r.config_values,
                &at,
                errs,
            ),
        };
        let checks = rule.partitions.is_some()
            || rule.replication_factor.is_some()
            || rule.topic_name.is_some()
            || r.topic_name.is_some()
            || !rule.configs.is_empty();
        if !checks {
            errs.push(FieldError {
                path: at.clone(),
                reason: "checks nothing: set partitions, replication_factor, topic_name or a config rule".into(),
            });
        }
        create_topics.push(rule);
    }
    let mut api_keys = Vec::new();
    let mut api_key_names = std::collections::BTreeSet::new();
    for (i, r) in raw.api_keys.iter().enumerate() {
        let at = format!("policy.api_keys[{i}]");
        let name = rule_name(&r.name, &at, &mut api_key_names, errs);
        let scope = scope(&r.client_id, &r.source, &at, errs);
        let mut forbidden = Vec::new();
        match &r.forbidden {
            None => errs.push(FieldError {
                path: format!("{at}.forbidden"),
                reason: "is required (api key names, e.g. [\"DeleteTopics\"])".into(),
            }),
            Some(list) => {
                for (j, n) in list.iter().enumerate() {
                    match api_key_by_name(n) {
                        Some(18) => errs.push(FieldError {
                            path: format!("{at}.forbidden[{j}]"),
                            reason: "ApiVersions cannot be forbidden (every client starts with it)"
                                .into(),
                        }),
                        Some(k) => forbidden.push(k),
                        None => errs.push(FieldError {
                            path: format!("{at}.forbidden[{j}]"),
                            reason: format!(
                                "{n:?} is not a Kafka api key name (e.g. DeleteTopics)"
                            ),
                        }),
                    }
                }
            }
        }
        api_keys.push(ApiKeyRule {
            name,
            action: r.action.unwrap_or(Action::Reject),
            scope,
            forbidden,
        });
    }
    let mut quota = Vec::new();
    let mut quota_names = std::collections::BTreeSet::new();
    for (i, r) in raw.quota.iter().enumerate() {
        let at = format!("policy.quota[{i}]");
        let name = rule_name(&r.name, &at, &mut quota_names, errs);
        let scope = scope(&r.client_id, &r.source, &at, errs);
        for (field, v) in [
            ("produce_bytes_per_s", r.produce_bytes_per_s),
            ("fetch_bytes_per_s", r.fetch_bytes_per_s),
            ("requests_per_s", r.requests_per_s),
            ("max_connections", r.max_connections),
            ("connections_per_s", r.connections_per_s),
        ] {
            if v == Some(0) {
                errs.push(FieldError {
                    path: format!("{at}.{field}"),
                    reason: "must be greater than 0 (remove the key for no limit)".into(),
                });
            }
        }
        if let Some(m) = r.max_connections.filter(|m| *m > u64::from(u32::MAX)) {
            errs.push(FieldError {
                path: format!("{at}.max_connections"),
                reason: format!("{m} is above {}", u32::MAX),
            });
        }
        if r.produce_bytes_per_s.is_none()
            && r.fetch_bytes_per_s.is_none()
            && r.requests_per_s.is_none()
            && r.max_connections.is_none()
            && r.connections_per_s.is_none()
        {
            errs.push(FieldError {
                path: at.clone(),
                reason: "limits nothing: set produce_bytes_per_s, fetch_bytes_per_s, requests_per_s, max_connections or connections_per_s".into(),
            });
        }
        let key_by = r.key.unwrap_or(QuotaKeyBy::ClientId);
        if r.max_connections.is_some() || r.connections_per_s.is_some() {
            // Checked at accept: nothing but the source address is known then.
            if key_by != QuotaKeyBy::Source {
                errs.push(FieldError {
                    path: format!("{at}.key"),
                    reason: "max_connections and connections_per_s count per source address: set key = \"source\"".into(),
                });
            }
            if r.client_id.is_some() {
                errs.push(FieldError {
                    path: format!("{at}.client_id"),
                    reason: "max_connections and connections_per_s are checked at accept, before any client id is known: scope the rule by source only".into(),
                });
            }
        }
        if key_by == QuotaKeyBy::Topic {
            for (field, set) in [
                ("requests_per_s", r.requests_per_s.is_some()),
                ("max_connections", r.max_connections.is_some()),
                ("connections_per_s", r.connections_per_s.is_some()),
            ] {
                if set {
                    errs.push(FieldError {
                        path: format!("{at}.{field}"),
                        reason:
                            "key = \"topic\" limits produce_bytes_per_s and fetch_bytes_per_s only"
                                .into(),
                    });
                }
            }
        } else if r.topics.is_some() {
            errs.push(FieldError {
                path: format!("{at}.topics"),
                reason: "topics are limited per topic only: set key = \"topic\"".into(),
            });
        }
        let topics = r
            .topics
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(j, m)| name_match(&Some(m.clone()), &format!("{at}.topics[{j}]"), errs))
            .collect();
        quota.push(QuotaRule {
            name,
            scope,
            key_by,
            topics,
            produce_bytes_per_s: r.produce_bytes_per_s.map(|v| v as f64),
            fetch_bytes_per_s: r.fetch_bytes_per_s.map(|v| v as f64),
            requests_per_s: r.requests_per_s.map(|v| v as f64),
            max_connections: r
                .max_connections
                .map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
            connections_per_s: r.connections_per_s.map(|v| v as f64),
        });
    }
    let client_ids = compile_client_ids(raw, errs);
    let read_only = compile_read_only(raw, errs);
    let topic_configs = compile_topic_configs(raw, errs);
    let mut names = std::collections::BTreeSet::new();
    let mut produce = Vec::new();
    for (i, r) in raw.produce.iter().enumerate() {
        let at = format!("policy.produce[{i}]");
        let name = rule_name(&r.name, &at, &mut names, errs);
        let scope = scope(&r.client_id, &r.source, &at, errs);
        let mut err = |field: &str, reason: String| {
            errs.push(FieldError {
                path: format!("{at}.{field}"),
                reason,
            })
        };
        if let Some(acks) = &r.allowed_acks {
            if acks.is_empty() {
                err("allowed_acks", "must list at least one of -1, 0, 1".into());
            }
            for (j, a) in acks.iter().enumerate() {
                if !matches!(a, -1..=1) {
                    err(
                        &format!("allowed_acks[{j}]"),
                        format!("{a} is not one of -1, 0, 1"),
                    );
                }
            }
        }
        if r.max_batch_bytes == Some(0) {
            err("max_batch_bytes", "must be greater than 0".into());
        }
        let mut cerrs = Vec::new();
        let allowed_compression = r
            .allowed_compression
            .as_ref()
            .map(|l| codecs(l, &format!("{at}.allowed_compression"), &mut cerrs));
        let forbidden_compression = r
            .forbidden_compression
            .as_ref()
            .map(|l| codecs(l, &format!("{at}.forbidden_compression"), &mut cerrs))
            .unwrap_or_default();
        let checks = r.allowed_acks.is_some()
            || r.max_batch_bytes.is_some()
            || r.allowed_compression.is_some()
            || r.forbidden_compression.is_some()
            || r.require_idempotence == Some(true);
        if !checks {
            err(
                "",
                "checks nothing: set allowed_acks, max_batch_bytes, allowed_compression, forbidden_compression or require_idempotence".into(),
            );
        }
        errs.extend(cerrs);
        produce.push(ProduceRule {
            name,
            action: r.action.unwrap_or(Action::Reject),
            scope,
            allowed_acks: r.allowed_acks.clone(),
            max_batch_bytes: r.max_batch_bytes,
            allowed_compression,
            forbidden_compression,
            require_idempotence: r.require_idempotence.unwrap_or(false),
        });
    }
    // A rule error path ends in "." when the rule as a whole is at fault.
    for e in errs.iter_mut() {
        if let Some(p) = e.path.strip_suffix('.') {
            e.path = p.to_string();
        }
    }
    Policy {
        produce,
        quota,
        api_keys,
        create_topics,
        topics: super::topics::compile(&raw.topics, errs),
        client_ids,
        read_only,
        topic_configs,
    }
}

fn compile_client_ids(raw: &RawPolicy, errs: &mut Vec<FieldError>) -> Vec<ClientIdRule> {
    let mut names = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (i, r) in raw.client_ids.iter().enumerate() {
        let at = format!("policy.client_ids[{i}]");
        let name = rule_name(&r.name, &at, &mut names, errs);
        let scope = scope(&r.client_id, &r.source, &at, errs);
        let pattern = name_match(&r.pattern, &format!("{at}.pattern"), errs);
        if r.required != Some(true) && r.pattern.is_none() {
            errs.push(FieldError {
                path: at.clone(),
                reason: "checks nothing: set required = true or pattern".into(),
            });
        }
        out.push(ClientIdRule {
            name,
            action: r.action.unwrap_or(Action::Reject),
            scope,
            required: r.required.unwrap_or(false),
            pattern,
        });
    }
    out
}

fn compile_read_only(raw: &RawPolicy, errs: &mut Vec<FieldError>) -> Vec<ReadOnlyRule> {
    let mut names = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (i, r) in raw.read_only_topics.iter().enumerate() {
        let at = format!("policy.read_only_topics[{i}]");
        let name = rule_name(&r.name, &at, &mut names, errs);
        let scope = scope(&r.client_id, &r.source, &at, errs);
        let mut topics = Vec::new();
        match &r.topics {
            None => errs.push(FieldError {
                path: format!("{at}.topics"),
                reason: "is required (e.g. [{ prefix = \"audit.\" }])".into(),
            }),
            Some(list) if list.is_empty() => errs.push(FieldError {
                path: format!("{at}.topics"),
                reason: "must list at least one topic matcher".into(),
            }),
            Some(list) => {
                for (j, m) in list.iter().enumerate() {
                    topics.extend(name_match(
                        &Some(m.clone()),
                        &format!("{at}.topics[{j}]"),
                        errs,
                    ));
                }
            }
        }
        out.push(ReadOnlyRule {
            name,
            action: r.action.unwrap_or(Action::Reject),
            scope,
            topics,
        });
    }
    out
}

fn compile_topic_configs(raw: &RawPolicy, errs: &mut Vec<FieldError>) -> Vec<TopicConfigRule> {
    let mut names = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (i, r) in raw.topic_configs.iter().enumerate() {
        let at = format!("policy.topic_configs[{i}]");
        let name = rule_name(&r.name, &at, &mut names, errs);
        let scope = scope(&r.client_id, &r.source, &at, errs);
        let configs = config_checks(
            &r.forbidden_configs,
            &r.allowed_configs,
            &r.config_ranges,
            &r.config_values,
            &at,
            errs,
        );
        if configs.is_empty() {
            errs.push(FieldError {
                path: at.clone(),
                reason: "checks nothing: set forbidden_configs, allowed_configs, config_ranges or config_values".into(),
            });
        }
        out.push(TopicConfigRule {
            name,
            action: r.action.unwrap_or(Action::Reject),
            scope,
            topic_name: name_match(&r.topic_name, &format!("{at}.topic_name"), errs),
            configs,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile_toml(text: &str) -> (Policy, Vec<FieldError>) {
        let raw: RawPolicy = toml::from_str(text).expect("toml");
        let mut errs = Vec::new();
        (compile(&raw, &mut errs), errs)
    }

    #[test]
    fn per_topic_quotas() {
        let (p, errs) = compile_toml(
            r#"
            [[quota]]
            name = "orders"
            key = "topic"
            topics = [{ prefix = "orders." }]
            produce_bytes_per_s = 1000
            "#,
        );
        assert!(errs.is_empty(), "{errs:?}");
        let r = &p.quota[0];
        assert!(r.limits_topic("orders.eu") && !r.limits_topic("payments"));
        assert!(p.has_topic_quota(crate::quota::Kind::ProduceBytes));
        assert!(!p.has_topic_quota(crate::quota::Kind::FetchBytes));
        let (_, errs) = compile_toml(
            r#"
            [[quota]]
            name = "a"
            key = "topic"
            requests_per_s = 5
            [[quota]]
            name = "b"
            topics = [{ exact = "x" }]
            produce_bytes_per_s = 1
            "#,
        );
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["policy.quota[0].requests_per_s", "policy.quota[1].topics"]
        );
    }

    #[test]
    fn compiles_a_full_rule() {
        let (p, errs) = compile_toml(
            r#"
[[produce]]
name = "acks-all"
action = "log"
client_id = { regex = "^batch-" }
source = ["10.0.0.0/8", "::1"]
allowed_acks = [-1]
max_batch_bytes = 1048576
allowed_compression = ["zstd", "lz4"]
forbidden_compression = ["gzip"]
require_idempotence = true
"#,
        );
        assert!(errs.is_empty(), "{errs:?}");
        let r = &p.produce[0];
        assert_eq!(r.action, Action::Log);
        assert_eq!(r.scope.sources.len(), 2);
        assert_eq!(r.allowed_compression, Some(vec![Codec::Zstd, Codec::Lz4]));
    }

    #[test]
    fn quota_rules_compile_and_check_their_keys() {
        let (p, errs) = compile_toml(
            r#"
[[quota]]
name = "rates"
client_id = { prefix = "batch-" }
requests_per_s = 200
produce_bytes_per_s = 1048576

[[quota]]
name = "per-ip"
source = ["10.0.0.0/8"]
key = "source"
max_connections = 50
connections_per_s = 10
"#,
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(p.quota[0].requests_per_s, Some(200.0));
        assert!(!p.quota[0].limits_connections());
        assert_eq!(p.quota[1].max_connections, Some(50));
        assert_eq!(p.quota[1].connections_per_s, Some(10.0));
        assert!(p.has_request_quota() && p.has_connection_quota());

        let (_, errs) = compile_toml(
            r#"
[[quota]]
name = "bad"
client_id = { exact = "x" }
max_connections = 0
connections_per_s = 5
requests_per_s = 0

[[quota]]
name = "empty"
key = "source"
"#,
        );
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        for p in [
            "policy.quota[0].max_connections",
            "policy.quota[0].requests_per_s",
            "policy.quota[0].key",
            "policy.quota[0].client_id",
            "policy.quota[1]",
        ] {
            assert!(paths.contains(&p), "{p} missing in {paths:?}");
        }
    }

    #[test]
    fn every_error_has_its_path() {
        let (_, errs) = compile_toml(
            r#"
[[produce]]
allowed_acks = [2]
client_id = { regex = "(" }
source = ["10.0.0.0/40"]
allowed_compression = ["brotli"]
max_batch_bytes = 0

[[produce]]
name = "nothing"
"#,
        );
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        for p in [
            "policy.produce[0].name",
            "policy.produce[0].allowed_acks[0]",
            "policy.produce[0].client_id.regex",
            "policy.produce[0].source[0]",
            "policy.produce[0].allowed_compression[0]",
            "policy.produce[0].max_batch_bytes",
            "policy.produce[1]",
        ] {
            assert!(paths.contains(&p), "{p} missing in {paths:?}");
        }
    }

    #[test]
    fn compiles_the_newer_safeguards() {
        let (p, errs) = compile_toml(
            r#"
[[client_ids]]
name = "named"
required = true
pattern = { regex = "^[a-z]+-" }
source = ["10.0.0.0/8"]

[[read_only_topics]]
name = "ro"
action = "log"
topics = [{ exact = "audit" }, { prefix = "ledger." }]

[[topic_configs]]
name = "cfg"
topic_name = { prefix = "app." }
config_ranges = { "retention.ms" = { min = 3600000 } }
config_values = { "cleanup.policy" = ["delete"] }
"#,
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert!(p.client_ids[0].required && p.client_ids[0].pattern.is_some());
        assert_eq!(p.client_ids[0].action, Action::Reject);
        assert_eq!(p.read_only[0].topics.len(), 2);
        assert_eq!(p.read_only[0].action, Action::Log);
        assert_eq!(
            p.topic_configs[0].configs.ranges,
            vec![("retention.ms".to_string(), Some(3_600_000), None)]
        );
    }

    #[test]
    fn newer_safeguard_errors_have_their_paths() {
        let (_, errs) = compile_toml(
            r#"
[[client_ids]]
name = "nothing"

[[client_ids]]
name = "bad-re"
pattern = { regex = "(" }

[[read_only_topics]]
name = "ro"

[[read_only_topics]]
name = "ro2"
topics = [{ regex = "[" }]

[[topic_configs]]
name = "cfg"

[[topic_configs]]
name = "cfg2"
config_ranges = { "retention.ms" = { min = 10, max = 1 } }
config_values = { "cleanup.policy" = [] }
"#,
        );
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        for p in [
            "policy.client_ids[0]",
            "policy.client_ids[1].pattern.regex",
            "policy.read_only_topics[0].topics",
            "policy.read_only_topics[1].topics[0].regex",
            "policy.topic_configs[0]",
            "policy.topic_configs[1].config_ranges.retention.ms",
            "policy.topic_configs[1].config_values.cleanup.policy",
        ] {
            assert!(paths.contains(&p), "{p} missing in {paths:?}");
        }
        assert!(
            toml::from_str::<RawPolicy>("[[read_only_topics]]\nname = \"x\"\ntopic = []\n")
                .is_err()
        );
    }
}
