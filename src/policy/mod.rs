//! Traffic policy (control plane model, data-plane checks): rules that match a client's identity
//! and check its requests.
//!
//! A rule has a scope ([`Scope`]: client id pattern and source networks; every condition set must
//! hold) and checks; its [`Action`] is `reject` (the client gets the Kafka error it understands)
//! or `log` (the request passes and the violation is logged and counted). Rules are compiled at
//! config load (regexes, networks), so the data path only compares. The identity a rule matches
//! is [`Identity`]: client id and source address today; an authenticated principal becomes one
//! more field of it and of [`Scope`].
//!
//! Implemented rule kinds: produce safeguards ([`ProduceRule`]). Requests no rule is interested
//! in are never decoded.

use std::net::IpAddr;

use regex::Regex;

use crate::protocol::produce::{Codec, ProduceFacts};

/// What a rule does with a request it finds in violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Answer with the Kafka error code (Produce: `POLICY_VIOLATION` per partition; with
    /// `acks=0`, which has no response, the connection is closed as a broker would).
    Reject,
    /// Let the request through; log and count the violation.
    Log,
}

impl Action {
    /// The `action` label value.
    pub fn label(self) -> &'static str {
        match self {
            Action::Reject => "reject",
            Action::Log => "log",
        }
    }
}

/// A string matcher: exact, prefix or regular expression (unanchored unless the pattern anchors).
#[derive(Debug, Clone)]
pub enum NameMatch {
    Exact(String),
    Prefix(String),
    Regex(Regex),
}

impl NameMatch {
    /// Whether `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        match self {
            NameMatch::Exact(e) => s == e,
            NameMatch::Prefix(p) => s.starts_with(p.as_str()),
            NameMatch::Regex(r) => r.is_match(s),
        }
    }
}

/// An IP network (`10.0.0.0/8`, `::1/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `ip/prefix` or a bare IP (a host).
    ///
    /// # Errors
    /// Why it is not a network.
    pub fn parse(s: &str) -> Result<Network, String> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = ip
            .parse()
            .map_err(|_| format!("{ip:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{p:?} is not a prefix length (0..={max})"))?,
        };
        Ok(Network { addr, prefix })
    }

    /// Whether `ip` is inside (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Who sent a request.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// The request header's client id (`None` when null).
    pub client_id: Option<&'a str>,
    /// The client's address.
    pub source: Option<IpAddr>,
}

/// Which identities a rule applies to; every condition set must hold, none set means everyone.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub client_id: Option<NameMatch>,
    /// Source networks; empty means any source.
    pub sources: Vec<Network>,
}

impl Scope {
    /// Whether the rule applies to `id`.
    pub fn applies(&self, id: &Identity<'_>) -> bool {
        if let Some(m) = &self.client_id {
            if !id.client_id.is_some_and(|c| m.matches(c)) {
                return false;
            }
        }
        self.sources.is_empty()
            || id
                .source
                .is_some_and(|ip| self.sources.iter().any(|n| n.contains(ip)))
    }
}

/// A produce safeguard: each check set must pass.
#[derive(Debug, Clone)]
pub struct ProduceRule {
    /// Unique name (log lines and the `rule` metric label).
    pub name: String,
    pub action: Action,
    pub scope: Scope,
    /// Allowed `acks` values (`-1` = all).
    pub allowed_acks: Option<Vec<i16>>,
    /// Largest record batch allowed, bytes (the whole batch encoding).
    pub max_batch_bytes: Option<usize>,
    /// Codecs allowed (every batch must use one of them).
    pub allowed_compression: Option<Vec<Codec>>,
    /// Codecs no batch may use.
    pub forbidden_compression: Vec<Codec>,
    /// Every batch must carry a producer id (idempotent or transactional producer, KIP-98).
    pub require_idempotence: bool,
}

impl ProduceRule {
    /// Why `f` violates this rule, or `None`.
    pub fn violation(&self, f: &ProduceFacts) -> Option<String> {
        if let Some(allowed) = &self.allowed_acks {
            if !allowed.contains(&f.acks) {
                return Some(format!(
                    "acks={} is not allowed (allowed: {allowed:?})",
                    f.acks
                ));
            }
        }
        if let Some(max) = self.max_batch_bytes {
            if f.max_batch_bytes > max {
                return Some(format!(
                    "a record batch of {} bytes exceeds the maximum of {max}",
                    f.max_batch_bytes
                ));
            }
        }
        for c in f.codecs() {
            if self.forbidden_compression.contains(&c)
                || self
                    .allowed_compression
                    .as_ref()
                    .is_some_and(|a| !a.contains(&c))
            {
                return Some(format!("compression {} is not allowed", c.name()));
            }
        }
        if self.require_idempotence && f.non_idempotent_batches > 0 {
            return Some("an idempotent producer is required (enable.idempotence=true)".into());
        }
        None
    }
}

/// Which part of the identity a quota counts by: each distinct value has its own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaKeyBy {
    /// One limit per client id (a null client id counts as the empty string).
    ClientId,
    /// One limit per source address.
    Source,
}

/// A quota rule: global limits per key, over all shards, in the broker's model. Byte and
/// request rates (KIP-13, KIP-124) are enforced by per-shard shares (see [`crate::quota`]): a
/// breach is answered with `throttle_time_ms` and the connection is muted for that long
/// (KIP-219); nothing is dropped. Connection limits per source (broker
/// `max.connections.per.ip`, KIP-612) are enforced at accept: a connection over them is closed.
#[derive(Debug, Clone)]
pub struct QuotaRule {
    /// Unique name (metrics label, log lines).
    pub name: String,
    pub scope: Scope,
    pub key_by: QuotaKeyBy,
    /// Produce request bytes per second, per key.
    pub produce_bytes_per_s: Option<f64>,
    /// Fetch response bytes per second, per key.
    pub fetch_bytes_per_s: Option<f64>,
    /// Requests per second, per key: every request counts once, whatever its api key, except
    /// ApiVersions, SaslHandshake and SaslAuthenticate (connection set-up, which the connection
    /// limits cover).
    ///
    /// KIP-124 limits the share of broker request-handler and network thread *time* a client
    /// uses. Sluice has no handler threads: a request costs a shard about the same whatever it
    /// asks for (the broker does the work), and timing each request on a shard that polls would
    /// cost more than the forwarding. So Sluice counts requests, which is exact, cheap, the same
    /// on every shard, and what protects the brokers behind it from a client that floods them
    /// with small requests (Metadata loops, produce with `linger.ms=0`).
    pub requests_per_s: Option<f64>,
    /// Most connections open at once per key (a source address), all shards together.
    pub max_connections: Option<u32>,
    /// Most new connections per second per key (a source address), all shards together.
    pub connections_per_s: Option<f64>,
}

impl QuotaRule {
    /// The key value of `id` for this rule.
    pub fn key_of(&self, id: &Identity<'_>) -> String {
        match self.key_by {
            QuotaKeyBy::ClientId => id.client_id.unwrap_or("").to_string(),
            QuotaKeyBy::Source => id.source.map(|ip| ip.to_string()).unwrap_or_default(),
        }
    }

    /// The rate limit of `kind`, per second, if this rule sets one.
    pub fn rate(&self, kind: crate::quota::Kind) -> Option<f64> {
        use crate::quota::Kind;
        match kind {
            Kind::ProduceBytes => self.produce_bytes_per_s,
            Kind::FetchBytes => self.fetch_bytes_per_s,
            Kind::Requests => self.requests_per_s,
            Kind::Connections => self.connections_per_s,
        }
    }

    /// Whether the rule limits connections (checked at accept).
    pub fn limits_connections(&self) -> bool {
        self.max_connections.is_some() || self.connections_per_s.is_some()
    }
}

/// Api keys a client may not use. With `reject` they are left out of its ApiVersions response and
/// a request that uses one anyway closes the connection (as a broker does for an api key it does
/// not support); with `log` the request passes and is counted.
#[derive(Debug, Clone)]
pub struct ApiKeyRule {
    pub name: String,
    pub action: Action,
    pub scope: Scope,
    /// Forbidden api keys (Kafka protocol guide numbers).
    pub forbidden: Vec<i16>,
}

/// A create-topic safeguard (CreateTopics, KIP-4): each check set must pass for every topic of
/// the request. A broker default (-1 partitions or replication factor) is not checked.
#[derive(Debug, Clone)]
pub struct CreateTopicRule {
    pub name: String,
    pub action: Action,
    pub scope: Scope,
    /// Allowed partition counts, inclusive.
    pub partitions: Option<(i32, i32)>,
    /// Allowed replication factors, inclusive.
    pub replication_factor: Option<(i16, i16)>,
    /// Topic names must match.
    pub topic_name: Option<NameMatch>,
    /// Configs that may not be set.
    pub forbidden_configs: Vec<String>,
    /// When set, the only configs that may be set.
    pub allowed_configs: Option<Vec<String>>,
    /// Numeric configs and their inclusive range (`retention.ms`).
    pub config_ranges: Vec<(String, Option<i64>, Option<i64>)>,
    /// Configs and the values they may take (`cleanup.policy`).
    pub config_values: Vec<(String, Vec<String>)>,
}

impl CreateTopicRule {
    /// Why `t` violates this rule, or `None`.
    pub fn violation(&self, t: &crate::protocol::create_topics::TopicSpec) -> Option<String> {
        if let Some(m) = &self.topic_name {
            if !m.matches(&t.name) {
                return Some(format!("topic name {:?} is not allowed", t.name));
            }
        }
        if let Some((lo, hi)) = self.partitions {
            if t.num_partitions != -1 && !(lo..=hi).contains(&t.num_partitions) {
                return Some(format!(
                    "{} partitions is outside {lo}..={hi}",
                    t.num_partitions
                ));
            }
        }
        if let Some((lo, hi)) = self.replication_factor {
            if t.replication_factor != -1 && !(lo..=hi).contains(&t.replication_factor) {
                return Some(format!(
                    "replication factor {} is outside {lo}..={hi}",
                    t.replication_factor
                ));
            }
        }
        for (name, value) in &t.configs {
            if self.forbidden_configs.contains(name)
                || self
                    .allowed_configs
                    .as_ref()
                    .is_some_and(|a| !a.contains(name))
            {
                return Some(format!("config {name} may not be set"));
            }
            let v = value.as_deref().unwrap_or("");
            for (k, lo, hi) in &self.config_ranges {
                if k == name {
                    let ok = v
                        .parse::<i64>()
                        .is_ok_and(|n| lo.is_none_or(|lo| n >= lo) && hi.is_none_or(|hi| n <= hi));
                    if !ok {
                        return Some(format!("config {name}={v} is outside its allowed range"));
                    }
                }
            }
            for (k, allowed) in &self.config_values {
                if k == name && !allowed.iter().any(|a| a == v) {
                    return Some(format!("config {name}={v} is not one of {allowed:?}"));
                }
            }
        }
        None
    }
}

/// Every rule in force.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub produce: Vec<ProduceRule>,
    pub quota: Vec<QuotaRule>,
    pub api_keys: Vec<ApiKeyRule>,
    pub create_topics: Vec<CreateTopicRule>,
}

impl Policy {
    /// The create-topic rules that apply to `id`.
    pub fn create_topic_rules<'a>(
        &'a self,
        id: &'a Identity<'a>,
    ) -> impl Iterator<Item = &'a CreateTopicRule> + 'a {
        self.create_topics
            .iter()
            .filter(move |r| r.scope.applies(id))
    }

    /// The api key rules that apply to `id`.
    pub fn api_key_rules<'a>(
        &'a self,
        id: &'a Identity<'a>,
    ) -> impl Iterator<Item = &'a ApiKeyRule> + 'a {
        self.api_keys.iter().filter(move |r| r.scope.applies(id))
    }

    /// Whether any quota rule counts requests (otherwise requests are never charged).
    pub fn has_request_quota(&self) -> bool {
        self.quota.iter().any(|r| r.requests_per_s.is_some())
    }

    /// Whether any quota rule limits connections (otherwise accept checks nothing).
    pub fn has_connection_quota(&self) -> bool {
        self.quota.iter().any(QuotaRule::limits_connections)
    }

    /// The quota rules that apply to `id`.
    pub fn quotas<'a>(&'a self, id: &'a Identity<'a>) -> impl Iterator<Item = &'a QuotaRule> + 'a {
        self.quota.iter().filter(move |r| r.scope.applies(id))
    }

    /// The produce rules that apply to `id`.
    pub fn produce_rules<'a>(
        &'a self,
        id: &'a Identity<'a>,
    ) -> impl Iterator<Item = &'a ProduceRule> + 'a {
        self.produce.iter().filter(move |r| r.scope.applies(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let n = Network::parse("10.1.0.0/16").expect("net");
        assert!(n.contains("10.1.200.3".parse().expect("ip")));
        assert!(!n.contains("10.2.0.1".parse().expect("ip")));
        assert!(n.contains("::ffff:10.1.0.9".parse().expect("ip")));
        let all = Network::parse("0.0.0.0/0").expect("net");
        assert!(all.contains("192.0.2.1".parse().expect("ip")));
        let host = Network::parse("::1").expect("net");
        assert!(host.contains("::1".parse().expect("ip")));
        assert!(!host.contains("::2".parse().expect("ip")));
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("nope/8").is_err());
    }

    fn rule() -> ProduceRule {
        ProduceRule {
            name: "r".into(),
            action: Action::Reject,
            scope: Scope::default(),
            allowed_acks: Some(vec![-1]),
            max_batch_bytes: Some(1000),
            allowed_compression: Some(vec![Codec::Zstd, Codec::Lz4]),
            forbidden_compression: vec![],
            require_idempotence: true,
        }
    }

    fn facts(acks: i16, max: usize, codec: &str, non_idem: usize) -> ProduceFacts {
        let mut f = ProduceFacts::default();
        f.acks = acks;
        f.batches = 1;
        f.max_batch_bytes = max;
        f.non_idempotent_batches = non_idem;
        f.set_codec(Codec::from_name(codec).expect("codec"));
        f
    }

    #[test]
    fn each_check_fires_alone() {
        let r = rule();
        assert_eq!(r.violation(&facts(-1, 1000, "zstd", 0)), None);
        assert!(r
            .violation(&facts(1, 1000, "zstd", 0))
            .is_some_and(|v| v.contains("acks=1")));
        assert!(r
            .violation(&facts(-1, 1001, "zstd", 0))
            .is_some_and(|v| v.contains("1001")));
        assert!(r
            .violation(&facts(-1, 10, "gzip", 0))
            .is_some_and(|v| v.contains("gzip")));
        assert!(r
            .violation(&facts(-1, 10, "lz4", 1))
            .is_some_and(|v| v.contains("idempotent")));
    }

    #[test]
    fn scope_matches_client_id_and_source() {
        let s = Scope {
            client_id: Some(NameMatch::Regex(Regex::new("^batch-").expect("re"))),
            sources: vec![Network::parse("127.0.0.0/8").expect("net")],
        };
        let id = |c: Option<&'static str>, ip: &str| Identity {
            client_id: c,
            source: ip.parse().ok(),
        };
        assert!(s.applies(&id(Some("batch-1"), "127.0.0.1")));
        assert!(!s.applies(&id(Some("web-1"), "127.0.0.1")));
        assert!(!s.applies(&id(Some("batch-1"), "10.0.0.1")));
        assert!(!s.applies(&id(None, "127.0.0.1")));
        assert!(Scope::default().applies(&id(None, "10.0.0.1")));
        assert!(NameMatch::Prefix("a".into()).matches("abc"));
        assert!(!NameMatch::Exact("a".into()).matches("abc"));
    }
}
