//! Session glue of the safeguards added after produce and create-topic rules: client id rules,
//! read-only topics (Produce, DeleteRecords, DeleteTopics) and topic-config rules (AlterConfigs,
//! IncrementalAlterConfigs; CreateTopics in [`super::dispose`]). Each check runs only when a rule
//! of its kind applies to the client, and decodes only the frame it checks.
//!
//! A rejected request is answered whole, never half-applied: the resources a rule rejects get the
//! rule's error code and message, the others `POLICY_VIOLATION` with a message saying they were
//! not applied because another resource of the request was rejected.

use std::sync::{Arc, Weak};

use crate::policy::{Action, Identity, Policy};
use crate::protocol::alter_configs::{self, RESOURCE_TOPIC};
use crate::protocol::delete_records;
use crate::protocol::delete_topics;
use crate::protocol::header::{self, HeaderError};
use crate::protocol::produce::{self, POLICY_VIOLATION, TOPIC_AUTHORIZATION_FAILED};
use crate::protocol::rewrite;
use crate::protocol::versions::keys;

use super::dispose::{Disposition, PolicyCtx};
use super::session::SessionError;

/// The answer to a request answered whole: per resource, the message of the first reject rule
/// it violates; when any resource is rejected, the others say which rule stopped the request.
pub(super) struct Rejections {
    messages: Vec<String>,
    first: Option<String>,
}

impl Rejections {
    /// No resource of `n` rejected yet.
    pub(super) fn new(n: usize) -> Self {
        Rejections {
            messages: vec![String::new(); n],
            first: None,
        }
    }

    /// Resource `i` violates reject rule `rule` (only its first violation is kept).
    pub(super) fn reject(&mut self, i: usize, rule: &str, reason: &str) {
        if self.messages[i].is_empty() {
            self.messages[i] = format!("rejected by Sluice policy {rule}: {reason}");
            self.first.get_or_insert_with(|| rule.to_string());
        }
    }

    /// Logs and counts a violation of `rule` by resource `i`; a reject rule rejects it.
    pub(super) fn record(
        &mut self,
        ctx: &mut PolicyCtx<'_>,
        i: usize,
        (rule, action): (&str, Action),
        reason: &str,
        api_key: i16,
    ) {
        ctx.log(rule, action, reason, api_key);
        if action == Action::Reject {
            self.reject(i, rule, reason);
        }
    }

    /// `None` when nothing was rejected; else every resource's message, the others reading
    /// "not {verb}: another {what} of the request violates Sluice policy {first rule}".
    pub(super) fn finish(mut self, verb: &str, what: &str) -> Option<Vec<String>> {
        let first = self.first?;
        for m in self.messages.iter_mut().filter(|m| m.is_empty()) {
            *m =
                format!("not {verb}: another {what} of the request violates Sluice policy {first}");
        }
        Some(self.messages)
    }
}

/// Highest Produce version a client in scope of a read-only rule is offered: v13 names topics by
/// id (KIP-516), which Sluice cannot map to names without the cluster's metadata.
pub(super) const PRODUCE_MAX_WITH_READ_ONLY: i16 = 12;

fn body_offset(peek: &header::RequestHeaderPeek) -> Result<usize, SessionError> {
    peek.body_offset
        .ok_or(SessionError::ClientHeader(HeaderError::BodyOffsetUnknown(
            peek.api_key,
        )))
}

/// What the client id rules say of one connection's client id, remembered per connection so the
/// rules run once per (policy, client id), not per request.
#[derive(Default)]
pub(super) struct ClientIdVerdict {
    /// The policy and client id the verdict is for (a `Weak` keeps the policy's allocation, so
    /// a reloaded policy can never be mistaken for it).
    key: Option<(Weak<Policy>, Option<String>)>,
    /// The reject rule violated and why; `None`: the client may pass.
    reject: Option<(String, String)>,
}

/// Applies the client id rules in scope for this client. A violation of a `log` rule is logged
/// and counted once per connection and client id; of a `reject` rule: an ApiVersions request is
/// answered with `POLICY_VIOLATION` (the client disconnects), any other request closes the
/// connection.
pub(super) fn check_client_id(
    payload: &[u8],
    peek: &header::RequestHeaderPeek,
    policy: &Arc<Policy>,
    ctx: &mut PolicyCtx<'_>,
) -> Result<Option<Disposition>, SessionError> {
    let client_id = peek
        .client_id(payload)
        .and_then(|b| std::str::from_utf8(b).ok());
    let fresh = ctx.client_id_verdict.key.as_ref().is_some_and(|(p, c)| {
        std::ptr::eq(p.as_ptr(), Arc::as_ptr(policy)) && c.as_deref() == client_id
    });
    if !fresh {
        let id = Identity {
            client_id,
            source: ctx.source,
        };
        let mut reject = None;
        for rule in policy.client_id_rules(&id) {
            let Some(reason) = rule.violation(client_id) else {
                continue;
            };
            ctx.log_client_id(&rule.name, rule.action, &reason, peek.api_key, client_id);
            if rule.action == Action::Reject && reject.is_none() {
                reject = Some((rule.name.clone(), reason));
            }
        }
        ctx.client_id_verdict = ClientIdVerdict {
            key: Some((Arc::downgrade(policy), client_id.map(str::to_string))),
            reject,
        };
    }
    let Some((rule, reason)) = &ctx.client_id_verdict.reject else {
        return Ok(None);
    };
    if peek.api_key == keys::API_VERSIONS {
        return rewrite::api_versions_error(
            peek.correlation_id,
            peek.api_version,
            POLICY_VIOLATION,
        )
        .map(|b| Some(Disposition::Local(b)))
        .map_err(SessionError::PolicyResponse);
    }
    Err(SessionError::PolicyViolation {
        rule: rule.clone(),
        reason: reason.clone(),
    })
}

/// Applies the read-only topic rules in scope to a Produce request; `Some` when it is rejected:
/// the read-only topics' partitions get `TOPIC_AUTHORIZATION_FAILED`, every other topic of the
/// request `POLICY_VIOLATION` ("not written"). A client in scope was offered Produce up to v12
/// only; a v13 request (topic ids, no names) closes the connection as an unadvertised version.
pub(super) fn check_read_only_produce(
    payload: &[u8],
    peek: &header::RequestHeaderPeek,
    acks: i16,
    policy: &Policy,
    ctx: &mut PolicyCtx<'_>,
) -> Result<Option<Disposition>, SessionError> {
    let id = super::dispose::request_identity(payload, peek, ctx.source);
    if policy.read_only_rules(&id).next().is_none() {
        return Ok(None);
    }
    if peek.api_version > PRODUCE_MAX_WITH_READ_ONLY {
        return Err(SessionError::UnsupportedVersion {
            api_key: peek.api_key,
            api_version: peek.api_version,
            min: 3,
            max: PRODUCE_MAX_WITH_READ_ONLY,
        });
    }
    let body = body_offset(peek)?;
    let names =
        produce::topic_names(payload, body, peek.api_version).map_err(SessionError::BadProduce)?;
    let rejected = read_only_verdicts(names.iter().copied(), &id, policy, ctx, peek.api_key);
    let Some((first_rule, first_topic)) = rejected.first() else {
        return Ok(None);
    };
    if acks == 0 {
        return Err(SessionError::PolicyViolation {
            rule: first_rule,
            reason: format!("topic {first_topic} is read-only"),
        });
    }
    produce::error_response_by_topic(
        payload,
        body,
        peek.api_version,
        peek.correlation_id,
        |topic| match rejected.rule_of(topic) {
            Some(rule) => (
                TOPIC_AUTHORIZATION_FAILED,
                format!("rejected by Sluice policy {rule}: topic {topic} is read-only"),
            ),
            None => (
                POLICY_VIOLATION,
                format!(
                    "not written: topic {first_topic} of the same request is read-only (Sluice policy {first_rule})"
                ),
            ),
        },
        &ctx.answer_bound(payload.len()),
    )
    .map(|b| Some(Disposition::Local(b)))
    .map_err(SessionError::PolicyResponse)
}

/// The topics of one request that a read-only reject rule covers: the rule of each (looked up in
/// O(1): a request may name millions of topics), and the first one in request order.
#[derive(Default)]
struct ReadOnlyVerdicts {
    first: Option<(String, String)>,
    by_topic: std::collections::HashMap<String, String>,
}

impl ReadOnlyVerdicts {
    /// (rule, topic) of the first rejected topic, in request order.
    fn first(&self) -> Option<(String, String)> {
        self.first.clone()
    }

    /// The reject rule that covers `topic`, if any.
    fn rule_of(&self, topic: &str) -> Option<&str> {
        self.by_topic.get(topic).map(String::as_str)
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn reject(&mut self, rule: &str, topic: &str) {
        if !self.by_topic.contains_key(topic) {
            self.by_topic.insert(topic.to_string(), rule.to_string());
            self.first
                .get_or_insert_with(|| (rule.to_string(), topic.to_string()));
        }
    }
}

/// Logs every read-only violation among `topics`; returns the topics a reject rule covers.
fn read_only_verdicts<'t>(
    topics: impl Iterator<Item = &'t str>,
    id: &Identity<'_>,
    policy: &Policy,
    ctx: &mut PolicyCtx<'_>,
    api_key: i16,
) -> ReadOnlyVerdicts {
    let mut rejected = ReadOnlyVerdicts::default();
    for topic in topics {
        for rule in policy.read_only_rules(id) {
            if !rule.covers(topic) {
                continue;
            }
            let reason = format!("topic {topic} is read-only");
            ctx.log(&rule.name, rule.action, &reason, api_key);
            if rule.action == Action::Reject {
                rejected.reject(&rule.name, topic);
            }
        }
    }
    rejected
}

/// Applies the read-only topic rules in scope to a DeleteRecords request (api key 21); `Some`
/// when it is rejected: the read-only topics' partitions get `TOPIC_AUTHORIZATION_FAILED`, the
/// others `POLICY_VIOLATION` (DeleteRecords responses carry no message).
pub(super) fn check_delete_records(
    payload: &[u8],
    peek: &header::RequestHeaderPeek,
    policy: &Policy,
    ctx: &mut PolicyCtx<'_>,
) -> Result<Option<Disposition>, SessionError> {
    let id = super::dispose::request_identity(payload, peek, ctx.source);
    if policy.read_only_rules(&id).next().is_none() {
        return Ok(None);
    }
    let body = body_offset(peek)?;
    let topics = delete_records::topics(payload, body, peek.api_version).map_err(|e| {
        SessionError::BadRequest(format!("DeleteRecords v{}: {e}", peek.api_version))
    })?;
    let rejected = read_only_verdicts(
        topics.iter().map(|(t, _)| t.as_str()),
        &id,
        policy,
        ctx,
        peek.api_key,
    );
    if rejected.is_empty() {
        return Ok(None);
    }
    delete_records::error_response(
        &topics,
        peek.api_version,
        peek.correlation_id,
        |topic| {
            if rejected.rule_of(topic).is_some() {
                TOPIC_AUTHORIZATION_FAILED
            } else {
                POLICY_VIOLATION
            }
        },
        &ctx.answer_bound(payload.len()),
    )
    .map(|b| Some(Disposition::Local(b)))
    .map_err(SessionError::PolicyResponse)
}

/// Applies the read-only topic rules in scope to a DeleteTopics request (api key 20); `Some` when
/// it is rejected: the read-only topics get `TOPIC_AUTHORIZATION_FAILED`, the others
/// `POLICY_VIOLATION` ("not deleted"); nothing is deleted. A client in scope was offered
/// DeleteTopics up to v5 only (v6 may name a topic by id only); a later version closes the
/// connection as an unadvertised version.
pub(super) fn check_delete_topics(
    payload: &[u8],
    peek: &header::RequestHeaderPeek,
    policy: &Policy,
    ctx: &mut PolicyCtx<'_>,
) -> Result<Option<Disposition>, SessionError> {
    let id = super::dispose::request_identity(payload, peek, ctx.source);
    if policy.read_only_rules(&id).next().is_none() {
        return Ok(None);
    }
    if peek.api_version > delete_topics::NAMES_ONLY_MAX {
        return Err(SessionError::UnsupportedVersion {
            api_key: peek.api_key,
            api_version: peek.api_version,
            min: 1,
            max: delete_topics::NAMES_ONLY_MAX,
        });
    }
    let body = body_offset(peek)?;
    let names = delete_topics::topics(payload, body, peek.api_version).map_err(|e| {
        SessionError::BadRequest(format!("DeleteTopics v{}: {e}", peek.api_version))
    })?;
    let rejected = read_only_verdicts(
        names.iter().map(String::as_str),
        &id,
        policy,
        ctx,
        peek.api_key,
    );
    let Some((first_rule, first_topic)) = rejected.first() else {
        return Ok(None);
    };
    delete_topics::error_response(&names, peek.api_version, peek.correlation_id, |topic| {
        match rejected.rule_of(topic) {
            Some(rule) => (
                TOPIC_AUTHORIZATION_FAILED,
                format!("rejected by Sluice policy {rule}: topic {topic} is read-only"),
            ),
            None => (
                POLICY_VIOLATION,
                format!(
                    "not deleted: topic {first_topic} of the same request is read-only (Sluice policy {first_rule})"
                ),
            ),
        }
    }, &ctx.answer_bound(payload.len()))
    .map(|b| Some(Disposition::Local(b)))
    .map_err(SessionError::PolicyResponse)
}

/// Applies the topic-config rules in scope to an AlterConfigs (33) or IncrementalAlterConfigs
/// (44) request; `Some` when it is rejected: every resource gets `POLICY_VIOLATION`, a violating
/// topic with `rejected by Sluice policy <rule>: <reason>`, the others with "not applied".
pub(super) fn check_alter_configs(
    payload: &[u8],
    peek: &header::RequestHeaderPeek,
    policy: &Policy,
    ctx: &mut PolicyCtx<'_>,
) -> Result<Option<Disposition>, SessionError> {
    let id = super::dispose::request_identity(payload, peek, ctx.source);
    if policy.topic_config_rules(&id).next().is_none() {
        return Ok(None);
    }
    let body = body_offset(peek)?;
    let resources = alter_configs::resources(peek.api_key, payload, body, peek.api_version)
        .map_err(|e| {
            SessionError::BadRequest(format!(
                "api key {} v{}: {e}",
                peek.api_key, peek.api_version
            ))
        })?;
    let mut rejections = Rejections::new(resources.len());
    for rule in policy.topic_config_rules(&id) {
        for (i, r) in resources.iter().enumerate() {
            if r.resource_type != RESOURCE_TOPIC {
                continue;
            }
            let set = r
                .configs
                .iter()
                .filter(|c| c.op.sets_value())
                .map(|c| (c.name.as_str(), c.value.as_deref()));
            let Some(reason) = rule.first_violation(&r.resource_name, set) else {
                continue;
            };
            rejections.record(ctx, i, (&rule.name, rule.action), &reason, peek.api_key);
        }
    }
    let Some(messages) = rejections.finish("applied", "resource") else {
        return Ok(None);
    };
    alter_configs::error_response(
        peek.api_key,
        &resources,
        peek.api_version,
        peek.correlation_id,
        POLICY_VIOLATION,
        &messages,
        &ctx.answer_bound(payload.len()),
    )
    .map(|b| Some(Disposition::Local(b)))
    .map_err(SessionError::PolicyResponse)
}

/// What a connection's ApiVersions response must leave out or cap for the rules that apply to
/// it: api keys `reject` rules forbid, and (api key, highest version) caps: Produce at v12 and
/// DeleteTopics at v5 under a read-only rule (later versions may name topics by id only, see
/// [`PRODUCE_MAX_WITH_READ_ONLY`]), and the keys a rule decodes at the versions kafka-protocol
/// knows (DeleteRecords; AlterConfigs and IncrementalAlterConfigs).
pub(super) fn api_versions_restrictions(
    policy: &Policy,
    id: &Identity<'_>,
) -> (Vec<i16>, Vec<(i16, i16)>) {
    use kafka_protocol::messages::{
        AlterConfigsRequest, DeleteRecordsRequest, IncrementalAlterConfigsRequest,
    };
    use kafka_protocol::protocol::Message;
    let hidden = policy
        .api_key_rules(id)
        .filter(|r| r.action == Action::Reject)
        .flat_map(|r| r.forbidden.iter().copied())
        .collect();
    let mut caps = Vec::new();
    if policy.read_only_rules(id).next().is_some() {
        caps.push((keys::PRODUCE, PRODUCE_MAX_WITH_READ_ONLY));
        caps.push((
            delete_records::DELETE_RECORDS,
            DeleteRecordsRequest::VERSIONS.max,
        ));
        caps.push((delete_topics::DELETE_TOPICS, delete_topics::NAMES_ONLY_MAX));
    }
    if policy.topic_config_rules(id).next().is_some() {
        caps.push((
            alter_configs::ALTER_CONFIGS,
            AlterConfigsRequest::VERSIONS.max,
        ));
        caps.push((
            alter_configs::INCREMENTAL_ALTER_CONFIGS,
            IncrementalAlterConfigsRequest::VERSIONS.max,
        ));
    }
    (hidden, caps)
}
