//! `[policy]`: the file's form of [`crate::policy`] rules, and their validation and compilation
//! (regexes, networks) with dotted-path errors.

use serde::{Deserialize, Serialize};

use super::FieldError;
use crate::policy::{
    Action, ApiKeyRule, NameMatch, Network, Policy, ProduceRule, QuotaKeyBy, QuotaRule, Scope,
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
    let client_id = match client_id {
        None => None,
        Some(RawNameMatch::Exact(s)) => Some(NameMatch::Exact(s.clone())),
        Some(RawNameMatch::Prefix(s)) => Some(NameMatch::Prefix(s.clone())),
        Some(RawNameMatch::Regex(s)) => match regex::Regex::new(s) {
            Ok(re) => Some(NameMatch::Regex(re)),
            Err(e) => {
                errs.push(FieldError {
                    path: format!("{at}.client_id.regex"),
                    reason: format!("invalid regex: {e}"),
                });
                None
            }
        },
    };
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
        ] {
            if v == Some(0) {
                errs.push(FieldError {
                    path: format!("{at}.{field}"),
                    reason: "must be greater than 0 (remove the key for no limit)".into(),
                });
            }
        }
        if r.produce_bytes_per_s.is_none() && r.fetch_bytes_per_s.is_none() {
            errs.push(FieldError {
                path: at.clone(),
                reason: "limits nothing: set produce_bytes_per_s or fetch_bytes_per_s".into(),
            });
        }
        quota.push(QuotaRule {
            name,
            scope,
            key_by: r.key.unwrap_or(QuotaKeyBy::ClientId),
            produce_bytes_per_s: r.produce_bytes_per_s.map(|v| v as f64),
            fetch_bytes_per_s: r.fetch_bytes_per_s.map(|v| v as f64),
        });
    }
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
    }
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
}
