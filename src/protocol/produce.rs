//! Produce requests for policies: what a safeguard needs to know, read in place without copying
//! or decompressing records ([`scan`]), and the error response that rejects a request
//! ([`error_response`]). Sans-io.
//!
//! Layout (Kafka protocol guide, Produce request v3-v13; record batch format v2, KIP-98):
//! `transactional_id, acks, timeout_ms, [topic (name, or topic_id from v13), [partition index,
//! records]]`, flexible from v9. Each partition's `records` is a sequence of record batches:
//! `baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8, crc uint32,
//! attributes int16 (bits 0-2: compression codec), lastOffsetDelta int32, baseTimestamp int64,
//! maxTimestamp int64, producerId int64, ...`.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use super::wire::{put_compact_str, put_uvarint, Cursor, WireError};

/// Record batch compression codecs (attributes bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Codec {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl Codec {
    /// Every codec, in attribute order.
    pub const ALL: [Codec; 5] = [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ];

    /// The name Kafka uses (`compression.type`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }

    /// The codec of a `compression.type` name.
    pub fn from_name(s: &str) -> Option<Codec> {
        Codec::ALL.into_iter().find(|c| c.name() == s)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// What a Produce request carries, as far as produce safeguards care.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceFacts {
    /// `acks`: 0, 1 or -1 (all).
    pub acks: i16,
    /// Whether `transactional_id` is set.
    pub transactional: bool,
    /// Record batches in the request.
    pub batches: usize,
    /// Size of the largest record batch, bytes (its whole encoding, `batchLength + 12`).
    pub max_batch_bytes: usize,
    /// Codecs used, one bit per [`Codec`].
    codecs: u8,
    /// Batches without a producer id (`producerId < 0`): not idempotent.
    pub non_idempotent_batches: usize,
}

impl ProduceFacts {
    /// Records that a batch uses `c`.
    pub fn set_codec(&mut self, c: Codec) {
        self.codecs |= c.bit();
    }

    /// The codecs the request's batches use.
    pub fn codecs(&self) -> impl Iterator<Item = Codec> + '_ {
        Codec::ALL
            .into_iter()
            .filter(move |c| self.codecs & c.bit() != 0)
    }
}

/// Why a Produce request cannot be scanned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProduceScanError {
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A record batch runs past its partition's records, or has a negative length.
    #[error("record batch at byte {0} is truncated or has an invalid length")]
    BadBatch(usize),
    /// A record batch in the old message format (magic 0 or 1), which Produce v3+ does not allow.
    #[error("record batch at byte {at} has magic {magic}; Produce v3+ requires magic 2")]
    OldMagic { at: usize, magic: i8 },
    /// A compression codec outside 0..=4.
    #[error("record batch at byte {at} has unknown compression codec {codec}")]
    UnknownCodec { at: usize, codec: u8 },
    /// Produce v13+ names topics by id (KIP-516): no topic names to check.
    #[error("Produce v{0} names topics by id, not by name")]
    NoTopicNames(i16),
}

const BATCH_HEADER_BYTES: usize = 61;

/// Reads the facts of a Produce request (`payload` from the request header on, `body` the offset
/// of the body, `version` its api version, 3..=13) without copying or decompressing records.
///
/// # Errors
/// [`ProduceScanError`] for a malformed request.
pub fn scan(payload: &[u8], body: usize, version: i16) -> Result<ProduceFacts, ProduceScanError> {
    let flexible = version >= 9;
    let mut c = Cursor::at(payload, body);
    let mut f = ProduceFacts {
        transactional: c.string(flexible)?.is_some(),
        acks: c.i16()?,
        ..Default::default()
    };
    c.i32()?; // timeout_ms
    let topics = c.count(flexible, 2)?.unwrap_or(0);
    for _ in 0..topics {
        if version >= 13 {
            c.skip(16)?; // topic_id
        } else {
            c.string(flexible)?;
        }
        let partitions = c.count(flexible, 5)?.unwrap_or(0);
        for _ in 0..partitions {
            c.i32()?; // index
            if let Some((start, end)) = c.bytes_range(flexible)? {
                scan_batches(payload, start, end, &mut f)?;
            }
            if flexible {
                c.skip_tagged()?;
            }
        }
        if flexible {
            c.skip_tagged()?;
        }
    }
    Ok(f)
}

fn scan_batches(
    buf: &[u8],
    start: usize,
    end: usize,
    f: &mut ProduceFacts,
) -> Result<(), ProduceScanError> {
    let mut at = start;
    while at < end {
        let header = buf
            .get(at..at + BATCH_HEADER_BYTES)
            .filter(|_| at + BATCH_HEADER_BYTES <= end)
            .ok_or(ProduceScanError::BadBatch(at))?;
        let be_i32 =
            |o: usize| i32::from_be_bytes([header[o], header[o + 1], header[o + 2], header[o + 3]]);
        let batch_len = usize::try_from(be_i32(8)).map_err(|_| ProduceScanError::BadBatch(at))?;
        let size = batch_len
            .checked_add(12)
            .filter(|s| at + s <= end && *s >= BATCH_HEADER_BYTES)
            .ok_or(ProduceScanError::BadBatch(at))?;
        let magic = i8::from_be_bytes([header[16]]);
        if magic != 2 {
            return Err(ProduceScanError::OldMagic { at, magic });
        }
        let attributes = i16::from_be_bytes([header[21], header[22]]);
        let codec = (attributes & 0x7) as u8;
        if codec > Codec::Zstd as u8 {
            return Err(ProduceScanError::UnknownCodec { at, codec });
        }
        f.codecs |= 1u8 << codec;
        let producer_id = i64::from_be_bytes([
            header[43], header[44], header[45], header[46], header[47], header[48], header[49],
            header[50],
        ]);
        if producer_id < 0 {
            f.non_idempotent_batches += 1;
        }
        f.batches += 1;
        f.max_batch_bytes = f.max_batch_bytes.max(size);
        at += size;
    }
    Ok(())
}

/// The topic names of a Produce request (v3-v12), read in place (records are skipped, never
/// copied), in request order. v13+ names topics by id (KIP-516) and has no names:
/// [`ProduceScanError::NoTopicNames`].
///
/// # Errors
/// [`ProduceScanError`] for a malformed request or a version without topic names.
pub fn topic_names(
    payload: &[u8],
    body: usize,
    version: i16,
) -> Result<Vec<&str>, ProduceScanError> {
    Ok(topic_bytes(payload, body, version)?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

/// Each topic of a Produce request (v3-v12) with the bytes of its record batches, in request
/// order, read in place (per-topic byte quotas). `payload[body..]` is the body.
///
/// # Errors
/// As [`topic_names`].
pub fn topic_bytes(
    payload: &[u8],
    body: usize,
    version: i16,
) -> Result<Vec<(&str, usize)>, ProduceScanError> {
    if version >= 13 {
        return Err(ProduceScanError::NoTopicNames(version));
    }
    let flexible = version >= 9;
    let mut c = Cursor::at(payload, body);
    c.string(flexible)?; // transactional_id
    c.i16()?; // acks
    c.i32()?; // timeout_ms
    let topics = c.count(flexible, 2)?.unwrap_or(0);
    let mut out = Vec::with_capacity(topics);
    for _ in 0..topics {
        let name = c.str(flexible)?;
        let mut bytes = 0;
        let partitions = c.count(flexible, 5)?.unwrap_or(0);
        for _ in 0..partitions {
            c.i32()?; // index
            if let Some((s, e)) = c.bytes_range(flexible)? {
                bytes += e - s;
            }
            if flexible {
                c.skip_tagged()?;
            }
        }
        if flexible {
            c.skip_tagged()?;
        }
        out.push((name, bytes));
    }
    Ok(out)
}

pub use super::answer::AnswerBound;
pub use super::codes::{POLICY_VIOLATION, TOPIC_AUTHORIZATION_FAILED};

/// A Produce response payload (no size prefix) that answers every partition of the request with
/// `error_code` and `message` (v8+ carries it), in the request's version, for `correlation_id`.
///
/// # Errors
/// When the request body cannot be decoded or the response cannot be encoded.
pub fn error_response(
    payload: &[u8],
    body: usize,
    version: i16,
    correlation_id: i32,
    (error_code, message): (i16, &str),
    bound: &AnswerBound,
) -> Result<Bytes, String> {
    error_response_by_topic(
        payload,
        body,
        version,
        correlation_id,
        |_| (error_code, message.to_string()),
        bound,
    )
}

/// As [`error_response`], with the error code and message of each topic from `per_topic(name)`
/// (v13 requests name topics by id: `name` is then empty). Partitions carry the message while
/// `bound`'s message budget lasts.
///
/// The answer is written straight from an in-place walk of the request (nothing of the request
/// is decoded or copied), so building it takes the answer's own bytes and no more; it stops as
/// soon as it would pass `bound`. Layout (ProduceResponse v0-v13, Kafka protocol guide):
/// `[topic (name, or topic_id from v13), [partition index, error_code, base_offset,
/// log_append_time_ms (v2+), log_start_offset (v5+), record_errors and error_message (v8+)]],
/// throttle_time_ms (v1+)`, flexible from v9 (the v10+ tagged fields are left out).
///
/// # Errors
/// When the request body cannot be walked, or the answer would exceed `bound`.
pub fn error_response_by_topic(
    payload: &[u8],
    body: usize,
    version: i16,
    correlation_id: i32,
    per_topic: impl Fn(&str) -> (i16, String),
    bound: &AnswerBound,
) -> Result<Bytes, String> {
    let flexible = version >= 9;
    let too_large = |n: usize| bound.check(n);
    let walk = |e: WireError| format!("Produce v{version} request: {e}");
    let mut c = Cursor::at(payload, body);
    c.string(flexible).map_err(walk)?; // transactional_id
    c.i16().map_err(walk)?; // acks
    c.i32().map_err(walk)?; // timeout_ms
    let topics = c.count(flexible, 2).map_err(walk)?.unwrap_or(0);
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&correlation_id.to_be_bytes());
    if flexible {
        out.push(0); // response header v1: no tagged fields
    }
    put_len(&mut out, flexible, topics);
    for _ in 0..topics {
        let name = if version >= 13 {
            out.extend_from_slice(c.take(16).map_err(walk)?); // topic_id
            ""
        } else {
            let name = c.str(flexible).map_err(walk)?;
            put_str(&mut out, flexible, Some(name));
            name
        };
        let (error_code, message) = per_topic(name);
        let partitions = c.count(flexible, 5).map_err(walk)?.unwrap_or(0);
        put_len(&mut out, flexible, partitions);
        for _ in 0..partitions {
            let index = c.i32().map_err(walk)?;
            c.skip_bytes(flexible).map_err(walk)?; // records
            if flexible {
                c.skip_tagged().map_err(walk)?;
            }
            out.extend_from_slice(&index.to_be_bytes());
            out.extend_from_slice(&error_code.to_be_bytes());
            out.extend_from_slice(&(-1i64).to_be_bytes()); // base_offset
            if version >= 2 {
                out.extend_from_slice(&(-1i64).to_be_bytes()); // log_append_time_ms
            }
            if version >= 5 {
                out.extend_from_slice(&(-1i64).to_be_bytes()); // log_start_offset
            }
            if version >= 8 {
                put_len(&mut out, flexible, 0); // record_errors
                let carried = bound
                    .take_message(message.len())
                    .then_some(message.as_str());
                put_str(&mut out, flexible, carried); // error_message
            }
            if flexible {
                out.push(0);
            }
            too_large(out.len())?;
        }
        if flexible {
            c.skip_tagged().map_err(walk)?;
            out.push(0);
        }
    }
    if version >= 1 {
        out.extend_from_slice(&0i32.to_be_bytes()); // throttle_time_ms
    }
    if flexible {
        out.push(0);
    }
    too_large(out.len())?;
    Ok(Bytes::from(out))
}

/// Appends an array length: compact (length + 1, unsigned varint) when `flexible`, else int32.
fn put_len(out: &mut Vec<u8>, flexible: bool, n: usize) {
    if flexible {
        put_uvarint(
            out,
            u32::try_from(n).unwrap_or(u32::MAX - 1).saturating_add(1),
        );
    } else {
        out.extend_from_slice(&i32::try_from(n).unwrap_or(i32::MAX).to_be_bytes());
    }
}

/// Appends a nullable string: compact when `flexible`, else int16 length (-1: null).
fn put_str(out: &mut Vec<u8>, flexible: bool, s: Option<&str>) {
    if flexible {
        put_compact_str(out, s);
        return;
    }
    match s {
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
        Some(s) => {
            // A string of more than 32767 bytes does not fit: cut at a character boundary.
            let mut n = s.len().min(i16::MAX as usize);
            while !s.is_char_boundary(n) {
                n -= 1;
            }
            out.extend_from_slice(&(n as i16).to_be_bytes());
            out.extend_from_slice(&s.as_bytes()[..n]);
        }
    }
}

/// A response payload (no size prefix) that Sluice answers itself: the response header of
/// `api_key`/`version` with `correlation_id`, then `body`, its size checked against `bound`
/// before it is encoded.
///
/// # Errors
/// The answer would exceed `bound`; kafka-protocol's encode error, as text.
pub(crate) fn local_response<T: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
    bound: &AnswerBound,
) -> Result<Bytes, String> {
    // The response header is a correlation id and, flexible, an empty tag section.
    bound.check(body.compute_size(version).map_err(|e| e.to_string())? + 5)?;
    let mut out = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out, api_key.response_header_version(version))
        .map_err(|e| e.to_string())?;
    body.encode(&mut out, version).map_err(|e| e.to_string())?;
    Ok(out.freeze())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse, RequestHeader, TopicName};
    use kafka_protocol::protocol::{Decodable, Message, StrBytes};

    /// A v2 record batch of `records` bytes of padding (not valid records: the scanner never
    /// reads past the header).
    fn batch(codec: u8, producer_id: i64, records: usize) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&0i64.to_be_bytes());
        let len = (BATCH_HEADER_BYTES - 12 + records) as i32;
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes()); // partitionLeaderEpoch
        b.push(2); // magic
        b.extend_from_slice(&0u32.to_be_bytes()); // crc
        b.extend_from_slice(&i16::from(codec).to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes()); // lastOffsetDelta
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&producer_id.to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes()); // producerEpoch
        b.extend_from_slice(&0i32.to_be_bytes()); // baseSequence
        b.extend_from_slice(&0i32.to_be_bytes()); // records count
        b.resize(b.len() + records, 0);
        b
    }

    fn request(version: i16, acks: i16, batches: Vec<Vec<u8>>) -> (Vec<u8>, usize) {
        let req = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(1000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_data(
                    batches
                        .into_iter()
                        .enumerate()
                        .map(|(i, b)| {
                            PartitionProduceData::default()
                                .with_index(i as i32)
                                .with_records(Some(Bytes::from(b)))
                        })
                        .collect(),
                )]);
        encode(&req, version)
    }

    /// A Produce request payload (header with correlation id 9, then `req`) and its body offset.
    fn encode(req: &ProduceRequest, version: i16) -> (Vec<u8>, usize) {
        let mut out = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(0)
            .with_request_api_version(version)
            .with_correlation_id(9)
            .encode(&mut out, ApiKey::Produce.request_header_version(version))
            .unwrap();
        let body = out.len();
        req.encode(&mut out, version).unwrap();
        (out.to_vec(), body)
    }

    #[test]
    fn scans_every_version_without_reading_records() {
        for v in ProduceRequest::VERSIONS.min..=ProduceRequest::VERSIONS.max {
            let (p, body) = request(
                v,
                -1,
                vec![
                    [batch(4, 7, 100), batch(0, 7, 10)].concat(),
                    batch(3, -1, 1000),
                ],
            );
            let f = scan(&p, body, v).unwrap();
            assert_eq!(f.acks, -1, "v{v}");
            assert_eq!(f.batches, 3, "v{v}");
            assert_eq!(f.max_batch_bytes, BATCH_HEADER_BYTES + 1000, "v{v}");
            assert_eq!(
                f.codecs().collect::<Vec<_>>(),
                vec![Codec::None, Codec::Lz4, Codec::Zstd],
                "v{v}"
            );
            assert_eq!(f.non_idempotent_batches, 1, "v{v}");
            assert!(!f.transactional);
        }
    }

    #[test]
    fn malformed_batches_are_errors_not_panics() {
        let mut short = batch(0, 1, 10);
        short.truncate(30);
        let (p, body) = request(9, 1, vec![short]);
        assert!(matches!(
            scan(&p, body, 9),
            Err(ProduceScanError::BadBatch(_))
        ));
        let mut old = batch(0, 1, 10);
        old[16] = 1;
        let (p, body) = request(9, 1, vec![old]);
        assert!(matches!(
            scan(&p, body, 9),
            Err(ProduceScanError::OldMagic { .. })
        ));
        let (p, body) = request(9, 1, vec![batch(6, 1, 10)]);
        assert!(matches!(
            scan(&p, body, 9),
            Err(ProduceScanError::UnknownCodec { .. })
        ));
        for cut in 0..p.len() {
            let _ = scan(&p[..cut], body.min(cut), 9);
        }
    }

    #[test]
    fn error_response_answers_every_partition() {
        use kafka_protocol::messages::ResponseHeader;
        for v in [3i16, 8, 9, 12, 13] {
            let (p, body) = request(v, 1, vec![batch(0, 1, 1), batch(0, 1, 1)]);
            let out = error_response(
                &p,
                body,
                v,
                9,
                (POLICY_VIOLATION, "no"),
                &crate::protocol::answer::AnswerBound::for_request(1 << 20, 100 << 20),
            )
            .unwrap();
            let mut b = out.clone();
            let h =
                ResponseHeader::decode(&mut b, ApiKey::Produce.response_header_version(v)).unwrap();
            assert_eq!(h.correlation_id, 9);
            let r = ProduceResponse::decode(&mut b, v).unwrap();
            let parts = &r.responses[0].partition_responses;
            assert_eq!(parts.len(), 2, "v{v}");
            assert!(parts.iter().all(|p| p.error_code == POLICY_VIOLATION));
            if v >= 8 {
                assert_eq!(parts[0].error_message.as_deref(), Some("no"));
            }
        }
    }

    /// Issue 11, defect 8: a request of many small partitions, rejected whole, once got an
    /// answer more than ten times its size (a message and 30-odd fixed bytes per partition).
    /// Now the answer is refused when it would pass 4 times the request, and messages stop at
    /// the request's size.
    #[test]
    fn a_rejection_never_outgrows_its_request() {
        let partitions = |n: i32| {
            ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(1000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partition_data(
                        (0..n)
                            .map(|i| PartitionProduceData::default().with_index(i))
                            .collect(),
                    )])
        };
        let message = (
            POLICY_VIOLATION,
            "rejected by Sluice policy p: x".repeat(2).leak() as &str,
        );
        for v in [3i16, 8, 9, 12] {
            // Hostile: 200,000 partitions without records.
            let (p, body) = encode(&partitions(200_000), v);
            let bound = AnswerBound::for_request(p.len(), 100 << 20);
            match error_response(&p, body, v, 9, message, &bound) {
                // Flexible versions: 33 bytes a partition answered, 6 asked.
                Err(e) => assert!(e.contains("would exceed"), "v{v}: {e}"),
                Ok(out) => {
                    assert!(v < 9, "v{v}: a {}-byte answer", out.len());
                    assert!(out.len() <= bound.max_bytes(), "v{v}: {} bytes", out.len());
                }
            }
            // Ordinary: a few partitions, each answered with the message.
            let (p, body) = encode(&partitions(3), v);
            let bound = AnswerBound::for_request(p.len(), 100 << 20);
            let out = error_response(&p, body, v, 9, message, &bound).unwrap();
            assert!(out.len() <= bound.max_bytes());
            if v >= 8 {
                let mut b = out.clone();
                kafka_protocol::messages::ResponseHeader::decode(
                    &mut b,
                    ApiKey::Produce.response_header_version(v),
                )
                .unwrap();
                let r = ProduceResponse::decode(&mut b, v).unwrap();
                let parts = &r.responses[0].partition_responses;
                assert_eq!(parts.len(), 3);
                assert!(parts
                    .iter()
                    .all(|p| p.error_message.as_deref() == Some(message.1)));
            }
        }
        // Between the two: answered, but past the message budget partitions carry no message.
        let (p, body) = encode(&partitions(1_500), 9);
        let bound = AnswerBound::for_request(p.len(), 100 << 20);
        let out = error_response(&p, body, 9, 9, message, &bound).unwrap();
        assert!(out.len() <= bound.max_bytes(), "{} bytes", out.len());
        let mut b = out.clone();
        kafka_protocol::messages::ResponseHeader::decode(
            &mut b,
            ApiKey::Produce.response_header_version(9),
        )
        .unwrap();
        let r = ProduceResponse::decode(&mut b, 9).unwrap();
        let parts = &r.responses[0].partition_responses;
        let with_message = parts.iter().filter(|p| p.error_message.is_some()).count();
        assert!(
            with_message > 0 && with_message < parts.len(),
            "{with_message}"
        );
        assert!(parts.iter().all(|p| p.error_code == POLICY_VIOLATION));
    }

    fn two_topics(version: i16) -> (Vec<u8>, usize) {
        let topic = |name: &'static str, batches: usize| {
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str(name)))
                .with_partition_data(
                    (0..batches)
                        .map(|i| {
                            PartitionProduceData::default()
                                .with_index(i as i32)
                                .with_records(Some(Bytes::from(batch(0, 1, 10))))
                        })
                        .collect(),
                )
        };
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(1000)
            .with_topic_data(vec![topic("audit", 2), topic("orders", 1)]);
        encode(&req, version)
    }

    #[test]
    fn topic_names_in_place_and_errors_by_topic() {
        for v in 3..=12i16 {
            let (p, body) = two_topics(v);
            assert_eq!(topic_names(&p, body, v).unwrap(), vec!["audit", "orders"]);
            // Flexible versions end with the request's tagged fields, which are not read.
            let end = p.len() - usize::from(v >= 9);
            for cut in body..end {
                assert!(topic_names(&p[..cut], body, v).is_err(), "v{v} cut {cut}");
            }
            let out = error_response_by_topic(
                &p,
                body,
                v,
                9,
                |t| {
                    if t == "audit" {
                        (TOPIC_AUTHORIZATION_FAILED, "read-only".into())
                    } else {
                        (POLICY_VIOLATION, "not written".into())
                    }
                },
                &crate::protocol::answer::AnswerBound::for_request(1 << 20, 100 << 20),
            )
            .unwrap();
            let mut b = out.clone();
            ResponseHeader::decode(&mut b, ApiKey::Produce.response_header_version(v)).unwrap();
            let r = ProduceResponse::decode(&mut b, v).unwrap();
            let codes: Vec<Vec<i16>> = r
                .responses
                .iter()
                .map(|t| t.partition_responses.iter().map(|p| p.error_code).collect())
                .collect();
            assert_eq!(codes, vec![vec![29, 29], vec![44]], "v{v}");
            if v >= 8 {
                assert_eq!(
                    r.responses[1].partition_responses[0]
                        .error_message
                        .as_deref(),
                    Some("not written")
                );
            }
        }
        let (p, body) = two_topics(13);
        assert_eq!(
            topic_names(&p, body, 13),
            Err(ProduceScanError::NoTopicNames(13))
        );
    }
}
