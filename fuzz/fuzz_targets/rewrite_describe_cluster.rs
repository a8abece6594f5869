#![no_main]
//! DescribeCluster response rewrite; version from the first byte.
use bytes::Bytes;
use kafka_protocol::messages::DescribeClusterResponse;
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
    if let Ok(Rewritten::Replaced(out)) = rewrite_response(60, v, payload, &mut common::Map) {
        let off = response_body_offset(&out, 60, v).expect("header kept");
        let m = DescribeClusterResponse::decode(&mut out.slice(off..), v)
            .expect("re-encoded body decodes");
        assert!(m.brokers.iter().all(|b| b.host.as_str() == common::GATEWAY));
    }
});
