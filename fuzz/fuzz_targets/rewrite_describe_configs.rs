#![no_main]
//! DescribeConfigs response rewrite (a broker's address configs withheld); version from the first
//! byte.
use bytes::Bytes;
use kafka_protocol::messages::DescribeConfigsResponse;
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;
use sluice::protocol::header::response_body_offset;
use sluice::protocol::rewrite::describe_configs::names_an_address;
use sluice::protocol::rewrite::{rewrite_response, Rewritten};

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&v, payload)) = data.split_first() else {
        return;
    };
    let v = (v % 6) as i16;
    let payload = Bytes::copy_from_slice(payload);
    if let Ok(Rewritten::Replaced(out)) = rewrite_response(32, v, payload, &mut common::Map) {
        let off = response_body_offset(&out, 32, v).expect("header kept");
        let m = DescribeConfigsResponse::decode(&mut out.slice(off..), v)
            .expect("re-encoded body decodes");
        for r in m.results.iter().filter(|r| r.resource_type == 4) {
            for e in r.configs.iter().filter(|e| names_an_address(e.name.as_str())) {
                assert!(e.value.is_none() && e.synonyms.iter().all(|s| s.value.is_none()));
            }
        }
    }
});
