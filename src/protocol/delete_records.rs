//! DeleteRecords requests (api key 21, KIP-107) for policies: the topics and partitions a request
//! truncates, decoded with kafka-protocol (admin traffic, rare, and only when a read-only rule
//! applies to the client), and the error response that answers a rejected request. Sans-io.
//!
//! Layout (Kafka protocol guide): `topics: [name, partitions: [partition_index int32, offset
//! int64]], timeout_ms`; response `throttle_time_ms, topics: [name, partitions:
//! [partition_index, low_watermark int64, error_code]]` (no error message); flexible from v2.

use bytes::Bytes;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::wire::{always, decode_walked, Schema, Struct, Ty, I32, I64};

/// DeleteRecords api key.
pub const DELETE_RECORDS: i16 = 21;

static PARTITION: Struct = Struct {
    fields: &[always(I32), always(I64)], // partition_index, offset
    tagged: &[],
};

static TOPIC: Struct = Struct {
    fields: &[always(Ty::Str), always(Ty::Array(&PARTITION))], // name, partitions
    tagged: &[],
};

static ROOT: Struct = Struct {
    fields: &[always(Ty::Array(&TOPIC)), always(I32)], // topics, timeout_ms
    tagged: &[],
};

/// Body layout of DeleteRecordsRequest v0-v2 (flexible from v2), walked before decoding.
static REQUEST_SCHEMA: Schema = Schema {
    root: &ROOT,
    flexible_from: 2,
};

/// The topics of a DeleteRecords request body (`payload[body..]`, version `version`) and the
/// partition indexes asked for each.
///
/// # Errors
/// kafka-protocol's decode error, as text.
pub fn topics(
    payload: &[u8],
    body: usize,
    version: i16,
) -> Result<Vec<(String, Vec<i32>)>, String> {
    let req: DeleteRecordsRequest = decode_walked(payload, body, version, &REQUEST_SCHEMA)?;
    Ok(req
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect())
}

/// A DeleteRecords response payload (no size prefix) answering every partition of `topics` with
/// `code(topic)` and low watermark -1, in the request's version.
///
/// # Errors
/// When the response cannot be encoded.
pub fn error_response(
    topics: &[(String, Vec<i32>)],
    version: i16,
    correlation_id: i32,
    code: impl Fn(&str) -> i16,
    bound: &super::answer::AnswerBound,
) -> Result<Bytes, String> {
    let topics = topics
        .iter()
        .map(|(name, parts)| {
            let error_code = code(name);
            DeleteRecordsTopicResult::default()
                .with_name(TopicName(StrBytes::from_string(name.clone())))
                .with_partitions(
                    parts
                        .iter()
                        .map(|p| {
                            DeleteRecordsPartitionResult::default()
                                .with_partition_index(*p)
                                .with_low_watermark(-1)
                                .with_error_code(error_code)
                        })
                        .collect(),
                )
        })
        .collect();
    let resp = DeleteRecordsResponse::default().with_topics(topics);
    super::produce::local_response(ApiKey::DeleteRecords, version, correlation_id, &resp, bound)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    use kafka_protocol::messages::{RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::Decodable;

    #[test]
    fn a_hostile_topic_count_is_an_error_before_any_allocation() {
        // topics: int32 count 2^31-1 (v0) / compact count 2^28 (v2), then nothing
        assert!(topics(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0], 0, 0).is_err());
        assert!(topics(&[0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0, 0, 0], 0, 2).is_err());
    }
    use kafka_protocol::protocol::{Encodable, Message};

    #[test]
    fn reads_topics_and_answers_every_version() {
        for v in DeleteRecordsRequest::VERSIONS.min..=DeleteRecordsRequest::VERSIONS.max {
            let req = DeleteRecordsRequest::default().with_topics(vec![
                DeleteRecordsTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("audit")))
                    .with_partitions(vec![
                        DeleteRecordsPartition::default()
                            .with_partition_index(0)
                            .with_offset(5),
                        DeleteRecordsPartition::default()
                            .with_partition_index(2)
                            .with_offset(5),
                    ]),
                DeleteRecordsTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("other")))
                    .with_partitions(vec![DeleteRecordsPartition::default()]),
            ]);
            let mut p = BytesMut::new();
            RequestHeader::default()
                .with_request_api_key(DELETE_RECORDS)
                .with_request_api_version(v)
                .with_correlation_id(3)
                .encode(&mut p, ApiKey::DeleteRecords.request_header_version(v))
                .unwrap();
            let body = p.len();
            req.encode(&mut p, v).unwrap();
            let t = topics(&p, body, v).unwrap();
            assert_eq!(t[0], ("audit".to_string(), vec![0, 2]));
            let out = error_response(
                &t,
                v,
                3,
                |n| if n == "audit" { 29 } else { 44 },
                &crate::protocol::answer::AnswerBound::for_request(1 << 20, 100 << 20),
            )
            .unwrap();
            let mut b = out.clone();
            let h =
                ResponseHeader::decode(&mut b, ApiKey::DeleteRecords.response_header_version(v))
                    .unwrap();
            assert_eq!(h.correlation_id, 3);
            let r = DeleteRecordsResponse::decode(&mut b, v).unwrap();
            assert_eq!(r.topics[0].partitions.len(), 2);
            assert_eq!(r.topics[0].partitions[1].partition_index, 2);
            assert_eq!(r.topics[0].partitions[1].error_code, 29, "v{v}");
            assert_eq!(r.topics[1].partitions[0].error_code, 44);
            assert!(topics(&p[..p.len() - 3], body, v).is_err());
        }
    }
}
