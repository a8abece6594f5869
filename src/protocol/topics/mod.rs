//! Topic names between clients and the upstream cluster: aliases and hidden topics (the model is
//! [`crate::policy::topics::TopicMap`]; this module applies any [`TopicMapper`] to the wire).
//!
//! With a topic map configured, Sluice maps every topic name of the api keys below, in requests
//! (client name → upstream name) and responses (upstream name → client name, hidden topics
//! dropped from listings), and offers clients no api key that carries topic names it does not map
//! ([`offered_versions`]), so no request or response slips a name past the map.
//!
//! | api key | request | response |
//! |---|---|---|
//! | Produce (0) v3-v12 | `topic_data[].name` | `responses[].name` |
//! | Fetch (1) v4-v12 | `topics[].topic`, `forgotten_topics_data[].topic` | `responses[].topic` |
//! | ListOffsets (2) v1-v10 | `topics[].name` | `topics[].name` |
//! | Metadata (3) v0-v13 | `topics[].name` | `topics[].name` (listing: hidden dropped) |
//! | OffsetCommit (8) v2-v9 | `topics[].name` | `topics[].name` |
//! | OffsetFetch (9) v1-v9 | `topics[].name`, `groups[].topics[].name` | the same |
//! | CreateTopics (19) v2-v7 | `topics[].name` | `topics[].name` |
//! | DeleteTopics (20) v1-v5 | `topic_names[]`, `topics[].name` | `responses[].name` |
//! | OffsetForLeaderEpoch (23) v2-v4 | `topics[].topic` | `topics[].topic` |
//! | DescribeConfigs (32) v1-v4 | topic `resources[].resource_name` | topic `results[].resource_name` |
//! | DescribeTopicPartitions (75) v0 | `topics[].name`, `cursor` | `topics[].name`, `next_cursor` |
//!
//! Produce v13 and Fetch v13+ carry topic ids instead of names (KIP-516), and DeleteTopics v6
//! deletes by id: with a topic map those versions are not offered, so that a topic can only be
//! reached by a name the map has seen. Ids in responses are the upstream topic's, unchanged, so
//! they stay consistent with the names clients see.
//!
//! A request naming a hidden topic carries it upstream as [`HIDDEN_PREFIX`]`name`, a name no
//! broker accepts (`!` is not a legal topic character) and no broker auto-creates; the response
//! entry comes back under the client's name with `UNKNOWN_TOPIC_OR_PARTITION` (CreateTopics:
//! `POLICY_VIOLATION`), exactly as for a topic that does not exist.
//!
//! Cost: every message of these keys is walked in place (bounds-checked, no allocation) to see
//! whether it names a mapped topic; only then is it copied, decoded with kafka-protocol, mapped and
//! re-encoded (a Produce request or Fetch response on an aliased topic copies its records once).

pub(crate) mod schema;

use std::ops::RangeInclusive;

use bytes::Bytes;
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, DescribeTopicPartitionsRequest,
    DescribeTopicPartitionsResponse, FetchRequest, FetchResponse, ListOffsetsRequest,
    ListOffsetsResponse, MetadataRequest, MetadataResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::header::response_body_offset;
use super::rewrite::{Ctx, RewriteError};
use super::wire::{walk_body_names, Cursor, Schema};

/// Prefix of the upstream name a hidden topic is sent under; `!` is not a legal topic character,
/// so the broker answers as for a topic that does not exist and never creates it.
pub const HIDDEN_PREFIX: &str = "sluice!hidden!";

use super::codes::RESOURCE_TOPIC;
pub use super::codes::{POLICY_VIOLATION, UNKNOWN_TOPIC_OR_PARTITION};

/// How an upstream topic name appears to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientName {
    /// under the same name
    Same,
    /// under this alias
    Renamed(String),
    /// not at all: dropped from listings
    Hidden,
    /// a hidden topic a request named (sent upstream under [`HIDDEN_PREFIX`]): shown under this,
    /// the client's own name, as a topic that does not exist
    Unknown(String),
}

/// Maps topic names between clients and the upstream cluster.
pub trait TopicMapper {
    /// The name to send upstream for a client's `client` name; `None` when it is the same.
    fn upstream(&self, client: &str) -> Option<String>;
    /// How the upstream topic `upstream` appears to clients.
    fn client(&self, upstream: &str) -> ClientName;
}

/// Api keys that carry no topic name in any version: passed opaque with a topic map.
const TOPIC_FREE: &[i16] = &[
    10, // FindCoordinator
    11, // JoinGroup (subscriptions are opaque bytes written by clients, under client names)
    12, // Heartbeat
    13, // LeaveGroup
    14, // SyncGroup (assignments likewise)
    15, // DescribeGroups
    16, // ListGroups
    17, // SaslHandshake
    18, // ApiVersions
    22, // InitProducerId
    25, // AddOffsetsToTxn
    26, // EndTxn
    36, // SaslAuthenticate
    38, // CreateDelegationToken
    39, // RenewDelegationToken
    40, // ExpireDelegationToken
    41, // DescribeDelegationToken
    42, // DeleteGroups
    48, // DescribeClientQuotas
    49, // AlterClientQuotas
    50, // DescribeUserScramCredentials
    51, // AlterUserScramCredentials
    60, // DescribeCluster
    66, // ListTransactions
    71, // GetTelemetrySubscriptions
    72, // PushTelemetry
];

/// Last DeleteTopics version that names topics (v6 may delete by topic id).
const DELETE_TOPICS_BY_NAME_MAX: i16 = 5;

/// With a topic map, the versions of `api_key` Sluice offers clients: the versions it maps for
/// the keys in the module table, every version for keys that carry no topic name, `None` (not
/// offered; hidden from ApiVersions and refused) for every other key, including keys Sluice does
/// not know, which might carry topic names.
pub fn offered_versions(api_key: i16) -> Option<RangeInclusive<i16>> {
    if let Some(&(_, min, max)) = schema::VERSIONS.iter().find(|(k, ..)| *k == api_key) {
        let max = if api_key == 20 {
            max.min(DELETE_TOPICS_BY_NAME_MAX)
        } else {
            max
        };
        return Some(min..=max);
    }
    TOPIC_FREE.contains(&api_key).then_some(i16::MIN..=i16::MAX)
}

/// Whether requests and responses of `api_key` carry topic names Sluice maps.
pub fn maps(api_key: i16) -> bool {
    schema::VERSIONS.iter().any(|(k, ..)| *k == api_key)
}

/// Whether any topic name the body names would change under `f`, found by a walk in place.
fn names_any(
    ctx: &Ctx,
    payload: &[u8],
    body_offset: usize,
    schema: &Schema,
    f: &mut dyn FnMut(&str) -> bool,
) -> Result<bool, RewriteError> {
    let mut any = false;
    let mut c = Cursor::at(payload, body_offset);
    walk_body_names(&mut c, schema, ctx.api_version, &mut |n| {
        // Names that are not UTF-8 fail kafka-protocol's decode; let it say so.
        any |= std::str::from_utf8(n).map_or(true, &mut *f);
    })
    .map_err(|e| ctx.malformed(e))?;
    Ok(any)
}

fn ctx_for(api_key: i16, api_version: i16) -> Result<Ctx, RewriteError> {
    let unsupported = RewriteError::UnsupportedVersion {
        api_key,
        api_version,
    };
    match offered_versions(api_key) {
        Some(r) if r.contains(&api_version) && maps(api_key) => Ok(Ctx {
            api_key,
            api_version,
        }),
        _ => Err(unsupported),
    }
}

/// Maps the topic names of a request (`payload`: the whole request without size prefix, its body
/// at `body_offset`) to upstream names. `Ok(None)`: nothing to change, forward the original bytes.
///
/// # Errors
/// [`RewriteError`] for a key or version Sluice does not map ([`offered_versions`]) or a body it
/// cannot walk, decode or re-encode: the request must not be forwarded.
pub fn rewrite_request(
    api_key: i16,
    api_version: i16,
    payload: &[u8],
    body_offset: usize,
    map: &dyn TopicMapper,
) -> Result<Option<Bytes>, RewriteError> {
    let ctx = ctx_for(api_key, api_version)?;
    let schema = schema::request(api_key).ok_or(RewriteError::UnsupportedVersion {
        api_key,
        api_version,
    })?;
    if !names_any(&ctx, payload, body_offset, schema, &mut |n| {
        map.upstream(n).is_some()
    })? {
        return Ok(None);
    }
    let payload = Bytes::copy_from_slice(payload);
    let up = Up(map);
    match api_key {
        0 => remap::<ProduceRequest>(&ctx, &payload, body_offset, schema, |m| {
            m.topic_data.iter_mut().for_each(|t| up.name(&mut t.name));
        }),
        1 => remap::<FetchRequest>(&ctx, &payload, body_offset, schema, |m| {
            m.topics.iter_mut().for_each(|t| up.name(&mut t.topic));
            m.forgotten_topics_data
                .iter_mut()
                .for_each(|t| up.name(&mut t.topic));
        }),
        2 => remap::<ListOffsetsRequest>(&ctx, &payload, body_offset, schema, |m| {
            m.topics.iter_mut().for_each(|t| up.name(&mut t.name));
        }),
        3 => remap::<MetadataRequest>(&ctx, &payload, body_offset, schema, |m| {
            for t in m.topics.iter_mut().flatten() {
                if let Some(n) = &mut t.name {
                    up.name(n);
                }
            }
        }),
        8 => remap::<OffsetCommitRequest>(&ctx, &payload, body_offset, schema, |m| {
            m.topics.iter_mut().for_each(|t| up.name(&mut t.name));
        }),
        9 => remap::<OffsetFetchRequest>(&ctx, &payload, body_offset, schema, |m| {
            m.topics
                .iter_mut()
                .flatten()
                .for_each(|t| up.name(&mut t.name));
            for g in &mut m.groups {
                g.topics
                    .iter_mut()
                    .flatten()
                    .for_each(|t| up.name(&mut t.name));
            }
        }),
        19 => remap::<CreateTopicsRequest>(&ctx, &payload, body_offset, schema, |m| {
            m.topics.iter_mut().for_each(|t| up.name(&mut t.name));
        }),
        20 => remap::<DeleteTopicsRequest>(&ctx, &payload, body_offset, schema, |m| {
            m.topic_names.iter_mut().for_each(|n| up.name(n));
            for t in &mut m.topics {
                if let Some(n) = &mut t.name {
                    up.name(n);
                }
            }
        }),
        23 => remap::<OffsetForLeaderEpochRequest>(&ctx, &payload, body_offset, schema, |m| {
            m.topics.iter_mut().for_each(|t| up.name(&mut t.topic));
        }),
        32 => remap::<DescribeConfigsRequest>(&ctx, &payload, body_offset, schema, |m| {
            for r in &mut m.resources {
                if r.resource_type == RESOURCE_TOPIC {
                    up.str(&mut r.resource_name);
                }
            }
        }),
        75 => remap::<DescribeTopicPartitionsRequest>(&ctx, &payload, body_offset, schema, |m| {
            m.topics.iter_mut().for_each(|t| up.name(&mut t.name));
            if let Some(c) = &mut m.cursor {
                up.name(&mut c.topic_name);
            }
        }),
        _ => Err(RewriteError::UnsupportedVersion {
            api_key,
            api_version,
        }),
    }
    .map(Some)
}

/// Whether a response (`payload`: the whole response without size prefix) names a topic that
/// clients see under another name or not at all, found by a walk in place (no allocation): only
/// then does it need [`rewrite_response`].
///
/// # Errors
/// [`RewriteError`] for a key or version Sluice does not map, or a body it cannot walk.
pub fn response_mentions(
    api_key: i16,
    api_version: i16,
    payload: &[u8],
    map: &dyn TopicMapper,
) -> Result<bool, RewriteError> {
    let (ctx, schema, body_offset) = response_parts(api_key, api_version, payload)?;
    names_any(&ctx, payload, body_offset, schema, &mut |n| {
        map.client(n) != ClientName::Same
    })
}

fn response_parts(
    api_key: i16,
    api_version: i16,
    payload: &[u8],
) -> Result<(Ctx, &'static Schema, usize), RewriteError> {
    let ctx = ctx_for(api_key, api_version)?;
    let schema = schema::response(api_key).ok_or(RewriteError::UnsupportedVersion {
        api_key,
        api_version,
    })?;
    let body_offset = response_body_offset(payload, api_key, api_version).map_err(|source| {
        RewriteError::Header {
            api_key,
            api_version,
            source,
        }
    })?;
    Ok((ctx, schema, body_offset))
}

/// Maps the topic names of a response (`payload`: the whole response without size prefix) to the
/// names clients see; hidden topics are dropped from it, and entries for hidden topics a request
/// named answer as for a topic that does not exist. `Ok(None)`: nothing to change.
///
/// # Errors
/// [`RewriteError`] for a key or version Sluice does not map, or a body it cannot walk, decode or
/// re-encode: the response must not be forwarded.
pub fn rewrite_response(
    api_key: i16,
    api_version: i16,
    payload: &Bytes,
    map: &dyn TopicMapper,
) -> Result<Option<Bytes>, RewriteError> {
    if !response_mentions(api_key, api_version, payload, map)? {
        return Ok(None);
    }
    let (ctx, schema, body_offset) = response_parts(api_key, api_version, payload)?;
    let down = Down(map);
    match api_key {
        0 => remap::<ProduceResponse>(&ctx, payload, body_offset, schema, |m| {
            down.topics(&mut m.responses, |t| {
                (&mut t.name.0, &mut t.partition_responses)
            });
        }),
        1 => remap::<FetchResponse>(&ctx, payload, body_offset, schema, |m| {
            m.responses.retain_mut(|t| {
                down.entry(&mut t.topic.0, || {
                    for p in &mut t.partitions {
                        p.error_code = UNKNOWN_TOPIC_OR_PARTITION;
                        p.records = None;
                    }
                })
            });
        }),
        2 => remap::<ListOffsetsResponse>(&ctx, payload, body_offset, schema, |m| {
            down.topics(&mut m.topics, |t| (&mut t.name.0, &mut t.partitions));
        }),
        3 => remap::<MetadataResponse>(&ctx, payload, body_offset, schema, |m| {
            m.topics.retain_mut(|t| match &mut t.name {
                None => true,
                Some(n) => down.entry(&mut n.0, || {
                    t.error_code = UNKNOWN_TOPIC_OR_PARTITION;
                    t.partitions.clear();
                    t.topic_id = Default::default();
                }),
            });
        }),
        8 => remap::<OffsetCommitResponse>(&ctx, payload, body_offset, schema, |m| {
            down.topics(&mut m.topics, |t| (&mut t.name.0, &mut t.partitions));
        }),
        9 => remap::<OffsetFetchResponse>(&ctx, payload, body_offset, schema, |m| {
            down.topics(&mut m.topics, |t| (&mut t.name.0, &mut t.partitions));
            for g in &mut m.groups {
                down.topics(&mut g.topics, |t| (&mut t.name.0, &mut t.partitions));
            }
        }),
        19 => remap::<CreateTopicsResponse>(&ctx, payload, body_offset, schema, |m| {
            m.topics.retain_mut(|t| {
                down.entry(&mut t.name.0, || {
                    t.error_code = POLICY_VIOLATION;
                    t.error_message = Some(StrBytes::from_static_str(
                        "the topic name is reserved by the gateway's topic policy",
                    ));
                    t.topic_id = Default::default();
                    t.num_partitions = -1;
                    t.replication_factor = -1;
                    t.configs = None;
                })
            });
        }),
        20 => remap::<DeleteTopicsResponse>(&ctx, payload, body_offset, schema, |m| {
            m.responses.retain_mut(|t| match &mut t.name {
                None => true,
                Some(n) => down.entry(&mut n.0, || {
                    t.error_code = UNKNOWN_TOPIC_OR_PARTITION;
                    t.error_message = None;
                    t.topic_id = Default::default();
                }),
            });
        }),
        23 => remap::<OffsetForLeaderEpochResponse>(&ctx, payload, body_offset, schema, |m| {
            down.topics(&mut m.topics, |t| (&mut t.topic.0, &mut t.partitions));
        }),
        32 => remap::<DescribeConfigsResponse>(&ctx, payload, body_offset, schema, |m| {
            m.results.retain_mut(|r| {
                r.resource_type != RESOURCE_TOPIC
                    || down.entry(&mut r.resource_name, || {
                        r.error_code = UNKNOWN_TOPIC_OR_PARTITION;
                        r.error_message = None;
                        r.configs.clear();
                    })
            });
        }),
        75 => remap::<DescribeTopicPartitionsResponse>(&ctx, payload, body_offset, schema, |m| {
            m.topics.retain_mut(|t| match &mut t.name {
                None => true,
                Some(n) => down.entry(&mut n.0, || {
                    t.error_code = UNKNOWN_TOPIC_OR_PARTITION;
                    t.partitions.clear();
                    t.topic_id = Default::default();
                }),
            });
            // A cursor at a hidden topic ends the listing there.
            if let Some(c) = &mut m.next_cursor {
                if !down.entry(&mut c.topic_name.0, || {}) {
                    m.next_cursor = None;
                }
            }
        }),
        _ => Err(RewriteError::UnsupportedVersion {
            api_key,
            api_version,
        }),
    }
    .map(Some)
}

/// Client → upstream names.
struct Up<'m>(&'m dyn TopicMapper);

impl Up<'_> {
    fn str(&self, s: &mut StrBytes) {
        if let Some(u) = self.0.upstream(s) {
            *s = StrBytes::from_string(u);
        }
    }

    fn name(&self, n: &mut TopicName) {
        self.str(&mut n.0);
    }
}

/// Upstream → client names.
struct Down<'m>(&'m dyn TopicMapper);

impl Down<'_> {
    /// Maps the name of one response entry; `false` drops the entry (hidden); for an entry of a
    /// hidden topic the request named, restores the client's name and calls `unknown` to make it
    /// the answer for a topic that does not exist.
    fn entry(&self, name: &mut StrBytes, unknown: impl FnOnce()) -> bool {
        match self.0.client(name) {
            ClientName::Same => true,
            ClientName::Renamed(c) => {
                *name = StrBytes::from_string(c);
                true
            }
            ClientName::Hidden => false,
            ClientName::Unknown(c) => {
                *name = StrBytes::from_string(c);
                unknown();
                true
            }
        }
    }

    /// Maps the names of a list of topic entries whose partitions carry an `error_code`
    /// (`parts` gives an entry's name and partitions): hidden entries are dropped, entries of a
    /// hidden topic a request named answer `UNKNOWN_TOPIC_OR_PARTITION` for every partition.
    fn topics<T, P: PartitionError>(
        &self,
        list: &mut Vec<T>,
        parts: impl Fn(&mut T) -> (&mut StrBytes, &mut Vec<P>),
    ) {
        list.retain_mut(|t| {
            let (name, partitions) = parts(t);
            self.entry(name, || {
                for p in partitions.iter_mut() {
                    p.set_error(UNKNOWN_TOPIC_OR_PARTITION);
                }
            })
        });
    }
}

/// A response partition entry with an `error_code`.
trait PartitionError {
    fn set_error(&mut self, code: i16);
}

macro_rules! partition_error {
    ($($t:ty),* $(,)?) => {
        $(impl PartitionError for $t {
            fn set_error(&mut self, code: i16) {
                self.error_code = code;
            }
        })*
    };
}

partition_error!(
    kafka_protocol::messages::produce_response::PartitionProduceResponse,
    kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse,
    kafka_protocol::messages::offset_commit_response::OffsetCommitResponsePartition,
    kafka_protocol::messages::offset_fetch_response::OffsetFetchResponsePartition,
    kafka_protocol::messages::offset_fetch_response::OffsetFetchResponsePartitions,
    kafka_protocol::messages::offset_for_leader_epoch_response::EpochEndOffset,
);

/// Decodes a request or response body as `M` (after the bounds walk), lets `f` map its names,
/// and re-encodes it behind the original header.
fn remap<M: Decodable + Encodable>(
    ctx: &Ctx,
    payload: &Bytes,
    body_offset: usize,
    schema: &Schema,
    f: impl FnOnce(&mut M),
) -> Result<Bytes, RewriteError> {
    let mut msg: M = ctx.decode(payload, body_offset, schema)?;
    f(&mut msg);
    ctx.encode(payload, body_offset, &msg)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::policy::topics::TopicMap;
    use crate::policy::NameMatch;
    use crate::protocol::rewrite::test_util::response;
    use bytes::BytesMut;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ApiKey, RequestHeader};
    use kafka_protocol::protocol::Message;

    fn map() -> TopicMap {
        TopicMap::new(
            vec![NameMatch::Prefix("secret".into())],
            &[("orders".into(), "shop.orders".into())],
        )
    }

    fn tn(s: &str) -> TopicName {
        TopicName(StrBytes::from_string(s.to_string()))
    }

    /// Request payload: header of the right version + body; returns (payload, body offset).
    fn request<T: Encodable>(key: ApiKey, version: i16, body: &T) -> (Bytes, usize) {
        let hv = key.request_header_version(version);
        let mut out = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(9)
            .with_client_id(Some(StrBytes::from_static_str("c")))
            .encode(&mut out, hv)
            .unwrap();
        let off = out.len();
        body.encode(&mut out, version).unwrap();
        (out.freeze(), off)
    }

    fn body<T: Decodable>(payload: &Bytes, off: usize, version: i16) -> T {
        T::decode(&mut payload.slice(off..), version).unwrap()
    }

    #[test]
    fn offered_versions_with_a_map() {
        assert_eq!(offered_versions(0), Some(3..=12));
        assert_eq!(offered_versions(1), Some(4..=12));
        assert_eq!(offered_versions(3), Some(0..=13));
        assert_eq!(offered_versions(20), Some(1..=5));
        assert_eq!(offered_versions(18), Some(i16::MIN..=i16::MAX));
        assert_eq!(offered_versions(11), Some(i16::MIN..=i16::MAX));
        for not_offered in [21, 24, 28, 33, 37, 44, 68, 69, 78, 9999, -1] {
            assert_eq!(offered_versions(not_offered), None, "{not_offered}");
        }
    }

    #[test]
    fn produce_requests_carry_upstream_names_and_untouched_records() {
        let m = map();
        let records = Bytes::from_static(b"\x00\x01records-are-opaque");
        for v in 3..=12 {
            let msg = ProduceRequest::default()
                .with_acks(-1)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(tn("orders"))
                        .with_partition_data(vec![PartitionProduceData::default()
                            .with_index(1)
                            .with_records(Some(records.clone()))]),
                    TopicProduceData::default().with_name(tn("plain")),
                    TopicProduceData::default().with_name(tn("secret-x")),
                ]);
            let (payload, off) = request(ApiKey::Produce, v, &msg);
            let out = rewrite_request(0, v, &payload, off, &m).unwrap().unwrap();
            assert_eq!(&out[..off], &payload[..off], "v{v}: request header changed");
            let got: ProduceRequest = body(&out, off, v);
            let names: Vec<&str> = got.topic_data.iter().map(|t| &*t.name.0).collect();
            assert_eq!(
                names,
                ["shop.orders", "plain", &format!("{HIDDEN_PREFIX}secret-x")],
                "v{v}"
            );
            assert_eq!(
                got.topic_data[0].partition_data[0].records.as_ref(),
                Some(&records)
            );
            // Nothing mapped: the frame is forwarded as it came.
            let plain = ProduceRequest::default()
                .with_topic_data(vec![TopicProduceData::default().with_name(tn("plain"))]);
            let (payload, off) = request(ApiKey::Produce, v, &plain);
            assert!(rewrite_request(0, v, &payload, off, &m).unwrap().is_none());
        }
        // Produce v13 names topics by id: not offered with a map.
        let (payload, off) = request(ApiKey::Produce, 13, &ProduceRequest::default());
        assert!(rewrite_request(0, 13, &payload, off, &m).is_err());
    }

    #[test]
    fn metadata_listings_drop_hidden_and_rename_aliases() {
        let m = map();
        for v in MetadataResponse::VERSIONS.min..=MetadataResponse::VERSIONS.max {
            let topic = |n: &str| {
                MetadataResponseTopic::default()
                    .with_name(Some(tn(n)))
                    .with_partitions(vec![Default::default()])
            };
            let msg = MetadataResponse::default().with_topics(vec![
                topic("shop.orders"),
                topic("plain"),
                topic("secret-1"),
                topic("orders"), // shadowed by the alias
                topic(&format!("{HIDDEN_PREFIX}secret-asked")),
            ]);
            let payload = response(ApiKey::Metadata, v, 5, &msg);
            let out = rewrite_response(3, v, &payload, &m).unwrap().unwrap();
            let got: MetadataResponse =
                crate::protocol::rewrite::test_util::decode(ApiKey::Metadata, v, &payload, &out);
            let names: Vec<(&str, i16, usize)> = got
                .topics
                .iter()
                .map(|t| {
                    (
                        &*t.name.as_ref().unwrap().0,
                        t.error_code,
                        t.partitions.len(),
                    )
                })
                .collect();
            assert_eq!(
                names,
                [
                    ("orders", 0, 1),
                    ("plain", 0, 1),
                    ("secret-asked", UNKNOWN_TOPIC_OR_PARTITION, 0)
                ],
                "v{v}"
            );
            let plain = MetadataResponse::default().with_topics(vec![topic("plain")]);
            let payload = response(ApiKey::Metadata, v, 5, &plain);
            assert!(!response_mentions(3, v, &payload, &m).unwrap());
            assert!(rewrite_response(3, v, &payload, &m).unwrap().is_none());
        }
    }

    #[test]
    fn fetch_responses_keep_records_and_answer_hidden_as_unknown() {
        let m = map();
        let records = Bytes::from_static(b"batch-bytes");
        for v in 4..=12 {
            let part = PartitionData::default()
                .with_partition_index(2)
                .with_high_watermark(10)
                .with_records(Some(records.clone()));
            let msg = FetchResponse::default().with_responses(vec![
                FetchableTopicResponse::default()
                    .with_topic(tn("shop.orders"))
                    .with_partitions(vec![part.clone()]),
                FetchableTopicResponse::default()
                    .with_topic(tn(&format!("{HIDDEN_PREFIX}secret")))
                    .with_partitions(vec![part]),
            ]);
            let payload = response(ApiKey::Fetch, v, 5, &msg);
            let out = rewrite_response(1, v, &payload, &m).unwrap().unwrap();
            let got: FetchResponse =
                crate::protocol::rewrite::test_util::decode(ApiKey::Fetch, v, &payload, &out);
            assert_eq!(&*got.responses[0].topic.0, "orders");
            assert_eq!(
                got.responses[0].partitions[0].records,
                Some(records.clone())
            );
            assert_eq!(&*got.responses[1].topic.0, "secret");
            assert_eq!(
                got.responses[1].partitions[0].error_code,
                UNKNOWN_TOPIC_OR_PARTITION
            );
        }
    }

    #[test]
    fn describe_configs_maps_topic_resources_only() {
        let m = TopicMap::new(
            vec![NameMatch::Exact("1".into())],
            &[("orders".into(), "shop.orders".into())],
        );
        use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
        for v in 1..=4 {
            let msg = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(RESOURCE_TOPIC)
                    .with_resource_name(StrBytes::from_static_str("orders")),
                DescribeConfigsResource::default()
                    .with_resource_type(4) // broker "1": not a topic
                    .with_resource_name(StrBytes::from_static_str("1")),
            ]);
            let (payload, off) = request(ApiKey::DescribeConfigs, v, &msg);
            let out = rewrite_request(32, v, &payload, off, &m).unwrap().unwrap();
            let got: DescribeConfigsRequest = body(&out, off, v);
            assert_eq!(&*got.resources[0].resource_name, "shop.orders");
            assert_eq!(&*got.resources[1].resource_name, "1");
        }
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error_never_a_panic() {
        let m = map();
        let msg = MetadataResponse::default().with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(tn("shop.orders")))
            .with_partitions(vec![Default::default()])]);
        for v in [0, 9, 13] {
            let payload = response(ApiKey::Metadata, v, 5, &msg);
            for cut in 0..payload.len() {
                let _ = rewrite_response(3, v, &payload.slice(..cut), &m);
                let _ = rewrite_request(3, v, &payload[..cut], 4.min(cut), &m);
            }
        }
    }
}
