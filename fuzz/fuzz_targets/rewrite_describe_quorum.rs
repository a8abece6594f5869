#![no_main]
//! DescribeQuorum response rewrite (controller endpoints withheld); version from the first byte.
use kafka_protocol::messages::DescribeQuorumResponse;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    if let Some((_, m)) = common::replaced::<DescribeQuorumResponse>(data, 55, 4) {
        assert!(m.nodes.iter().all(|n| n.listeners.is_empty()));
    }
});
