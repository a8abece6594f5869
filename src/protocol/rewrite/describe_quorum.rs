//! DescribeQuorum response (api key 55, KIP-595; `nodes` from v2, KIP-853): every node's
//! `listeners` (name, host, port) are controller endpoints of the KRaft quorum. Sluice serves no
//! controller listener, so there is no gateway address to put there: the endpoints are withheld
//! (each node keeps its id, with an empty `listeners` array). Node ids, replica states and the
//! quorum's leader are untouched. v0 and v1 carry no address.

use bytes::Bytes;
use kafka_protocol::messages::DescribeQuorumResponse;

use super::{Ctx, RewriteError, Rewritten};
use crate::protocol::wire::{always, since, Schema, Struct, Ty, I16, I32, I64, UUID};

static REPLICA_STATE: Struct = Struct {
    fields: &[
        always(I32),    // replica_id
        since(2, UUID), // replica_directory_id
        always(I64),    // log_end_offset
        since(1, I64),  // last_fetch_timestamp
        since(1, I64),  // last_caught_up_timestamp
    ],
    tagged: &[],
};

static PARTITION: Struct = Struct {
    fields: &[
        always(I32),                       // partition_index
        always(I16),                       // error_code
        since(2, Ty::Str),                 // error_message
        always(I32),                       // leader_id
        always(I32),                       // leader_epoch
        always(I64),                       // high_watermark
        always(Ty::Array(&REPLICA_STATE)), // current_voters
        always(Ty::Array(&REPLICA_STATE)), // observers
    ],
    tagged: &[],
};

static TOPIC: Struct = Struct {
    fields: &[
        always(Ty::Str),               // topic_name
        always(Ty::Array(&PARTITION)), // partitions
    ],
    tagged: &[],
};

static LISTENER: Struct = Struct {
    fields: &[
        always(Ty::Str),      // name
        always(Ty::Str),      // host
        always(Ty::Fixed(2)), // port (uint16)
    ],
    tagged: &[],
};

static NODE: Struct = Struct {
    fields: &[
        always(I32),                  // node_id
        always(Ty::Array(&LISTENER)), // listeners
    ],
    tagged: &[],
};

static ROOT: Struct = Struct {
    fields: &[
        always(I16),                // error_code
        since(2, Ty::Str),          // error_message
        always(Ty::Array(&TOPIC)),  // topics
        since(2, Ty::Array(&NODE)), // nodes
    ],
    tagged: &[],
};

/// Body layout of DescribeQuorumResponse v0-v2 (all flexible).
pub(crate) static SCHEMA: Schema = Schema {
    root: &ROOT,
    flexible_from: 0,
};

pub(super) fn rewrite(
    ctx: &Ctx,
    payload: Bytes,
    body_offset: usize,
) -> Result<Rewritten, RewriteError> {
    let mut msg: DescribeQuorumResponse = ctx.decode(&payload, body_offset, &SCHEMA)?;
    if msg.nodes.iter().all(|n| n.listeners.is_empty()) {
        return Ok(Rewritten::Unchanged);
    }
    for node in &mut msg.nodes {
        node.listeners.clear();
    }
    ctx.encode(&payload, body_offset, &msg)
        .map(Rewritten::Replaced)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use kafka_protocol::messages::describe_quorum_response::{
        Listener, Node, PartitionData, ReplicaState, TopicData,
    };
    use kafka_protocol::messages::{ApiKey, BrokerId, DescribeQuorumResponse, TopicName};
    use kafka_protocol::protocol::{Message, StrBytes};

    fn quorum(v: i16, listeners: bool) -> DescribeQuorumResponse {
        let replica = |id: i32| {
            let mut r = ReplicaState::default()
                .with_replica_id(BrokerId(id))
                .with_log_end_offset(42);
            if v >= 1 {
                r = r
                    .with_last_fetch_timestamp(7)
                    .with_last_caught_up_timestamp(8);
            }
            r
        };
        let partition = PartitionData::default()
            .with_leader_id(BrokerId(1))
            .with_leader_epoch(3)
            .with_high_watermark(42)
            .with_current_voters(vec![replica(1), replica(2), replica(3)])
            .with_observers(vec![replica(4)]);
        let mut msg = DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_partitions(vec![partition])]);
        if v >= 2 {
            let node = |id: i32| {
                let l = Listener::default()
                    .with_name(StrBytes::from_static_str("CONTROLLER"))
                    .with_host(StrBytes::from_static_str(UPSTREAM))
                    .with_port(9093);
                Node::default()
                    .with_node_id(BrokerId(id))
                    .with_listeners(if listeners { vec![l] } else { vec![] })
            };
            msg = msg.with_nodes(vec![node(1), node(2), node(3)]);
        }
        msg
    }

    #[test]
    fn controller_endpoints_are_withheld_and_the_rest_kept() {
        for v in DescribeQuorumResponse::VERSIONS.min..=DescribeQuorumResponse::VERSIONS.max {
            let orig = quorum(v, true);
            let payload = response(ApiKey::DescribeQuorum, v, 5, &orig);
            let out = rewrite_response(55, v, payload.clone(), &mut TestMap::default()).unwrap();
            if v < 2 {
                assert_eq!(out, Rewritten::Unchanged, "v{v}");
                continue;
            }
            let Rewritten::Replaced(out) = out else {
                panic!("v{v}: expected Replaced")
            };
            assert!(!contains(&out, UPSTREAM), "v{v}: upstream leaked");
            let got: DescribeQuorumResponse = decode(ApiKey::DescribeQuorum, v, &payload, &out);
            assert_eq!(got, quorum(v, false), "v{v}");
            truncations_never_panic(55, v, &payload);
        }
    }

    #[test]
    fn nodes_without_listeners_are_forwarded_untouched() {
        let payload = response(ApiKey::DescribeQuorum, 2, 5, &quorum(2, false));
        let out = rewrite_response(55, 2, payload, &mut TestMap::default()).unwrap();
        assert_eq!(out, Rewritten::Unchanged);
    }
}
