#![no_main]
//! DescribeQuorum response rewrite (controller endpoints withheld); version from the first byte.
use bytes::Bytes;
use kafka_protocol::messages::DescribeQuorumResponse;
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;
use sluice::protocol::header::response_body_offset;
use sluice::protocol::rewrite::{rewrite_response, Rewritten};

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&v, payload)) = data.split_first() else {
        return;
    };
    let v = (v % 4) as i16;
    let payload = Bytes::copy_from_slice(payload);
    if let Ok(Rewritten::Replaced(out)) = rewrite_response(55, v, payload, &mut common::Map) {
        let off = response_body_offset(&out, 55, v).expect("header kept");
        let m = DescribeQuorumResponse::decode(&mut out.slice(off..), v)
            .expect("re-encoded body decodes");
        assert!(m.nodes.iter().all(|n| n.listeners.is_empty()));
    }
});
