//! DescribeCluster response (api key 60, KIP-700): every `brokers` entry's `host`/`port` becomes the
//! gateway's; entries the [`AddressMap`] has no address for are dropped. From v1 the response says
//! which endpoint type it lists (KIP-919: brokers or controllers); Sluice rewrites regardless, since
//! any address a client learns must be the gateway's.

use bytes::Bytes;
use kafka_protocol::messages::DescribeClusterResponse;

use super::{rewrite_broker_list, AddressMap, Ctx, RewriteError, Rewritten};
use crate::protocol::wire::{always, since, Schema, Struct, Ty, BOOL, I16, I32, I8};

static BROKER: Struct = Struct {
    fields: &[
        always(I32),     // broker_id
        always(Ty::Str), // host
        always(I32),     // port
        always(Ty::Str), // rack
        since(2, BOOL),  // is_fenced
    ],
    tagged: &[],
};

static ROOT: Struct = Struct {
    fields: &[
        always(I32),                // throttle_time_ms
        always(I16),                // error_code
        always(Ty::Str),            // error_message
        since(1, I8),               // endpoint_type
        always(Ty::Str),            // cluster_id
        always(I32),                // controller_id
        always(Ty::Array(&BROKER)), // brokers
        always(I32),                // cluster_authorized_operations
    ],
    tagged: &[],
};

/// Body layout of DescribeClusterResponse v0-v2 (all flexible).
pub(crate) static SCHEMA: Schema = Schema {
    root: &ROOT,
    flexible_from: 0,
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
        |m: &mut DescribeClusterResponse| &mut m.brokers,
        |b| (b.broker_id.0, &mut b.host, &mut b.port),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
    use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterResponse};
    use kafka_protocol::protocol::{Message, StrBytes};

    #[test]
    fn all_versions_round_trip() {
        for v in DescribeClusterResponse::VERSIONS.min..=DescribeClusterResponse::VERSIONS.max {
            let broker = |id: i32| {
                let mut b = DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(id))
                    .with_host(StrBytes::from_static_str(UPSTREAM))
                    .with_port(9092)
                    .with_rack(Some(StrBytes::from_static_str("r1")));
                if v >= 2 {
                    b = b.with_is_fenced(id == 2);
                }
                b
            };
            let mut orig = DescribeClusterResponse::default()
                .with_cluster_id(StrBytes::from_static_str("c1"))
                .with_controller_id(BrokerId(1))
                .with_brokers(vec![broker(1), broker(UNMAPPED), broker(2)])
                .with_unknown_tagged_field(4, Bytes::from_static(b"t"));
            if v >= 1 {
                orig = orig.with_endpoint_type(2);
            }
            let payload = response(ApiKey::DescribeCluster, v, 11, &orig);
            let Rewritten::Replaced(out) =
                rewrite_response(60, v, payload.clone(), &mut TestMap::default()).unwrap()
            else {
                panic!("expected Replaced")
            };
            assert!(!contains(&out, UPSTREAM), "v{v}: upstream leaked");
            let got: DescribeClusterResponse = decode(ApiKey::DescribeCluster, v, &payload, &out);
            let mut want = orig.clone();
            want.brokers.retain(|b| b.broker_id.0 != UNMAPPED);
            for b in &mut want.brokers {
                let (h, p) = TestMap::expect(b.broker_id.0).unwrap();
                b.host = StrBytes::from_string(h);
                b.port = p;
            }
            assert_eq!(got, want, "v{v}");
            truncations_never_panic(60, v, &payload);
        }
    }
}
