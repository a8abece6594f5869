#![no_main]
//! ApiVersions response rewrite; version from the first byte. A rewritten response only
//! advertises versions Sluice decodes.
use bytes::Bytes;
use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;
use sluice::protocol::rewrite::{rewrite_response, Rewritten};
use sluice::protocol::versions::decodable_versions;

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&v, payload)) = data.split_first() else {
        return;
    };
    let v = (v % 6) as i16;
    let payload = Bytes::copy_from_slice(payload);
    if let Ok(Rewritten::Replaced(out)) = rewrite_response(18, v, payload, &mut common::Map) {
        let m =
            ApiVersionsResponse::decode(&mut out.slice(4..), v).expect("re-encoded body decodes");
        for k in &m.api_keys {
            if let Some(r) = decodable_versions(k.api_key) {
                assert!(r.contains(&k.min_version) && r.contains(&k.max_version));
            }
        }
    }
});
