#![no_main]
//! Topic-name mapping (aliases, hidden topics) of requests and responses. The first byte picks the
//! api key among those Sluice maps, the second the version within its mapped range, the third
//! request or response (and for requests the body offset); the rest is the payload. Mapping may
//! fail but never panics and never allocates beyond the payload's bounds (-rss_limit_mb).
use libfuzzer_sys::fuzz_target;
use sluice::policy::topics::TopicMap;
use sluice::policy::NameMatch;
use sluice::protocol::topics::{offered_versions, rewrite_request, rewrite_response};

const KEYS: [i16; 11] = [0, 1, 2, 3, 8, 9, 19, 20, 23, 32, 75];

fuzz_target!(|data: &[u8]| {
    let [k, v, mode, payload @ ..] = data else {
        return;
    };
    let api_key = KEYS[*k as usize % KEYS.len()];
    let Some(range) = offered_versions(api_key) else {
        return;
    };
    let span = (*range.end() - *range.start() + 1) as u8;
    let version = *range.start() + (*v % span) as i16;
    let map = TopicMap::new(
        vec![NameMatch::Prefix("secret".into())],
        &[("a".into(), "upstream-a".into())],
    );
    if mode & 1 == 0 {
        let body = (*mode >> 1) as usize % (payload.len() + 1);
        let _ = rewrite_request(api_key, version, payload, body, &map);
    } else {
        let _ = rewrite_response(
            api_key,
            version,
            &bytes::Bytes::copy_from_slice(payload),
            &map,
        );
    }
});
