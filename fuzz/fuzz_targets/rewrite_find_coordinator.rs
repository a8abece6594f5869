#![no_main]
//! FindCoordinator response rewrite; version from the first byte.
use kafka_protocol::messages::FindCoordinatorResponse;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    if let Some((v, m)) = common::replaced::<FindCoordinatorResponse>(data, 10, 8) {
        if v <= 3 {
            assert!(m.error_code != 0 || m.node_id.0 < 0 || m.host.as_str() == common::GATEWAY);
        } else {
            for c in &m.coordinators {
                assert!(c.error_code != 0 || c.node_id.0 < 0 || c.host.as_str() == common::GATEWAY);
            }
        }
    }
});
