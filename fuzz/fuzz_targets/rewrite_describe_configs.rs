#![no_main]
//! DescribeConfigs response rewrite (a broker's address configs withheld); version from the first
//! byte.
use kafka_protocol::messages::DescribeConfigsResponse;
use libfuzzer_sys::fuzz_target;
use sluice::protocol::codes::RESOURCE_BROKER;
use sluice::protocol::rewrite::describe_configs::names_an_address;

mod common;

fuzz_target!(|data: &[u8]| {
    if let Some((_, m)) = common::replaced::<DescribeConfigsResponse>(data, 32, 6) {
        for r in m
            .results
            .iter()
            .filter(|r| r.resource_type == RESOURCE_BROKER)
        {
            for e in r
                .configs
                .iter()
                .filter(|e| names_an_address(e.name.as_str()))
            {
                assert!(e.value.is_none() && e.synonyms.iter().all(|s| s.value.is_none()));
            }
        }
    }
});
