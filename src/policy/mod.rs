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
//! Implemented rule kinds: produce safeguards ([`ProduceRule`]), create-topic safeguards
//! ([`CreateTopicRule`]), forbidden api keys ([`ApiKeyRule`]), quotas ([`QuotaRule`]), client id
//! safeguards ([`ClientIdRule`]), read-only topics ([`ReadOnlyRule`]) and topic-config safeguards
//! ([`TopicConfigRule`], sharing [`ConfigChecks`] with create-topic rules). Requests no rule is
//! interested in are never decoded.

pub mod topics;

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
    /// One limit per topic (client-facing name), for produce and fetch bytes: every client in
    /// the rule's scope shares it.
    Topic,
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
    /// With `key_by` [`QuotaKeyBy::Topic`]: the topics limited (empty: every topic).
    pub topics: Vec<NameMatch>,
}

impl QuotaRule {
    /// The key value of `id` for this rule.
    pub fn key_of(&self, id: &Identity<'_>) -> String {
        match self.key_by {
            QuotaKeyBy::ClientId => id.client_id.unwrap_or("").to_string(),
            QuotaKeyBy::Source => id.source.map(|ip| ip.to_string()).unwrap_or_default(),
            // Per topic: the key is each topic of a request (see `limits_topic`).
            QuotaKeyBy::Topic => String::new(),
        }
    }

    /// Whether the rule keeps one limit per topic.
    pub fn per_topic(&self) -> bool {
        self.key_by == QuotaKeyBy::Topic
    }

    /// Whether a per-topic rule limits `topic`.
    pub fn limits_topic(&self, topic: &str) -> bool {
        self.per_topic() && (self.topics.is_empty() || self.topics.iter().any(|m| m.matches(topic)))
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
    /// Checks on the configs the request sets.
    pub configs: ConfigChecks,
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
        t.configs
            .iter()
            .find_map(|(name, value)| self.configs.violation(name, value.as_deref()))
    }
}

/// Checks on topic configs (`retention.ms`, `cleanup.policy`, ...), shared by create-topic and
/// topic-config rules. Names and values are Kafka's topic config keys and their string values
/// (Kafka documentation, "Topic-Level Configs").
#[derive(Debug, Clone, Default)]
pub struct ConfigChecks {
    /// Configs that may not be set.
    pub forbidden: Vec<String>,
    /// When set, the only configs that may be set.
    pub allowed: Option<Vec<String>>,
    /// Numeric configs and their inclusive range (`retention.ms`, in the config's own unit); a
    /// value that is not an integer is outside.
    pub ranges: Vec<(String, Option<i64>, Option<i64>)>,
    /// Configs and the values they may take (`cleanup.policy`), compared as whole strings.
    pub values: Vec<(String, Vec<String>)>,
}

impl ConfigChecks {
    /// Whether no check is set.
    pub fn is_empty(&self) -> bool {
        self.forbidden.is_empty()
            && self.allowed.is_none()
            && self.ranges.is_empty()
            && self.values.is_empty()
    }

    /// Why setting config `name` to `value` (`None`: null) violates these checks, or `None`.
    pub fn violation(&self, name: &str, value: Option<&str>) -> Option<String> {
        if self.forbidden.iter().any(|f| f == name)
            || self
                .allowed
                .as_ref()
                .is_some_and(|a| !a.iter().any(|x| x == name))
        {
            return Some(format!("config {name} may not be set"));
        }
        let v = value.unwrap_or("");
        for (k, lo, hi) in &self.ranges {
            if k == name {
                let ok = v
                    .parse::<i64>()
                    .is_ok_and(|n| lo.is_none_or(|lo| n >= lo) && hi.is_none_or(|hi| n <= hi));
                if !ok {
                    let lo = lo.map_or(String::new(), |l| l.to_string());
                    let hi = hi.map_or(String::new(), |h| h.to_string());
                    return Some(format!(
                        "config {name}={v} is outside its allowed range {lo}..={hi}"
                    ));
                }
            }
        }
        for (k, allowed) in &self.values {
            if k == name && !allowed.iter().any(|a| a == v) {
                return Some(format!("config {name}={v} is not one of {allowed:?}"));
            }
        }
        None
    }
}

/// A client id safeguard: the request header's client id must be present and non-empty
/// (`required`) and/or match `pattern`. The request header is Kafka's (protocol guide, "Request
/// Header": `client_id` nullable string). With `reject`, Sluice answers the connection's
/// ApiVersions request itself with `POLICY_VIOLATION` (44) and closes the connection on any other
/// request: no api key has a per-request error for a bad client id.
#[derive(Debug, Clone)]
pub struct ClientIdRule {
    pub name: String,
    pub action: Action,
    pub scope: Scope,
    /// A null or empty client id is a violation.
    pub required: bool,
    /// The client id must match (a null client id never does).
    pub pattern: Option<NameMatch>,
}

impl ClientIdRule {
    /// Why `client_id` violates this rule, or `None`.
    pub fn violation(&self, client_id: Option<&str>) -> Option<String> {
        if self.required && client_id.is_none_or(str::is_empty) {
            return Some("a client id is required (client.id is null or empty)".into());
        }
        if let Some(m) = &self.pattern {
            if !client_id.is_some_and(|c| m.matches(c)) {
                return Some(format!(
                    "client id {:?} does not match the required pattern",
                    client_id.unwrap_or("")
                ));
            }
        }
        None
    }
}

/// Topics clients in scope may read but not write: Produce to a matching topic is answered with
/// `TOPIC_AUTHORIZATION_FAILED` (29) for its partitions, as a broker answers a producer its ACLs
/// deny (KIP-11 authorizer); so are DeleteRecords (api key 21) and DeleteTopics (20) on a
/// matching topic.
#[derive(Debug, Clone)]
pub struct ReadOnlyRule {
    pub name: String,
    pub action: Action,
    pub scope: Scope,
    /// The read-only topics: a topic matching any of them.
    pub topics: Vec<NameMatch>,
}

impl ReadOnlyRule {
    /// Whether `topic` is read-only under this rule.
    pub fn covers(&self, topic: &str) -> bool {
        self.topics.iter().any(|m| m.matches(topic))
    }
}

/// A topic-config safeguard: the configs a client sets on topics, in AlterConfigs (api key 33),
/// IncrementalAlterConfigs (44, KIP-339: `SET` and `APPEND` operations; `DELETE` and `SUBTRACT`
/// are not checked) and CreateTopics (19), must pass [`ConfigChecks`]. Only topic resources are
/// checked (resource type 2); broker configs are not.
#[derive(Debug, Clone)]
pub struct TopicConfigRule {
    pub name: String,
    pub action: Action,
    pub scope: Scope,
    /// Only topics matching this are checked; `None`: every topic.
    pub topic_name: Option<NameMatch>,
    pub configs: ConfigChecks,
}

impl TopicConfigRule {
    /// Why setting `name` = `value` on `topic` violates this rule, or `None`.
    pub fn violation(&self, topic: &str, name: &str, value: Option<&str>) -> Option<String> {
        if self.topic_name.as_ref().is_some_and(|m| !m.matches(topic)) {
            return None;
        }
        self.configs.violation(name, value)
    }

    /// The first of `configs` (name, value) that violates this rule on `topic`, as
    /// `topic <topic>: <reason>`; `None` when none does.
    pub fn first_violation<'a>(
        &self,
        topic: &str,
        configs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Option<String> {
        let reason = configs
            .into_iter()
            .find_map(|(name, value)| self.violation(topic, name, value))?;
        Some(format!("topic {topic}: {reason}"))
    }
}

/// Every rule in force.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub produce: Vec<ProduceRule>,
    pub quota: Vec<QuotaRule>,
    pub api_keys: Vec<ApiKeyRule>,
    pub create_topics: Vec<CreateTopicRule>,
    /// Hidden topics and topic aliases.
    pub topics: topics::TopicMap,
    pub client_ids: Vec<ClientIdRule>,
    pub read_only: Vec<ReadOnlyRule>,
    pub topic_configs: Vec<TopicConfigRule>,
}

impl Policy {
    /// The client id rules that apply to `id`.
    pub fn client_id_rules<'a>(
        &'a self,
        id: &'a Identity<'a>,
    ) -> impl Iterator<Item = &'a ClientIdRule> + 'a {
        self.client_ids.iter().filter(move |r| r.scope.applies(id))
    }

    /// The read-only topic rules that apply to `id`.
    pub fn read_only_rules<'a>(
        &'a self,
        id: &'a Identity<'a>,
    ) -> impl Iterator<Item = &'a ReadOnlyRule> + 'a {
        self.read_only.iter().filter(move |r| r.scope.applies(id))
    }

    /// The topic-config rules that apply to `id`.
    pub fn topic_config_rules<'a>(
        &'a self,
        id: &'a Identity<'a>,
    ) -> impl Iterator<Item = &'a TopicConfigRule> + 'a {
        self.topic_configs
            .iter()
            .filter(move |r| r.scope.applies(id))
    }

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

    /// Whether any per-topic quota rule limits `kind` (a cheap check before a request is walked
    /// for its topics).
    pub fn has_topic_quota(&self, kind: crate::quota::Kind) -> bool {
        self.quota
            .iter()
            .any(|r| r.per_topic() && r.rate(kind).is_some())
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

    #[test]
    fn client_id_rule_checks_presence_and_pattern() {
        let r = ClientIdRule {
            name: "ids".into(),
            action: Action::Reject,
            scope: Scope::default(),
            required: true,
            pattern: Some(NameMatch::Prefix("svc-".into())),
        };
        assert_eq!(r.violation(Some("svc-orders")), None);
        assert!(r.violation(None).is_some_and(|v| v.contains("required")));
        assert!(r
            .violation(Some(""))
            .is_some_and(|v| v.contains("required")));
        assert!(r
            .violation(Some("console-producer"))
            .is_some_and(|v| v.contains("\"console-producer\" does not match")));
        let only_required = ClientIdRule {
            pattern: None,
            ..r.clone()
        };
        assert_eq!(only_required.violation(Some("anything")), None);
        let only_pattern = ClientIdRule {
            required: false,
            ..r
        };
        assert!(only_pattern.violation(None).is_some());
    }

    #[test]
    fn read_only_rule_covers_any_matcher() {
        let r = ReadOnlyRule {
            name: "ro".into(),
            action: Action::Reject,
            scope: Scope::default(),
            topics: vec![
                NameMatch::Exact("audit".into()),
                NameMatch::Regex(Regex::new("^ledger\\.").expect("re")),
            ],
        };
        assert!(r.covers("audit"));
        assert!(r.covers("ledger.eu"));
        assert!(!r.covers("audit-2"));
        assert!(!r.covers("orders"));
    }

    #[test]
    fn topic_config_rule_checks_names_ranges_and_values() {
        let r = TopicConfigRule {
            name: "cfg".into(),
            action: Action::Reject,
            scope: Scope::default(),
            topic_name: Some(NameMatch::Prefix("app.".into())),
            configs: ConfigChecks {
                forbidden: vec!["unclean.leader.election.enable".into()],
                allowed: None,
                ranges: vec![("retention.ms".into(), Some(3_600_000), Some(604_800_000))],
                values: vec![("cleanup.policy".into(), vec!["delete".into()])],
            },
        };
        assert_eq!(r.violation("app.x", "retention.ms", Some("86400000")), None);
        assert!(r
            .violation("app.x", "retention.ms", Some("1000"))
            .is_some_and(|v| v.contains("retention.ms=1000") && v.contains("3600000..=604800000")));
        assert!(r
            .violation("app.x", "retention.ms", Some("forever"))
            .is_some());
        assert!(r
            .violation("app.x", "cleanup.policy", Some("compact"))
            .is_some_and(|v| v.contains("cleanup.policy=compact")));
        assert!(r
            .violation("app.x", "unclean.leader.election.enable", Some("true"))
            .is_some_and(|v| v.contains("may not be set")));
        // Topics outside topic_name are not checked; unlisted configs pass without allowed.
        assert_eq!(
            r.violation("other", "cleanup.policy", Some("compact")),
            None
        );
        assert_eq!(r.violation("app.x", "segment.ms", Some("1")), None);
        let allow = ConfigChecks {
            allowed: Some(vec!["retention.ms".into()]),
            ..ConfigChecks::default()
        };
        assert!(allow.violation("segment.ms", Some("1")).is_some());
        assert_eq!(allow.violation("retention.ms", None), None);
        assert!(ConfigChecks::default().is_empty() && !allow.is_empty());
    }
}
