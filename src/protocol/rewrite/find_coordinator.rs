//! FindCoordinator response (api key 10): v0-v3 carry one `node_id/host/port`, v4+ a
//! `coordinators` array (KIP-699, batched lookups). Only entries with `error_code == 0` and
//! `node_id >= 0` are rewritten (an error answer carries `-1, "", -1`). A coordinator the
//! [`AddressMap`] has no address for is answered with COORDINATOR_NOT_AVAILABLE (15), which clients
//! retry after refreshing metadata.

use bytes::Bytes;
use kafka_protocol::messages::FindCoordinatorResponse;
use kafka_protocol::protocol::StrBytes;

use super::{map_endpoint, AddressMap, Ctx, RewriteError, Rewritten};
use crate::protocol::wire::{always, since, Field, Schema, Struct, Ty, I16, I32};

/// Kafka error code COORDINATOR_NOT_AVAILABLE.
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;

const NOT_REACHABLE: &str = "coordinator is not reachable through the gateway";

static COORDINATOR: Struct = Struct {
    fields: &[
        always(Ty::Str), // key
        always(I32),     // node_id
        always(Ty::Str), // host
        always(I32),     // port
        always(I16),     // error_code
        always(Ty::Str), // error_message
    ],
    tagged: &[],
};

const fn upto3(ty: Ty, min: i16) -> Field {
    Field { ty, min, max: 3 }
}

static ROOT: Struct = Struct {
    fields: &[
        since(1, I32),                     // throttle_time_ms
        upto3(I16, 0),                     // error_code
        upto3(Ty::Str, 1),                 // error_message
        upto3(I32, 0),                     // node_id
        upto3(Ty::Str, 0),                 // host
        upto3(I32, 0),                     // port
        since(4, Ty::Array(&COORDINATOR)), // coordinators
    ],
    tagged: &[],
};

/// Body layout of FindCoordinatorResponse v0-v6 (flexible from v3).
pub(crate) static SCHEMA: Schema = Schema {
    root: &ROOT,
    flexible_from: 3,
};

/// Rewrites one coordinator in place: `(error_code, error_message, node_id, host, port)`.
/// `error_message` is `None` for v0, which has no such field.
fn rewrite_one(
    map: &mut dyn AddressMap,
    error_code: &mut i16,
    error_message: Option<&mut Option<StrBytes>>,
    node_id: &mut i32,
    host: &mut StrBytes,
    port: &mut i32,
) {
    if *error_code != 0 || *node_id < 0 {
        return;
    }
    match map_endpoint(map, *node_id, host, *port) {
        Some((h, p)) => {
            *host = h;
            *port = p;
        }
        None => {
            *error_code = COORDINATOR_NOT_AVAILABLE;
            if let Some(m) = error_message {
                *m = Some(StrBytes::from_static_str(NOT_REACHABLE));
            }
            *node_id = -1;
            *host = StrBytes::default();
            *port = -1;
        }
    }
}

pub(super) fn rewrite(
    ctx: &Ctx,
    payload: Bytes,
    body_offset: usize,
    map: &mut dyn AddressMap,
) -> Result<Rewritten, RewriteError> {
    let mut msg: FindCoordinatorResponse = ctx.decode(&payload, body_offset, &SCHEMA)?;
    if ctx.api_version <= 3 {
        let mut node_id = msg.node_id.0;
        rewrite_one(
            map,
            &mut msg.error_code,
            (ctx.api_version >= 1).then_some(&mut msg.error_message),
            &mut node_id,
            &mut msg.host,
            &mut msg.port,
        );
        msg.node_id.0 = node_id;
    } else {
        for c in &mut msg.coordinators {
            let mut node_id = c.node_id.0;
            rewrite_one(
                map,
                &mut c.error_code,
                Some(&mut c.error_message),
                &mut node_id,
                &mut c.host,
                &mut c.port,
            );
            c.node_id.0 = node_id;
        }
    }
    ctx.encode(&payload, body_offset, &msg)
        .map(Rewritten::Replaced)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use super::COORDINATOR_NOT_AVAILABLE;
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorResponse};
    use kafka_protocol::protocol::{Message, StrBytes};

    fn coord(id: i32, error: i16) -> Coordinator {
        Coordinator::default()
            .with_key(StrBytes::from_string(format!("group-{id}")))
            .with_node_id(BrokerId(if error == 0 { id } else { -1 }))
            .with_host(StrBytes::from_static_str(if error == 0 {
                UPSTREAM
            } else {
                ""
            }))
            .with_port(if error == 0 { 9092 } else { -1 })
            .with_error_code(error)
    }

    #[test]
    fn all_versions_round_trip() {
        for v in FindCoordinatorResponse::VERSIONS.min..=FindCoordinatorResponse::VERSIONS.max {
            for node in [1, UNMAPPED] {
                let orig = if v <= 3 {
                    let mut m = FindCoordinatorResponse::default()
                        .with_node_id(BrokerId(node))
                        .with_host(StrBytes::from_static_str(UPSTREAM))
                        .with_port(9092);
                    if v >= 1 {
                        m = m.with_throttle_time_ms(3);
                    }
                    m
                } else {
                    FindCoordinatorResponse::default()
                        .with_throttle_time_ms(3)
                        .with_coordinators(vec![coord(node, 0), coord(2, 0), coord(5, 16)])
                };
                let payload = response(ApiKey::FindCoordinator, v, 5, &orig);
                let Rewritten::Replaced(out) =
                    rewrite_response(10, v, payload.clone(), &mut TestMap::default()).unwrap()
                else {
                    panic!("expected Replaced")
                };
                assert!(!contains(&out, UPSTREAM), "v{v}: upstream leaked");
                let got: FindCoordinatorResponse =
                    decode(ApiKey::FindCoordinator, v, &payload, &out);
                let mut want = orig.clone();
                let fix = |ec: &mut i16,
                           em: &mut Option<StrBytes>,
                           id: &mut BrokerId,
                           h: &mut StrBytes,
                           p: &mut i32| {
                    if *ec != 0 {
                        return;
                    }
                    match TestMap::expect(id.0) {
                        Some((host, port)) => {
                            *h = StrBytes::from_string(host);
                            *p = port;
                        }
                        None => {
                            *ec = COORDINATOR_NOT_AVAILABLE;
                            if v >= 1 {
                                *em = Some(StrBytes::from_static_str(super::NOT_REACHABLE));
                            }
                            *id = BrokerId(-1);
                            *h = StrBytes::default();
                            *p = -1;
                        }
                    }
                };
                if v <= 3 {
                    fix(
                        &mut want.error_code,
                        &mut want.error_message,
                        &mut want.node_id,
                        &mut want.host,
                        &mut want.port,
                    );
                } else {
                    for c in &mut want.coordinators {
                        fix(
                            &mut c.error_code,
                            &mut c.error_message,
                            &mut c.node_id,
                            &mut c.host,
                            &mut c.port,
                        );
                    }
                }
                assert_eq!(got, want, "v{v} node {node}");
                truncations_never_panic(10, v, &payload);
            }
        }
    }
}
