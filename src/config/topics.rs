//! `[policy.topics]`: hidden topics and topic aliases ([`crate::policy::topics`]), validated with
//! dotted-path errors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::policy::{name_match, RawNameMatch};
use super::FieldError;
use crate::policy::topics::TopicMap;
use crate::protocol::topics::HIDDEN_PREFIX;

/// `[policy.topics]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawTopics {
    /// Topics clients never see: `[{ prefix = "internal." }, { exact = "audit" }]`.
    #[serde(default)]
    pub hidden: Vec<RawNameMatch>,
    /// `[[policy.topics.alias]]`: a client-facing name for an upstream topic.
    #[serde(default)]
    pub alias: Vec<RawAlias>,
}

/// `[[policy.topics.alias]]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawAlias {
    /// The name clients use. Required.
    pub name: Option<String>,
    /// The upstream topic it stands for. Required.
    pub upstream: Option<String>,
}

/// Why `name` is not a legal Kafka topic name (1-249 characters of `A-Z a-z 0-9 . _ -`, not `.`
/// or `..`; Kafka's `Topic.validate`), or `None`.
fn topic_name_error(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 249 {
        return Some(format!("{name:?} must be 1-249 characters"));
    }
    if name == "." || name == ".." {
        return Some(format!("{name:?} is not a legal topic name"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Some(format!(
            "{name:?} may only contain A-Z a-z 0-9 . _ - (Kafka topic names)"
        ));
    }
    None
}

/// One name of an alias: present, a legal topic name, not used by an earlier alias.
fn alias_field<'a>(
    at: &str,
    key: &str,
    v: &'a Option<String>,
    seen: &BTreeMap<&str, usize>,
    errs: &mut Vec<FieldError>,
) -> Option<&'a String> {
    let path = format!("{at}.{key}");
    let Some(v) = v else {
        errs.push(FieldError {
            path,
            reason: "is required".into(),
        });
        return None;
    };
    if let Some(reason) = topic_name_error(v) {
        errs.push(FieldError { path, reason });
        return None;
    }
    if let Some(j) = seen.get(v.as_str()) {
        errs.push(FieldError {
            path,
            reason: format!("{v:?} is already used by policy.topics.alias[{j}]"),
        });
        return None;
    }
    Some(v)
}

/// Validates and compiles `raw`; every error goes to `errs` with its dotted path.
pub fn compile(raw: &RawTopics, errs: &mut Vec<FieldError>) -> TopicMap {
    let mut hidden = Vec::new();
    for (i, m) in raw.hidden.iter().enumerate() {
        if let Some(m) = name_match(
            &Some(m.clone()),
            &format!("policy.topics.hidden[{i}]"),
            errs,
        ) {
            hidden.push(m);
        }
    }
    let mut aliases = Vec::new();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut upstreams: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, a) in raw.alias.iter().enumerate() {
        let at = format!("policy.topics.alias[{i}]");
        let name = alias_field(&at, "name", &a.name, &names, errs);
        let upstream = alias_field(&at, "upstream", &a.upstream, &upstreams, errs);
        if let Some(n) = name {
            names.insert(n, i);
        }
        if let Some(u) = upstream {
            upstreams.insert(u, i);
        }
        if let (Some(n), Some(u)) = (name, upstream) {
            aliases.push((i, n.clone(), u.clone()));
        }
    }
    for (i, n, _) in &aliases {
        if hidden.iter().any(|m| m.matches(n)) {
            errs.push(FieldError {
                path: format!("policy.topics.alias[{i}].name"),
                reason: format!(
                    "{n:?} matches a policy.topics.hidden pattern; an alias must be visible"
                ),
            });
        }
    }
    debug_assert!(topic_name_error(HIDDEN_PREFIX).is_some());
    let aliases: Vec<(String, String)> = aliases.into_iter().map(|(_, n, u)| (n, u)).collect();
    TopicMap::new(hidden, &aliases)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::protocol::topics::{ClientName, TopicMapper};

    fn compile_toml(text: &str) -> (TopicMap, Vec<FieldError>) {
        let raw: RawTopics = toml::from_str(text).unwrap();
        let mut errs = Vec::new();
        (compile(&raw, &mut errs), errs)
    }

    #[test]
    fn compiles() {
        let (m, errs) = compile_toml(
            r#"
            hidden = [{ prefix = "internal." }, { regex = "^tmp-" }]
            [[alias]]
            name = "orders"
            upstream = "internal.orders"
            "#,
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(m.upstream("orders").as_deref(), Some("internal.orders"));
        assert_eq!(m.client("tmp-1"), ClientName::Hidden);
    }

    #[test]
    fn every_error_has_its_path() {
        let (_, errs) = compile_toml(
            r#"
            hidden = [{ regex = "(" }, { prefix = "secret" }]
            [[alias]]
            name = "a"
            upstream = "x"
            [[alias]]
            name = "a"
            upstream = "y!"
            [[alias]]
            upstream = "x"
            [[alias]]
            name = "secret-view"
            upstream = "z"
            "#,
        );
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "policy.topics.hidden[0].regex",
                "policy.topics.alias[1].name",
                "policy.topics.alias[1].upstream",
                "policy.topics.alias[2].name",
                "policy.topics.alias[2].upstream",
                "policy.topics.alias[3].name",
            ],
            "{errs:?}"
        );
    }

    #[test]
    fn topic_names() {
        assert!(topic_name_error("orders.v2_x-1").is_none());
        for bad in ["", ".", "..", "a b", "a!b", &"x".repeat(250)] {
            assert!(topic_name_error(bad).is_some(), "{bad:?}");
        }
    }
}
