//! What to do with one request frame ([`dispose`]): forward it as it is, forward it with its topic
//! names mapped, or answer it locally, after the checks that concern it (forbidden api keys,
//! versions Sluice must decode, client id rules, the topic map's offer, create-topic, read-only,
//! topic-config and produce safeguards). Each check runs only when a rule of its kind exists, and
//! decodes only the frame it checks; traffic no rule applies to stays zero-copy.

use crate::protocol::answer::AnswerBound;
use std::net::IpAddr;

use crate::policy::{Action, Identity, Policy};
use crate::protocol::create_topics;
use crate::protocol::header::{self, HeaderError};
use crate::protocol::produce;
use crate::protocol::rewrite;
use crate::protocol::topics;
use crate::protocol::versions;
use crate::proxy::quotas::SessionIdentity;
use crate::proxy::safeguards;
use crate::proxy::session::SessionError;
use crate::proxy::shard::Shard;
use crate::quota::Kind;

const API_KEY_PRODUCE: i16 = 0;
const API_KEY_FETCH: i16 = 1;
const API_KEY_API_VERSIONS: i16 = 18;
const API_KEY_CREATE_TOPICS: i16 = 19;
const API_KEY_DELETE_TOPICS: i16 = 20;
const API_KEY_DELETE_RECORDS: i16 = 21;
const API_KEY_ALTER_CONFIGS: i16 = 33;
const API_KEY_INCREMENTAL_ALTER_CONFIGS: i16 = 44;

/// What to do with one request frame.
pub(super) enum Disposition {
    /// Forward; push an in-flight entry if a response is expected.
    Forward { expects_response: bool },
    /// Answer locally with this payload; do not forward.
    Local(bytes::Bytes),
    /// Forward this payload (topic names mapped) instead of the frame.
    Rewritten {
        payload: bytes::Bytes,
        expects_response: bool,
    },
}

/// Who sent a request: its header's client id and the connection's source address.
pub(super) fn request_identity<'a>(
    payload: &'a [u8],
    peek: &header::RequestHeaderPeek,
    source: Option<std::net::IpAddr>,
) -> Identity<'a> {
    Identity {
        client_id: peek
            .client_id(payload)
            .and_then(|b| std::str::from_utf8(b).ok()),
        source,
    }
}

/// The api keys that reject rules forbid this connection (hidden from its ApiVersions) and the
/// version caps rules need (see [`safeguards::api_versions_restrictions`]).
pub(super) fn api_versions_restrictions(
    shard: &Shard,
    ident: &SessionIdentity,
) -> (Vec<i16>, Vec<(i16, i16)>) {
    let cfg = shard.config();
    let p = &cfg.policy;
    let topic_quotas = p.has_topic_quota(Kind::ProduceBytes) || p.has_topic_quota(Kind::FetchBytes);
    if p.api_keys.is_empty()
        && p.read_only.is_empty()
        && p.topic_configs.is_empty()
        && !topic_quotas
    {
        return (Vec::new(), Vec::new());
    }
    let client_id = ident.client_id.borrow();
    let id = Identity {
        client_id: client_id.as_deref(),
        source: ident.source,
    };
    let (hidden, mut caps) = safeguards::api_versions_restrictions(p, &id);
    caps.extend(topic_quota_caps(p, &id));
    (hidden, caps)
}

/// Per-topic quotas read topic names: Produce v13 and Fetch v13+ carry topic ids instead
/// (KIP-516), so a client in scope of a per-topic rule limiting produce or fetch bytes is offered
/// those keys up to v12 only: `(api key, highest version)`.
fn topic_quota_caps(p: &Policy, id: &Identity<'_>) -> Vec<(i16, i16)> {
    let mut caps = Vec::new();
    for (api_key, kind) in [
        (API_KEY_PRODUCE, Kind::ProduceBytes),
        (API_KEY_FETCH, Kind::FetchBytes),
    ] {
        if p.quotas(id)
            .any(|r| r.per_topic() && r.rate(kind).is_some())
        {
            caps.push((api_key, TOPIC_QUOTA_MAX_VERSION));
        }
    }
    caps
}

/// Highest Produce and Fetch version that names topics.
const TOPIC_QUOTA_MAX_VERSION: i16 = 12;

/// Refuses a Produce or Fetch version above what [`topic_quota_caps`] offered this client.
fn check_topic_quota_version(
    payload: &[u8],
    peek: &header::RequestHeaderPeek,
    policy: &Policy,
    source: Option<IpAddr>,
) -> Result<(), SessionError> {
    if peek.api_version <= TOPIC_QUOTA_MAX_VERSION
        || !matches!(peek.api_key, API_KEY_PRODUCE | API_KEY_FETCH)
    {
        return Ok(());
    }
    let id = request_identity(payload, peek, source);
    if let Some((_, max)) = topic_quota_caps(policy, &id)
        .into_iter()
        .find(|(k, _)| *k == peek.api_key)
    {
        let min = versions::decodable_versions(peek.api_key).map_or(0, |r| *r.start());
        return Err(SessionError::UnsupportedVersion {
            api_key: peek.api_key,
            api_version: peek.api_version,
            min,
            max,
        });
    }
    Ok(())
}

/// Policy context of one connection: who it is, and which rules were already logged for it (a
/// violation is logged at warn once per connection and rule, then at debug; every one is counted).
pub(super) struct PolicyCtx<'a> {
    shard: &'a Shard,
    conn_id: u64,
    pub(super) source: Option<std::net::IpAddr>,
    logged: Vec<String>,
    /// The client id rules' verdict on this connection's client id.
    pub(super) client_id_verdict: safeguards::ClientIdVerdict,
}

impl<'a> PolicyCtx<'a> {
    /// The policy context of connection `conn_id` from `source`, nothing logged yet.
    pub(super) fn new(shard: &'a Shard, conn_id: u64, source: Option<IpAddr>) -> Self {
        PolicyCtx {
            shard,
            conn_id,
            source,
            logged: Vec::new(),
            client_id_verdict: safeguards::ClientIdVerdict::default(),
        }
    }

    /// The bound of an answer Sluice builds to a request of `request_bytes` (see
    /// [`crate::protocol::answer`]).
    pub(super) fn answer_bound(&self, request_bytes: usize) -> AnswerBound {
        AnswerBound::for_request(request_bytes, self.shard.config().max_frame_bytes)
    }

    pub(super) fn log(&mut self, rule: &str, action: Action, reason: &str, api_key: i16) {
        let first = !self.logged.iter().any(|r| r == rule);
        self.log_at(rule, action, reason, api_key, first);
    }

    /// As [`Self::log`] for a client id rule: at warn once a minute per shard, rule and client
    /// id (a refused client reconnects again and again), else at debug; always counted.
    pub(super) fn log_client_id(
        &mut self,
        rule: &str,
        action: Action,
        reason: &str,
        api_key: i16,
        client_id: Option<&str>,
    ) {
        let warn = self
            .shard
            .warn_client_id_once(rule, client_id.unwrap_or(""));
        self.log_at(rule, action, reason, api_key, warn);
    }

    fn log_at(&mut self, rule: &str, action: Action, reason: &str, api_key: i16, warn: bool) {
        if warn && !self.logged.iter().any(|r| r == rule) {
            self.logged.push(rule.to_string());
        }
        // Clients can repeat violations at will, over as many connections as they like: warn
        // lines are also held to the shard's log budget.
        let suppressed = if warn {
            self.shard.log_budget.admit(
                ("policy_violation", action.label()),
                std::time::Instant::now(),
            )
        } else {
            None
        };
        if let Some(suppressed) = suppressed {
            tracing::warn!(shard = self.shard.id, conn_id = self.conn_id, peer = ?self.source,
                rule, action = action.label(), api_key, reason, suppressed, "policy violation");
        } else {
            tracing::debug!(
                shard = self.shard.id,
                conn_id = self.conn_id,
                rule,
                action = action.label(),
                api_key,
                reason,
                "policy violation"
            );
        }
        self.shard.metrics.policy_violation(rule, action.label());
    }
}

pub(super) fn dispose(
    payload: &[u8],
    policy: &std::sync::Arc<Policy>,
    ctx: &mut PolicyCtx<'_>,
) -> Result<(header::RequestHeaderPeek, Disposition), SessionError> {
    let peek = header::peek_request_header(payload).map_err(SessionError::ClientHeader)?;
    if !policy.api_keys.is_empty() {
        check_api_key(payload, &peek, policy, ctx)?;
    }
    if let Some(range) = versions::decodable_versions(peek.api_key) {
        if !range.contains(&peek.api_version) {
            if peek.api_key == API_KEY_API_VERSIONS && peek.api_version > *range.end() {
                // As the broker does (KIP-511): answer with v0 UNSUPPORTED_VERSION and our range,
                // and the client retries with a version we decode.
                return Ok((
                    peek,
                    Disposition::Local(rewrite::api_versions_unsupported(peek.correlation_id)),
                ));
            }
            return Err(SessionError::UnsupportedVersion {
                api_key: peek.api_key,
                api_version: peek.api_version,
                min: *range.start(),
                max: *range.end(),
            });
        }
    }
    if !policy.client_ids.is_empty() {
        if let Some(d) = safeguards::check_client_id(payload, &peek, policy, ctx)? {
            return Ok((peek, d));
        }
    }
    if !policy.topics.is_empty() {
        check_topic_map_offers(&peek)?;
    }
    if !policy.quota.is_empty() {
        check_topic_quota_version(payload, &peek, policy, ctx.source)?;
    }
    let checked = match peek.api_key {
        API_KEY_CREATE_TOPICS
            if !policy.create_topics.is_empty() || !policy.topic_configs.is_empty() =>
        {
            check_create_topics(payload, &peek, policy, ctx)?
        }
        API_KEY_DELETE_RECORDS if !policy.read_only.is_empty() => {
            safeguards::check_delete_records(payload, &peek, policy, ctx)?
        }
        API_KEY_DELETE_TOPICS if !policy.read_only.is_empty() => {
            safeguards::check_delete_topics(payload, &peek, policy, ctx)?
        }
        API_KEY_ALTER_CONFIGS | API_KEY_INCREMENTAL_ALTER_CONFIGS
            if !policy.topic_configs.is_empty() =>
        {
            safeguards::check_alter_configs(payload, &peek, policy, ctx)?
        }
        _ => None,
    };
    if let Some(d) = checked {
        return Ok((peek, d));
    }
    let expects_response = if peek.api_key == API_KEY_PRODUCE {
        let acks = header::produce_acks(payload, &peek).map_err(SessionError::ClientHeader)?;
        if !policy.read_only.is_empty() {
            if let Some(d) = safeguards::check_read_only_produce(payload, &peek, acks, policy, ctx)?
            {
                return Ok((peek, d));
            }
        }
        if !policy.produce.is_empty() {
            if let Some(d) = check_produce(payload, &peek, acks, policy, ctx)? {
                return Ok((peek, d));
            }
        }
        acks != 0
    } else {
        true
    };
    if !policy.topics.is_empty() && topics::maps(peek.api_key) {
        let body =
            peek.body_offset
                .ok_or(SessionError::ClientHeader(HeaderError::BodyOffsetUnknown(
                    peek.api_key,
                )))?;
        if let Some(payload) = topics::rewrite_request(
            peek.api_key,
            peek.api_version,
            payload,
            body,
            &policy.topics,
        )
        .map_err(|e| SessionError::BadRequest(format!("topic names: {e}")))?
        {
            return Ok((
                peek,
                Disposition::Rewritten {
                    payload,
                    expects_response,
                },
            ));
        }
    }
    Ok((peek, Disposition::Forward { expects_response }))
}

/// With a topic map, a client may only use the api keys and versions whose topic names Sluice
/// maps or that carry none ([`topics::offered_versions`]; the others are not in its ApiVersions).
fn check_topic_map_offers(peek: &header::RequestHeaderPeek) -> Result<(), SessionError> {
    match topics::offered_versions(peek.api_key) {
        Some(r) if r.contains(&peek.api_version) => Ok(()),
        Some(r) => Err(SessionError::UnsupportedVersion {
            api_key: peek.api_key,
            api_version: peek.api_version,
            min: *r.start(),
            max: *r.end(),
        }),
        None => Err(SessionError::PolicyViolation {
            rule: "policy.topics".into(),
            reason: format!(
                "api key {} is not offered with hidden topics or aliases configured: it may \
                 carry topic names Sluice does not map",
                peek.api_key
            ),
        }),
    }
}

/// Applies the api key rules in scope for this client: a forbidden api key is logged and counted,
/// and with `reject` the connection is closed, as a broker closes it on an api key it does not
/// support (the client was not told of it in ApiVersions).
fn check_api_key(
    payload: &[u8],
    peek: &header::RequestHeaderPeek,
    policy: &Policy,
    ctx: &mut PolicyCtx<'_>,
) -> Result<(), SessionError> {
    let id = request_identity(payload, peek, ctx.source);
    for rule in policy.api_key_rules(&id) {
        if !rule.forbidden.contains(&peek.api_key) {
            continue;
        }
        let reason = format!("api key {} is forbidden", peek.api_key);
        ctx.log(&rule.name, rule.action, &reason, peek.api_key);
        if rule.action == Action::Reject {
            return Err(SessionError::PolicyViolation {
                rule: rule.name.clone(),
                reason,
            });
        }
    }
    Ok(())
}

/// Applies the create-topic rules in scope for this client; `Some` when the request is rejected.
/// A request is forwarded whole or answered whole: when any topic violates a reject rule, every
/// topic gets POLICY_VIOLATION, the others with a message saying why they were not created.
fn check_create_topics(
    payload: &[u8],
    peek: &header::RequestHeaderPeek,
    policy: &Policy,
    ctx: &mut PolicyCtx<'_>,
) -> Result<Option<Disposition>, SessionError> {
    let id = request_identity(payload, peek, ctx.source);
    if policy.create_topic_rules(&id).next().is_none()
        && policy.topic_config_rules(&id).next().is_none()
    {
        return Ok(None);
    }
    let body =
        peek.body_offset
            .ok_or(SessionError::ClientHeader(HeaderError::BodyOffsetUnknown(
                API_KEY_CREATE_TOPICS,
            )))?;
    let specs = create_topics::topics(payload, body, peek.api_version).map_err(|e| {
        SessionError::BadRequest(format!("CreateTopics v{}: {e}", peek.api_version))
    })?;
    let mut rejections = safeguards::Rejections::new(specs.len());
    for rule in policy.create_topic_rules(&id) {
        for (i, t) in specs.iter().enumerate() {
            let Some(reason) = rule.violation(t) else {
                continue;
            };
            rejections.record(ctx, i, (&rule.name, rule.action), &reason, peek.api_key);
        }
    }
    // Topic-config rules check the configs a new topic is created with, as they check changes.
    for rule in policy.topic_config_rules(&id) {
        for (i, t) in specs.iter().enumerate() {
            let configs = t.configs.iter().map(|(k, v)| (k.as_str(), v.as_deref()));
            let Some(reason) = rule.first_violation(&t.name, configs) else {
                continue;
            };
            rejections.record(ctx, i, (&rule.name, rule.action), &reason, peek.api_key);
        }
    }
    let Some(messages) = rejections.finish("created", "topic") else {
        return Ok(None);
    };
    create_topics::error_response(
        &specs,
        peek.api_version,
        peek.correlation_id,
        produce::POLICY_VIOLATION,
        &messages,
        &ctx.answer_bound(payload.len()),
    )
    .map(|b| Some(Disposition::Local(b)))
    .map_err(SessionError::PolicyResponse)
}

/// Applies the produce rules in scope for this client; `Some` when the request is rejected.
/// The request is scanned (in place, no copy) only when a rule applies.
fn check_produce(
    payload: &[u8],
    peek: &header::RequestHeaderPeek,
    acks: i16,
    policy: &Policy,
    ctx: &mut PolicyCtx<'_>,
) -> Result<Option<Disposition>, SessionError> {
    let id = request_identity(payload, peek, ctx.source);
    let body =
        peek.body_offset
            .ok_or(SessionError::ClientHeader(HeaderError::BodyOffsetUnknown(
                API_KEY_PRODUCE,
            )))?;
    let mut facts = None;
    for rule in policy.produce_rules(&id) {
        if facts.is_none() {
            facts = Some(
                produce::scan(payload, body, peek.api_version).map_err(SessionError::BadProduce)?,
            );
        }
        let Some(reason) = facts.as_ref().and_then(|f| rule.violation(f)) else {
            continue;
        };
        ctx.log(&rule.name, rule.action, &reason, peek.api_key);
        if rule.action == Action::Log {
            continue;
        }
        if acks == 0 {
            return Err(SessionError::PolicyViolation {
                rule: rule.name.clone(),
                reason,
            });
        }
        let message = format!("rejected by Sluice policy {}: {reason}", rule.name);
        let resp = produce::error_response(
            payload,
            body,
            peek.api_version,
            peek.correlation_id,
            (produce::POLICY_VIOLATION, &message),
            &ctx.answer_bound(payload.len()),
        )
        .map_err(SessionError::PolicyResponse)?;
        return Ok(Some(Disposition::Local(resp)));
    }
    Ok(None)
}
