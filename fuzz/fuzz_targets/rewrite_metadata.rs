#![no_main]
//! Metadata response rewrite; version from the first byte. Every broker in a rewritten response
//! has a gateway address.
use bytes::Bytes;
use kafka_protocol::messages::MetadataResponse;
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;
use sluice::protocol::header::response_body_offset;
use sluice::protocol::rewrite::{rewrite_response, Rewritten};

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&v, payload)) = data.split_first() else {
        return;
    };
    let v = (v % 15) as i16; // 14 is unsupported
    let payload = Bytes::copy_from_slice(payload);
    if let Ok(Rewritten::Replaced(out)) = rewrite_response(3, v, payload, &mut common::Map) {
        let off = response_body_offset(&out, 3, v).expect("header kept");
        let m =
            MetadataResponse::decode(&mut out.slice(off..), v).expect("re-encoded body decodes");
        assert!(m
            .brokers
            .iter()
            .all(|b| b.host.as_str() == common::GATEWAY && b.node_id.0 != 13));
    }
});
