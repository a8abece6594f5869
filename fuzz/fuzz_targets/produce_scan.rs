#![no_main]
//! Produce request scan (sans-io, no decompression) and the policy error response built from it.
//! The first byte picks the version (3..=13), the second the body offset (at most the payload's
//! length); the rest is the payload. Facts stay within what the payload can hold, topic names
//! (read in place for read-only rules) are no more than the payload holds, and the error
//! responses may fail but never panic.
use libfuzzer_sys::fuzz_target;
use sluice::protocol::produce::{
    error_response, error_response_by_topic, scan, topic_names, POLICY_VIOLATION,
};

/// A v2 record batch header is 61 bytes; `scan` counts no batch shorter than that.
const BATCH_HEADER_BYTES: usize = 61;

fuzz_target!(|data: &[u8]| {
    let [v, off, payload @ ..] = data else {
        return;
    };
    let version = 3 + (*v % 11) as i16;
    let body = *off as usize % (payload.len() + 1);
    if let Ok(facts) = scan(payload, body, version) {
        assert!(
            facts.max_batch_bytes <= payload.len(),
            "max_batch_bytes {} > payload {}",
            facts.max_batch_bytes,
            payload.len()
        );
        assert!(
            facts.batches <= payload.len() / BATCH_HEADER_BYTES + 1,
            "{} batches in a {}-byte payload",
            facts.batches,
            payload.len()
        );
        let _ = facts.codecs().count();
        let _ = error_response(
            payload,
            body,
            version,
            7,
            (POLICY_VIOLATION, "fuzz: policy"),
            &sluice::protocol::answer::AnswerBound::for_request(payload.len(), 100 << 20),
        );
    }
    if let Ok(names) = topic_names(payload, body, version) {
        assert!(
            names.len() <= payload.len() / 2,
            "{} topics in a {}-byte payload",
            names.len(),
            payload.len()
        );
        let _ = error_response_by_topic(
            payload,
            body,
            version,
            7,
            |t| (POLICY_VIOLATION, t.to_string()),
            &sluice::protocol::answer::AnswerBound::for_request(payload.len(), 100 << 20),
        );
    }
});
