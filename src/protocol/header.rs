//! Request and response header peeks: the few fields Sluice needs from every frame, read in place
//! without allocating.
//!
//! Layouts (Kafka protocol guide, "Headers"; KIP-482 for the tagged fields):
//! - request header v1: `api_key int16, api_version int16, correlation_id int32,
//!   client_id nullable string (int16 length)`; v2 adds a tagged-field section. `client_id` keeps
//!   its classic encoding in v2, so everything up to and including it sits at the same place in both
//!   versions and can be read for api keys Sluice does not know.
//! - response header v0: `correlation_id int32`; v1 adds a tagged-field section. ApiVersions
//!   responses always use v0 (so that a client can read a response to a version it guessed).
//!
//! All offsets are relative to the **payload**: the frame without its 4-byte size prefix.

use kafka_protocol::messages::ApiKey;

use super::rewrite::node_endpoints::produce_throttle_offset;
use super::wire::{Cursor, WireError};

/// Api key of Produce.
const PRODUCE: i16 = 0;

/// Why a header could not be read. `Copy` and allocation-free: built on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The payload ends inside the header (or inside the field asked for).
    #[error("header truncated: payload ends inside it")]
    Truncated,
    /// The client_id length is below -1.
    #[error("invalid client_id length")]
    InvalidClientId,
    /// The header's tagged-field section is malformed.
    #[error("malformed tagged fields in header")]
    InvalidTaggedFields,
    /// A string field (Produce transactional_id) has an invalid length.
    #[error("invalid string length in request body")]
    InvalidString,
    /// kafka-protocol does not know this api key, so the header version cannot be derived.
    #[error("unknown api key {0}: header version unknown")]
    UnknownApiKey(i16),
    /// The request's body offset is unknown (unknown api key), so the body cannot be read.
    #[error("body offset unknown for api key {0}")]
    BodyOffsetUnknown(i16),
    /// The call does not apply to this api key.
    #[error("expected api key {expected}, got {actual}")]
    WrongApiKey {
        /// api key the function reads
        expected: i16,
        /// api key of the frame
        actual: i16,
    },
    /// The version is outside the range the function can read.
    #[error("api key {api_key} version {api_version} not supported")]
    UnsupportedVersion {
        /// api key
        api_key: i16,
        /// version
        api_version: i16,
    },
}

fn from_wire(e: WireError) -> HeaderError {
    match e {
        WireError::Truncated(_) => HeaderError::Truncated,
        _ => HeaderError::InvalidTaggedFields,
    }
}

/// Peeked request header. Offsets are relative to the PAYLOAD (frame without the 4-byte size
/// prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeaderPeek {
    /// api key (Kafka protocol guide, "Api Keys")
    pub api_key: i16,
    /// api version of the request
    pub api_version: i16,
    /// correlation id chosen by the client
    pub correlation_id: i32,
    /// byte range `(start, end)` of client_id within the payload (None when null)
    pub client_id: Option<(usize, usize)>,
    /// offset of the request body within the payload, when the header version is known (known
    /// api key: header v1, or v2 for flexible versions incl. tagged fields); None for api keys
    /// kafka-protocol does not know.
    pub body_offset: Option<usize>,
}

impl RequestHeaderPeek {
    /// The client_id bytes, borrowed from `payload` (the same payload that was peeked).
    pub fn client_id<'a>(&self, payload: &'a [u8]) -> Option<&'a [u8]> {
        self.client_id.and_then(|(s, e)| payload.get(s..e))
    }
}

/// Reads the request header at the start of `payload` (frame without size prefix). No allocation.
///
/// Works for unknown api keys (then `body_offset` is `None`): api_key, api_version,
/// correlation_id and client_id are at the same place in header v1 and v2.
///
/// Errors: [`HeaderError::Truncated`] when the payload ends inside the header,
/// [`HeaderError::InvalidClientId`] for a client_id length below -1,
/// [`HeaderError::InvalidTaggedFields`] for a malformed v2 tagged-field section.
pub fn peek_request_header(payload: &[u8]) -> Result<RequestHeaderPeek, HeaderError> {
    let mut c = Cursor::new(payload);
    let api_key = c.i16().map_err(from_wire)?;
    let api_version = c.i16().map_err(from_wire)?;
    let correlation_id = c.i32().map_err(from_wire)?;
    let len = c.i16().map_err(from_wire)?;
    let client_id = match len {
        -1 => None,
        n if n >= 0 => {
            let start = c.pos();
            c.skip(n as usize).map_err(from_wire)?;
            Some((start, c.pos()))
        }
        _ => return Err(HeaderError::InvalidClientId),
    };
    // The header version (and so where the body starts) is only known for versions kafka-protocol
    // knows; a newer version of a known key is forwarded opaque like an unknown key.
    let body_offset = match ApiKey::try_from(api_key) {
        Ok(key) if (key.valid_versions().min..=key.valid_versions().max).contains(&api_version) => {
            if key.request_header_version(api_version) >= 2 {
                c.skip_tagged().map_err(from_wire)?;
            }
            Some(c.pos())
        }
        _ => None,
    };
    Ok(RequestHeaderPeek {
        api_key,
        api_version,
        correlation_id,
        client_id,
        body_offset,
    })
}

/// The correlation id of a response payload (its first four bytes; response header v0 and v1).
///
/// Errors: [`HeaderError::Truncated`] when the payload is shorter than 4 bytes.
pub fn response_correlation_id(payload: &[u8]) -> Result<i32, HeaderError> {
    Cursor::new(payload).i32().map_err(from_wire)
}

/// `acks` of a Produce request, reading only the bytes before it: v3+ bodies start with a
/// nullable `transactional_id` (compact string from v9, KIP-482) followed by `acks int16`.
/// `acks == 0` means the broker sends no response (Kafka protocol guide, Produce API).
///
/// Errors: [`HeaderError::WrongApiKey`] when `peek` is not a Produce request,
/// [`HeaderError::UnsupportedVersion`] below v3, [`HeaderError::Truncated`] /
/// [`HeaderError::InvalidString`] for a short or malformed body.
pub fn produce_acks(payload: &[u8], peek: &RequestHeaderPeek) -> Result<i16, HeaderError> {
    if peek.api_key != PRODUCE {
        return Err(HeaderError::WrongApiKey {
            expected: PRODUCE,
            actual: peek.api_key,
        });
    }
    if peek.api_version < 3 {
        return Err(HeaderError::UnsupportedVersion {
            api_key: peek.api_key,
            api_version: peek.api_version,
        });
    }
    let at = peek
        .body_offset
        .ok_or(HeaderError::BodyOffsetUnknown(peek.api_key))?;
    let mut c = Cursor::at(payload, at);
    c.string(peek.api_version >= 9).map_err(|e| match e {
        WireError::Truncated(_) => HeaderError::Truncated,
        _ => HeaderError::InvalidString,
    })?;
    c.i16().map_err(from_wire)
}

/// Offset of the response body within a response `payload`, given the api key and version of the
/// request it answers: response header v0 is the 4-byte correlation id, v1 adds a tagged-field
/// section, ApiVersions always uses v0.
///
/// Errors: [`HeaderError::UnknownApiKey`] for api keys kafka-protocol does not know,
/// [`HeaderError::Truncated`] / [`HeaderError::InvalidTaggedFields`] for a short or malformed header.
pub fn response_body_offset(
    payload: &[u8],
    api_key: i16,
    api_version: i16,
) -> Result<usize, HeaderError> {
    let key = ApiKey::try_from(api_key).map_err(|_| HeaderError::UnknownApiKey(api_key))?;
    let mut c = Cursor::new(payload);
    c.skip(4).map_err(from_wire)?;
    if key.response_header_version(api_version) >= 1 {
        c.skip_tagged().map_err(from_wire)?;
    }
    Ok(c.pos())
}

/// The first version of the response of `api_key` whose body starts with `throttle_time_ms`
/// (KIP-219 put it first in most responses), for the api keys clients send. From the message
/// definitions (`clients/src/main/resources/common/message/*Response.json`, `"versions"` of
/// `ThrottleTimeMs`). ApiVersions (after its api key list), the SASL responses (none) and
/// Produce (after its `responses` array, see [`throttle_time_offset`]) are not here.
pub fn throttle_first_since(api_key: i16) -> Option<i16> {
    Some(match api_key {
        1 => 1,                                // Fetch
        2 => 2,                                // ListOffsets
        3 => 3,                                // Metadata
        8 | 9 => 3,                            // OffsetCommit, OffsetFetch
        10 | 12..=14 | 16 => 1, // FindCoordinator, Heartbeat, LeaveGroup, SyncGroup, ListGroups
        11 => 2,                // JoinGroup
        15 => 1,                // DescribeGroups
        19 => 2,                // CreateTopics
        20 => 1,                // DeleteTopics
        23 => 2,                // OffsetForLeaderEpoch
        21 | 22 | 24..=26 | 28..=33 => 0, // DeleteRecords, InitProducerId, transactions, ACLs, configs
        35 | 37 | 42 | 44 | 60 | 61 => 0, // DescribeLogDirs, CreatePartitions, DeleteGroups, IncrementalAlterConfigs, DescribeCluster, DescribeProducers
        65 | 66 | 68 | 69 | 71 | 72 | 75 => 0, // DescribeTransactions, ListTransactions, ConsumerGroupHeartbeat/Describe, telemetry, DescribeTopicPartitions
        _ => return None,
    })
}

/// Where `throttle_time_ms` (int32, milliseconds; KIP-219) sits in a response `payload` whose
/// body starts at `body`:
/// - first in the body for the api keys and versions of [`throttle_first_since`] (Fetch v1+ among
///   them): O(1);
/// - in Produce v1+, after the `responses` array and, in v9+, before the top-level tagged-field
///   section, which from v10 may hold KIP-951 `node_endpoints` (Kafka protocol guide, Produce API;
///   `ProduceResponse.json`). Found by walking the body without allocating
///   ([`produce_throttle_offset`]); `None` when the body is truncated or malformed, for v0 (no
///   throttle time) and for versions whose layout is unknown.
///
/// `None` for other api keys and older versions. A returned offset always leaves the 4 bytes of
/// the field inside the body.
pub fn throttle_time_offset(
    payload: &[u8],
    api_key: i16,
    api_version: i16,
    body: usize,
) -> Option<usize> {
    let at = match api_key {
        PRODUCE => produce_throttle_offset(api_version, payload, body).ok()??,
        k if throttle_first_since(k).is_some_and(|since| api_version >= since) => body,
        _ => return None,
    };
    (at >= body && at.checked_add(4)? <= payload.len()).then_some(at)
}

/// The int32 at `at` in `payload`, if its 4 bytes are there.
fn i32_at(payload: &[u8], at: usize) -> Option<i32> {
    let b = payload.get(at..at.checked_add(4)?)?;
    Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// `throttle_time_ms` of a response, in milliseconds (see [`throttle_time_offset`] for where it is
/// found); `None` where it is not found or is negative.
pub fn response_throttle_time_ms(
    payload: &[u8],
    api_key: i16,
    api_version: i16,
    body: usize,
) -> Option<i32> {
    throttle_time_at(
        payload,
        throttle_time_offset(payload, api_key, api_version, body)?,
    )
}

/// `throttle_time_ms` at offset `at` of `payload` (found by [`throttle_time_offset`] or by a walk
/// that passed it), in milliseconds; `None` where its bytes are missing or it is negative.
pub fn throttle_time_at(payload: &[u8], at: usize) -> Option<i32> {
    i32_at(payload, at).filter(|ms| *ms >= 0)
}

/// Raises `throttle_time_ms` of a response (see [`throttle_time_offset`]) to at least `ms`
/// milliseconds, in place: only the field's 4 bytes are written (it has a fixed size, so the frame
/// keeps its length); a negative value in the response counts as 0. Returns false, changing
/// nothing, where the field is not found (including a truncated or malformed Produce response).
pub fn raise_throttle_time_ms(
    payload: &mut [u8],
    api_key: i16,
    api_version: i16,
    body: usize,
    ms: i32,
) -> bool {
    match throttle_time_offset(payload, api_key, api_version, body) {
        Some(at) => raise_throttle_time_at(payload, at, ms),
        None => false,
    }
}

/// As [`raise_throttle_time_ms`], for the field at offset `at` (see [`throttle_time_at`]).
pub fn raise_throttle_time_at(payload: &mut [u8], at: usize, ms: i32) -> bool {
    let Some(field) = at.checked_add(4).and_then(|end| payload.get_mut(at..end)) else {
        return false;
    };
    let current = i32::from_be_bytes([field[0], field[1], field[2], field[3]]);
    field.copy_from_slice(&current.max(0).max(ms).to_be_bytes());
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::{ProduceRequest, RequestHeader};
    use kafka_protocol::protocol::{Encodable, Message, StrBytes};
    use proptest::prelude::*;

    fn encode_header(h: &RequestHeader) -> BytesMut {
        let mut b = BytesMut::new();
        kafka_protocol::protocol::encode_request_header_into_buffer(&mut b, h).unwrap();
        b
    }

    proptest! {
        #[test]
        fn peek_matches_kafka_protocol(
            key_idx in any::<prop::sample::Index>(),
            ver in any::<prop::sample::Index>(),
            corr in any::<i32>(),
            client_id in proptest::option::of("[a-z0-9-]{0,20}"),
            tags in proptest::collection::btree_map(0i32..50, proptest::collection::vec(any::<u8>(), 0..8), 0..3),
            body in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            let keys: Vec<ApiKey> = ApiKey::iter().collect();
            let key = *key_idx.get(&keys);
            let range = key.valid_versions();
            let version = range.min + ver.index((range.max - range.min + 1) as usize) as i16;
            let flexible = key.request_header_version(version) >= 2;
            let mut h = RequestHeader::default()
                .with_request_api_key(key as i16)
                .with_request_api_version(version)
                .with_correlation_id(corr)
                .with_client_id(client_id.clone().map(StrBytes::from_string));
            if flexible {
                h = h.with_unknown_tagged_fields(tags.into_iter().map(|(k, v)| (k, Bytes::from(v))).collect());
            }
            let mut wire = encode_header(&h);
            let header_len = wire.len();
            wire.extend_from_slice(&body);
            let peek = peek_request_header(&wire).unwrap();
            prop_assert_eq!(peek.api_key, key as i16);
            prop_assert_eq!(peek.api_version, version);
            prop_assert_eq!(peek.correlation_id, corr);
            prop_assert_eq!(peek.client_id(&wire), client_id.as_deref().map(str::as_bytes));
            prop_assert_eq!(peek.body_offset, Some(header_len));
            let decoded = kafka_protocol::protocol::decode_request_header_from_buffer(&mut wire.clone()).unwrap();
            prop_assert_eq!(decoded, h);
            // every truncation of the header is an error, never a panic
            for cut in 0..header_len {
                prop_assert!(peek_request_header(&wire[..cut]).is_err());
            }
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = peek_request_header(&data);
            let _ = response_correlation_id(&data);
            for key in [0i16, 1, 3, 18, 10000] {
                let _ = response_body_offset(&data, key, 12);
            }
            if let Ok(p) = peek_request_header(&data) {
                let _ = produce_acks(&data, &p);
            }
        }
    }

    #[test]
    fn unknown_api_key() {
        let mut wire = vec![0x7f, 0x00, 0, 3, 0, 0, 0, 42, 0, 2, b'a', b'b', 9, 9];
        let p = peek_request_header(&wire).unwrap();
        assert_eq!(p.api_key, 0x7f00);
        assert_eq!(p.api_version, 3);
        assert_eq!(p.correlation_id, 42);
        assert_eq!(p.client_id, Some((10, 12)));
        assert_eq!(p.body_offset, None);
        wire[8] = 0xff;
        wire[9] = 0xff;
        assert_eq!(peek_request_header(&wire).unwrap().client_id, None);
        wire[9] = 0xfe;
        assert_eq!(
            peek_request_header(&wire),
            Err(HeaderError::InvalidClientId)
        );
        assert_eq!(
            response_body_offset(&wire, 0x7f00, 0),
            Err(HeaderError::UnknownApiKey(0x7f00))
        );
    }

    #[test]
    fn produce_acks_all_versions() {
        for version in ProduceRequest::VERSIONS.min..=ProduceRequest::VERSIONS.max {
            for txn in [None, Some("txn-1")] {
                for acks in [-1i16, 0, 1] {
                    let h = RequestHeader::default()
                        .with_request_api_key(0)
                        .with_request_api_version(version)
                        .with_correlation_id(7)
                        .with_client_id(Some(StrBytes::from_static_str("c")));
                    let mut wire = encode_header(&h);
                    let req = ProduceRequest::default()
                        .with_transactional_id(txn.map(|t| StrBytes::from_static_str(t).into()))
                        .with_acks(acks)
                        .with_timeout_ms(1000);
                    req.encode(&mut wire, version).unwrap();
                    let peek = peek_request_header(&wire).unwrap();
                    assert_eq!(produce_acks(&wire, &peek), Ok(acks), "v{version} {txn:?}");
                    // truncated body
                    let short = &wire[..peek.body_offset.unwrap() + 1];
                    assert!(produce_acks(short, &peek).is_err());
                }
            }
        }
    }

    #[test]
    fn produce_acks_rejects_other_keys() {
        let wire = [0, 1, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0];
        let peek = peek_request_header(&wire).unwrap();
        assert_eq!(
            produce_acks(&wire, &peek),
            Err(HeaderError::WrongApiKey {
                expected: 0,
                actual: 1
            })
        );
    }

    #[test]
    fn response_offsets() {
        // header v0 (ApiVersions v3, flexible but header v0)
        let wire = [0, 0, 0, 9, 0, 0];
        assert_eq!(response_correlation_id(&wire), Ok(9));
        assert_eq!(response_body_offset(&wire, 18, 3), Ok(4));
        // header v1: Metadata v9 with one tagged field (tag 1, 2 bytes)
        let wire = [0, 0, 0, 9, 1, 1, 2, 0xaa, 0xbb, 0x55];
        assert_eq!(response_body_offset(&wire, 3, 9), Ok(9));
        assert_eq!(response_body_offset(&wire, 3, 8), Ok(4));
        assert_eq!(
            response_body_offset(&wire[..8], 3, 9),
            Err(HeaderError::Truncated)
        );
        assert_eq!(
            response_correlation_id(&wire[..3]),
            Err(HeaderError::Truncated)
        );
    }

    fn encoded_response<M: Encodable>(api_key: i16, version: i16, msg: &M) -> Vec<u8> {
        use kafka_protocol::messages::ResponseHeader;
        let key = ApiKey::try_from(api_key).unwrap();
        let hv = key.response_header_version(version);
        let mut h = ResponseHeader::default().with_correlation_id(5);
        if hv >= 1 {
            h = h.with_unknown_tagged_field(3, Bytes::from_static(b"hdr"));
        }
        let mut b = BytesMut::new();
        h.encode(&mut b, hv).unwrap();
        msg.encode(&mut b, version)
            .unwrap_or_else(|e| panic!("key {api_key} v{version}: {e}"));
        b.to_vec()
    }

    #[test]
    fn throttle_time_of_produce_and_fetch_responses() {
        use kafka_protocol::messages::{FetchResponse, ProduceResponse};
        for v in 3..=13 {
            let p = encoded_response(
                0,
                v,
                &ProduceResponse::default().with_throttle_time_ms(1234),
            );
            let body = response_body_offset(&p, 0, v).unwrap();
            assert_eq!(
                response_throttle_time_ms(&p, 0, v, body),
                Some(1234),
                "produce v{v}"
            );
        }
        for v in 4..=17 {
            let p = encoded_response(1, v, &FetchResponse::default().with_throttle_time_ms(77));
            let body = response_body_offset(&p, 1, v).unwrap();
            assert_eq!(
                response_throttle_time_ms(&p, 1, v, body),
                Some(77),
                "fetch v{v}"
            );
        }
        assert_eq!(
            response_throttle_time_ms(&[0, 0, 0, 1, 0, 0, 0, 9], 0, 0, 4),
            None
        );
        assert_eq!(response_throttle_time_ms(&[0, 0, 0, 1], 1, 4, 4), None);
        // SaslHandshake has no throttle_time_ms; Metadata v2 not yet.
        assert_eq!(
            response_throttle_time_ms(&[0, 0, 0, 1, 0, 0, 0, 9], 17, 1, 4),
            None
        );
        assert_eq!(
            response_throttle_time_ms(&[0, 0, 0, 1, 0, 0, 0, 9], 3, 2, 4),
            None
        );
        // Raised in place, never lowered.
        for (key, v) in [(0i16, 8i16), (0, 11), (1, 12)] {
            let mut p = if key == 0 {
                encoded_response(0, v, &ProduceResponse::default().with_throttle_time_ms(50))
            } else {
                encoded_response(1, v, &FetchResponse::default().with_throttle_time_ms(50))
            };
            let body = response_body_offset(&p, key, v).unwrap();
            assert!(raise_throttle_time_ms(&mut p, key, v, body, 700));
            assert_eq!(response_throttle_time_ms(&p, key, v, body), Some(700));
            assert!(raise_throttle_time_ms(&mut p, key, v, body, 10));
            assert_eq!(response_throttle_time_ms(&p, key, v, body), Some(700));
        }
    }

    /// Every response listed in [`throttle_first_since`] that a request quota raises, in every
    /// version kafka-protocol encodes from that version on: the field is found where the
    /// encoder put it.
    #[test]
    fn throttle_time_first_in_the_body_matches_kafka_protocol() {
        use kafka_protocol::messages::*;
        fn check<M: Encodable + Default>(api_key: i16, with: impl Fn(M) -> M) {
            let key = ApiKey::try_from(api_key).unwrap();
            let range = key.valid_versions();
            let since = throttle_first_since(api_key).unwrap();
            for v in range.min.max(since)..=range.max {
                let p = encoded_response(api_key, v, &with(M::default()));
                let body = response_body_offset(&p, api_key, v).unwrap();
                assert_eq!(
                    response_throttle_time_ms(&p, api_key, v, body),
                    Some(4321),
                    "{key:?} v{v}"
                );
            }
        }
        check::<MetadataResponse>(3, |m| m.with_throttle_time_ms(4321));
        check::<ListOffsetsResponse>(2, |m| m.with_throttle_time_ms(4321));
        check::<OffsetCommitResponse>(8, |m| m.with_throttle_time_ms(4321));
        check::<OffsetFetchResponse>(9, |m| m.with_throttle_time_ms(4321));
        check::<FindCoordinatorResponse>(10, |m| m.with_throttle_time_ms(4321));
        check::<JoinGroupResponse>(11, |m| m.with_throttle_time_ms(4321));
        check::<HeartbeatResponse>(12, |m| m.with_throttle_time_ms(4321));
        check::<LeaveGroupResponse>(13, |m| m.with_throttle_time_ms(4321));
        check::<SyncGroupResponse>(14, |m| m.with_throttle_time_ms(4321));
        check::<DescribeGroupsResponse>(15, |m| m.with_throttle_time_ms(4321));
        check::<ListGroupsResponse>(16, |m| m.with_throttle_time_ms(4321));
        check::<CreateTopicsResponse>(19, |m| m.with_throttle_time_ms(4321));
        check::<DeleteTopicsResponse>(20, |m| m.with_throttle_time_ms(4321));
        check::<DeleteRecordsResponse>(21, |m| m.with_throttle_time_ms(4321));
        check::<InitProducerIdResponse>(22, |m| m.with_throttle_time_ms(4321));
        check::<OffsetForLeaderEpochResponse>(23, |m| m.with_throttle_time_ms(4321));
        check::<AddPartitionsToTxnResponse>(24, |m| m.with_throttle_time_ms(4321));
        check::<AddOffsetsToTxnResponse>(25, |m| m.with_throttle_time_ms(4321));
        check::<EndTxnResponse>(26, |m| m.with_throttle_time_ms(4321));
        check::<TxnOffsetCommitResponse>(28, |m| m.with_throttle_time_ms(4321));
        check::<DescribeAclsResponse>(29, |m| m.with_throttle_time_ms(4321));
        check::<CreateAclsResponse>(30, |m| m.with_throttle_time_ms(4321));
        check::<DeleteAclsResponse>(31, |m| m.with_throttle_time_ms(4321));
        check::<DescribeConfigsResponse>(32, |m| m.with_throttle_time_ms(4321));
        check::<AlterConfigsResponse>(33, |m| m.with_throttle_time_ms(4321));
        check::<DescribeLogDirsResponse>(35, |m| m.with_throttle_time_ms(4321));
        check::<CreatePartitionsResponse>(37, |m| m.with_throttle_time_ms(4321));
        check::<DeleteGroupsResponse>(42, |m| m.with_throttle_time_ms(4321));
        check::<IncrementalAlterConfigsResponse>(44, |m| m.with_throttle_time_ms(4321));
        check::<DescribeClusterResponse>(60, |m| m.with_throttle_time_ms(4321));
        check::<DescribeProducersResponse>(61, |m| m.with_throttle_time_ms(4321));
        check::<DescribeTransactionsResponse>(65, |m| m.with_throttle_time_ms(4321));
        check::<ListTransactionsResponse>(66, |m| m.with_throttle_time_ms(4321));
        check::<ConsumerGroupHeartbeatResponse>(68, |m| m.with_throttle_time_ms(4321));
        check::<ConsumerGroupDescribeResponse>(69, |m| m.with_throttle_time_ms(4321));
        check::<GetTelemetrySubscriptionsResponse>(71, |m| m.with_throttle_time_ms(4321));
        check::<PushTelemetryResponse>(72, |m| m.with_throttle_time_ms(4321));
        check::<DescribeTopicPartitionsResponse>(75, |m| m.with_throttle_time_ms(4321));
    }

    // ---- throttle_time_ms of Produce and Fetch responses, against kafka-protocol ----

    use crate::protocol::testing::*;
    use kafka_protocol::messages::{FetchResponse, ProduceResponse, TopicName};
    use kafka_protocol::protocol::Decodable;
    use std::collections::BTreeMap;

    /// `msg` encoded as a response of `api_key` version `v` (header tagged fields set where the
    /// header is v1): `response_throttle_time_ms` reads the encoded value; `raise_throttle_time_ms`
    /// to `raise` gives exactly kafka-protocol's encoding of `set(msg, max(throttle, raise))`, so
    /// every other byte (node endpoints, partitions, tagged fields) is unchanged, and it decodes
    /// back to that message.
    fn check_throttle<M>(
        api_key: i16,
        v: i16,
        msg: &M,
        throttle: i32,
        raise: i32,
        set: impl Fn(M, i32) -> M,
    ) -> Result<(), TestCaseError>
    where
        M: Encodable + Decodable + Clone + PartialEq + std::fmt::Debug,
    {
        let mut p = encoded_response(api_key, v, msg);
        let body = response_body_offset(&p, api_key, v).unwrap();
        prop_assert_eq!(
            response_throttle_time_ms(&p, api_key, v, body),
            Some(throttle),
            "read: api key {} v{}",
            api_key,
            v
        );
        let raised = throttle.max(raise);
        let want = set(msg.clone(), raised);
        prop_assert!(raise_throttle_time_ms(&mut p, api_key, v, body, raise));
        prop_assert_eq!(
            &p,
            &encoded_response(api_key, v, &want),
            "raise: api key {} v{}",
            api_key,
            v
        );
        let mut b = Bytes::copy_from_slice(&p[body..]);
        prop_assert_eq!(M::decode(&mut b, v).unwrap(), want);
        prop_assert_eq!(
            response_throttle_time_ms(&p, api_key, v, body),
            Some(raised)
        );
        Ok(())
    }

    /// Every strict prefix of a Produce response is malformed: no throttle time is read, and
    /// raising it changes nothing.
    fn check_truncations(v: i16, msg: &ProduceResponse) -> Result<(), TestCaseError> {
        let p = encoded_response(0, v, msg);
        let body = response_body_offset(&p, 0, v).unwrap();
        for cut in 0..p.len() {
            let mut short = p[..cut].to_vec();
            prop_assert_eq!(
                response_throttle_time_ms(&short, 0, v, body),
                None,
                "v{} cut at {} of {}",
                v,
                cut,
                p.len()
            );
            prop_assert!(!raise_throttle_time_ms(&mut short, 0, v, body, i32::MAX));
            prop_assert_eq!(&short[..], &p[..cut]);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Produce responses of every version kafka-protocol encodes (v3-v13), each generated
        /// case with its node endpoints (v10+) and without.
        #[test]
        fn produce_throttle_time_matches_kafka_protocol(
            topics in topics(produce_part()),
            eps in endpoints(),
            top_tags in tags(1),
            throttle in 0..=i32::MAX,
            raise in 0..=i32::MAX,
        ) {
            for v in ProduceResponse::VERSIONS.min..=ProduceResponse::VERSIONS.max {
                for eps in [&eps[..], &[]] {
                    let msg = produce_response(v, &topics, eps, &top_tags, throttle);
                    check_throttle(0, v, &msg, throttle, raise, |m, t| m.with_throttle_time_ms(t))?;
                }
            }
        }

        #[test]
        fn produce_throttle_time_of_truncated_response_is_none(
            topics in topics(produce_part()),
            eps in endpoints(),
            top_tags in tags(1),
            throttle in 0..=i32::MAX,
        ) {
            for v in ProduceResponse::VERSIONS.min..=ProduceResponse::VERSIONS.max {
                check_truncations(v, &produce_response(v, &topics, &eps, &top_tags, throttle))?;
            }
        }

        /// Fetch responses of every version kafka-protocol encodes and Sluice decodes (v4-v18),
        /// each generated case with its node endpoints (v16+) and without.
        #[test]
        fn fetch_throttle_time_matches_kafka_protocol(
            topics in topics(fetch_part()),
            eps in endpoints(),
            top_tags in tags(1),
            throttle in 0..=i32::MAX,
            raise in 0..=i32::MAX,
            error_code in any::<i16>(),
        ) {
            let sluice = crate::protocol::versions::decodable_versions(1).unwrap();
            for v in FetchResponse::VERSIONS.min..=FetchResponse::VERSIONS.max {
                if !sluice.contains(&v) {
                    continue;
                }
                for eps in [&eps[..], &[]] {
                    let msg = fetch_response(v, &topics, eps, &top_tags, throttle, error_code);
                    check_throttle(1, v, &msg, throttle, raise, |m, t| m.with_throttle_time_ms(t))?;
                }
            }
        }
    }

    /// Every Produce version with node endpoints absent, rack null and rack set (v10+), with and
    /// without `current_leader`, raised above and below the broker's value.
    #[test]
    fn produce_throttle_time_every_version_endpoints_and_leader() {
        let ep = |rack| Endpoint::new(2, "broker-2.example", 9093, rack);
        let mut all = vec![];
        for v in ProduceResponse::VERSIONS.min..=ProduceResponse::VERSIONS.max {
            for eps in [
                vec![],
                vec![ep(None)],
                vec![ep(Some("rack-a"))],
                vec![ep(Some("r")), ep(None)],
            ] {
                for leader in [None, Some((2, 7))] {
                    let part = ProducePart {
                        error_code: 6,
                        base_offset: 100,
                        log_append_time_ms: -1,
                        leader,
                        ..ProducePart::default()
                    };
                    let topics = vec![("t".to_string(), 1, vec![part], BTreeMap::new())];
                    let msg = produce_response(v, &topics, &eps, &BTreeMap::new(), 30);
                    for raise in [10, 5000, i32::MAX] {
                        check_throttle(0, v, &msg, 30, raise, |m, t| m.with_throttle_time_ms(t))
                            .unwrap_or_else(|e| panic!("v{v} {eps:?} {leader:?}: {e}"));
                    }
                    all.push((v, msg));
                }
            }
        }
        for (v, msg) in &all {
            check_truncations(*v, msg).unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }

    /// A Produce response body of v0-v2 (kafka-protocol encodes v3+), built by hand from Kafka's
    /// `ProduceResponse.json`: `[name, [index, error_code, base_offset, log_append_time_ms (v2+)]],
    /// throttle_time_ms (v1+)`.
    fn classic_produce_body(v: i16, throttle: i32) -> Vec<u8> {
        let mut b = vec![];
        b.extend_from_slice(&1i32.to_be_bytes()); // one topic
        b.extend_from_slice(&2i16.to_be_bytes());
        b.extend_from_slice(b"tp");
        b.extend_from_slice(&2i32.to_be_bytes()); // two partitions
        for i in 0..2i32 {
            b.extend_from_slice(&i.to_be_bytes());
            b.extend_from_slice(&0i16.to_be_bytes());
            b.extend_from_slice(&(100 + i64::from(i)).to_be_bytes());
            if v >= 2 {
                b.extend_from_slice(&(-1i64).to_be_bytes());
            }
        }
        if v >= 1 {
            b.extend_from_slice(&throttle.to_be_bytes());
        }
        b
    }

    #[test]
    fn produce_throttle_time_of_versions_0_to_2() {
        use kafka_protocol::messages::produce_response::{
            PartitionProduceResponse, TopicProduceResponse,
        };
        // v2 has v3's layout: the hand-built body is kafka-protocol's v3 encoding.
        let v3 = ProduceResponse::default()
            .with_responses(vec![TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_static_str("tp")))
                .with_partition_responses(
                    (0..2)
                        .map(|i| {
                            PartitionProduceResponse::default()
                                .with_index(i)
                                .with_base_offset(100 + i64::from(i))
                        })
                        .collect(),
                )])
            .with_throttle_time_ms(40);
        let mut enc = BytesMut::new();
        v3.encode(&mut enc, 3).unwrap();
        assert_eq!(&enc[..], &classic_produce_body(2, 40)[..]);

        for v in 0..=2 {
            let mut p = vec![0, 0, 0, 5];
            p.extend_from_slice(&classic_produce_body(v, 40));
            let body = response_body_offset(&p, 0, v).unwrap();
            assert_eq!(body, 4);
            let orig = p.clone();
            if v == 0 {
                assert_eq!(throttle_time_offset(&p, 0, v, body), None);
                assert_eq!(response_throttle_time_ms(&p, 0, v, body), None);
                assert!(!raise_throttle_time_ms(&mut p, 0, v, body, 900));
                assert_eq!(p, orig);
                continue;
            }
            let at = p.len() - 4;
            assert_eq!(throttle_time_offset(&p, 0, v, body), Some(at), "v{v}");
            assert_eq!(response_throttle_time_ms(&p, 0, v, body), Some(40), "v{v}");
            assert!(raise_throttle_time_ms(&mut p, 0, v, body, 900));
            assert_eq!(&p[..at], &orig[..at]);
            assert_eq!(response_throttle_time_ms(&p, 0, v, body), Some(900));
            for cut in 0..orig.len() {
                assert_eq!(response_throttle_time_ms(&orig[..cut], 0, v, body), None);
            }
        }
    }

    #[test]
    fn produce_throttle_time_of_unknown_or_malformed_responses() {
        let msg = ProduceResponse::default().with_throttle_time_ms(40);
        let p = encoded_response(0, 13, &msg);
        let body = response_body_offset(&p, 0, 13).unwrap();
        assert_eq!(response_throttle_time_ms(&p, 0, 13, body), Some(40));
        // a version whose layout is not known
        let mut q = p.clone();
        assert_eq!(response_throttle_time_ms(&q, 0, 14, body), None);
        assert!(!raise_throttle_time_ms(&mut q, 0, 14, body, 900));
        assert_eq!(q, p);
        // a tagged-field section declaring a field longer than the frame
        let mut q = p.clone();
        *q.last_mut().unwrap() = 1;
        q.extend_from_slice(&[0, 9, 1]);
        let bad = q.clone();
        assert_eq!(response_throttle_time_ms(&q, 0, 13, body), None);
        assert!(!raise_throttle_time_ms(&mut q, 0, 13, body, 900));
        assert_eq!(q, bad);
        // a topic count larger than the bytes left
        let mut q = p.clone();
        q[body] = 0x7f;
        let bad = q.clone();
        assert!(!raise_throttle_time_ms(&mut q, 0, 13, body, 900));
        assert_eq!(q, bad);
        // a body offset beyond the payload
        assert_eq!(response_throttle_time_ms(&p, 0, 13, p.len() + 1), None);
        assert_eq!(response_throttle_time_ms(&p, 1, 13, p.len() - 3), None);
    }
}
