#![no_main]
//! Metadata response rewrite; version from the first byte. Every broker in a rewritten response
//! has a gateway address.
use kafka_protocol::messages::MetadataResponse;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    // 14 is unsupported
    if let Some((_, m)) = common::replaced::<MetadataResponse>(data, 3, 15) {
        assert!(m
            .brokers
            .iter()
            .all(|b| b.host.as_str() == common::GATEWAY && b.node_id.0 != 13));
    }
});
