//! Metadata response (api key 3, all versions): every `brokers` entry's `host`/`port` becomes the
//! gateway's; entries the [`AddressMap`] has no address for are dropped. Topics, partitions and
//! everything else are kept as the broker sent them.

use bytes::Bytes;
use kafka_protocol::messages::MetadataResponse;

use super::{rewrite_broker_list, AddressMap, Ctx, RewriteError, Rewritten};
use crate::protocol::wire::{always, since, Field, Schema, Struct, Ty, BOOL, I16, I32, UUID};

static BROKER: Struct = Struct {
    fields: &[
        always(I32),       // node_id
        always(Ty::Str),   // host
        always(I32),       // port
        since(1, Ty::Str), // rack
    ],
    tagged: &[],
};

static PARTITION: Struct = Struct {
    fields: &[
        always(I16),                  // error_code
        always(I32),                  // partition_index
        always(I32),                  // leader_id
        since(7, I32),                // leader_epoch
        always(Ty::ScalarArray(4)),   // replica_nodes
        always(Ty::ScalarArray(4)),   // isr_nodes
        since(5, Ty::ScalarArray(4)), // offline_replicas
    ],
    tagged: &[],
};

static TOPIC: Struct = Struct {
    fields: &[
        always(I16),                   // error_code
        always(Ty::Name),              // name
        since(10, UUID),               // topic_id
        since(1, BOOL),                // is_internal
        always(Ty::Array(&PARTITION)), // partitions
        since(8, I32),                 // topic_authorized_operations
    ],
    tagged: &[],
};

static ROOT: Struct = Struct {
    fields: &[
        since(3, I32),              // throttle_time_ms
        always(Ty::Array(&BROKER)), // brokers
        since(2, Ty::Str),          // cluster_id
        since(1, I32),              // controller_id
        always(Ty::Array(&TOPIC)),  // topics
        Field {
            ty: I32,
            min: 8,
            max: 10,
        }, // cluster_authorized_operations
        since(13, I16),             // error_code
    ],
    tagged: &[],
};

/// Body layout of MetadataResponse v0-v13 (flexible from v9).
pub(crate) static SCHEMA: Schema = Schema {
    root: &ROOT,
    flexible_from: 9,
};

pub(super) fn rewrite(
    ctx: &Ctx,
    payload: Bytes,
    body_offset: usize,
    map: &mut dyn AddressMap,
) -> Result<Rewritten, RewriteError> {
    rewrite_broker_list(
        ctx,
        &payload,
        body_offset,
        &SCHEMA,
        map,
        |m: &mut MetadataResponse| &mut m.brokers,
        |b| (b.node_id.0, &mut b.host, &mut b.port),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{ApiKey, BrokerId, MetadataResponse, TopicName};
    use kafka_protocol::protocol::{Message, StrBytes};

    fn sample(version: i16) -> MetadataResponse {
        let broker = |id: i32| {
            let mut b = MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_static_str(UPSTREAM))
                .with_port(9092 + id);
            if version >= 1 {
                b = b.with_rack(Some(StrBytes::from_static_str("rack-a")));
            }
            b
        };
        let mut p = MetadataResponsePartition::default()
            .with_partition_index(3)
            .with_leader_id(BrokerId(1))
            .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
            .with_isr_nodes(vec![BrokerId(1)]);
        if version >= 7 {
            p = p.with_leader_epoch(5);
        }
        if version >= 5 {
            p = p.with_offline_replicas(vec![BrokerId(2)]);
        }
        let mut t = MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))
            .with_partitions(vec![p]);
        if version >= 8 {
            t = t.with_topic_authorized_operations(42);
        }
        let mut m = MetadataResponse::default()
            .with_brokers(vec![broker(1), broker(UNMAPPED), broker(2)])
            .with_topics(vec![t]);
        if version >= 1 {
            m = m.with_controller_id(BrokerId(1));
        }
        if version >= 2 {
            m = m.with_cluster_id(Some(StrBytes::from_static_str("cluster")));
        }
        if version >= 3 {
            m = m.with_throttle_time_ms(17);
        }
        if version >= 9 {
            m = m.with_unknown_tagged_field(9, Bytes::from_static(b"xyz"));
        }
        m
    }

    #[test]
    fn all_versions_round_trip() {
        for v in MetadataResponse::VERSIONS.min..=MetadataResponse::VERSIONS.max {
            let orig = sample(v);
            let payload = response(ApiKey::Metadata, v, 99, &orig);
            let mut map = TestMap::default();
            let r = rewrite_response(3, v, payload.clone(), &mut map).unwrap();
            let Rewritten::Replaced(out) = r else {
                panic!("v{v}: expected Replaced")
            };
            assert!(!contains(&out, UPSTREAM), "v{v}: upstream host leaked");
            let got: MetadataResponse = decode(ApiKey::Metadata, v, &payload, &out);
            let mut want = orig.clone();
            want.brokers.retain(|b| b.node_id.0 != UNMAPPED);
            for b in &mut want.brokers {
                let (h, p) = TestMap::expect(b.node_id.0).unwrap();
                b.host = StrBytes::from_string(h);
                b.port = p;
            }
            assert_eq!(got, want, "v{v}");
            assert_eq!(map.seen.len(), 3);
            assert_eq!(map.seen[0], (1, UPSTREAM.to_string(), 9093));
            truncations_never_panic(3, v, &payload);
        }
    }

    #[test]
    fn hostile_array_count_is_an_error_not_an_allocation() {
        // Metadata v1 body: brokers count = i32::MAX with nothing behind it
        let payload = Bytes::from_static(&[0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff]);
        let r = rewrite_response(3, 1, payload, &mut TestMap::default());
        assert!(matches!(r, Err(RewriteError::Malformed { .. })), "{r:?}");
    }

    #[test]
    fn unsupported_version() {
        let r = rewrite_response(3, 14, Bytes::new(), &mut TestMap::default());
        assert!(matches!(
            r,
            Err(RewriteError::UnsupportedVersion {
                api_key: 3,
                api_version: 14
            })
        ));
    }
}
