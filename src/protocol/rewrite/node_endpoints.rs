//! KIP-951 leader discovery: Produce responses v10+ and Fetch responses v16+ carry
//! `node_endpoints` (the addresses of new partition leaders) as **top-level tagged field 0**, so it
//! sits in the top-level tagged-field section at the very end of the response body.
//!
//! Finding that section needs a walk over the whole body, but not a copy of it: [`scan`] steps over
//! every field using the layouts below (taken from kafka-protocol's generated
//! `produce_response.rs` / `fetch_response.rs`, i.e. Kafka's `ProduceResponse.json` /
//! `FetchResponse.json`), skips record batches (`records` is a length-prefixed blob) and nested
//! tagged fields (`current_leader`, `diverging_epoch`, `snapshot_id`, ... are size-prefixed) in
//! O(1) each, and returns the offset of the top-level tagged-field section and whether it holds
//! tag 0. No allocation, nothing copied.
//!
//! The same Produce walk finds `throttle_time_ms` ([`produce_throttle_offset`]): it follows the
//! `responses` array, and in v9+ the tagged-field section (where `node_endpoints` sits) follows it,
//! so its place cannot be derived from the end of the frame.
//!
//! The common case, no tag 0, is [`Rewritten::Unchanged`]. Otherwise only the tail (the tagged
//! section) is decoded and re-encoded, with the endpoints mapped through the [`AddressMap`]
//! (unmapped nodes dropped; the tag is omitted when none remain, as kafka-protocol does for an
//! empty list), and the result is [`Rewritten::Spliced`]: a zero-copy prefix of the original
//! payload, records untouched, plus the new tail.

use std::ops::RangeInclusive;

use bytes::Bytes;

use super::{AddressMap, Ctx, RewriteError, Rewritten};
use crate::protocol::versions::keys;
use crate::protocol::wire::{
    always, put_compact_str, put_uvarint, since, walk_fields, Cursor, Field, Schema, Struct, Ty,
    WireError, I16, I32, I64, UUID,
};

/// Tag of `node_endpoints` in the top-level tagged-field section (Produce and Fetch).
const NODE_ENDPOINTS_TAG: u32 = 0;

// ---- Produce response v0-v13 (flexible from v9) ----

static PRODUCE_BATCH_ERROR: Struct = Struct {
    fields: &[
        since(8, I32),     // batch_index
        since(8, Ty::Str), // batch_index_error_message
    ],
    tagged: &[],
};

static PRODUCE_PARTITION: Struct = Struct {
    fields: &[
        always(I32),                               // index
        always(I16),                               // error_code
        always(I64),                               // base_offset
        since(2, I64),                             // log_append_time_ms
        since(5, I64),                             // log_start_offset
        since(8, Ty::Array(&PRODUCE_BATCH_ERROR)), // record_errors
        since(8, Ty::Str),                         // error_message
    ], // tagged: current_leader (tag 0, v10+), skipped
    tagged: &[],
};

static PRODUCE_TOPIC: Struct = Struct {
    fields: &[
        Field {
            ty: Ty::Name,
            min: 0,
            max: 12,
        }, // name
        since(13, UUID),                       // topic_id
        always(Ty::Array(&PRODUCE_PARTITION)), // partition_responses
    ],
    tagged: &[],
};

/// The fields of a ProduceResponse body before `throttle_time_ms`; [`produce_fields`] walks the
/// rest: `throttle_time_ms int32` (v1+), then the tagged-field section (v9+; `node_endpoints` is
/// tag 0 from v10).
static PRODUCE_RESPONSES: Struct = Struct {
    fields: &[
        always(Ty::Array(&PRODUCE_TOPIC)), // responses
    ],
    tagged: &[],
};

/// First flexible ProduceResponse version (KIP-482).
const PRODUCE_FLEXIBLE_FROM: i16 = 9;

/// ProduceResponse versions whose layout [`produce_throttle_offset`] knows: Kafka's
/// `ProduceResponse.json` v0-v13 (v0 has no `throttle_time_ms`, v1 adds it, v2 adds
/// `log_append_time_ms`, v5 `log_start_offset`, v8 `record_errors` and `error_message`, v9 is
/// flexible, v10 adds `current_leader` and `node_endpoints` (tagged), v13 names topics by id).
pub const PRODUCE_VERSIONS: RangeInclusive<i16> = 0..=13;

// ---- Fetch response v4-v18 (flexible from v12) ----

static FETCH_ABORTED: Struct = Struct {
    fields: &[always(I64), always(I64)], // producer_id, first_offset
    tagged: &[],
};

static FETCH_PARTITION: Struct = Struct {
    fields: &[
        always(I32),                       // partition_index
        always(I16),                       // error_code
        always(I64),                       // high_watermark
        always(I64),                       // last_stable_offset
        since(5, I64),                     // log_start_offset
        always(Ty::Array(&FETCH_ABORTED)), // aborted_transactions (nullable)
        since(11, I32),                    // preferred_read_replica
        always(Ty::Bytes),                 // records (nullable), skipped without reading
    ], // tagged: diverging_epoch (0), current_leader (1), snapshot_id (2), skipped
    tagged: &[],
};

static FETCH_TOPIC: Struct = Struct {
    fields: &[
        Field {
            ty: Ty::Name,
            min: 0,
            max: 12,
        }, // topic
        since(13, UUID),                     // topic_id
        always(Ty::Array(&FETCH_PARTITION)), // partitions
    ],
    tagged: &[],
};

static FETCH_ROOT: Struct = Struct {
    fields: &[
        always(I32),                     // throttle_time_ms
        since(7, I16),                   // error_code
        since(7, I32),                   // session_id
        always(Ty::Array(&FETCH_TOPIC)), // responses
    ], // tagged: node_endpoints (tag 0, v16+)
    tagged: &[],
};

/// Body layout of FetchResponse v4-v18, for the scanner.
pub(crate) static FETCH: Schema = Schema {
    root: &FETCH_ROOT,
    flexible_from: 12,
};

/// Where the top-level tagged-field section of a Produce/Fetch response body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// offset of the top-level tagged-field section, relative to the slice given to [`scan`]
    pub tagged_start: usize,
    /// whether the section holds tag 0 (`node_endpoints`)
    pub has_node_endpoints: bool,
    /// Produce: offset of `throttle_time_ms` in the payload, found on the way (`None` for Fetch,
    /// whose field is first in the body)
    pub throttle_at: Option<usize>,
}

/// Walks a Produce (`api_key` 0, v9+) or Fetch (1, v12+) response to its top-level tagged-field
/// section, starting at `body_offset` of `payload`. No allocation; records are skipped, not read.
///
/// Returns `Ok(None)` for versions without a top-level tagged-field section (not flexible) and for
/// other api keys. Errors: [`WireError`] with the offset where the body is truncated or malformed.
pub fn scan(
    api_key: i16,
    api_version: i16,
    payload: &[u8],
    body_offset: usize,
) -> Result<Option<Scan>, WireError> {
    let mut c = Cursor::at(payload, body_offset);
    let throttle_at = match api_key {
        keys::PRODUCE if api_version >= PRODUCE_FLEXIBLE_FROM => {
            produce_fields(&mut c, api_version)?
        }
        keys::FETCH if api_version >= FETCH.flexible_from => {
            walk_fields(&mut c, FETCH.root, api_version, true)?;
            None
        }
        _ => return Ok(None),
    };
    let tagged_start = c.pos();
    let n = c.tag_count()?;
    let mut has_node_endpoints = false;
    for _ in 0..n {
        let tag = c.tag()?;
        let size = c.uvarint()?;
        c.skip(size as usize)?;
        has_node_endpoints |= tag == NODE_ENDPOINTS_TAG;
    }
    Ok(Some(Scan {
        tagged_start,
        has_node_endpoints,
        throttle_at,
    }))
}

/// Walks the fields of a ProduceResponse body of version `v` (all but its top-level tagged-field
/// section), from the cursor's position: `responses`, then `throttle_time_ms` (v1+). Returns the
/// offset of `throttle_time_ms`, `None` in v0, which has none.
fn produce_fields(c: &mut Cursor<'_>, v: i16) -> Result<Option<usize>, WireError> {
    walk_fields(c, &PRODUCE_RESPONSES, v, v >= PRODUCE_FLEXIBLE_FROM)?;
    if v < 1 {
        return Ok(None);
    }
    let at = c.pos();
    c.skip(4)?; // throttle_time_ms int32
    Ok(Some(at))
}

/// Offset within `payload` of `throttle_time_ms` (int32, milliseconds, KIP-219) of a Produce
/// response of version `api_version` whose body starts at `body_offset`. The field follows the
/// `responses` array (Kafka protocol guide, Produce API), which is walked (no allocation; Produce
/// responses carry no records); in v9+ the top-level tagged-field section follows it, holding
/// KIP-951 `node_endpoints` (tag 0, v10+) when leaders moved; it is stepped over too, so a body
/// that is truncated, or whose lengths and counts do not add up, gives an error rather than an
/// offset.
///
/// Returns `Ok(None)` for v0 (no throttle time) and for versions outside [`PRODUCE_VERSIONS`].
/// Errors: [`WireError`] with the offset where the body is truncated or malformed.
pub fn produce_throttle_offset(
    api_version: i16,
    payload: &[u8],
    body_offset: usize,
) -> Result<Option<usize>, WireError> {
    if !PRODUCE_VERSIONS.contains(&api_version) {
        return Ok(None);
    }
    let mut c = Cursor::at(payload, body_offset);
    let at = produce_fields(&mut c, api_version)?;
    if api_version >= PRODUCE_FLEXIBLE_FROM {
        c.skip_tagged()?;
    }
    Ok(at)
}

/// Re-encodes the `node_endpoints` array held in `content` (the value of tag 0) with mapped
/// addresses. Layout of one NodeEndpoint (Produce v10+, Fetch v16+): `node_id int32,
/// host compact string, port int32, rack compact nullable string, tagged fields`. Returns the
/// number of endpoints kept.
fn rewrite_endpoints(
    content: &[u8],
    map: &mut dyn AddressMap,
    out: &mut Vec<u8>,
) -> Result<usize, WireError> {
    let mut c = Cursor::new(content);
    // node_id(4) + host(1) + port(4) + rack(1) + tagged(1)
    let n = c.count(true, 11)?.ok_or(WireError::UnexpectedNull(0))?;
    let mut kept = Vec::with_capacity(n);
    for _ in 0..n {
        let node_id = c.i32()?;
        let host = c.str(true)?;
        let port = c.i32()?;
        let rack = c.opt_str(true)?;
        let tags_start = c.pos();
        c.skip_tagged()?;
        let tags = content
            .get(tags_start..c.pos())
            .ok_or(WireError::Truncated(tags_start))?;
        if let Some((host, port)) = map.map_broker(node_id, host, port) {
            kept.push((node_id, host, port, rack, tags));
        }
    }
    if c.remaining() != 0 {
        return Err(WireError::TaggedFieldSize {
            tag: NODE_ENDPOINTS_TAG,
            at: c.pos(),
        });
    }
    put_uvarint(out, (kept.len() as u32).saturating_add(1));
    for (node_id, host, port, rack, tags) in &kept {
        out.extend_from_slice(&node_id.to_be_bytes());
        put_compact_str(out, Some(host));
        out.extend_from_slice(&port.to_be_bytes());
        put_compact_str(out, *rack);
        out.extend_from_slice(tags);
    }
    Ok(kept.len())
}

/// Re-encodes the top-level tagged-field section starting at `tagged_start`; bytes after it (none
/// in a well-formed response) are kept.
fn rewrite_tail(
    payload: &[u8],
    tagged_start: usize,
    map: &mut dyn AddressMap,
) -> Result<Vec<u8>, WireError> {
    let mut c = Cursor::at(payload, tagged_start);
    let n = c.tag_count()?;
    let mut fields = Vec::with_capacity(payload.len().saturating_sub(tagged_start) + 64);
    let mut count = 0u32;
    for _ in 0..n {
        let tag = c.tag()?;
        let size = c.uvarint()?;
        let content = c.take(size as usize)?;
        if tag == NODE_ENDPOINTS_TAG {
            let mut value = Vec::with_capacity(content.len() + 64);
            if rewrite_endpoints(content, map, &mut value)? == 0 {
                continue;
            }
            put_uvarint(&mut fields, tag);
            put_uvarint(&mut fields, value.len() as u32);
            fields.extend_from_slice(&value);
        } else {
            put_uvarint(&mut fields, tag);
            put_uvarint(&mut fields, size);
            fields.extend_from_slice(content);
        }
        count += 1;
    }
    let rest = payload.get(c.pos()..).unwrap_or(&[]);
    let mut tail = Vec::with_capacity(5 + fields.len() + rest.len());
    put_uvarint(&mut tail, count);
    tail.extend_from_slice(&fields);
    tail.extend_from_slice(rest);
    Ok(tail)
}

pub(super) fn rewrite(
    ctx: &Ctx,
    payload: Bytes,
    body_offset: usize,
    map: &mut dyn AddressMap,
) -> Result<Rewritten, RewriteError> {
    let Some(found) =
        scan(ctx.api_key, ctx.api_version, &payload, body_offset).map_err(|e| ctx.malformed(e))?
    else {
        return Ok(Rewritten::Unchanged);
    };
    if !found.has_node_endpoints {
        return Ok(Rewritten::Unchanged);
    }
    let tail = rewrite_tail(&payload, found.tagged_start, map).map_err(|e| ctx.malformed(e))?;
    Ok(Rewritten::Spliced {
        prefix: payload.slice(..found.tagged_start),
        tail: Bytes::from(tail),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use super::scan;
    use crate::protocol::testing::*;
    use kafka_protocol::messages::{ApiKey, FetchResponse, ProduceResponse};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// The endpoints a rewrite leaves of `eps`: those [`TestMap`] maps, at its address.
    fn mapped(eps: &[Endpoint]) -> Vec<Endpoint> {
        let map = |e: &Endpoint| {
            let (host, port) = TestMap::expect(e.node_id)?;
            Some(Endpoint {
                host,
                port,
                ..e.clone()
            })
        };
        eps.iter().filter_map(map).collect()
    }

    /// Runs the rewrite of `build(eps)` and checks the outcome against kafka-protocol's
    /// `build(mapped(eps))`.
    fn check_fetch(
        v: i16,
        eps: &[Endpoint],
        build: impl Fn(&[Endpoint]) -> FetchResponse,
    ) -> Result<(), TestCaseError> {
        let orig = build(eps);
        let payload = response(ApiKey::Fetch, v, 1234, &orig);
        let off = crate::protocol::header::response_body_offset(&payload, 1, v).unwrap();
        let mut map = TestMap::default();
        let r = rewrite_response(1, v, payload.clone(), &mut map).unwrap();
        if v >= 12 {
            let s = scan(1, v, &payload, off).unwrap().unwrap();
            prop_assert_eq!(s.has_node_endpoints, !orig.node_endpoints.is_empty());
        }
        if v < 16 || orig.node_endpoints.is_empty() {
            prop_assert_eq!(&r, &Rewritten::Unchanged);
            prop_assert!(map.seen.is_empty());
        } else {
            let Rewritten::Spliced { prefix, .. } = &r else {
                return Err(TestCaseError::fail("expected Spliced"));
            };
            // zero-copy prefix
            prop_assert_eq!(prefix.as_ptr(), payload.as_ptr());
        }
        let out = r.into_payload(payload.clone());
        prop_assert!(!contains(&out, UPSTREAM) || v < 16);
        let got: FetchResponse = decode(ApiKey::Fetch, v, &payload, &out);
        prop_assert_eq!(got, build(&mapped(eps)));
        Ok(())
    }

    fn check_produce(
        v: i16,
        eps: &[Endpoint],
        build: impl Fn(&[Endpoint]) -> ProduceResponse,
    ) -> Result<(), TestCaseError> {
        let orig = build(eps);
        let payload = response(ApiKey::Produce, v, 4321, &orig);
        let mut map = TestMap::default();
        let r = rewrite_response(0, v, payload.clone(), &mut map).unwrap();
        if v < 10 || orig.node_endpoints.is_empty() {
            prop_assert_eq!(&r, &Rewritten::Unchanged);
        } else {
            let spliced = matches!(r, Rewritten::Spliced { .. });
            prop_assert!(spliced);
        }
        let out = r.into_payload(payload.clone());
        prop_assert!(!contains(&out, UPSTREAM));
        let got: ProduceResponse = decode(ApiKey::Produce, v, &payload, &out);
        prop_assert_eq!(got, build(&mapped(eps)));
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn fetch_matches_kafka_protocol(
            v in 4i16..=18,
            topics in topics(fetch_part()),
            eps in endpoints(),
            top_tags in tags(1),
            throttle in any::<i32>(),
            error_code in any::<i16>(),
        ) {
            check_fetch(v, &eps, |eps| fetch_response(v, &topics, eps, &top_tags, throttle, error_code))?;
        }

        #[test]
        fn produce_matches_kafka_protocol(
            v in 3i16..=13,
            topics in topics(produce_part()),
            eps in endpoints(),
            top_tags in tags(1),
            throttle in any::<i32>(),
        ) {
            check_produce(v, &eps, |eps| produce_response(v, &topics, eps, &top_tags, throttle))?;
        }

        #[test]
        fn random_bytes_never_panic(v in 9i16..=18, data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut payload = vec![0, 0, 0, 1, 0];
            payload.extend_from_slice(&data);
            let payload = Bytes::from(payload);
            let _ = rewrite_response(0, v.min(13), payload.clone(), &mut TestMap::default());
            let _ = rewrite_response(1, v, payload, &mut TestMap::default());
        }
    }

    #[test]
    fn every_version_with_and_without_endpoints() {
        let ep = |id, rack: bool| Endpoint::new(id, UPSTREAM, 9092, rack.then_some("rack-1"));
        let part = |index| FetchPart {
            index,
            high_watermark: 10,
            log_start_offset: 4,
            aborted: Some(vec![(1, 2)]),
            preferred_read_replica: 2,
            records: Some(Bytes::from_static(&[0xab; 100])),
            diverging: Some((1, 2)),
            leader: Some((3, 4)),
            ..FetchPart::default()
        };
        let topics = vec![("t".to_string(), 0, vec![part(0), part(1)], BTreeMap::new())];
        for v in 4..=18 {
            for eps in [
                vec![],
                vec![ep(1, true), ep(UNMAPPED, false), ep(2, false)],
                vec![ep(UNMAPPED, true)],
            ] {
                let build =
                    |eps: &[Endpoint]| fetch_response(v, &topics, eps, &BTreeMap::new(), 5, 0);
                check_fetch(v, &eps, build).unwrap();
                let payload = response(ApiKey::Fetch, v, 1, &build(&eps));
                truncations_never_panic(1, v, &payload);
            }
        }
        let pp = ProducePart {
            base_offset: 100,
            log_append_time_ms: 7,
            log_start_offset: 3,
            record_errors: vec![(1, Some("x".into()))],
            error_message: Some("m".into()),
            leader: Some((1, 1)),
            ..ProducePart::default()
        };
        let topics = vec![("t".to_string(), 0, vec![pp], BTreeMap::new())];
        for v in 3..=13 {
            for eps in [vec![], vec![ep(1, true), ep(UNMAPPED, false)]] {
                let build =
                    |eps: &[Endpoint]| produce_response(v, &topics, eps, &BTreeMap::new(), 9);
                check_produce(v, &eps, build).unwrap();
                let payload = response(ApiKey::Produce, v, 1, &build(&eps));
                truncations_never_panic(0, v, &payload);
            }
        }
    }

    #[test]
    fn unsupported_versions() {
        let r = rewrite_response(1, 19, Bytes::new(), &mut TestMap::default());
        assert!(matches!(r, Err(RewriteError::UnsupportedVersion { .. })));
        let r = rewrite_response(0, 14, Bytes::new(), &mut TestMap::default());
        assert!(matches!(r, Err(RewriteError::UnsupportedVersion { .. })));
        assert_eq!(
            rewrite_response(1, 15, Bytes::new(), &mut TestMap::default()).unwrap(),
            Rewritten::Unchanged
        );
    }
}
