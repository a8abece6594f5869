#![no_main]
//! ShareFetch / ShareAcknowledge response rewrite; the first byte picks the key and version.
use bytes::Bytes;
use kafka_protocol::messages::{ShareAcknowledgeResponse, ShareFetchResponse};
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;
use sluice::protocol::header::response_body_offset;
use sluice::protocol::rewrite::{rewrite_response, Rewritten};

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, payload)) = data.split_first() else {
        return;
    };
    let key = if sel & 1 == 0 { 78i16 } else { 79 };
    let v = ((sel >> 1) % 3) as i16;
    let payload = Bytes::copy_from_slice(payload);
    if let Ok(Rewritten::Replaced(out)) = rewrite_response(key, v, payload, &mut common::Map) {
        let off = response_body_offset(&out, key, v).expect("header kept");
        let hosts: Vec<String> = if key == 78 {
            let m = ShareFetchResponse::decode(&mut out.slice(off..), v).expect("decodes");
            m.node_endpoints
                .iter()
                .map(|e| e.host.to_string())
                .collect()
        } else {
            let m = ShareAcknowledgeResponse::decode(&mut out.slice(off..), v).expect("decodes");
            m.node_endpoints
                .iter()
                .map(|e| e.host.to_string())
                .collect()
        };
        assert!(hosts.iter().all(|h| h == common::GATEWAY));
    }
});
