//! Topic filtering and aliases: which topic names clients see, and which upstream topic each
//! client-facing name stands for.
//!
//! - A **hidden** topic (matched by literal, prefix or regex) is never listed to clients, and a
//!   request naming it is answered as if the topic did not exist (`UNKNOWN_TOPIC_OR_PARTITION`).
//! - An **alias** maps a client-facing name to one upstream topic, both ways: requests carry the
//!   upstream name to the broker, responses carry the alias back. The upstream topic is then only
//!   reachable under its alias (one name per topic for clients), and an upstream topic that happens
//!   to bear the alias's name is shadowed (hidden). Topic ids are the upstream topic's, unchanged,
//!   so they stay consistent with the names clients see.
//! - An alias wins over a hidden pattern: hiding `internal.*` and aliasing `orders` to
//!   `internal.orders` exposes exactly that one topic, under the alias.
//!
//! The map is gateway-wide, not per client: every member of a consumer group must see the same
//! names for its committed offsets to mean the same topics.

use std::collections::HashMap;

use super::NameMatch;
use crate::protocol::topics::{ClientName, TopicMapper, HIDDEN_PREFIX};

/// The compiled `[policy.topics]`: hidden topics and aliases.
#[derive(Debug, Clone, Default)]
pub struct TopicMap {
    hidden: Vec<NameMatch>,
    /// client-facing name -> upstream name
    to_upstream: HashMap<String, String>,
    /// upstream name -> client-facing name
    to_client: HashMap<String, String>,
}

impl TopicMap {
    /// A map from hidden-topic matchers and `(alias, upstream)` pairs. The caller has validated
    /// that aliases and upstream names are unique and legal topic names.
    pub fn new(hidden: Vec<NameMatch>, aliases: &[(String, String)]) -> TopicMap {
        TopicMap {
            hidden,
            to_upstream: aliases.iter().cloned().collect(),
            to_client: aliases
                .iter()
                .map(|(a, u)| (u.clone(), a.clone()))
                .collect(),
        }
    }

    /// No topic is hidden or aliased: requests and responses pass untouched.
    pub fn is_empty(&self) -> bool {
        self.hidden.is_empty() && self.to_upstream.is_empty()
    }

    fn hidden_match(&self, name: &str) -> bool {
        self.hidden.iter().any(|m| m.matches(name))
    }
}

impl TopicMapper for TopicMap {
    fn upstream(&self, client: &str) -> Option<String> {
        if let Some(u) = self.to_upstream.get(client) {
            return Some(u.clone());
        }
        let hidden = self.hidden_match(client)
            || self.to_client.contains_key(client)
            || client.starts_with(HIDDEN_PREFIX);
        hidden.then(|| format!("{HIDDEN_PREFIX}{client}"))
    }

    fn client(&self, upstream: &str) -> ClientName {
        if let Some(a) = self.to_client.get(upstream) {
            return ClientName::Renamed(a.clone());
        }
        if let Some(original) = upstream.strip_prefix(HIDDEN_PREFIX) {
            return ClientName::Unknown(original.to_string());
        }
        if self.hidden_match(upstream) || self.to_upstream.contains_key(upstream) {
            return ClientName::Hidden;
        }
        ClientName::Same
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn map() -> TopicMap {
        TopicMap::new(
            vec![
                NameMatch::Prefix("internal.".into()),
                NameMatch::Exact("audit".into()),
            ],
            &[
                ("orders".into(), "internal.orders".into()),
                ("payments".into(), "payments.v2".into()),
            ],
        )
    }

    #[test]
    fn requests_carry_upstream_names() {
        let m = map();
        assert_eq!(m.upstream("orders").as_deref(), Some("internal.orders"));
        assert_eq!(m.upstream("payments").as_deref(), Some("payments.v2"));
        assert_eq!(m.upstream("plain"), None);
        // hidden, an alias target, and the reserved prefix itself: sent under a name no broker
        // accepts, so the broker answers as for a topic that does not exist
        for hidden in ["internal.x", "audit", "payments.v2", "internal.orders"] {
            assert_eq!(
                m.upstream(hidden),
                Some(format!("{HIDDEN_PREFIX}{hidden}")),
                "{hidden}"
            );
        }
        let reserved = format!("{HIDDEN_PREFIX}x");
        assert_eq!(
            m.upstream(&reserved),
            Some(format!("{HIDDEN_PREFIX}{reserved}"))
        );
    }

    #[test]
    fn responses_carry_client_names() {
        let m = map();
        assert_eq!(
            m.client("internal.orders"),
            ClientName::Renamed("orders".into())
        );
        assert_eq!(
            m.client("payments.v2"),
            ClientName::Renamed("payments".into())
        );
        assert_eq!(m.client("plain"), ClientName::Same);
        assert_eq!(m.client(""), ClientName::Same);
        assert_eq!(m.client("internal.secret"), ClientName::Hidden);
        assert_eq!(m.client("audit"), ClientName::Hidden);
        // an upstream topic named like an alias is shadowed
        assert_eq!(m.client("orders"), ClientName::Hidden);
        // every name a request carried comes back as the client wrote it
        for name in ["internal.x", "audit", "payments.v2", "x"] {
            let up = m.upstream(name).unwrap_or_else(|| name.to_string());
            let back = match m.client(&up) {
                ClientName::Same => name.to_string(),
                ClientName::Renamed(s) | ClientName::Unknown(s) => s,
                ClientName::Hidden => panic!("{name} hidden"),
            };
            assert_eq!(back, name);
        }
    }

    #[test]
    fn empty_map() {
        let m = TopicMap::default();
        assert!(m.is_empty());
        assert_eq!(m.upstream("x"), None);
        assert_eq!(m.client("x"), ClientName::Same);
        assert!(!map().is_empty());
    }
}
