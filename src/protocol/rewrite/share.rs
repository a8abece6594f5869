//! ShareFetch (api key 78) and ShareAcknowledge (79) responses, KIP-932 share groups:
//! `node_endpoints` is a regular (not tagged) top-level field listing the leaders named in
//! `current_leader`. Cold paths: the body is walked, decoded and re-encoded with kafka-protocol;
//! endpoints the [`AddressMap`] has no address for are dropped. A response without endpoints is
//! [`Rewritten::Unchanged`].

use bytes::Bytes;
use kafka_protocol::messages::{ShareAcknowledgeResponse, ShareFetchResponse};

use super::{rewrite_broker_list, AddressMap, Ctx, RewriteError, Rewritten};
use crate::protocol::versions::keys;
use crate::protocol::wire::{always, Schema, Struct, Ty, I16, I32, I64, UUID};

static LEADER: Struct = Struct {
    fields: &[always(I32), always(I32)], // leader_id, leader_epoch
    tagged: &[],
};

static NODE_ENDPOINT: Struct = Struct {
    fields: &[always(I32), always(Ty::Str), always(I32), always(Ty::Str)], // node_id, host, port, rack
    tagged: &[],
};

static ACQUIRED: Struct = Struct {
    fields: &[always(I64), always(I64), always(I16)], // first_offset, last_offset, delivery_count
    tagged: &[],
};

static FETCH_PARTITION: Struct = Struct {
    fields: &[
        always(I32),                  // partition_index
        always(I16),                  // error_code
        always(Ty::Str),              // error_message
        always(I16),                  // acknowledge_error_code
        always(Ty::Str),              // acknowledge_error_message
        always(Ty::Struct(&LEADER)),  // current_leader
        always(Ty::Bytes),            // records
        always(Ty::Array(&ACQUIRED)), // acquired_records
    ],
    tagged: &[],
};

static FETCH_TOPIC: Struct = Struct {
    fields: &[always(UUID), always(Ty::Array(&FETCH_PARTITION))],
    tagged: &[],
};

static FETCH_ROOT: Struct = Struct {
    fields: &[
        always(I32),                       // throttle_time_ms
        always(I16),                       // error_code
        always(Ty::Str),                   // error_message
        always(I32),                       // acquisition_lock_timeout_ms
        always(Ty::Array(&FETCH_TOPIC)),   // responses
        always(Ty::Array(&NODE_ENDPOINT)), // node_endpoints
    ],
    tagged: &[],
};

/// Body layout of ShareFetchResponse v1 (flexible).
pub(crate) static SHARE_FETCH: Schema = Schema {
    root: &FETCH_ROOT,
    flexible_from: 0,
};

static ACK_PARTITION: Struct = Struct {
    fields: &[
        always(I32),                 // partition_index
        always(I16),                 // error_code
        always(Ty::Str),             // error_message
        always(Ty::Struct(&LEADER)), // current_leader
    ],
    tagged: &[],
};

static ACK_TOPIC: Struct = Struct {
    fields: &[always(UUID), always(Ty::Array(&ACK_PARTITION))],
    tagged: &[],
};

static ACK_ROOT: Struct = Struct {
    fields: &[
        always(I32),                       // throttle_time_ms
        always(I16),                       // error_code
        always(Ty::Str),                   // error_message
        always(Ty::Array(&ACK_TOPIC)),     // responses
        always(Ty::Array(&NODE_ENDPOINT)), // node_endpoints
    ],
    tagged: &[],
};

/// Body layout of ShareAcknowledgeResponse v1 (flexible).
pub(crate) static SHARE_ACKNOWLEDGE: Schema = Schema {
    root: &ACK_ROOT,
    flexible_from: 0,
};

pub(super) fn rewrite(
    ctx: &Ctx,
    payload: Bytes,
    body_offset: usize,
    map: &mut dyn AddressMap,
) -> Result<Rewritten, RewriteError> {
    if ctx.api_key == keys::SHARE_FETCH {
        rewrite_broker_list(
            ctx,
            &payload,
            body_offset,
            &SHARE_FETCH,
            map,
            |m: &mut ShareFetchResponse| &mut m.node_endpoints,
            |e| (e.node_id.0, &mut e.host, &mut e.port),
        )
    } else {
        rewrite_broker_list(
            ctx,
            &payload,
            body_offset,
            &SHARE_ACKNOWLEDGE,
            map,
            |m: &mut ShareAcknowledgeResponse| &mut m.node_endpoints,
            |e| (e.node_id.0, &mut e.host, &mut e.port),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use kafka_protocol::messages::share_acknowledge_response as ack;
    use kafka_protocol::messages::share_fetch_response as sf;
    use kafka_protocol::messages::{
        ApiKey, BrokerId, ShareAcknowledgeResponse, ShareFetchResponse,
    };
    use kafka_protocol::protocol::{Message, StrBytes};

    #[test]
    fn share_fetch_all_versions() {
        for v in ShareFetchResponse::VERSIONS.min..=ShareFetchResponse::VERSIONS.max {
            let ep = |id: i32| {
                sf::NodeEndpoint::default()
                    .with_node_id(BrokerId(id))
                    .with_host(StrBytes::from_static_str(UPSTREAM))
                    .with_port(9092)
            };
            let part = sf::PartitionData::default()
                .with_partition_index(1)
                .with_records(Some(Bytes::from_static(&[1, 2, 3])))
                .with_acquired_records(vec![sf::AcquiredRecords::default().with_last_offset(9)]);
            let topic = sf::ShareFetchableTopicResponse::default().with_partitions(vec![part]);
            for eps in [vec![], vec![ep(1), ep(UNMAPPED)]] {
                let orig = ShareFetchResponse::default()
                    .with_responses(vec![topic.clone()])
                    .with_node_endpoints(eps.clone());
                let payload = response(ApiKey::ShareFetch, v, 8, &orig);
                let r = rewrite_response(78, v, payload.clone(), &mut TestMap::default()).unwrap();
                if eps.is_empty() {
                    assert_eq!(r, Rewritten::Unchanged);
                }
                let out = r.into_payload(payload.clone());
                assert!(!contains(&out, UPSTREAM));
                let got: ShareFetchResponse = decode(ApiKey::ShareFetch, v, &payload, &out);
                let mut want = orig.clone();
                want.node_endpoints.retain(|e| e.node_id.0 != UNMAPPED);
                for e in &mut want.node_endpoints {
                    let (h, p) = TestMap::expect(e.node_id.0).unwrap();
                    e.host = StrBytes::from_string(h);
                    e.port = p;
                }
                assert_eq!(got, want);
                truncations_never_panic(78, v, &payload);
            }
        }
    }

    #[test]
    fn share_acknowledge_all_versions() {
        for v in ShareAcknowledgeResponse::VERSIONS.min..=ShareAcknowledgeResponse::VERSIONS.max {
            let ep = |id: i32| {
                ack::NodeEndpoint::default()
                    .with_node_id(BrokerId(id))
                    .with_host(StrBytes::from_static_str(UPSTREAM))
                    .with_port(9092)
                    .with_rack(Some(StrBytes::from_static_str("r")))
            };
            let topic = ack::ShareAcknowledgeTopicResponse::default()
                .with_partitions(vec![ack::PartitionData::default().with_partition_index(4)]);
            let orig = ShareAcknowledgeResponse::default()
                .with_responses(vec![topic])
                .with_node_endpoints(vec![ep(UNMAPPED), ep(3)]);
            let payload = response(ApiKey::ShareAcknowledge, v, 8, &orig);
            let Rewritten::Replaced(out) =
                rewrite_response(79, v, payload.clone(), &mut TestMap::default()).unwrap()
            else {
                panic!("expected Replaced")
            };
            assert!(!contains(&out, UPSTREAM));
            let got: ShareAcknowledgeResponse = decode(ApiKey::ShareAcknowledge, v, &payload, &out);
            let mut want = orig.clone();
            want.node_endpoints.remove(0);
            want.node_endpoints[0].host = StrBytes::from_static_str(GATEWAY);
            want.node_endpoints[0].port = 19_003;
            assert_eq!(got, want);
            truncations_never_panic(79, v, &payload);
        }
    }
}
