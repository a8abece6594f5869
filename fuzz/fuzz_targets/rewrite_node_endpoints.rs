#![no_main]
//! KIP-951 scanner and tail rewrite over Produce (v9-v14) and Fetch (v12-v19) responses; the first
//! byte picks key and version. A spliced result keeps the original prefix, scans again, and holds
//! only gateway addresses; rewriting it again changes nothing more.
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice::protocol::header::response_body_offset;
use sluice::protocol::rewrite::node_endpoints::scan;
use sluice::protocol::rewrite::{rewrite_response, Rewritten};

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, payload)) = data.split_first() else {
        return;
    };
    let (key, v) = if sel & 1 == 0 {
        (0i16, 9 + ((sel >> 1) % 6) as i16)
    } else {
        (1i16, 12 + ((sel >> 1) % 8) as i16)
    };
    let payload = Bytes::copy_from_slice(payload);
    match rewrite_response(key, v, payload.clone(), &mut common::Map) {
        Ok(Rewritten::Spliced { prefix, tail }) => {
            assert!(payload.starts_with(&prefix));
            let mut out = prefix.to_vec();
            out.extend_from_slice(&tail);
            let out = Bytes::from(out);
            let off = response_body_offset(&out, key, v).expect("header kept");
            let s = scan(key, v, &out, off)
                .expect("rewritten response scans")
                .expect("flexible");
            assert_eq!(s.tagged_start, prefix.len());
            // idempotent: the rewritten endpoints map to themselves
            match rewrite_response(key, v, out.clone(), &mut common::Map).expect("rewrites again") {
                Rewritten::Unchanged => assert!(!s.has_node_endpoints),
                Rewritten::Spliced { tail: t2, .. } => assert_eq!(t2, tail),
                Rewritten::Replaced(_) => panic!("node_endpoints never replaces"),
            }
        }
        Ok(Rewritten::Replaced(_)) => panic!("node_endpoints never replaces"),
        Ok(Rewritten::Unchanged) | Err(_) => {}
    }
});
