#![no_main]
//! FindCoordinator response rewrite; version from the first byte.
use bytes::Bytes;
use kafka_protocol::messages::FindCoordinatorResponse;
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;
use sluice::protocol::header::response_body_offset;
use sluice::protocol::rewrite::{rewrite_response, Rewritten};

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&v, payload)) = data.split_first() else {
        return;
    };
    let v = (v % 8) as i16;
    let payload = Bytes::copy_from_slice(payload);
    if let Ok(Rewritten::Replaced(out)) = rewrite_response(10, v, payload, &mut common::Map) {
        let off = response_body_offset(&out, 10, v).expect("header kept");
        let m = FindCoordinatorResponse::decode(&mut out.slice(off..), v)
            .expect("re-encoded body decodes");
        if v <= 3 {
            assert!(m.error_code != 0 || m.node_id.0 < 0 || m.host.as_str() == common::GATEWAY);
        } else {
            for c in &m.coordinators {
                assert!(c.error_code != 0 || c.node_id.0 < 0 || c.host.as_str() == common::GATEWAY);
            }
        }
    }
});
