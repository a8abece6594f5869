#![no_main]
//! DescribeCluster response rewrite; version from the first byte.
use kafka_protocol::messages::DescribeClusterResponse;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    if let Some((_, m)) = common::replaced::<DescribeClusterResponse>(data, 60, 4) {
        assert!(m.brokers.iter().all(|b| b.host.as_str() == common::GATEWAY));
    }
});
