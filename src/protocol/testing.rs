//! Test support: proptest strategies for arbitrary Kafka Produce and Fetch responses, and builders
//! that turn one generated case into kafka-protocol's message of any version, holding what that
//! version can carry of it (KIP-951 node endpoints from Produce v10 / Fetch v16, `current_leader`,
//! `snapshot_id` and other tagged fields from the first flexible version, topic ids from v13).
//!
//! Shared by the throttle-time tests of [`super::header`] and the address-rewrite tests of
//! [`super::rewrite::node_endpoints`], which generate the same cases.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::{BrokerId, FetchResponse, ProduceResponse, TopicName};
use kafka_protocol::protocol::{Decodable, StrBytes};
use proptest::prelude::*;

use super::rewrite::test_util::{UNMAPPED, UPSTREAM};

/// Unknown tagged fields (0 to 2) with tags from `min` on: tags below `min` are known fields.
pub(crate) fn tags(min: i32) -> impl Strategy<Value = BTreeMap<i32, Bytes>> {
    proptest::collection::btree_map(
        min..min + 40,
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Bytes::from),
        0..3,
    )
}

/// A KIP-951 node endpoint: `node_id, host, port, rack (nullable), tagged fields`.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) node_id: i32,
    pub(crate) host: String,
    pub(crate) port: i32,
    pub(crate) rack: Option<String>,
    pub(crate) tags: BTreeMap<i32, Bytes>,
}

impl Endpoint {
    /// An endpoint without tagged fields.
    pub(crate) fn new(node_id: i32, host: &str, port: i32, rack: Option<&str>) -> Self {
        Endpoint {
            node_id,
            host: host.to_string(),
            port,
            rack: rack.map(str::to_string),
            tags: BTreeMap::new(),
        }
    }
}

/// 0 to 3 node endpoints: node ids small, [`UNMAPPED`] or any; host [`UPSTREAM`] or random; rack
/// null or set; random tagged fields.
pub(crate) fn endpoints() -> impl Strategy<Value = Vec<Endpoint>> {
    let endpoint = (
        prop_oneof![0i32..20, Just(UNMAPPED), any::<i32>()],
        prop_oneof![Just(UPSTREAM.to_string()), "[a-z0-9.-]{0,12}"],
        any::<i32>(),
        proptest::option::of("[a-z0-9-]{0,8}"),
        tags(0),
    )
        .prop_map(|(node_id, host, port, rack, tags)| Endpoint {
            node_id,
            host,
            port,
            rack,
            tags,
        });
    proptest::collection::vec(endpoint, 0..4)
}

/// `current_leader` as `(leader_id, leader_epoch)`, absent or any.
fn leader() -> impl Strategy<Value = Option<(i32, i32)>> {
    proptest::option::of((any::<i32>(), any::<i32>()))
}

/// One partition of a Produce response; what a version cannot carry is left out by
/// [`produce_response`].
#[derive(Debug, Clone, Default)]
pub(crate) struct ProducePart {
    pub(crate) index: i32,
    pub(crate) error_code: i16,
    pub(crate) base_offset: i64,
    pub(crate) log_append_time_ms: i64,
    pub(crate) log_start_offset: i64,
    pub(crate) record_errors: Vec<(i32, Option<String>)>,
    pub(crate) error_message: Option<String>,
    /// `current_leader` (tagged field 0, v10+)
    pub(crate) leader: Option<(i32, i32)>,
    pub(crate) tags: BTreeMap<i32, Bytes>,
}

pub(crate) fn produce_part() -> impl Strategy<Value = ProducePart> {
    (
        (any::<i32>(), any::<i16>(), any::<(i64, i64, i64)>()),
        proptest::collection::vec((any::<i32>(), proptest::option::of("[a-z ]{0,10}")), 0..3),
        proptest::option::of("[a-z ]{0,10}"),
        leader(),
        tags(1),
    )
        .prop_map(
            |((index, error_code, (base, append, start)), errors, message, leader, tags)| {
                ProducePart {
                    index,
                    error_code,
                    base_offset: base,
                    log_append_time_ms: append,
                    log_start_offset: start,
                    record_errors: errors,
                    error_message: message,
                    leader,
                    tags,
                }
            },
        )
}

/// One partition of a Fetch response; what a version cannot carry is left out by
/// [`fetch_response`].
#[derive(Debug, Clone, Default)]
pub(crate) struct FetchPart {
    pub(crate) index: i32,
    pub(crate) error_code: i16,
    pub(crate) high_watermark: i64,
    pub(crate) last_stable_offset: i64,
    pub(crate) log_start_offset: i64,
    pub(crate) aborted: Option<Vec<(i64, i64)>>,
    pub(crate) preferred_read_replica: i32,
    pub(crate) records: Option<Bytes>,
    /// tagged fields 0, 1 and 2 (v12+): `diverging_epoch`, `current_leader`, `snapshot_id`
    pub(crate) diverging: Option<(i32, i64)>,
    pub(crate) leader: Option<(i32, i32)>,
    pub(crate) snapshot: Option<(i64, i32)>,
    pub(crate) tags: BTreeMap<i32, Bytes>,
}

pub(crate) fn fetch_part() -> impl Strategy<Value = FetchPart> {
    (
        (any::<i32>(), any::<i16>(), any::<(i64, i64, i64)>()),
        proptest::option::of(proptest::collection::vec(any::<(i64, i64)>(), 0..3)),
        any::<i32>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from)),
        proptest::option::of(any::<(i32, i64)>()),
        leader(),
        proptest::option::of(any::<(i64, i32)>()),
        tags(3),
    )
        .prop_map(
            |(
                (index, error_code, (hw, lso, start)),
                aborted,
                replica,
                records,
                diverging,
                leader,
                snapshot,
                tags,
            )| FetchPart {
                index,
                error_code,
                high_watermark: hw,
                last_stable_offset: lso,
                log_start_offset: start,
                aborted,
                preferred_read_replica: replica,
                records,
                diverging,
                leader,
                snapshot,
                tags,
            },
        )
}

/// A topic: name (v0-v12), topic id (v13+), partitions, tagged fields (flexible versions).
pub(crate) type Topic<P> = (String, u128, Vec<P>, BTreeMap<i32, Bytes>);

/// 0 to 3 topics of 0 to 3 partitions each; topic ids zero or random.
pub(crate) fn topics<P: Clone + std::fmt::Debug>(
    part: impl Strategy<Value = P>,
) -> impl Strategy<Value = Vec<Topic<P>>> {
    proptest::collection::vec(
        (
            "[a-zA-Z0-9._-]{0,12}",
            prop_oneof![Just(0u128), any::<u128>()],
            proptest::collection::vec(part, 0..4),
            tags(0),
        ),
        0..4,
    )
}

/// An empty topic entry of a response of version `v`: named until v12, by `id` from v13 (the uuid
/// type is not re-exported, so that entry is decoded from 16 bytes of id, an empty compact array
/// and no tagged fields).
fn topic<T: Decodable + Default>(v: i16, name: &str, id: u128, named: fn(T, TopicName) -> T) -> T {
    if v <= 12 {
        return named(
            T::default(),
            TopicName(StrBytes::from_string(name.to_string())),
        );
    }
    let mut b = id.to_be_bytes().to_vec();
    b.extend_from_slice(&[1, 0]);
    T::decode(&mut Bytes::from(b), v).unwrap()
}

/// The `NodeEndpoint`s of `$ty` (the Produce or Fetch one) for `$eps: &[Endpoint]`.
macro_rules! node_endpoints {
    ($ty:ty, $eps:expr) => {
        $eps.iter()
            .map(|e| {
                <$ty>::default()
                    .with_node_id(BrokerId(e.node_id))
                    .with_host(StrBytes::from_string(e.host.clone()))
                    .with_port(e.port)
                    .with_rack(e.rack.clone().map(StrBytes::from_string))
                    .with_unknown_tagged_fields(e.tags.clone())
            })
            .collect()
    };
}

/// A ProduceResponse of version `v` holding what `v` can carry of the given fields.
pub(crate) fn produce_response(
    v: i16,
    topics: &[Topic<ProducePart>],
    endpoints: &[Endpoint],
    top_tags: &BTreeMap<i32, Bytes>,
    throttle: i32,
) -> ProduceResponse {
    use kafka_protocol::messages::produce_response::*;
    let responses = topics
        .iter()
        .map(|(name, id, parts, ttags)| {
            let parts = parts
                .iter()
                .map(|p| {
                    let mut d = PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_error_code(p.error_code)
                        .with_base_offset(p.base_offset)
                        .with_log_append_time_ms(p.log_append_time_ms);
                    if v >= 5 {
                        d = d.with_log_start_offset(p.log_start_offset);
                    }
                    if v >= 8 {
                        let errors = p.record_errors.iter().map(|(i, m)| {
                            BatchIndexAndErrorMessage::default()
                                .with_batch_index(*i)
                                .with_batch_index_error_message(
                                    m.clone().map(StrBytes::from_string),
                                )
                        });
                        d = d
                            .with_record_errors(errors.collect())
                            .with_error_message(p.error_message.clone().map(StrBytes::from_string));
                    }
                    if v >= 9 {
                        d = d.with_unknown_tagged_fields(p.tags.clone());
                    }
                    if let (true, Some((l, e))) = (v >= 10, p.leader) {
                        d = d.with_current_leader(
                            LeaderIdAndEpoch::default()
                                .with_leader_id(BrokerId(l))
                                .with_leader_epoch(e),
                        );
                    }
                    d
                })
                .collect();
            let t = topic(v, name, *id, TopicProduceResponse::with_name);
            let t = t.with_partition_responses(parts);
            if v >= 9 {
                return t.with_unknown_tagged_fields(ttags.clone());
            }
            t
        })
        .collect();
    let mut r = ProduceResponse::default()
        .with_responses(responses)
        .with_throttle_time_ms(throttle);
    if v >= 9 {
        r = r.with_unknown_tagged_fields(top_tags.clone());
    }
    if v >= 10 {
        r = r.with_node_endpoints(node_endpoints!(NodeEndpoint, endpoints));
    }
    r
}

/// A FetchResponse of version `v` holding what `v` can carry of the given fields (`error_code` is
/// the top-level one, v7+).
pub(crate) fn fetch_response(
    v: i16,
    topics: &[Topic<FetchPart>],
    endpoints: &[Endpoint],
    top_tags: &BTreeMap<i32, Bytes>,
    throttle: i32,
    error_code: i16,
) -> FetchResponse {
    use kafka_protocol::messages::fetch_response::*;
    let responses = topics
        .iter()
        .map(|(name, id, parts, ttags)| {
            let partitions = parts
                .iter()
                .map(|p| {
                    let aborted = p.aborted.as_ref().map(|a| {
                        a.iter()
                            .map(|(pid, off)| {
                                AbortedTransaction::default()
                                    .with_producer_id((*pid).into())
                                    .with_first_offset(*off)
                            })
                            .collect()
                    });
                    let mut d = PartitionData::default()
                        .with_partition_index(p.index)
                        .with_error_code(p.error_code)
                        .with_high_watermark(p.high_watermark)
                        .with_last_stable_offset(p.last_stable_offset)
                        .with_aborted_transactions(aborted)
                        .with_records(p.records.clone());
                    if v >= 5 {
                        d = d.with_log_start_offset(p.log_start_offset);
                    }
                    if v >= 11 {
                        d = d.with_preferred_read_replica(BrokerId(p.preferred_read_replica));
                    }
                    if v >= 12 {
                        if let Some((e, o)) = p.diverging {
                            d = d.with_diverging_epoch(
                                EpochEndOffset::default().with_epoch(e).with_end_offset(o),
                            );
                        }
                        if let Some((l, e)) = p.leader {
                            d = d.with_current_leader(
                                LeaderIdAndEpoch::default()
                                    .with_leader_id(BrokerId(l))
                                    .with_leader_epoch(e),
                            );
                        }
                        if let Some((o, e)) = p.snapshot {
                            d = d.with_snapshot_id(
                                SnapshotId::default().with_end_offset(o).with_epoch(e),
                            );
                        }
                        d = d.with_unknown_tagged_fields(p.tags.clone());
                    }
                    d
                })
                .collect();
            let t = topic(v, name, *id, FetchableTopicResponse::with_topic);
            let t = t.with_partitions(partitions);
            if v >= 12 {
                return t.with_unknown_tagged_fields(ttags.clone());
            }
            t
        })
        .collect();
    let mut r = FetchResponse::default()
        .with_throttle_time_ms(throttle)
        .with_responses(responses);
    if v >= 7 {
        r = r.with_error_code(error_code).with_session_id(77);
    }
    if v >= 12 {
        r = r.with_unknown_tagged_fields(top_tags.clone());
    }
    if v >= 16 {
        r = r.with_node_endpoints(node_endpoints!(NodeEndpoint, endpoints));
    }
    r
}
