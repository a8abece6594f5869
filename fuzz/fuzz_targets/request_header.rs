#![no_main]
//! Request header peek, Produce acks and response header offsets on arbitrary bytes.
use libfuzzer_sys::fuzz_target;
use sluice::protocol::header::{
    peek_request_header, produce_acks, response_body_offset, response_correlation_id,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = peek_request_header(data) {
        if let Some((s, e)) = p.client_id {
            assert!(s <= e && e <= data.len());
        }
        if let Some(o) = p.body_offset {
            assert!(o <= data.len());
        }
        let _ = produce_acks(data, &p);
        // the peeked key/version drive the response helpers too
        let _ = response_body_offset(data, p.api_key, p.api_version);
    }
    let _ = response_correlation_id(data);
    for key in [0i16, 1, 3, 18, 60] {
        if let Ok(o) = response_body_offset(data, key, 12) {
            assert!(o <= data.len());
        }
    }
});
