#![no_main]
//! ApiVersions response rewrite; version from the first byte. A rewritten response only
//! advertises versions Sluice decodes.
use kafka_protocol::messages::ApiVersionsResponse;
use libfuzzer_sys::fuzz_target;
use sluice::protocol::versions::decodable_versions;

mod common;

fuzz_target!(|data: &[u8]| {
    if let Some((_, m)) = common::replaced::<ApiVersionsResponse>(data, 18, 6) {
        for k in &m.api_keys {
            if let Some(r) = decodable_versions(k.api_key) {
                assert!(r.contains(&k.min_version) && r.contains(&k.max_version));
            }
        }
    }
});
